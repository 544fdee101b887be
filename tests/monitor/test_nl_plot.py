"""nl.plot draws what it says, from the data it is given (checked on the artists, not by eye)."""
import numpy as np
import pytest

import nnlite as nl


@pytest.fixture
def plt():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    yield plt
    plt.close("all")


def test_weight_ridge_one_row_per_snapshot(plt):
    g = np.random.default_rng(0)
    snaps = [g.normal(scale=s, size=500) for s in (0.1, 0.5, 1.0)]
    ax = nl.plot.weight_ridge(snaps, labels=["init", "mid", "end"], bins=20)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["init", "mid", "end"]
    assert len(ax.collections) == 3
    # the narrowest distribution has the tallest peak: it reaches the full row height
    tops = [line.get_ydata().max() - line.get_ydata().min() for line in ax.lines]
    assert np.argmax(tops) == 0
    with pytest.raises(ValueError, match="no snapshots"):
        nl.plot.weight_ridge([])


def test_gradient_flow_bars_match_the_numbers(plt):
    flow = {"names": ["a", "b"], "mean_abs": np.array([1e-4, 1e-2]), "max_abs": np.array([1e-3, 1e-1])}
    ax = nl.plot.gradient_flow(flow)
    heights = sorted(p.get_height() for p in ax.patches)
    assert np.allclose(heights, [1e-4, 1e-3, 1e-2, 1e-1]) and ax.get_yscale() == "log"
    ax = nl.plot.gradient_flow([dict(flow, label="x"), dict(flow, label="y")])
    assert [line.get_label() for line in ax.lines] == ["x", "y"]


def test_filters_embedding_curves_trajectories(plt):
    fig = nl.plot.filters(np.random.default_rng(0).normal(size=(6, 1, 3, 3)), ncols=4)
    assert len(fig.axes) == 6 and fig.axes[0].images[0].get_array().shape == (3, 3)
    with pytest.raises(ValueError, match="3-D or 4-D"):
        nl.plot.filters(np.zeros((3, 3)))
    ax = nl.plot.embedding(np.eye(4), labels=list("abcd"))
    assert ax.images[0].get_array().shape == (4, 4)
    history = {"epoch": [1, 2, 3], "train_loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.6, 0.6],
               "lr": [0.1, 0.1, 0.01]}
    ax = nl.plot.training_curves(history)
    assert [line.get_label() for line in ax.lines] == ["train loss", "val loss"]
    assert ax.lr_axis.get_yscale() == "log"
    path = np.array([[1.0, 1.0], [0.5, 0.2], [0.0, 0.0]])
    ax = nl.plot.trajectories(lambda p: (p ** 2).sum(-1), {"gd": path}, (-1, 1.5), (-1, 1.5))
    assert np.array_equal(ax.lines[0].get_xydata(), path)


def test_computation_graph_puts_each_op_above_its_inputs(plt):
    nl.manual_seed(0)
    model = nl.nn.Sequential(nl.nn.Linear(4, 3), nl.nn.Tanh(), nl.nn.Linear(3, 2))
    loss = nl.nn.functional.cross_entropy(model(nl.randn(5, 4)), nl.tensor([0, 1, 1, 0, 1]))
    ax = nl.plot.computation_graph(loss, model.named_parameters())
    nodes, edges = nl.monitor.graph_structure(loss, model.named_parameters())
    where = {t.get_text(): t.get_position() for t in ax.texts if t.get_text()}   # not the arrows
    assert len(where) == len(nodes) == 9   # 4 operations, 4 parameters and the input (integer targets are no node)
    label = {n["id"]: n["label"] for n in nodes}
    for a, b in edges:
        assert where[label[a]][1] < where[label[b]][1]   # values flow upwards
    assert max(y for _, y in where.values()) == where[label["n0"]][1]   # the loss on top


def test_landscape_plots(plt):
    model = nl.nn.Linear(2, 1)
    batches = [(nl.randn(8, 2), nl.randn(8, 1))]
    scan = nl.monitor.loss_landscape_2d(model, nl.nn.functional.mse_loss, batches, steps=5, span=1.0)
    ax = nl.plot.landscape_contour(scan)
    assert ax.get_xlabel().startswith(r"$\alpha$")
    ax = nl.plot.landscape_surface(scan)
    assert ax.name == "3d"
    start = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    line = nl.monitor.loss_landscape_1d(model, nl.nn.functional.mse_loss, batches, start,
                                        {k: v * 0 for k, v in start.items()}, alphas=np.linspace(0, 1, 5))
    ax = nl.plot.landscape_1d(line, label="to zero")
    assert np.allclose(ax.lines[0].get_ydata(), line.loss)


def test_plane_plots_and_gradient_flow_name_the_input_they_need(plt):
    line = nl.monitor.LossLandscape(np.linspace(-1, 1, 5), np.ones(5))
    for draw in (nl.plot.landscape_contour, nl.plot.landscape_surface):
        with pytest.raises(ValueError, match="expected a plane scan from nnlite.monitor.loss_landscape_2d, got a 1-D"):
            draw(line)
    with pytest.raises(ValueError, match="gradient_flow: expected the dict of nnlite.monitor.gradient_flow"):
        nl.plot.gradient_flow({})
