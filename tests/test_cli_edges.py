"""The nnlite command at its edges: flag errors in one line before any data loads, runs that
must not mix, --resume rules, a clean Ctrl-C, --version (bench: test_bench_cli.py)."""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

import nnlite
import nnlite.train
from nnlite import cli, recipes
from nnlite.cli import main

from helpers import one_line_error, sklearn_or_skip
from helpers import run_cli as run

pytestmark = pytest.mark.usefixtures("restore_threads")

ROOT = os.path.dirname(os.path.dirname(nnlite.__file__))


def _command(args, **kwargs):
    env = dict(os.environ, PYTHONPATH=ROOT, **kwargs.pop("env", {}))
    return subprocess.run([sys.executable, "-m", "nnlite"] + args, capture_output=True, text=True, env=env,
                          timeout=300, **kwargs)


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"nnlite {nnlite.__version__}"


def test_flag_errors_name_the_flag_before_any_data_loads(tmp_path, capsys, monkeypatch):
    def no_data(*args, **kwargs):
        raise AssertionError("data loaded before the flags were checked")
    monkeypatch.setattr(recipes, "build", no_data)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for flags, flag in ((["--seed", "-1"], "--seed"), (["--checkpoint-every", "0"], "--checkpoint-every"),
                        (["--checkpoint-every", "-5"], "--checkpoint-every"), (["--threads", "0"], "--threads"),
                        (["--out", str(a_file)], "--out"), (["--lr", "inf"], "--lr"), (["--lr", "nan"], "--lr")):
        out_dir = [] if flag == "--out" else ["--out", str(tmp_path / "run")]
        code, _, err = run(["train", "digits-mlp"] + out_dir + flags, capsys)
        assert code == 2 and one_line_error(err) and flag in err, (flags, err)


def test_epochs_below_one_are_refused_for_recipes_and_experiments(tmp_path, capsys, monkeypatch):
    def no_run(*args, **kwargs):
        raise AssertionError("an experiment started with --epochs below 1")
    # The experiments read epochs=0 as "the default length": the flag must be refused before them.
    monkeypatch.setattr(recipes, "run_experiment", no_run)
    monkeypatch.setattr(recipes, "build", no_run)
    for recipe in ("digits-tune", "mnist1d-transfer", "digits-mlp"):
        for epochs in ("0", "-3"):
            code, _, err = run(["train", recipe, "--epochs", epochs, "--out", str(tmp_path / "run")], capsys)
            assert code == 2 and one_line_error(err) and f"--epochs must be a positive integer, got {epochs}" in err


def test_a_bad_tensorboard_folder_or_a_missing_tensorboardx_is_refused_before_training(tmp_path, capsys, monkeypatch):
    def no_data(*args, **kwargs):
        raise AssertionError("data loaded before --tensorboard was checked")
    monkeypatch.setattr(recipes, "build", no_data)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    code, _, err = run(["train", "digits-mlp", "--out", str(tmp_path / "run"), "--tensorboard", str(a_file)], capsys)
    assert code == 2 and one_line_error(err) and "--tensorboard" in err and "existing file" in err
    real_find_spec = cli.importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboardX" else real_find_spec(name, *a))
    code, _, err = run(["train", "digits-mlp", "--out", str(tmp_path / "run"), "--tensorboard", str(tmp_path)], capsys)
    assert code == 2 and one_line_error(err) and 'pip install "nnlite[monitor]"' in err


