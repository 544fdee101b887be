"""The nnlite command: train writes a checkpoint and metrics, inspect prints the table, errors are one line."""
import json
import os

import pytest

import nnlite
import nnlite.train
from nnlite.cli import main

from helpers import one_line_error, run_fresh, sklearn_or_skip
from helpers import run_cli as run

pytestmark = pytest.mark.usefixtures("restore_threads")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    sklearn_or_skip()   # the digits recipe loads scikit-learn's digits
    out = tmp_path_factory.mktemp("run")
    before = nnlite.get_num_threads()
    assert main(["train", "digits-mlp", "--epochs", "2", "--out", str(out), "--threads", "1", "--quiet"]) == 0
    nnlite.set_num_threads(before)
    return out


def test_train_writes_one_checkpoint_and_metrics(trained):
    assert sorted(os.listdir(trained)) == ["checkpoint.safetensors", "metrics.json"]
    metrics = json.loads((trained / "metrics.json").read_text())
    assert 0.8 <= metrics["test_accuracy"] <= 1.0
    assert metrics["train_time_s"] > 0 and metrics["num_parameters"] == 26122
    assert metrics["parameters_by_kind"] == {"weight": 25856, "bias": 266}
    assert len(metrics["history"]["train_loss"]) == 2 and metrics["threads"] == 1
    info = nnlite.io.read_checkpoint(trained / "checkpoint.safetensors")
    assert info.extra["recipe"] == "digits-mlp"


def test_train_prints_a_final_report(tmp_path, capsys):
    sklearn_or_skip()   # the digits recipe loads scikit-learn's digits
    code, out, _ = run(["train", "digits-mlp", "--epochs", "1", "--out", str(tmp_path), "--threads", "1"], capsys)
    assert code == 0
    assert "epoch 1/1" in out  # one line per epoch when stdout is not a terminal
    for part in ("test accuracy", "train time", "parameters      26,122", "weight 25,856", "memory", "wrote"):
        assert part in out


def test_inspect_prints_the_parameter_table(trained, capsys):
    code, out, err = run(["inspect", str(trained / "checkpoint.safetensors")], capsys)
    assert code == 0, err
    header = next(line for line in out.splitlines() if line.startswith("name"))
    for column in ("kind", "shape", "count", "trainable", "tied", "init", "norm", "mean", "std"):
        assert column in header
    row = next(line for line in out.splitlines() if line.startswith("0.weight"))
    assert "weight" in row and "128x64" in row and "8,192" in row and "kaiming_uniform_" in row
    assert "total: 26,122 parameters (26,122 trainable)" in out


def test_inspect_shows_tied_parameters_once(tmp_path, capsys):
    from nnlite import recipes
    model = recipes.build("char-transformer").model
    path = tmp_path / "lm.safetensors"
    nnlite.save_checkpoint(path, model=model)
    code, out, _ = run(["inspect", str(path)], capsys)
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("token_embedding.weight"))
    assert "embedding" in row and "head.weight" in row
    assert f"total: {model.num_parameters():,} parameters" in out
    assert "1 tied name(s) counted once" in out


def test_inspect_histograms(trained, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "h.png"
    code, out, _ = run(["inspect", str(trained / "checkpoint.safetensors"), "--histograms", str(png)], capsys)
    assert code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_errors_are_one_line_without_traceback(tmp_path, capsys):
    code, _, err = run(["train", "mnist"], capsys)
    assert code == 2 and one_line_error(err) and "unknown recipe 'mnist'" in err and "mnist1d-cnn" in err
    code, _, err = run(["inspect", str(tmp_path / "missing.safetensors")], capsys)
    assert code == 2 and one_line_error(err) and "no such file" in err
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"this is not a checkpoint at all")
    code, _, err = run(["inspect", str(junk)], capsys)
    assert code == 2 and one_line_error(err) and "not a readable checkpoint" in err
    code, _, err = run(["inspect", str(tmp_path)], capsys)
    assert code == 2 and one_line_error(err) and "directory" in err
    code, _, err = run(["train", "digits-mlp", "--epochs", "0", "--out", str(tmp_path)], capsys)
    assert code == 2 and one_line_error(err) and "epochs must be a positive integer" in err
    code, _, err = run(["train", "digits-mlp", "--resume", "--out", str(tmp_path / "fresh")], capsys)
    assert code == 2 and one_line_error(err) and "no checkpoint" in err
    code, _, err = run(["train", "digits-mlp", "--epochs", "two"], capsys)
    assert code == 2 and one_line_error(err) and "invalid int value" in err
    code, out, _ = run([], capsys)
    assert code == 2 and "train" in out


def test_python_dash_m_reports_errors_in_one_line(tmp_path):
    proc = run_fresh(["-m", "nnlite", "inspect", str(tmp_path / "nope")], tmp_path)
    assert proc.returncode != 0 and one_line_error(proc.stderr) and proc.stdout == ""


def test_interrupted_run_resumes_to_the_same_result(tmp_path, capsys, monkeypatch):
    sklearn_or_skip()   # the digits recipe loads scikit-learn's digits
    args = ["train", "digits-mlp", "--epochs", "2", "--threads", "1"]
    assert main(args + ["--out", str(tmp_path / "whole"), "--quiet"]) == 0
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())

    original = nnlite.train.ProgressBar.on_epoch_end

    def interrupt(self, state, logs):
        original(self, state, logs)
        raise KeyboardInterrupt

    monkeypatch.setattr(nnlite.train.ProgressBar, "on_epoch_end", interrupt)
    assert main(args + ["--out", str(tmp_path / "cut")]) == 130
    assert "--resume" in capsys.readouterr().err
    assert os.listdir(tmp_path / "cut" / "checkpoints")  # the resume point of epoch 1
    monkeypatch.setattr(nnlite.train.ProgressBar, "on_epoch_end", original)
    assert main(args + ["--out", str(tmp_path / "cut"), "--resume"]) == 0
    resumed = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert resumed["test_loss"] == whole["test_loss"] and resumed["test_accuracy"] == whole["test_accuracy"]
    assert resumed["history"]["train_loss"] == whole["history"]["train_loss"]


def test_cli_recipe_names_are_the_recipes_and_experiments():
    from nnlite import cli, recipes
    assert set(cli.RECIPE_NAMES) == set(recipes.names())


def test_export_and_resume_of_a_directory_say_it_is_one(tmp_path, capsys):
    # both said "no such file" of a folder that exists
    code, _, err = run(["export", str(tmp_path), "--onnx", str(tmp_path / "model.onnx")], capsys)
    assert code == 2 and one_line_error(err) and f"{tmp_path} is a directory, not a checkpoint file" in err
    code, _, err = run(["train", "digits-mlp", "--resume", str(tmp_path), "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and one_line_error(err) and f"--resume: {tmp_path} is a directory, not a checkpoint file" in err
    code, _, err = run(["export", str(tmp_path / "missing.safetensors"), "--onnx", "m.onnx"], capsys)
    assert code == 2 and one_line_error(err) and "no such file" in err
