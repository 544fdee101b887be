"""The browser check of the built docs (tests/docs_in_browser.py), on a small hand-made site.

.ci/run runs the check on the real site after sphinx-build; these tests show
that each of its checks fails when it should. They need Chromium (Debian's
``chromium`` package) and skip without it.
"""
import base64
import importlib.util
import os
import shutil

import pytest

# tests/ is not a package: load the script by its path rather than putting tests/ on sys.path.
_spec = importlib.util.spec_from_file_location(
    "docs_in_browser", os.path.join(os.path.dirname(os.path.abspath(__file__)), "docs_in_browser.py"))
docs_in_browser = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(docs_in_browser)

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def _site(tmp_path, pages):
    root = tmp_path / "html"
    root.mkdir()
    (root / "dot.png").write_bytes(PNG)
    for name, body in pages.items():
        (root / name).write_text(f"<!doctype html><html><body>{body}</body></html>", encoding="utf-8")
    return str(root)


def _browser():
    browser = docs_in_browser.find_browser()
    if browser is None:
        pytest.skip("no Chromium installed (Debian package 'chromium')")
    return browser


def test_a_clean_site_passes_and_is_photographed(tmp_path):
    browser = _browser()
    root = _site(tmp_path, {"index.html": "<p>Parameters</p><img src='dot.png'>"
                                          "<pre>code may show \\( and $$</pre>"})
    problems, checked = docs_in_browser.check_site(root, str(tmp_path / "shots"), searches={}, browser=browser)
    assert problems == [] and checked == 1
    assert (tmp_path / "shots" / "index.png").read_bytes()[:4] == b"\x89PNG"


def test_raw_math_broken_images_and_outside_requests_are_reported(tmp_path):
    browser = _browser()
    root = _site(tmp_path, {
        "index.html": "<p>fine</p>",
        "math.html": "<p>the loss \\( L(\\theta) \\) was never typeset</p>",
        "image.html": "<img src='missing.png'>",
        "online.html": "<script>fetch('http://cdn.example.invalid/mathjax.js').catch(() => null)</script>",
    })
    problems, checked = docs_in_browser.check_site(root, searches={}, browser=browser)
    text = "\n".join(problems)
    assert checked == 4
    assert "math.html: math left untypeset" in text
    assert "image.html: images that did not load: ['missing.png']" in text
    assert "requests left the machine: ['http://cdn.example.invalid/mathjax.js']" in text
    assert "index.html" not in text


def test_without_chromium_the_script_says_so(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert docs_in_browser.main([str(tmp_path)]) == 2
    assert "no Chromium found" in capsys.readouterr().err
