"""`nnlite inspect CHECKPOINT --analysis` prints the quality metrics of every weight matrix."""
import numpy as np

import nnlite as nl
from nnlite.analysis import quality_metrics
from nnlite.cli import main
from nnlite.recipes import MNIST1DCNN


def test_inspect_analysis_prints_one_row_per_weight_matrix(tmp_path, capsys):
    nl.manual_seed(0)
    model = MNIST1DCNN()
    path = tmp_path / "cnn.safetensors"
    nl.save_checkpoint(path, model=model)
    assert main(["inspect", str(path), "--analysis"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("quality metrics"):].splitlines()
    assert table[1].split() == ["weight", "matrix", "spectral", "norm", "condition", "number", "effective", "rank",
                                "stable", "rank"]
    rows = {line.split()[0]: line.split() for line in table[3:]}
    assert list(rows) == ["conv1.weight", "conv2.weight", "conv3.weight", "linear.weight"]
    assert rows["conv2.weight"][1] == "25x75"
    expected = quality_metrics(model)["linear.weight"]
    assert np.isclose(float(rows["linear.weight"][2]), expected["spectral_norm"], rtol=1e-3)
    assert np.isclose(float(rows["linear.weight"][4]), expected["effective_rank"], rtol=1e-3)
