"""DARTS: the bilevel step's gradients, the second-order approximation, the genotype rule, the latency term."""
import numpy as np
import pytest

import nnlite as nl
from nnlite.func import functional_call
from nnlite.nas import (PRIMITIVES, BilevelSearch, DerivedNetwork, Genotype, LatencyTable, MixedOp, SearchNetwork,
                        derive_genotype)
from nnlite.nn import functional as F


def _setup(second_order=False, latency=None, latency_weight=0.0, seed=0, epsilon=0.01):
    nl.manual_seed(seed)
    net = SearchNetwork(channels=4, cells=1, steps=2).double()
    rng = np.random.default_rng(seed)
    batches = [(nl.tensor(rng.normal(size=(8, 12))), nl.tensor(rng.integers(0, 10, 8))) for _ in range(2)]
    weight_opt = nl.optim.SGD(net.weights(), lr=0.05)
    arch_opt = nl.optim.SGD(net.arch_parameters(), lr=0.1)
    search = BilevelSearch(net, weight_opt, arch_opt, second_order=second_order, epsilon=epsilon,
                           latency=latency, latency_weight=latency_weight)
    return net, search, batches


def _loss(net, weights, batch):
    return F.cross_entropy(functional_call(net, weights, (batch[0],)), batch[1])


def _clone_state(net):
    return {k: nl.tensor(v.data.copy()) for k, v in net.state_dict().items()}


def test_architecture_gradient_comes_only_from_the_validation_loss():
    net, search, (train, val) = _setup()
    state = _clone_state(net)   # weights, alpha and BatchNorm statistics before the step
    search.step(train, val)
    alpha = nl.tensor(state["alpha"].data, requires_grad=True)
    expected_val = nl.grad(_loss(net, {**state, "alpha": alpha}, val), [alpha])[0].data
    expected_train = nl.grad(_loss(net, {**state, "alpha": alpha}, train), [alpha])[0].data
    np.testing.assert_allclose(net.alpha.grad.data, expected_val, rtol=1e-8, atol=1e-12)
    assert not np.allclose(net.alpha.grad.data, expected_val + expected_train, rtol=1e-3)
    # ... and the weights' gradients come from the training loss, at the updated alpha.
    weights = {k: nl.tensor(v.data, requires_grad=True) for k, v in state.items()
               if k in dict(net.named_parameters()) and k != "alpha"}
    updated_alpha = nl.tensor(net.alpha.data)
    grads = nl.grad(_loss(net, {**state, **weights, "alpha": updated_alpha}, train), list(weights.values()))
    for (k, _), g in zip(weights.items(), grads):
        np.testing.assert_allclose(net.get_parameter(k).grad.data, g.data, rtol=1e-7, atol=1e-10)


def test_second_order_architecture_gradient_matches_exact_unrolled_gradient():
    # A small finite-difference step in float64 checks the formula; the paper's 0.01 can step
    # over ReLU and max-pool kinks, which is an error of the approximation, not of the code.
    net, search, (train, val) = _setup(second_order=True, seed=1, epsilon=1e-5)
    net.eval()   # fixed BatchNorm statistics, so every pass sees the same function
    state = _clone_state(net)
    names = [k for k, p in net.named_parameters() if k != "alpha"]
    search.architecture_loss(train, val).backward()
    approx = net.alpha.grad.data.copy()

    # Exact: d/d alpha of L_val(w - xi grad_w L_train(w, alpha), alpha), by double backward.
    alpha = nl.tensor(state["alpha"].data, requires_grad=True)
    w = {k: nl.tensor(state[k].data, requires_grad=True) for k in names}
    g = nl.grad(_loss(net, {**state, **w, "alpha": alpha}, train), list(w.values()), create_graph=True)
    ahead = {k: w[k] - search.xi * gk for k, gk in zip(names, g)}
    exact = nl.grad(_loss(net, {**state, **ahead, "alpha": alpha}, val), [alpha])[0].data
    first_order = nl.grad(_loss(net, {**state, "alpha": alpha}, val), [alpha])[0].data
    np.testing.assert_allclose(approx, exact, rtol=1e-4, atol=1e-9)
    assert np.abs(exact - first_order).max() > 1e-5   # the second-order term is really there