def test_an_experiment_refuses_training_flags_and_writes_only_its_metrics(tmp_path, capsys, monkeypatch):
    """What README says of the experiments: only metrics.json, and only the flags they can use."""
    monkeypatch.setattr(recipes, "run_experiment",
                        lambda name, *, seed, epochs, progress: {"seed": seed, "epochs": epochs, "summary": "done"})
    # without tensorboardX too: the flag is refused for not applying, not for a missing extra
    real_find_spec = cli.importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboardX" else real_find_spec(name, *a))
    for flags in (["--lr", "0.1"], ["--batch-size", "8"], ["--resume"], ["--checkpoint-every", "3"],
                  ["--tensorboard", str(tmp_path / "tb")], ["--distributed"]):
        if flags == ["--distributed"]:
            monkeypatch.setattr(cli, "_start_distributed", lambda args: True)
        code, _, err = run(["train", "digits-tune", "--out", str(tmp_path / "bad")] + flags, capsys)
        assert code == 2 and one_line_error(err) and flags[0] in err and "digits-tune" in err, (flags, err)
    out = tmp_path / "run"
    code, stdout, _ = run(["train", "digits-tune", "--epochs", "2", "--seed", "3", "--threads", "1", "--quiet",
                           "--out", str(out)], capsys)
    assert code == 0 and "done" in stdout
    assert sorted(os.listdir(out)) == ["metrics.json"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["seed"] == 3 and metrics["recipe"] == "digits-tune"


def test_distributed_without_mpi4py_names_the_extra_before_training(tmp_path, capsys, monkeypatch):
    def no_data(*args, **kwargs):
        raise AssertionError("a --distributed run started without MPI")
    monkeypatch.setattr(recipes, "build", no_data)
    real_find_spec = cli.importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec",
                        lambda name, *a: None if name == "mpi4py" else real_find_spec(name, *a))
    code, _, err = run(["train", "digits-mlp", "--distributed", "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and one_line_error(err) and 'pip install "nnlite[mpi]"' in err


def test_a_bad_backend_variable_is_one_line(tmp_path):
    proc = _command(["train", "digits-mlp", "--out", str(tmp_path)], cwd=tmp_path, env={"NNLITE_BACKEND": "bogus"})
    assert proc.returncode == 2 and one_line_error(proc.stderr) and "NNLITE_BACKEND='bogus'" in proc.stderr


def test_a_fresh_run_refuses_a_folder_with_an_unfinished_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(recipes, "build", lambda *a, **k: pytest.fail("a fresh run started over old resume points"))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "checkpoint-00000900.safetensors").write_bytes(b"old")
    code, _, err = run(["train", "digits-mlp", "--out", str(tmp_path)], capsys)
    assert code == 2 and one_line_error(err) and "--resume" in err and "another --out" in err


def test_rotation_never_deletes_the_checkpoint_just_written(tmp_path):
    template = str(tmp_path / "checkpoint-{step:08d}.safetensors")
    for step in (500, 600, 700):   # an older run's files with higher step numbers
        (tmp_path / f"checkpoint-{step:08d}.safetensors").write_bytes(b"old")
    model = nnlite.nn.Linear(2, 2)
    path = nnlite.save_checkpoint(template, model=model, step=3, keep_last=2)
    assert os.path.exists(path)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-00000003.safetensors", "checkpoint-00000600.safetensors",
                                             "checkpoint-00000700.safetensors"]


def _interrupted(tmp_path, monkeypatch, args):
    original = nnlite.train.ProgressBar.on_epoch_end

    def interrupt(self, state, logs):
        original(self, state, logs)
        raise KeyboardInterrupt

    monkeypatch.setattr(nnlite.train.ProgressBar, "on_epoch_end", interrupt)
    assert main(args) == 130
    monkeypatch.setattr(nnlite.train.ProgressBar, "on_epoch_end", original)


def test_resume_keeps_the_run_settings_and_refuses_conflicting_flags(tmp_path, capsys, monkeypatch):
    sklearn_or_skip()
    out = str(tmp_path / "run")
    base = ["train", "digits-mlp", "--out", out, "--threads", "1"]
    _interrupted(tmp_path, monkeypatch, base + ["--epochs", "2", "--seed", "4"])
    capsys.readouterr()
    for flags, word in ((["--seed", "3"], "--seed 3"), (["--lr", "0.5"], "--lr 0.5"),
                        (["--batch-size", "7"], "--batch-size 7"), (["--epochs", "5"], "--epochs 5")):
        code, _, err = run(base + ["--resume"] + flags, capsys)
        assert code == 2 and one_line_error(err) and word in err, err
    code, out_text, err = run(base + ["--resume", "--seed", "4"], capsys)
    assert code == 0, err
    assert "(2 epochs, 90 steps, resumed at step 45" in out_text
    metrics = json.loads(open(os.path.join(out, "metrics.json")).read())
    assert metrics["seed"] == 4 and metrics["epochs"] == 2
    assert len(metrics["history"]["test_accuracy"]) == 2 and "val_accuracy" not in metrics["history"]
    # The run has finished: resuming it again is refused, saying how to train further.
    for resume in (["--resume"], ["--resume", os.path.join(out, "checkpoint.safetensors")]):
        code, _, err = run(base + resume, capsys)
        assert code == 2 and one_line_error(err), err
        assert "finished run cannot be resumed" in err or "finished run, which cannot be resumed" in err, err
        assert "--epochs" in err


def test_a_resumed_run_whose_resume_point_is_rotated_away_still_finishes(tmp_path, capsys, monkeypatch):
    """Resume points are rotated while the run goes on; the final card must not need the file it started from."""
    sklearn_or_skip()
    out = tmp_path / "run"
    base = ["train", "digits-mlp", "--out", str(out), "--threads", "1"]
    _interrupted(tmp_path, monkeypatch, base + ["--epochs", "3", "--checkpoint-every", "5"])
    capsys.readouterr()
    points = sorted((out / "checkpoints").glob("checkpoint-*.safetensors"))
    started_from, digest = str(points[-1]), nnlite.io.card.file_sha256(points[-1])
    code, _, err = run(base + ["--resume", "--quiet"], capsys)
    assert code == 0, err
    card = nnlite.io.read_checkpoint(str(out / "checkpoint.safetensors")).extra["card"]
    assert card["lineage"] == {"parent_path": started_from, "parent_sha256": digest}
    assert not os.path.exists(started_from)


