"""The documentation stays true to the code, without building it.

Building the site runs every tutorial and takes minutes, so CI does that
separately (.ci/run). These checks are fast: the Sphinx configuration loads,
every public name of nnlite.nn, nnlite.optim, nnlite.io, nnlite.data and the
other packages listed below has an autodoc or ``.. data::`` entry in docs/api/, and every file, symbol and tutorial that
docs/concepts.rst and docs/reading_guide.rst point to exists.
"""
import importlib
import os
import re
import runpy
import sys
import types
import warnings

import pytest

import nnlite

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")

AUTODOC = re.compile(r"^\s*\.\. auto(?:class|function|exception|data|module|method|attribute)::\s+(\S+)",
                     re.M)
# ``.. data::`` entries named in full, with any further names on the lines below the first
# (``.. data:: nnlite.quantization.qint8`` then ``          nnlite.qint8``).
DATA = re.compile(r"^\.\. data:: (nnlite\.\S+)\n((?:[ \t]+nnlite\.\S+\n)*)", re.M)
ROLE = re.compile(r":(?:func|class|meth|attr|mod|data|exc):`~?([^`<>]+?)`")
DOC_ROLE = re.compile(r":doc:`(?:[^`<]*<)?([^`>]+)>?`")
SOURCE_PATH = re.compile(r"``((?:nnlite|tests|benchmarks|tutorials|docs)/[\w./-]+)``")


def read(*parts):
    with open(os.path.join(DOCS, *parts), encoding="utf-8") as f:
        return f.read()


def api_targets():
    targets = set()
    for name in os.listdir(os.path.join(DOCS, "api")):
        if name.endswith(".rst"):
            text = read("api", name)
            targets.update(AUTODOC.findall(text))
            for first, more in DATA.findall(text):
                targets.update([first] + more.split())
    return targets


def public_names(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in dir(module) if not n.startswith("_")]
    return [n for n in names if not isinstance(getattr(module, n), types.ModuleType)]


