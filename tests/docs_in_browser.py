"""Check the built documentation in a real browser: headless Chromium, driven over the DevTools protocol.

Run by ``.ci/run`` after ``sphinx-build``::

    python tests/docs_in_browser.py docs/_build/html --screenshots docs/_build/screenshots

It serves the site from 127.0.0.1, opens every page and checks what a reader
would see, not what the HTML says:

* the math is typeset: once MathJax has finished, no ``\\(``, ``\\[`` or ``$$``
  is left in the page's text (code blocks excepted);
* every image has loaded (``naturalWidth > 0``);
* no request leaves the machine (the site must work offline: MathJax, fonts
  and scripts are served with it);
* the search page finds the analysis page for "effective rank" and the
  compression page for "pruning";
* screenshots of the front page and of a tutorial are written for CI to keep.

Chromium talks the DevTools protocol over a pipe (``--remote-debugging-pipe``:
JSON messages ending in a NUL byte on file descriptors 3 and 4), so no Python
package beyond the standard library is needed. Exit status 0 when everything
passes, 1 with a list of problems otherwise, 2 when no Chromium is found.
"""
import argparse
import base64
import fcntl
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import urlsplit

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
SEARCHES = {"effective rank": "api/analysis", "pruning": "api/compression"}

# Waits for MathJax (when the page loads it) and returns what the checks need.
PAGE_REPORT = r"""
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
    if (MathJax.typesetPromise) { await MathJax.typesetPromise(); }
  }
  await Promise.all(Array.from(document.images).map(img => img.complete ? null :
      new Promise(done => { img.onload = img.onerror = done; })));
  const body = document.body.cloneNode(true);
  body.querySelectorAll('pre, code, script, style, textarea, mjx-container').forEach(e => e.remove());
  const text = body.innerText || body.textContent;
  const raw = ['\\(', '\\[', '$$'].filter(s => text.includes(s));
  const broken = Array.from(document.images).filter(img => !(img.naturalWidth > 0))
                      .map(img => img.getAttribute('src'));
  return JSON.stringify({raw: raw, broken: broken, images: document.images.length,
                         math: document.querySelectorAll('mjx-container').length});
})()
"""

SEARCH_REPORT = r"""
(async () => {
  for (let i = 0; i < 200; i++) {
    const status = document.querySelector('#search-results .search-summary, #search-results > p');
    const items = document.querySelectorAll('#search-results li a');
    if (items.length && status && status.textContent.trim()) {
      return JSON.stringify(Array.from(items).map(a => a.getAttribute('href')));
    }
    await new Promise(done => setTimeout(done, 100));
  }
  return JSON.stringify(Array.from(document.querySelectorAll('#search-results li a'))
                             .map(a => a.getAttribute('href')));
})()
"""


def find_browser():
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


class DevTools:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, browser):
        self.profile = tempfile.mkdtemp(prefix="nnlite-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The browser reads commands on fd 3 and writes replies on fd 4. Both ends are first
        # moved above 9 so that placing one cannot overwrite the other.
        def wire():
            high_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)
        self.process = subprocess.Popen(
            [browser, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", "--window-size=1280,900", f"--user-data-dir={self.profile}"],
            preexec_fn=wire, pass_fds=(3, 4, to_browser_r, from_browser_w),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events = []

    def _read_message(self, deadline):
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the debugging pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method, params=None, session=None, timeout=60.0):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method, timeout=60.0):
        deadline = time.monotonic() + timeout
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            event = self._read_message(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """One tab: navigate, evaluate JavaScript, take screenshots; records every request URL."""

    def __init__(self, tools):
        self.tools = tools
        target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime"):
            self.call(f"{domain}.enable")
        self.requests = []

    def call(self, method, params=None, timeout=60.0):
        return self.tools.send(method, params, session=self.session, timeout=timeout)

    def _collect_requests(self):
        keep = []
        for event in self.tools.events:
            if event.get("method") == "Network.requestWillBeSent" and event.get("sessionId") == self.session:
                self.requests.append(event["params"]["request"]["url"])
            else:
                keep.append(event)
        self.tools.events[:] = keep

    def open(self, url, timeout=60.0):
        self.tools.events[:] = [e for e in self.tools.events if e.get("method") != "Page.loadEventFired"]
        self.call("Page.navigate", {"url": url})
        self.tools.wait_for("Page.loadEventFired", timeout)
        self._collect_requests()

    def evaluate(self, expression, timeout=60.0):
        result = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, timeout=timeout)
        self._collect_requests()
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript failed: {result['exceptionDetails'].get('text')}")
        return json.loads(result["result"]["value"])

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))


def serve(root):
    """Serve ``root`` on 127.0.0.1 (a free port) from a background thread; returns the server."""
    handler = functools.partial(_QuietHandler, directory=root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def is_local(url, origin):
    scheme = urlsplit(url).scheme
    return url.startswith(origin) or scheme in ("data", "blob", "about", "chrome", "devtools")


def html_pages(root):
    pages = []
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".html"):
                pages.append(os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/"))
    # Sphinx's own helper pages hold no content of ours.
    return sorted(p for p in pages if p not in ("genindex.html", "search.html", "py-modindex.html")
                  and not p.startswith(("_static/", "_sources/", "_images/", "_downloads/")))


def check_site(root, screenshots=None, searches=SEARCHES, shots=("index.html",), browser=None):
    """Every check of the module docstring on the built site at ``root``; returns a list of problems."""
    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError("no Chromium found (tried: " + ", ".join(BROWSERS) + ")")
    server = serve(root)
    origin = f"http://127.0.0.1:{server.server_address[1]}/"
    tools = DevTools(browser)
    problems, checked = [], 0
    try:
        page = Page(tools)
        for rel in html_pages(root):
            page.open(origin + rel)
            report = page.evaluate(PAGE_REPORT)
            checked += 1
            if report["raw"]:
                problems.append(f"{rel}: math left untypeset ({', '.join(report['raw'])} in the text)")
            if report["broken"]:
                problems.append(f"{rel}: images that did not load: {report['broken']}")
            if screenshots and rel in shots:
                os.makedirs(screenshots, exist_ok=True)
                page.screenshot(os.path.join(screenshots, rel.replace("/", "_")[:-5] + ".png"))
        for query, wanted in searches.items():
            page.open(origin + "search.html?q=" + query.replace(" ", "+"))
            hits = page.evaluate(SEARCH_REPORT, timeout=60)
            if not any(wanted in (hit or "") for hit in hits):
                problems.append(f"search for {query!r} does not list {wanted}: {hits[:8]}")
        outside = sorted({u for u in page.requests if not is_local(u, origin)})
        if outside:
            problems.append(f"requests left the machine: {outside[:10]}")
    finally:
        tools.close()
        server.shutdown()
    return problems, checked


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", help="the built HTML folder (docs/_build/html)")
    parser.add_argument("--screenshots", metavar="DIR", help="write screenshots of the front page and a tutorial")
    parser.add_argument("--tutorial", default="auto_tutorials/plot_18_saving_resuming_shipping.html",
                        help="the tutorial page to photograph")
    args = parser.parse_args(argv)
    if find_browser() is None:
        print("docs_in_browser: no Chromium found; install the Debian package 'chromium'", file=sys.stderr)
        return 2
    problems, checked = check_site(args.site, args.screenshots, shots=("index.html", args.tutorial))
    for problem in problems:
        print("docs_in_browser:", problem, file=sys.stderr)
    print(f"docs_in_browser: {checked} pages checked, {len(problems)} problem(s)"
          + (f"; screenshots in {args.screenshots}" if args.screenshots else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
