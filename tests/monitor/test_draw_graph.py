"""draw_graph: DOT that a DOT parser reads, with a node per operation and per leaf, and edges along the data flow."""
import os
import re
import shutil

import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.monitor import draw_graph, render_dot


def _loss():
    nl.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x, y = nl.randn(5, 3), nl.tensor([0, 1, 1, 0, 1])
    return model, nn.functional.cross_entropy(model(x), y)


def _functions(t):
    """The distinct Function objects behind ``t`` (the nodes draw_graph must show as operations)."""
    found, stack = {}, [t]
    while stack:
        t = stack.pop()
        if t._ctx is not None and id(t._ctx) not in found:
            found[id(t._ctx)] = t._ctx
            stack.extend(a for a in t._ctx.inputs if isinstance(a, nl.Tensor))
    return list(found.values())


def test_dot_parses_with_a_node_per_op_and_parameter():
    pydot = pytest.importorskip("pydot")
    model, loss = _loss()
    dot = draw_graph(loss, model.named_parameters())
    (graph,) = pydot.graph_from_dot_data(dot)
    nodes = {n.get_name(): n.get("label").strip('"') for n in graph.get_nodes() if n.get("label")}
    ops = [label for label in nodes.values() if graph_shape(graph, label) == "box"]
    assert len(ops) == len(_functions(loss))
    params = [label.split("\\n")[0] for n, label in nodes.items() if "weight\\n" in label or "bias\\n" in label]
    assert sorted(params) == sorted(name for name, _ in model.named_parameters())
    leaves = [label for label in nodes.values() if label.startswith("tensor")]
    assert leaves == ["tensor (5, 3)"] or sorted(leaves) == ["tensor (5,)", "tensor (5, 3)"]
    # every edge joins two declared nodes; the loss node has no outgoing edge
    edges = [(e.get_source(), e.get_destination()) for e in graph.get_edges()]
    assert all(a in nodes and b in nodes for a, b in edges)
    assert "n0" not in [a for a, _ in edges] and "n0" in [b for _, b in edges]
    assert sum(len([a for a in fn.inputs if isinstance(a, nl.Tensor)]) for fn in _functions(loss)) == len(edges)


def graph_shape(graph, label):
    for n in graph.get_nodes():
        if n.get("label") and n.get("label").strip('"') == label:
            return n.get("shape")


def test_names_kinds_shapes_and_gradient_norms_in_the_labels():
    model, loss = _loss()
    before = draw_graph(loss, model.named_parameters())
    assert '"0.weight\\nweight (4, 3)"' in before and '"2.bias\\nbias (2,)"' in before
    assert "grad norm" not in before
    loss.backward()
    after = draw_graph(loss, dict(model.named_parameters()))
    norm = np.linalg.norm(model[0].weight.grad.data.astype(np.float64))
    assert f'"0.weight\\nweight (4, 3)\\ngrad norm {norm:.3g}"' in after
    assert len(re.findall(r"^  n\d+ \[", after, re.M)) == len(re.findall(r"^  n\d+ \[", before, re.M))


def test_a_shared_tensor_is_one_node_with_two_edges():
    x = nl.tensor([1.0, 2.0], requires_grad=True)
    dot = draw_graph((x * x).sum())
    assert len(re.findall(r'label="input \(2,\)"', dot)) == 1
    assert len(re.findall(r"^  n2 -> n1;$", dot, re.M)) == 2


FAKE_DOT = """#!/bin/sh
# Stands in for Graphviz's dot: writes its arguments to the file named after -o.
args="$*"
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out="$2"; shift ;;
    -o*) out="${1#-o}" ;;
  esac
  shift
done
echo "$args" > "$out"
"""


def test_rendering_calls_dot_with_the_format_and_file(tmp_path, monkeypatch):
    pytest.importorskip("graphviz")
    if os.name != "posix":
        pytest.skip("the stand-in for dot is a shell script")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dot").write_text(FAKE_DOT)
    (bin_dir / "dot").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    x = nl.tensor([1.0, 2.0], requires_grad=True)
    dot = draw_graph((x * x).sum(), filename=str(tmp_path / "graph"), format="png")
    written = tmp_path / "graph.png"
    assert written.exists() and "-Tpng" in written.read_text()
    assert dot.startswith("digraph")
    assert render_dot(dot, str(tmp_path / "again")) == str(tmp_path / "again.svg")


def test_bad_input_and_rendering_without_graphviz(tmp_path, monkeypatch):
    with pytest.raises(TypeError, match="expected a Tensor, got ndarray"):
        draw_graph(np.zeros(3))
    pytest.importorskip("graphviz")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        render_dot("digraph { a -> b; }", str(tmp_path / "g"))