def test_the_look_ahead_step_moves_no_frozen_weight():
    net, search, (train, val) = _setup(second_order=True, seed=3, epsilon=1e-5)
    net.eval()
    net.stem[0].weight.requires_grad_(False)
    state = _clone_state(net)
    search.architecture_loss(train, val).backward()
    approx = net.alpha.grad.data.copy()
    # Exact, with the frozen stem held where it is: d/d alpha of L_val(w - xi grad_w L_train, alpha).
    names = [k for k, p in net.named_parameters() if k != "alpha" and p.requires_grad]
    alpha = nl.tensor(state["alpha"].data, requires_grad=True)
    w = {k: nl.tensor(state[k].data, requires_grad=True) for k in names}
    g = nl.grad(_loss(net, {**state, **w, "alpha": alpha}, train), list(w.values()), create_graph=True)
    ahead = {k: w[k] - search.xi * gk for k, gk in zip(names, g)}
    exact = nl.grad(_loss(net, {**state, **ahead, "alpha": alpha}, val), [alpha])[0].data
    np.testing.assert_allclose(approx, exact, rtol=1e-4, atol=1e-9)


def test_look_ahead_step_follows_the_weight_learning_rate_as_it_is_scheduled():
    net, search, (train, val) = _setup(second_order=True, seed=2)
    net.eval()
    fixed = BilevelSearch(net, search.weight_optimizer, search.arch_optimizer, second_order=True, xi=0.004)
    for group in search.weight_optimizer.param_groups:   # what a schedule does between steps
        group["lr"] = 0.004
    assert search.xi == 0.004
    np.testing.assert_array_equal(search.architecture_loss(train, val).data,
                                  fixed.architecture_loss(train, val).data)


def test_genotype_rule_keeps_two_strongest_non_zero_edges_per_node():
    steps = 3
    alpha = np.zeros((6, len(PRIMITIVES)))   # edges: 0>1, 0>2, 1>2, 0>3, 1>3, 2>3
    op = PRIMITIVES.index
    alpha[0, op("sep_conv_3")] = 1.0
    alpha[1, op("conv_3")], alpha[2, op("max_pool_3")] = 2.0, 1.5
    alpha[3, op("none")] = 10.0              # the strongest weight, but "none" never counts ...
    alpha[3, op("conv_5")] = 0.5             # ... and the edge's own strength is what is left
    alpha[4, op("skip_connect")], alpha[5, op("dil_conv_3")] = 3.0, 2.5
    genotype = derive_genotype(alpha, steps)
    assert genotype.edges == [("sep_conv_3", 0, 1), ("conv_3", 0, 2), ("max_pool_3", 1, 2),
                              ("skip_connect", 1, 3), ("dil_conv_3", 2, 3)]
    assert derive_genotype(alpha, steps, k=1).edges[2] == ("skip_connect", 1, 3)
    with pytest.raises(ValueError, match=r"shape \(edges, operations\)"):
        derive_genotype(alpha[:5], steps)
    # The derived network runs with exactly those operations.
    net = DerivedNetwork(genotype, channels=4, cells=2)
    assert net(nl.randn(3, 40)).shape == (3, 10)
    assert [type(o).__name__ for o in net.cells[0].ops][3] == "Identity"


@pytest.mark.parametrize("content, problem", [
    ('{"none|C=4|L=12|N=1": 0.1, ', "is not a latency table"),
    ('[0.1, 0.2]', "must hold a JSON object of times in ms, got list"),
    ('{"conv_3|C=4|L=12|N=1": "fast", "none|C=4|L=12|N=1": -1.0}', "every entry must be a finite time >= 0"),
])
def test_a_damaged_latency_table_is_refused_by_name(tmp_path, content, problem):
    # A table cut off by a crash, or edited by hand, would otherwise stop the search with a
    # JSON or arithmetic error that names no file, or price operations at negative times.
    path = tmp_path / "latency.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=f"LatencyTable: .*latency.json.*{problem}.*delete it to measure"):
        LatencyTable(path=str(path), measure=lambda *args: 1.0)


def test_measuring_a_latency_draws_nothing_from_the_global_generator():
    from nnlite.nas import measure_latency
    nl.manual_seed(0)
    expected = nl.rand(3).data
    nl.manual_seed(0)
    assert measure_latency("sep_conv_3", 4, 12, repeats=1) >= 0
    np.testing.assert_array_equal(nl.rand(3).data, expected)


def test_search_settings_that_are_not_numbers_are_named():
    from nnlite.nas import net2wider
    net, search, _ = _setup()
    number = r"must be a real number \(int, float or NumPy scalar\), got str"
    for name in ("xi", "epsilon", "latency_weight"):
        with pytest.raises(TypeError, match=f"BilevelSearch: {name} " + number):
            BilevelSearch(net, search.weight_optimizer, search.arch_optimizer, **{name: "0.1"})
    with pytest.raises(TypeError, match="net2wider: noise " + number):
        net2wider(nl.nn.Sequential(nl.nn.Linear(2, 3), nl.nn.ReLU(), nl.nn.Linear(3, 1)), 0, 4, noise="0.1")


