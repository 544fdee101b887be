"""Atomic writes: a crash or kill -9 during a save leaves a loadable checkpoint."""
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import nnlite as nl
from nnlite import io as nio
from nnlite.io import format as fmt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(nl.__file__)))

# Imports nnlite once, then for each "go" line forks a saver that saves forever (every
# checkpoint's weights equal its step, so a torn file would show) and prints its pid;
# a "reap" line waits for that saver and prints how it ended.
SAVER = r"""
import os, sys
import nnlite as nl
path = sys.argv[1]
for line in sys.stdin:
    command, arg = line.split()
    if command == "reap":
        _, status = os.waitpid(int(arg), 0)
        print(os.WTERMSIG(status) if os.WIFSIGNALED(status) else -1, flush=True)
        continue
    pid = os.fork()
    if pid:
        print(pid, flush=True)
        continue
    model = nl.nn.Sequential(nl.nn.Linear(256, 256), nl.nn.Linear(256, 64))
    opt = nl.optim.Adam(model.parameters())
    step = 0
    while True:
        for p in model.parameters():
            p.data[...] = step
        nl.save_checkpoint(path, model=model, optimizer=opt, step=step, extra={"step_again": step})
        if step == 0:
            open(arg, "w").close()
        step += 1
"""


def _model():
    return nl.nn.Sequential(nl.nn.Linear(256, 256), nl.nn.Linear(256, 64))


def _wait_for(path, helper):
    deadline = time.monotonic() + 60
    while not path.exists():
        assert helper.poll() is None, helper.stderr.read()
        assert time.monotonic() < deadline, "saver did not start"
        time.sleep(0.005)


def test_kill_9_during_repeated_saves_leaves_a_loadable_file(tmp_path):
    rng = random.Random(0)
    path = tmp_path / "ckpt.safetensors"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    helper = subprocess.Popen([sys.executable, "-W", "ignore", "-c", SAVER, str(path)], env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    steps_seen, pid = [], None
    try:
        for iteration in range(8):
            ready = tmp_path / f"ready{iteration}"
            helper.stdin.write(f"go {ready}\n")
            helper.stdin.flush()
            pid = int(helper.stdout.readline())
            _wait_for(ready, helper)
            time.sleep(rng.uniform(0.0, 0.15))
            os.kill(pid, signal.SIGKILL)
            helper.stdin.write(f"reap {pid}\n")
            helper.stdin.flush()
            assert int(helper.stdout.readline()) == signal.SIGKILL
            pid = None
            model = _model()
            info = nl.load_checkpoint(path, model=model)
            assert info.extra == {"step_again": info.step}
            for p in model.parameters():
                assert np.all(p.data == info.step), "weights and metadata come from different saves"
            steps_seen.append(info.step)
    finally:
        if pid is not None:  # a failed assertion must not leave a saver running
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        helper.stdin.close()
        helper.wait(timeout=30)
        helper.stdout.close()
        helper.stderr.close()
    assert max(steps_seen) > 0


def test_failed_save_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    model = nl.nn.Linear(3, 2)
    path = nl.save_checkpoint(tmp_path / "c.safetensors", model=model, step=1)
    before = open(path, "rb").read()

    def crash(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(fmt.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        nl.save_checkpoint(path, model=model, step=2)
    monkeypatch.undo()
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["c.safetensors"]
    assert nio.read_checkpoint(path).step == 1


def test_save_fsyncs_the_file_before_the_rename_and_the_directory_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.path.isdir(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else None))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.path.dirname(src) == os.path.dirname(os.fspath(dst))))
        real_replace(src, dst)

    monkeypatch.setattr(fmt.os, "fsync", fsync)
    monkeypatch.setattr(fmt.os, "replace", replace)
    nl.save_state_dict({"w": nl.ones(3)}, tmp_path / "w.safetensors")
    if os.path.exists("/proc/self/fd"):
        assert events == [("fsync", False), ("replace", True), ("fsync", True)]
    else:
        assert [e[0] for e in events] == ["fsync", "replace", "fsync"]
    assert nl.load_state_dict(tmp_path / "w.safetensors")["w"].tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("save", [lambda path: nl.io.save_checkpoint(path, model=nl.nn.Linear(2, 2)),
                                  lambda path: nl.save_state_dict(nl.nn.Linear(2, 2), path)])
def test_a_path_that_cannot_be_a_file_is_named_before_anything_is_written(tmp_path, save):
    # The errors named the hidden temporary (".c.safetensors.<pid>.<hex>.tmp"), not the path given,
    # and an empty path put that temporary in the parent of the working directory.
    missing = tmp_path / "no" / "such" / "c.safetensors"
    with pytest.raises(FileNotFoundError, match=f"cannot write '{missing}': its directory .* does not exist"):
        save(missing)
    with pytest.raises(IsADirectoryError, match=f"cannot write '{tmp_path}': expected the path of a file, got a"):
        save(tmp_path)
    with pytest.raises(ValueError, match="cannot write '': expected the path of a file, got no file name"):
        save("")
    assert os.listdir(tmp_path) == []


def test_overwrite_replaces_the_file_and_respects_umask(tmp_path):
    path = tmp_path / "w.safetensors"
    nl.save_state_dict({"w": nl.zeros(2)}, path)
    nl.save_state_dict({"w": nl.ones(2)}, path)
    assert nl.load_state_dict(path)["w"].tolist() == [1.0, 1.0]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
    assert os.listdir(tmp_path) == ["w.safetensors"]
