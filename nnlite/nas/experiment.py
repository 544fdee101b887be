"""The ``darts-mnist1d`` experiment: a DARTS search on MNIST-1D, its derived cell retrained, and a latency sweep.

1. First-order DARTS on a network of two cells (three intermediate nodes,
   16 channels) for ``epochs`` epochs (default 6) over the two halves of the
   MNIST-1D training set; the search curve (training loss, the search
   network's validation accuracy, the architecture weights per epoch).
2. The derived genotype retrained from scratch on the whole training set
   (10 epochs, Adam) and scored once on the test set.
3. First- against second-order search: the same search, shorter (3 epochs on
   the first 2000 training examples, each cell retrained for 5 epochs), with
   the first-order and with the second-order architecture gradient.
4. Hardware-aware search: the shorter first-order search with latency weights
   :math:`\\lambda` of 0, 0.2 and 2 per millisecond, latencies from a
   :class:`~nnlite.nas.LatencyTable` measured at batch size 1 on this
   machine; each derived cell's latency and test accuracy.
"""
from .latency import LatencyTable
from .search import darts_search, genotype_latency, mnist1d_search_split, train_from_scratch

__all__ = ["run", "LATENCY_WEIGHTS"]

LATENCY_WEIGHTS = (0.0, 0.2, 2.0)
_CHANNELS, _LENGTHS = 16, (40, 20)   # the cells see length 40, then 20 after the pool


def run(*, seed, epochs=None, progress=True):
    """Genotype, search curve, retrained test accuracy, first- against second-order search, the latency sweep."""
    search_train, search_val, train, test = mnist1d_search_split(seed=seed)
    net, history = darts_search(search_train, search_val, epochs=epochs or 6, seed=seed, progress=progress)
    genotype = net.genotype()
    _, test_accuracy = train_from_scratch(genotype, train, test, epochs=10, seed=seed)
    lines = [f"genotype: {genotype.edges}", f"retrained test accuracy: {test_accuracy:.3f}"]
    if progress:
        print("\n".join(lines), flush=True)

    small_train, small_val, small_all, _ = mnist1d_search_split(train_size=2000, seed=seed)
    orders = {}
    for order in ("first", "second"):
        short_net, short_history = darts_search(small_train, small_val, epochs=3, second_order=order == "second",
                                                seed=seed)
        g = short_net.genotype()
        _, acc = train_from_scratch(g, small_all, test, epochs=5, seed=seed)
        orders[order] = {"genotype": g.edges, "test_accuracy": acc,
                         "search_seconds": round(sum(h["seconds"] for h in short_history), 1)}
        line = (f"{order}-order search: test accuracy {acc:.3f}, search {orders[order]['search_seconds']} s, "
                f"{[name for name, _, _ in g.edges]}")
        lines.append(line)
        if progress:
            print(line, flush=True)

    table = LatencyTable()
    costs = table.costs(_CHANNELS, _LENGTHS)
    sweep = []
    for weight in LATENCY_WEIGHTS:
        sweep_net, _ = darts_search(small_train, small_val, epochs=3, latency=costs, latency_weight=weight,
                                    seed=seed)
        g = sweep_net.genotype()
        _, acc = train_from_scratch(g, small_all, test, epochs=5, seed=seed)
        sweep.append({"latency_weight": weight, "genotype": g.edges, "test_accuracy": acc,
                      "latency_ms": genotype_latency(g, table, _CHANNELS, _LENGTHS)})
        line = (f"latency weight {weight:>4}: cell latency {sweep[-1]['latency_ms']:.3f} ms, "
                f"test accuracy {acc:.3f}, {[name for name, _, _ in g.edges]}")
        lines.append(line)
        if progress:
            print(line, flush=True)
    return {"seed": seed, "genotype": genotype.edges, "search_curve": history, "test_accuracy": test_accuracy,
            "first_vs_second_order": orders, "latency_table": dict(zip(net.primitives, costs)),
            "latency_sweep": sweep,
            "summary": "\n".join(lines)}