def test_mixed_op_is_the_weighted_sum_of_its_candidates():
    nl.manual_seed(0)
    op = MixedOp(3).eval()
    x, weights = nl.randn(2, 3, 10), nl.softmax(nl.randn(len(PRIMITIVES)), dim=0)
    expected = sum(float(weights.data[i]) * o(x).data for i, o in enumerate(op.ops))
    np.testing.assert_allclose(op(x, weights).data, expected, rtol=1e-5, atol=1e-6)


def test_latency_table_is_measured_once_cached_and_steers_the_search(tmp_path):
    calls = []

    def fake_measure(name, channels, length, batch):
        calls.append(name)
        return 0.0 if name in ("skip_connect", "none") else 1.0

    path = tmp_path / "latency.json"
    table = LatencyTable(path=str(path), measure=fake_measure)
    costs = table.costs(channels=4, lengths=[12])
    assert table.measured == len(PRIMITIVES) and path.exists()
    again = LatencyTable(path=str(path), measure=fake_measure)
    assert again.costs(channels=4, lengths=[12]) == costs and again.measured == 0
    assert len(calls) == len(PRIMITIVES)

    # The latency term moves alpha towards the cheap operations, more so the larger its weight.
    shares = []
    for weight in (0.0, 20.0):
        net, search, (train, val) = _setup(latency=costs, latency_weight=weight)
        for _ in range(5):
            search.step(train, val)
        p = np.exp(net.alpha.data) / np.exp(net.alpha.data).sum(1, keepdims=True)
        shares.append(p[:, [PRIMITIVES.index("skip_connect"), PRIMITIVES.index("none")]].sum(1).mean())
    assert shares[1] > shares[0] + 0.1


def test_measured_latency_is_a_positive_time():
    table = LatencyTable(path=None)
    assert all(t >= 0 for t in table.costs(channels=4, lengths=[12]))
    assert table.latency("conv_5", 4, 12) > table.latency("skip_connect", 4, 12)


def test_genotype_is_a_named_tuple():
    g = Genotype([("conv_3", 0, 1)], 1)
    assert g.steps == 1 and DerivedNetwork(g, channels=2, cells=1)(nl.randn(1, 8)).shape == (1, 10)


def test_bad_primitives_optimizers_repeats_and_models_are_named():
    from nnlite.nas import accuracy, measure_latency
    with pytest.raises(ValueError, match="MixedOp: expected at least one primitive, got none"):
        MixedOp(4, primitives=())
    model = SearchNetwork(channels=4, cells=1, steps=1)
    with pytest.raises(TypeError, match="expected weight_optimizer to be an nl.optim.Optimizer, got NoneType"):
        BilevelSearch(model, None, None)
    with pytest.raises(ValueError, match="repeats must be a positive integer, got 0"):
        measure_latency("conv_3", 4, 8, repeats=0)   # was the median of nothing, nan
    with pytest.raises(TypeError, match="accuracy: expected an nn.Module, got ndarray"):
        accuracy(np.zeros(3), (nl.randn(2, 1, 40), nl.tensor([0, 1])))


def test_search_settings_genotypes_and_latencies_are_checked():
    model = SearchNetwork(channels=4, cells=1, steps=1)
    w = nl.optim.SGD(model.weights(), lr=0.01)
    a = nl.optim.Adam(model.arch_parameters(), lr=0.01)
    with pytest.raises(ValueError, match=r"latency must hold one finite cost per operation \(8\)"):
        BilevelSearch(model, w, a, latency=[1.0, 2.0], latency_weight=1.0)   # was a broadcasting error at step
    with pytest.raises(ValueError, match="latency_weight must be a finite number >= 0, got nan"):
        BilevelSearch(model, w, a, latency=[1.0] * 8, latency_weight=float("nan"))
    with pytest.raises(ValueError, match="epsilon must be a finite number > 0, got 0"):
        BilevelSearch(model, w, a, second_order=True, epsilon=0)
    with pytest.raises(TypeError, match="BilevelSearch: expected a SearchNetwork, got ndarray"):
        BilevelSearch(np.zeros(3), w, a)
    with pytest.raises(ValueError, match="k .* must be an integer >= 1, got 0"):
        model.genotype(k=0)   # was a genotype without edges
    with pytest.raises(TypeError, match="DerivedNetwork: expected a Genotype, got ndarray"):
        DerivedNetwork(np.zeros(3))
    table = LatencyTable(path=None, measure=lambda name, c, l, b: float("nan"))
    with pytest.raises(ValueError, match="the measure gave nan ms .*expected a finite time >= 0"):
        table.latency("conv_3", 4, 8)   # was stored in the table
    assert table.entries == {}
