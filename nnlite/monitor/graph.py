"""Draw the computation graph behind a tensor, as Graphviz DOT.

Every tensor made by a differentiable operation remembers the
:class:`~nnlite.autograd.Function` that made it (``tensor._ctx``) and that
function remembers its inputs. Walking those links from a loss back to the
leaves gives the graph that ``backward`` will traverse: operations in the
middle, parameters and inputs at the leaves. :func:`draw_graph` writes it in
the DOT language, which Graphviz lays out:

* an operation is a box with its Function's name and its output's shape;
* a parameter is a green ellipse with its name (from ``params`` or the
  parameter's own ``name``), its kind and shape, and the norm of its gradient
  once ``backward`` has run;
* any other leaf tensor (an input, a target) is a grey ellipse with its shape.

Edges point the way the values flow, from inputs to the operations that use them.
"""
import shutil

import numpy as np

from ..tensor import Tensor

__all__ = ["draw_graph", "render_dot", "graph_structure"]


def _quote(text):
    # Graphviz reads \n inside a quoted label as a centred line break.
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _shape(t):
    return str(tuple(int(n) for n in t.shape))


def _parameter_names(params):
    if params is None:
        return {}
    items = params.items() if isinstance(params, dict) else params
    return {id(p): name for name, p in items}


def graph_structure(tensor, params=None):
    """The graph behind ``tensor`` as plain data: ``(nodes, edges)``.

    ``nodes`` is a list of dicts with ``id`` (``"n0"`` is ``tensor`` itself),
    ``kind`` (``"op"``, ``"parameter"`` or ``"tensor"``) and ``label`` (lines
    joined by newlines: name, shape, gradient norm); ``edges`` a list of
    ``(input id, op id)`` pairs, one per tensor argument (twice if an operation
    uses a tensor twice). :func:`draw_graph` and
    :func:`nnlite.plot.computation_graph` draw it.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"draw_graph: expected a Tensor, got {type(tensor).__name__}")
    names = _parameter_names(params)
    ids, nodes, edges = {}, [], []
    stack = [tensor]
    while stack:   # depth first from the result; each tensor becomes one node
        t = stack.pop()
        if id(t) in ids:
            continue
        ids[id(t)] = f"n{len(ids)}"
        nodes.append(_node(ids[id(t)], t, names))
        if t._ctx is not None:
            stack.extend(a for a in t._ctx.inputs if isinstance(a, Tensor))
    for t in _results(tensor):  # edges once every tensor has its id
        edges.extend((ids[id(a)], ids[id(t)]) for a in t._ctx.inputs if isinstance(a, Tensor))
    return nodes, edges


def _results(tensor):
    """Every tensor behind ``tensor`` that an operation made, each once."""
    seen, stack = set(), [tensor]
    while stack:
        t = stack.pop()
        if id(t) in seen or t._ctx is None:
            continue
        seen.add(id(t))
        yield t
        stack.extend(a for a in t._ctx.inputs if isinstance(a, Tensor))


def _node(node_id, t, names):
    if t._ctx is not None:
        return {"id": node_id, "kind": "op", "label": f"{t._ctx.name}\n{_shape(t)}"}
    kind = getattr(t, "kind", None)
    if kind is None:  # not a Parameter: an input, a target or a constant
        node = {"id": node_id, "kind": "tensor", "label": ("input " if t.requires_grad else "tensor ") + _shape(t)}
    else:
        name = names.get(id(t)) or getattr(t, "name", None) or "parameter"
        node = {"id": node_id, "kind": "parameter", "label": f"{name}\n{kind} {_shape(t)}"}
    if t.grad is not None:
        node["label"] += f"\ngrad norm {float(np.linalg.norm(np.asarray(t.grad.data, dtype=np.float64))):.3g}"
    return node


_STYLE = {"op": 'shape=box, style=filled, fillcolor="#dde6f3"',
          "parameter": 'shape=ellipse, style=filled, fillcolor="#d5ecd4"',
          "tensor": 'shape=ellipse, style=filled, fillcolor="#eeeeee"'}


def draw_graph(tensor, params=None, *, filename=None, format="svg"):
    """The computation graph that produced ``tensor``, as Graphviz DOT source.

    >>> import nnlite as nl
    >>> layer = nl.nn.Linear(3, 2)
    >>> loss = layer(nl.randn(4, 3)).sum()
    >>> dot = nl.monitor.draw_graph(loss, layer.named_parameters())
    >>> dot.startswith("digraph"), '"weight' in dot
    (True, True)

    Parameters
    ----------
    tensor
        The result to trace back (usually a loss), made with gradients enabled.
    params
        Names for the parameters: a dict or the pairs of
        ``model.named_parameters()``; otherwise each parameter's own name.
    filename, format
        Also render the graph to ``filename.<format>`` (``"svg"``, ``"png"``,
        ``"pdf"``) with :func:`render_dot`.
    """
    nodes, edges = graph_structure(tensor, params)
    lines = ["digraph nnlite {", "  rankdir=BT;", '  node [fontname="Helvetica", fontsize=10];']
    lines += [f"  {n['id']} [{_STYLE[n['kind']]}, label={_quote(n['label'])}];" for n in nodes]
    lines += [f"  {a} -> {b};" for a, b in edges]
    lines.append("}")
    dot = "\n".join(lines) + "\n"
    if filename is not None:
        render_dot(dot, filename, format)
    return dot


def render_dot(dot, filename, format="svg"):
    """Lay out DOT source with Graphviz and write ``filename.<format>``; returns the path written.

    Needs the ``graphviz`` Python package and Graphviz's ``dot`` program.
    """
    try:
        import graphviz
    except ImportError:
        raise ImportError('render_dot needs the graphviz Python package: pip install "nnlite[monitor]" '
                          "(draw_graph's DOT text works without it)") from None
    if shutil.which("dot") is None:
        raise RuntimeError("render_dot needs Graphviz's `dot` program, which is not on PATH: install it with "
                           "`apt-get install graphviz`, `brew install graphviz` or `conda install graphviz` "
                           "(or paste draw_graph's DOT text into any Graphviz viewer)")
    return graphviz.Source(dot).render(outfile=f"{filename}.{format}", format=format, cleanup=True)