def test_resume_may_add_epochs_when_the_recipe_has_no_schedule(tmp_path, capsys, monkeypatch):
    pytest.importorskip("mnist1d")
    out = str(tmp_path / "run")
    base = ["train", "mnist1d-logistic", "--out", out, "--threads", "1"]
    _interrupted(tmp_path, monkeypatch, base + ["--epochs", "2"])   # the progress bar is where it stops
    code, out_text, err = run(base + ["--resume", "--epochs", "3"], capsys)
    assert code == 0, err
    assert "continuing the run past the 2 epochs" in out_text
    metrics = json.loads(open(os.path.join(out, "metrics.json")).read())
    assert metrics["epochs"] == 3 and len(metrics["history"]["train_loss"]) == 3


@pytest.mark.parametrize("flags, word", [(["--resume"], "--resume"), (["--lr", "-1"], "--lr"),
                                         (["--batch-size", "0"], "--batch-size"),
                                         (["--lr", "0.1", "--epochs", "1"], "--lr")])
def test_a_refused_train_command_leaves_no_folder_behind(tmp_path, capsys, flags, word):
    out = tmp_path / "never"
    recipe = "digits-tune" if "--epochs" in flags else "digits-mlp"   # experiments refuse --lr
    code, out_text, err = run(["train", recipe, "--out", str(out)] + flags, capsys)
    assert code == 2 and one_line_error(err) and word in err, err
    assert not out.exists() and "loading the data" not in out_text


def test_resume_refuses_fewer_epochs_than_the_run_was_started_with(tmp_path, capsys, monkeypatch):
    pytest.importorskip("mnist1d")
    out = str(tmp_path / "run")
    base = ["train", "mnist1d-logistic", "--out", out, "--threads", "1"]
    _interrupted(tmp_path, monkeypatch, base + ["--epochs", "3"])   # stops after epoch 1 of 3
    capsys.readouterr()
    code, _, err = run(base + ["--resume", "--epochs", "2"], capsys)
    assert code == 2 and one_line_error(err) and "longer, not shorter" in err, err
    code, out_text, err = run(base + ["--resume", "--epochs", "3", "--quiet"], capsys)
    assert code == 0, err


