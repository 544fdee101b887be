"""The ``nnlite-benchmarks`` directive: the latest benchmark table, read at build time.

``benchmarks/run_all.py`` saves its results as a markdown file (tables under
``##`` headings) and/or as JSON rows. The directive turns whichever it finds
into reST tables, so the page always shows the numbers of the last run; with
no results yet it says how to produce them.
"""
import json
import os

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
COLUMNS = ("workload", "nnlite_ms", "torch_ms", "numpy_ms", "note")


def _cell(text):
    text = str(text).strip().replace("|", "/")
    return text if text else " "


def _list_table(header, rows):
    width = len(header)
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header] + rows:
        row = (list(row) + [""] * width)[:width]
        out.append("   * - " + _cell(row[0]))
        out.extend("     - " + _cell(c) for c in row[1:])
    return out + [""]


def _split_row(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def markdown_to_rst(text):
    """Markdown headings, pipe tables and paragraphs as reST lines (anything else verbatim)."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("|"):
            block = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                block.append(lines[i])
                i += 1
            rows = [_split_row(b) for b in block
                    if not set(b.replace("|", "").strip()) <= set("-: ")]
            if rows:
                out += _list_table(rows[0], rows[1:])
            continue
        if line.startswith("#"):
            out += [".. rubric:: " + line.lstrip("#").strip(), ""]
        elif line.strip():
            out += ["| " + line.strip().replace("`", "``").replace("````", "``")]
        else:
            out.append("")
        i += 1
    return out


def json_to_rst(data):
    """Rows of ``{"workload": ..., "nnlite_ms": ...}``, as a list or grouped by benchmark name."""
    groups = data.items() if isinstance(data, dict) else [("", data)]
    out = []
    for name, rows in groups:
        if not isinstance(rows, list):
            continue
        if name:
            out += [".. rubric:: " + str(name), ""]
        fmt = lambda v: "—" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
        out += _list_table(list(COLUMNS), [[fmt(r.get(c)) for c in COLUMNS]
                                           for r in rows if isinstance(r, dict)])
    return out


class Benchmarks(SphinxDirective):
    """``.. nnlite-benchmarks::`` shows latest.md (or latest.json); with an argument, that
    file of benchmarks/results/ (e.g. ``amd-epyc-avx2-recurrent.md``, one table per machine kind)."""
    has_content = False
    optional_arguments = 1

    def run(self):
        stem = os.path.splitext(self.arguments[0])[0] if self.arguments else "latest"
        md = os.path.join(RESULTS, stem + ".md")
        js = os.path.join(RESULTS, stem + ".json")
        if os.path.isfile(md):
            with open(md, encoding="utf-8") as f:
                lines, source = markdown_to_rst(f.read()), md
        elif os.path.isfile(js):
            with open(js, encoding="utf-8") as f:
                lines, source = json_to_rst(json.load(f)), js
        else:
            para = nodes.paragraph()
            para += nodes.Text("No benchmark results in benchmarks/results/ yet: run ")
            para += nodes.literal(text="python benchmarks/run_all.py")
            para += nodes.Text(" in a source checkout, then rebuild the docs.")
            return [nodes.note("", para)]
        self.env.note_dependency(source)
        caption = nodes.paragraph(text=f"From {os.path.relpath(source, ROOT)}:")
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=source), self.content_offset, container)
        return [caption, container]


def setup(app):
    app.add_directive("nnlite-benchmarks", Benchmarks)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
