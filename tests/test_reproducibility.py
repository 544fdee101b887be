"""The reproducibility contract of docs/practices.rst: same seed -> same bytes, whatever the thread count."""
import numpy as np

import nnlite as nl
from nnlite import nn
from nnlite.data import DataLoader, Digits
from nnlite.io.migrations import MIGRATIONS
from nnlite.nn import functional as F
from nnlite.train import fit

from helpers import sklearn_or_skip


def _train(seed, threads):
    previous = nl.get_num_threads()
    nl.set_num_threads(threads)
    try:
        nl.manual_seed(seed)
        model = nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(8), nn.Flatten(),
                              nn.Dropout(0.2), nn.Linear(8 * 64, 10))
        opt = nl.optim.AdamW(nl.optim.param_groups_by_kind(model, weight_decay=0.01), lr=3e-3)
        data = Digits(train=True)
        loader = DataLoader(data, batch_size=64, shuffle=True)
        fit(model, F.cross_entropy, opt, loader, epochs=1, progress=False)
        state = opt.state_dict()["state"]
        return ([t.data.tobytes() for t in model.state_dict().values()],
                [v.data.tobytes() for entry in state.values() for v in entry.values()])
    finally:
        nl.set_num_threads(previous)


def test_same_seed_same_bytes_across_thread_counts_and_a_new_seed_changes_them():
    sklearn_or_skip()   # the digits
    one = _train(seed=3, threads=1)
    two = _train(seed=3, threads=2)
    assert one[0] == two[0]          # parameters and buffers (running statistics)
    assert one[1] == two[1]          # Adam's moments
    other = _train(seed=4, threads=2)
    assert other[0] != one[0]


def test_every_older_format_has_a_migration():
    # The version-compatibility policy: every format nnlite ever wrote can still be read.
    assert sorted(MIGRATIONS) == list(range(1, nl.io.FORMAT_VERSION))
