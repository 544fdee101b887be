"""Plots of parameters while they learn, on matplotlib.

Each function draws into the ``ax`` it is given (or a new figure's) and
returns that Axes, so plots combine into subplots. matplotlib is imported on
first use: ``pip install "nnlite[plot]"``.

* :func:`weight_ridge` — a parameter's histogram at several moments, stacked (a ridge plot);
* :func:`gradient_flow` — mean and largest ``|grad|`` per layer, first layer on the left;
* :func:`filters` and :func:`embedding` — weights shown as images;
* :func:`training_curves` — losses and accuracies by epoch, with the learning rate;
* :func:`trajectories` — optimizer paths over the contours of a 2-D function;
* :func:`landscape_1d`, :func:`landscape_contour`, :func:`landscape_surface` —
  what :mod:`nnlite.monitor`'s loss-landscape scans return;
* :func:`computation_graph` — the graph behind a tensor, drawn without Graphviz.
"""
import numpy as np

__all__ = ["weight_ridge", "gradient_flow", "filters", "embedding", "training_curves", "trajectories",
           "landscape_1d", "landscape_contour", "landscape_surface", "computation_graph"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError(f'nnlite.plot needs matplotlib: pip install "nnlite[plot]" ({e})') from None
    return plt


def _axes(ax, figsize=(6, 4), projection=None):
    if ax is not None:
        return ax
    fig = _pyplot().figure(figsize=figsize)
    return fig.add_subplot(projection=projection)


def _array(values):
    return np.asarray(values.data if hasattr(values, "data") else values, dtype=np.float64)


def weight_ridge(snapshots, labels=None, bins=60, overlap=0.6, ax=None):
    """A ridge plot: one histogram per snapshot of a parameter, later ones lower down.

    ``snapshots`` is a sequence of arrays (the same parameter at several
    steps); ``labels`` names each row (default its index). All rows share one
    set of bins, so widening or drifting distributions are seen directly.
    """
    snapshots = [_array(s).ravel() for s in snapshots]
    if not snapshots:
        raise ValueError("weight_ridge: no snapshots to plot")
    labels = list(range(len(snapshots))) if labels is None else list(labels)
    lo = min(s.min() for s in snapshots)
    hi = max(s.max() for s in snapshots)
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    ax = _axes(ax, figsize=(6, 1 + 0.45 * len(snapshots)))
    counts = [np.histogram(s, edges)[0] for s in snapshots]
    height = max(c.max() for c in counts) or 1
    cmap = _pyplot().get_cmap("viridis")
    for row, c in enumerate(counts):
        base = -row * (1.0 - overlap)
        color = cmap(row / max(len(counts) - 1, 1))
        # later rows are nearer the viewer: drawn over the peaks of the rows above them
        ax.fill_between(centres, base, base + c / height, color=color, alpha=0.9, zorder=2 * row)
        ax.plot(centres, base + c / height, color="k", lw=0.5, zorder=2 * row + 1)
    ax.set_yticks([-row * (1.0 - overlap) for row in range(len(counts))])
    ax.set_yticklabels([str(label) for label in labels])
    ax.set_xlabel("value")
    return ax


def gradient_flow(flow, ax=None, log=True):
    """Bars of mean and largest ``|grad|`` per layer, from :func:`nnlite.monitor.gradient_flow`.

    With ``flow`` a list of such dicts (several models or steps), their means
    are drawn as lines instead, one per entry.
    """
    flows = flow if isinstance(flow, (list, tuple)) else [flow]
    if not flows or not all(isinstance(f, dict) and {"names", "mean_abs", "max_abs"} <= set(f) for f in flows):
        raise ValueError("gradient_flow: expected the dict of nnlite.monitor.gradient_flow (keys names, mean_abs, "
                         f"max_abs) or a list of them, got {flow!r:.80}")
    ax = _axes(ax, figsize=(7, 3.5))
    if len(flows) == 1:
        f = flows[0]
        x = np.arange(len(f["names"]))
        ax.bar(x, f["max_abs"], color="#9ecae1", label="max |grad|")
        ax.bar(x, f["mean_abs"], color="#08519c", label="mean |grad|")
    else:
        for f in flows:
            x = np.arange(len(f["names"]))
            ax.plot(x, f["mean_abs"], "o-", label=f.get("label"))
    names = flows[0]["names"]
    ax.set_xticks(np.arange(len(names)))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("layer (input side on the left)")
    ax.set_ylabel("|gradient|")
    ax.legend(fontsize=8)
    return ax


def filters(weight, ncols=8, fig=None, cmap="RdBu_r"):
    """First-layer filters as small images, one per output channel; returns the Figure.

    ``weight`` is ``(out, in, kh, kw)`` (a ``kh x kw`` image of the first input
    channel: for a grey-scale input, the only one) or ``(out, in, k)`` for 1-D
    convolutions (each filter drawn as an ``in x k`` strip). One colour scale,
    centred at zero, for all filters.
    """
    plt = _pyplot()
    w = _array(weight)
    if w.ndim == 4:
        images = w[:, 0]
    elif w.ndim == 3:
        images = w
    else:
        raise ValueError(f"filters: expected a convolution weight (3-D or 4-D), got shape {w.shape}")
    n = images.shape[0]
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig = fig or plt.figure(figsize=(1.1 * ncols, 1.1 * nrows + 0.3))
    scale = np.abs(images).max() or 1.0
    for i in range(n):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.imshow(images[i], cmap=cmap, vmin=-scale, vmax=scale, aspect="auto")
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def embedding(weight, labels=None, ax=None, cmap="RdBu_r"):
    """An embedding matrix (or any 2-D weight) as an image: one row per token, one column per dimension."""
    w = _array(weight)
    if w.ndim != 2:
        raise ValueError(f"embedding: expected a 2-D matrix, got shape {w.shape}")
    ax = _axes(ax, figsize=(6, 4))
    scale = np.abs(w).max() or 1.0
    image = ax.imshow(w, cmap=cmap, vmin=-scale, vmax=scale, aspect="auto", interpolation="nearest")
    if labels is not None:
        ax.set_yticks(np.arange(len(labels)))
        ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlabel("dimension")
    ax.set_ylabel("token")
    ax.figure.colorbar(image, ax=ax)
    return ax


def training_curves(history, ax=None, lr=True):
    """Losses (and accuracies, dashed, on the same axis) by epoch from ``fit``'s history, lr on a second axis.

    Returns the main Axes; the learning rate's twin axis (log scale) is ``ax.lr_axis``.
    """
    ax = _axes(ax, figsize=(6.5, 3.8))
    epochs = history.get("epoch") or list(range(1, len(history.get("train_loss", [])) + 1))
    for i, key in enumerate(("train_loss", "val_loss", "train_accuracy", "val_accuracy")):
        if history.get(key):
            ax.plot(epochs[:len(history[key])], history[key], "-" if "loss" in key else "--",
                    color=f"C{i % 2}", label=key.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss / accuracy")
    ax.legend(fontsize=8, loc="best")
    ax.lr_axis = None
    if lr and history.get("lr"):
        twin = ax.twinx()
        twin.step(epochs[:len(history["lr"])], history["lr"], where="post", color="0.4", lw=1)
        twin.set_yscale("log")
        twin.set_ylim(min(history["lr"]) / 3, max(history["lr"]) * 3)
        twin.set_ylabel("learning rate", color="0.4")
        ax.lr_axis = twin
    return ax


def trajectories(fn, paths, xlim, ylim, ax=None, levels=15, resolution=200):
    """Optimizer paths over the contours of ``fn``, a function of points of shape ``(..., 2)``.

    ``paths`` maps a label to an ``(n, 2)`` array of successive parameter values.
    """
    ax = _axes(ax, figsize=(6, 4.5))
    g1, g2 = np.meshgrid(np.linspace(*xlim, resolution), np.linspace(*ylim, resolution))
    z = np.asarray(fn(np.stack([g1, g2], -1)), dtype=np.float64)
    ax.contour(g1, g2, z, levels=levels, colors="0.75", linewidths=0.8)
    for i, (label, path) in enumerate(paths.items()):
        path = np.asarray(path, dtype=np.float64)
        ax.plot(path[:, 0], path[:, 1], ".-", ms=3, lw=1, color=f"C{i}", label=label)
        ax.plot(path[0, 0], path[0, 1], "k*", ms=8)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.legend(fontsize=8)
    return ax


def landscape_1d(landscape, ax=None, label=None):
    """The loss along a line (:func:`nnlite.monitor.loss_landscape_1d`), with the two end states marked."""
    ax = _axes(ax, figsize=(5.5, 3.5))
    ax.plot(landscape.alphas, landscape.loss, label=label)
    for alpha in (0.0, 1.0):
        ax.axvline(alpha, color="0.8", lw=0.8, zorder=0)
    ax.set_xlabel(r"$\alpha$")
    ax.set_ylabel("loss")
    if label is not None:
        ax.legend(fontsize=8)
    return ax


def _check_plane(landscape, what):
    if landscape.betas is None or np.ndim(landscape.loss) != 2:
        raise ValueError(f"{what}: expected a plane scan from nnlite.monitor.loss_landscape_2d, got a "
                         f"{np.ndim(landscape.loss)}-D landscape (draw a line scan with landscape_1d)")


def landscape_contour(landscape, ax=None, levels=20, log=True):
    """Contour lines of a plane scan (:func:`nnlite.monitor.loss_landscape_2d`); the model is the centre."""
    _check_plane(landscape, "landscape_contour")
    ax = _axes(ax, figsize=(4.5, 4))
    z = np.log10(landscape.loss) if log else landscape.loss
    a, b = np.meshgrid(landscape.alphas, landscape.betas, indexing="ij")
    contours = ax.contour(a, b, z, levels=levels, cmap="viridis", linewidths=0.9)
    ax.plot(0, 0, "k+", ms=10)
    ax.set_xlabel(r"$\alpha$ (direction $\delta$)")
    ax.set_ylabel(r"$\beta$ (direction $\eta$)")
    ax.set_aspect("equal")
    ax.figure.colorbar(contours, ax=ax, label="log10 loss" if log else "loss")
    return ax


def landscape_surface(landscape, ax=None, log=False):
    """A 3-D surface of a plane scan; pass an Axes made with ``projection="3d"`` or get a new one."""
    _check_plane(landscape, "landscape_surface")
    ax = _axes(ax, figsize=(5, 4.2), projection="3d")
    z = np.log10(landscape.loss) if log else landscape.loss
    a, b = np.meshgrid(landscape.alphas, landscape.betas, indexing="ij")
    ax.plot_surface(a, b, z, cmap="viridis", linewidth=0, antialiased=True)
    ax.set_xlabel(r"$\alpha$")
    ax.set_ylabel(r"$\beta$")
    ax.set_zlabel("log10 loss" if log else "loss")
    return ax


_GRAPH_COLOURS = {"op": "#dde6f3", "parameter": "#d5ecd4", "tensor": "#eeeeee"}


def computation_graph(tensor, params=None, ax=None):
    """The graph behind ``tensor`` (:func:`nnlite.monitor.graph_structure`), drawn without Graphviz.

    Each operation (blue box) sits one row above the highest of its inputs,
    each leaf (parameters green, other tensors grey) one row below the first
    operation that uses it; the result is at the top and arrows point the
    way values flow.
    """
    from .monitor.graph import graph_structure
    nodes, edges = graph_structure(tensor, params)
    inputs = {n["id"]: [] for n in nodes}
    for a, b in edges:
        inputs[b].append(a)
    depth = {}

    def level(node_id):  # longest path from a leaf; graphs are shallow enough to recurse
        if node_id not in depth:
            depth[node_id] = 1 + max((level(a) for a in inputs[node_id]), default=-1)
        return depth[node_id]

    users = {}
    for a, b in edges:
        users.setdefault(a, []).append(b)
    rows = {}
    for n in nodes[::-1]:  # leaves were found last: reversed, they come in input order
        row = level(n["id"])
        if not inputs[n["id"]] and n["id"] in users:  # a leaf: just below its first user
            row = min(level(b) for b in users[n["id"]]) - 1
        rows.setdefault(row, []).append(n)
    height = max(rows) + 1
    ax = _axes(ax, figsize=(7, 0.8 * height + 0.4))
    position = {}
    for y, row in rows.items():
        for i, n in enumerate(row):
            position[n["id"]] = ((i + 1) / (len(row) + 1), y)
    for a, b in set(edges):
        ax.annotate("", xy=position[b], xytext=position[a],
                    arrowprops=dict(arrowstyle="->", color="0.45", shrinkA=14, shrinkB=14))
    for n in nodes:
        x, y = position[n["id"]]
        ax.text(x, y, n["label"], ha="center", va="center", fontsize=7,
                bbox=dict(boxstyle="round,pad=0.3" if n["kind"] != "op" else "square,pad=0.3",
                          facecolor=_GRAPH_COLOURS[n["kind"]], edgecolor="0.4"))
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, height - 0.4)
    ax.axis("off")
    return ax