@pytest.mark.parametrize("flags, lr", [(["--lr", "0.002"], 0.002), ([], 3e-3)])
def test_the_run_file_records_the_learning_rate_as_lr_sets_it(tmp_path, capsys, monkeypatch, flags, lr):
    """For a OneCycle recipe that is the schedule's peak, not the small rate it starts from,
    so that resuming with the --lr the run was started with is not taken for a conflict."""
    out = tmp_path / "run"

    def stop(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(nnlite.recipes, "run", stop)
    assert main(["train", "char-transformer", "--out", str(out), "--quiet"] + flags) == 130
    recorded = json.loads((out / "checkpoints" / "run.json").read_text())
    assert recorded["lr"] == lr and recorded["scheduled"]
    args = argparse.Namespace(recipe="char-transformer", seed=None, lr=lr, batch_size=None, epochs=None)
    assert nnlite.cli._resumed_settings(args, recorded, 0)["lr"] == lr


def test_a_run_resumed_from_another_folder_keeps_its_settings(tmp_path, capsys, monkeypatch):
    sklearn_or_skip()
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    _interrupted(tmp_path, monkeypatch, ["train", "digits-mlp", "--out", first, "--threads", "1", "--epochs", "2",
                                         "--seed", "6"])
    point = sorted(os.listdir(os.path.join(first, "checkpoints")))[0]
    assert point.startswith("checkpoint-")
    code, _, err = run(["train", "digits-mlp", "--out", second, "--threads", "1", "--quiet", "--resume",
                        os.path.join(first, "checkpoints", point), "--seed", "2"], capsys)
    assert code == 2 and "--seed 2 conflicts" in err
    code, _, err = run(["train", "digits-mlp", "--out", second, "--threads", "1", "--quiet", "--resume",
                        os.path.join(first, "checkpoints", point)], capsys)
    assert code == 0, err
    assert json.loads(open(os.path.join(second, "metrics.json")).read())["seed"] == 6


def test_the_report_says_1_epoch(tmp_path, capsys):
    sklearn_or_skip()
    code, out, err = run(["train", "digits-mlp", "--epochs", "1", "--out", str(tmp_path), "--threads", "1"], capsys)
    assert code == 0, err
    assert "(1 epoch, " in out and "1 epochs" not in out and "1 threads" not in out


def test_require_reports_only_the_package_itself_missing(tmp_path, monkeypatch):
    from nnlite.data.datasets import require
    (tmp_path / "brokenpkg").mkdir()
    (tmp_path / "brokenpkg" / "__init__.py").write_text("import a_dependency_that_is_not_there_x\n")
    (tmp_path / "halfpkg.py").write_text("raise ImportError('cannot import name x (partially initialized)')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="a_dependency_that_is_not_there_x"):
        require("brokenpkg", "MNIST1D")
    with pytest.raises(ImportError, match="partially initialized"):
        require("halfpkg", "MNIST1D")
    with pytest.raises(ImportError, match=r"needs the optional package 'no_such_package_y'.*nnlite\[data\]"):
        require("no_such_package_y", "MNIST1D")


def test_ctrl_c_during_start_up_exits_130_cleanly(tmp_path):
    sklearn_or_skip()
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
    for i, delay in enumerate((0.0, 0.05, 0.2, 0.5)):
        proc = subprocess.Popen([sys.executable, "-m", "nnlite", "train", "digits-mlp", "--epochs", "50",
                                 "--out", str(tmp_path / f"run{i}")], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
        first = proc.stdout.readline()      # start-up has begun: loading data, building the model
        assert "loading the data" in first
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, (delay, proc.returncode, err)
        assert "Fatal Python error" not in err and "Traceback" not in err, err
        assert "needs the optional package" not in err, err


def test_an_interrupt_swallowed_during_start_up_still_stops_the_run(tmp_path, capsys, monkeypatch):
    """A library importing optional packages under `except ImportError` can swallow the KeyboardInterrupt."""
    from nnlite import cli, recipes
    sklearn_or_skip()
    real_build = recipes.build

    def build_and_swallow(*args, **kwargs):
        try:
            cli._interrupt(2, None)
        except KeyboardInterrupt:
            pass
        return real_build(*args, **kwargs)

    monkeypatch.setattr(recipes, "build", build_and_swallow)
    monkeypatch.setattr(cli, "_interrupted", False)
    code = cli.main(["train", "digits-mlp", "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 130
    assert "interrupted" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "run" / "checkpoint.safetensors")


def test_ctrl_c_while_the_command_imports_nnlite_exits_130_cleanly(tmp_path):
    """-X importtime reports each finished import on stderr: interrupt half-way through nnlite's."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "nnlite", "train", "digits-mlp",
                             "--out", str(tmp_path / "run")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=tmp_path)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.rstrip().endswith("nnlite.ops.shape"):
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stderr.read()
    proc.wait(timeout=120)
    assert proc.returncode == 130, (proc.returncode, rest[-2000:])
    assert "Traceback" not in rest and "Fatal Python error" not in rest, rest[-2000:]
    assert "nnlite: interrupted" in rest


def test_an_unbuilt_source_checkout_says_so(tmp_path):
    """A clone without compiled kernels names itself and the way out, not "reinstall"."""
    checkout = tmp_path / "clone"
    # Copied from the source checkout these tests live in: the imported nnlite may be an installed
    # one (README's `pip install ".[test]" && pytest`), whose folder has no setup.py.
    source = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    shutil.copytree(os.path.join(source, "nnlite"), checkout / "nnlite",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.c", "__pycache__"))
    for name in ("setup.py", "pyproject.toml"):
        shutil.copy(os.path.join(source, name), checkout / name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", "import nnlite"], cwd=checkout, capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "source checkout" in proc.stderr and "build_ext --inplace" in proc.stderr
    assert "Reinstall with a C compiler" not in proc.stderr


def test_a_ctrl_c_wrapped_in_another_error_still_exits_130(monkeypatch, capsys):
    # Python wraps a KeyboardInterrupt raised in a class body's __set_name__ (a library
    # being imported) in a RuntimeError: after a Ctrl-C, any error means "interrupted"
    from nnlite import cli

    def interrupted_start_up(args):
        cli._interrupted = True
        raise RuntimeError("Error calling __set_name__ on '_Implementation' instance")
    monkeypatch.setattr(cli, "cmd_train", interrupted_start_up)
    monkeypatch.setattr(cli, "_interrupted", False)
    assert cli.main(["train", "digits-mlp"]) == 130
    assert "interrupted" in capsys.readouterr().err
    monkeypatch.setattr(cli, "_interrupted", False)
    monkeypatch.setattr(cli, "cmd_train", lambda args: 1 / 0)
    with pytest.raises(ZeroDivisionError):   # without a Ctrl-C an error is not hidden
        cli.main(["train", "digits-mlp"])