def resolve(dotted):
    """Import the longest module prefix of ``dotted`` and walk the rest as attributes."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


WHOLE_MODULE_PAGES = {"nnlite.nn.functional": "functional.rst", "nnlite.nn.init": "init.rst",
                      "nnlite.nn.utils": "utils.rst", "nnlite.optim.lr_scheduler": "lr_scheduler.rst"}


def test_conf_loads_with_the_offline_extensions(monkeypatch):
    # conf.py sets defaults in os.environ and sys.path for the docs build; keep them out of
    # the rest of the test session.
    monkeypatch.setattr(os, "environ", dict(os.environ))
    monkeypatch.setattr(sys, "path", list(sys.path))
    with warnings.catch_warnings():
        conf = runpy.run_path(os.path.join(DOCS, "conf.py"))
    assert "sphinx-mathjax-offline" in conf["extensions"]
    assert conf["sphinx_gallery_conf"]["write_computation_times"] is False
    assert not conf["intersphinx_mapping"]
    assert conf["release"] == nnlite.__version__
    gallery = conf["sphinx_gallery_conf"]["examples_dirs"]
    assert os.path.isfile(os.path.join(gallery, "GALLERY_HEADER.rst"))


@pytest.mark.parametrize("module_name", ["nnlite.nn", "nnlite.nn.functional", "nnlite.nn.init",
                                         "nnlite.nn.utils", "nnlite.optim", "nnlite.optim.lr_scheduler",
                                         "nnlite.io", "nnlite.data", "nnlite.distributed", "nnlite.func",
                                         "nnlite.meta", "nnlite.nas", "nnlite.quantization"])
def test_every_public_name_is_in_the_api_pages(module_name):
    module = importlib.import_module(module_name)
    targets = api_targets()
    if module_name in WHOLE_MODULE_PAGES:
        # documented whole: automodule with :members: and :undoc-members:
        assert module_name in targets, f"docs/api/{WHOLE_MODULE_PAGES[module_name]} lost its automodule"
        assert ":undoc-members:" in read("api", WHOLE_MODULE_PAGES[module_name])
        return
    missing = [n for n in public_names(module) if f"{module_name}.{n}" not in targets]
    assert not missing, f"docs/api/*.rst has no autodoc entry for {module_name}: {missing}"


def test_api_targets_exist():
    broken = []
    for target in sorted(api_targets()):
        try:
            resolve(target)
        except (ImportError, AttributeError):
            broken.append(target)
    assert not broken, f"docs/api/*.rst documents names that do not exist: {broken}"


@pytest.mark.parametrize("page", ["concepts.rst", "reading_guide.rst", "getting_started.rst"])
def test_pages_point_at_files_and_symbols_that_exist(page):
    text = read(page)
    paths = SOURCE_PATH.findall(text)
    symbols = ROLE.findall(text)
    if page == "concepts.rst":
        assert len(paths) > 40 and len(symbols) > 80
    missing_paths = [p for p in paths if not os.path.exists(os.path.join(ROOT, p.rstrip("/")))]
    assert not missing_paths, f"{page} names files that do not exist: {missing_paths}"
    broken = []
    for symbol in symbols:
        try:
            resolve(symbol)
        except (ImportError, AttributeError):
            broken.append(symbol)
    assert not broken, f"{page} names symbols that do not exist: {broken}"


def test_concepts_link_every_tutorial_and_only_existing_ones():
    text = read("concepts.rst")
    docs = set(DOC_ROLE.findall(text))
    tutorials = {d.split("/")[-1] for d in docs if d.startswith("auto_tutorials/")}
    on_disk = {f[:-3] for f in os.listdir(os.path.join(ROOT, "tutorials"))
               if f.startswith("plot_") and f.endswith(".py")}
    assert tutorials <= on_disk, f"concepts.rst links missing tutorials: {sorted(tutorials - on_disk)}"
    assert on_disk <= tutorials, f"tutorials not linked from concepts.rst: {sorted(on_disk - tutorials)}"


def test_concepts_cover_the_concept_map_sections():
    text = read("concepts.rst")
    for heading in ("Core concepts", "Initialization", "Types of parameters", "Parameter learning",
                    "Parameter architecture", "Parameter management", "Parameter optimization",
                    "Parameter analysis", "Parameter efficiency", "Parameter monitoring",
                    "Advanced topics", "Best practices"):
        assert f"\n{heading}\n---" in text, heading


def test_getting_started_repeats_the_readme_commands():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    commands = re.findall(r"```bash\n(.+?)\n```", readme)
    assert len(commands) >= 2
    page = read("getting_started.rst")
    for command in commands[:2]:
        assert f"   {command}\n" in page, command


def test_getting_started_describes_every_extra():
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        pyproject = f.read()
    section = pyproject.split("[project.optional-dependencies]")[1].split("\n[")[0]
    extras = re.findall(r"^([\w-]+) = \[", section, flags=re.M)
    assert "test" in extras and "onnx" in extras
    page = read("getting_started.rst")
    missing = [e for e in extras if f"\n``{e}``\n   " not in page]
    assert not missing, f"getting_started.rst does not describe the extras {missing}"


def test_benchmark_tables_become_rest_tables():
    pytest.importorskip("sphinx")   # nnlite_docs is a Sphinx extension (the docs extra brings both)
    pytest.importorskip("docutils")
    from docutils.core import publish_doctree
    from docutils import nodes
    sys.path.insert(0, os.path.join(DOCS, "_ext"))
    try:
        nnlite_docs = importlib.import_module("nnlite_docs")
    finally:
        sys.path.remove(os.path.join(DOCS, "_ext"))
    markdown = ("## bench_gemm\n\n"
                "| workload | nnlite ms | torch ms | numpy ms | nnlite/torch | nnlite/numpy | note |\n"
                "|---|---|---|---|---|---|---|\n"
                "| gemm 256 | 0.120 | 0.100 | 0.110 | 1.200 | 1.091 | a|b |\n"
                "| gemm 512 | 0.900 | 0.800 | — | 1.125 | — |  |\n")
    tree = publish_doctree("\n".join(nnlite_docs.markdown_to_rst(markdown)),
                           settings_overrides={"report_level": 2, "halt_level": 2})
    tables = list(tree.findall(nodes.table))
    assert len(tables) == 1
    rows = list(tables[0].findall(nodes.row))
    assert len(rows) == 3 and "gemm 512" in rows[2].astext()
    rows_json = {"bench_gemm": [{"workload": "gemm 256", "nnlite_ms": 0.12, "torch_ms": None}]}
    tree = publish_doctree("\n".join(nnlite_docs.json_to_rst(rows_json)),
                           settings_overrides={"report_level": 2, "halt_level": 2})
    assert "gemm 256" in next(iter(tree.findall(nodes.table))).astext()


SUBSTITUTION = re.compile(r"^\.\. \|(\w+)\| replace:: :doc:`[^`<]*<auto_tutorials/(\w+)>`", re.M)
ROW = re.compile(r"^   \* - ", re.M)
CELL = re.compile(r"^     - ", re.M)
LITERAL = re.compile(r"``([^`]+)``")


def concept_rows():
    """(concept, where-cell, tutorial-cell) for every row of every table of docs/concepts.rst."""
    rows = []
    for table in read("concepts.rst").split(".. list-table::")[1:]:
        body = re.split(r"\n\S", table)[0]   # the table ends at the next unindented line
        for row in ROW.split(body)[2:]:      # [0] is the options, [1] the header row
            cells = CELL.split(row)
            if len(cells) == 3:
                rows.append(tuple(" ".join(c.split()) for c in cells))
    return rows


def row_symbols(where):
    """Names a reader of the row would look for in code: role targets and code literals."""
    names = {target.split(".")[-1] for target in ROLE.findall(where)}
    for literal in LITERAL.findall(where):
        if "/" in literal:   # a file path, checked by another test
            continue
        for word in re.findall(r"[A-Za-z_][\w.]*", literal):
            names.add(word.split(".")[-1])
    return {n for n in names if len(n) > 2}


def test_every_concept_row_parses():
    rows = concept_rows()
    assert len(rows) > 90, len(rows)
    assert all(where for _, where, _ in rows)


def test_each_concept_row_tutorial_uses_one_of_the_row_symbols():
    # A row credits a tutorial only if that tutorial touches the code the row names.
    text = read("concepts.rst")
    tutorials = dict(SUBSTITUTION.findall(text))
    sources = {}
    for key, name in tutorials.items():
        with open(os.path.join(ROOT, "tutorials", name + ".py"), encoding="utf-8") as f:
            sources[key] = f.read()
    false_credits = []
    for concept, where, tutorial_cell in concept_rows():
        symbols = row_symbols(where)
        for key in re.findall(r"\|(\w+)\|", tutorial_cell):
            assert key in sources, f"concepts.rst row {concept!r} links |{key}|, which is not defined"
            if not any(re.search(rf"\b{re.escape(s)}\b", sources[key]) for s in symbols):
                false_credits.append(f"{concept!r} -> {tutorials[key]} (row symbols: {sorted(symbols)})")
    assert not false_credits, "tutorials credited with concepts they do not use:\n" + "\n".join(false_credits)


TUTORIALS = os.path.join(ROOT, "tutorials")


def tutorial_blocks(path):
    """(text, code) of each ``# %%`` block of a gallery script, split as sphinx-gallery splits it:
    the comment lines right after the marker are the text, everything after them is code."""
    with open(path, encoding="utf-8") as f:
        chunks = re.split(r"^# %%.*\n", f.read(), flags=re.M)[1:]
    blocks = []
    for chunk in chunks:
        lines = chunk.splitlines()
        n = 0
        while n < len(lines) and lines[n].startswith("#"):
            n += 1
        blocks.append(("\n".join(lines[:n]), "\n".join(lines[n:])))
    return blocks


@pytest.mark.parametrize("name", sorted(n for n in os.listdir(TUTORIALS) if n.startswith("plot_")))
def test_every_tutorial_ends_with_a_summary_and_exercises(name):
    blocks = tutorial_blocks(os.path.join(TUTORIALS, name))
    text = "\n".join(t for t, _ in blocks)
    assert "# Summary\n# -------" in text, f"{name}: no Summary section"
    assert "# Exercises\n# ---------" in text, f"{name}: no Exercises section"
    # A comment block cut off from its marker by a blank line would be shown as code.
    stray = [code.strip().splitlines()[0] for _, code in blocks
             if code.strip() and all(line.lstrip().startswith("#") for line in code.strip().splitlines())]
    assert not stray, f"{name}: comment lines outside a text block, rendered as code: {stray}"
