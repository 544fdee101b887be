"""Bitwise resume: N steps straight == K steps, checkpoint, a NEW process, N - K steps.

Shuffling (DataLoader), dropout, Adam and a learning-rate schedule all draw on
or carry state, so this only passes if the checkpoint restores all of it.
Run as a script, this file is the second process: it loads the checkpoint,
finishes the run and writes the losses and parameters for the test to compare.
"""
import os
import subprocess
import sys

import numpy as np

import nnlite as nl
import nnlite.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(nl.__file__)))
N_STEPS = 13  # 5 batches an epoch: the run crosses two epoch boundaries


def _setup(seed):
    nl.manual_seed(seed)
    data = np.random.default_rng(42)
    ds = nl.data.TensorDataset(data.standard_normal((40, 6)).astype(np.float32), data.integers(0, 3, 40))
    loader = nl.data.DataLoader(ds, batch_size=8, shuffle=True)
    model = nl.nn.Sequential(nl.nn.Linear(6, 16), nl.nn.ReLU(), nl.nn.Dropout(0.3), nl.nn.Linear(16, 3))
    opt = nl.optim.Adam(model.parameters(), lr=0.02, weight_decay=1e-4)
    sched = nl.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=N_STEPS)
    return model, opt, sched, loader


def _train(model, opt, sched, loader, step, end, losses):
    model.train()
    while step < end:
        for x, y in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.data.copy())
            step += 1
            if step == end:
                return step
    return step


def _result(model, losses):
    """Parameters and the loss sequence as one state dict (written with nnlite's own format)."""
    out = {f"param.{k}": v for k, v in model.state_dict().items()}
    out["losses"] = np.stack(losses)
    return out


def _resume_in_this_process(checkpoint, out, end):
    model, opt, sched, loader = _setup(seed=12345)  # different seed: everything must come from the file
    info = nl.load_checkpoint(checkpoint, model=model, optimizer=opt, scheduler=sched, dataloader=loader)
    losses = []
    _train(model, opt, sched, loader, info.step, end, losses)
    nl.save_state_dict(_result(model, losses), out)


def test_resume_in_a_new_process_is_bitwise_identical(tmp_path):
    model, opt, sched, loader = _setup(seed=0)
    straight_losses = []
    _train(model, opt, sched, loader, 0, N_STEPS, straight_losses)
    straight = _result(model, straight_losses)

    # Interrupt mid-epoch (7) and exactly at an epoch boundary (10); one new process resumes both.
    jobs, first_losses = [], {}
    for k in (7, 10):
        model, opt, sched, loader = _setup(seed=0)
        first_losses[k] = []
        _train(model, opt, sched, loader, 0, k, first_losses[k])
        checkpoint = nl.save_checkpoint(tmp_path / "ckpt-{step}.safetensors", model=model, optimizer=opt,
                                        scheduler=sched, dataloader=loader, step=k)
        jobs += [checkpoint, str(tmp_path / f"resumed-{k}.safetensors")]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-W", "ignore", os.path.abspath(__file__), str(N_STEPS)] + jobs,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr

    for k in (7, 10):
        resumed = {key: v.data for key, v in nl.load_state_dict(tmp_path / f"resumed-{k}.safetensors").items()}
        losses = np.concatenate([np.stack(first_losses[k]).reshape(-1), resumed["losses"].reshape(-1)])
        assert losses.shape == (N_STEPS,)
        assert losses.tobytes() == straight["losses"].tobytes(), (k, losses, straight["losses"])
        for key, value in straight.items():
            if key.startswith("param."):
                assert resumed[key].tobytes() == value.data.tobytes(), (k, key)
    # The comparison can fail: the loss moves, so a resume that lost any state would not match.
    assert not np.array_equal(straight["losses"][:3], straight["losses"][-3:])


if __name__ == "__main__":
    for checkpoint, out in zip(sys.argv[2::2], sys.argv[3::2]):
        _resume_in_this_process(checkpoint, out, int(sys.argv[1]))


def test_resume_replays_the_epochs_after_it_of_a_sampler_with_its_own_generator(tmp_path):
    # The loader's own generator was saved, a sampler's was not: after a resumed epoch the next
    # ones drew their order from a fresh generator and repeated the first epochs' orders.
    def run(make_sampler, stop=None, resume=None):
        nl.manual_seed(0)
        data = np.random.default_rng(42)
        ds = nl.data.TensorDataset(data.standard_normal((40, 6)).astype(np.float32), data.integers(0, 3, 40))
        sampler, batch_sampler = make_sampler(ds, nl.Generator(5))
        loader = nl.data.DataLoader(ds, batch_sampler=batch_sampler) if batch_sampler else \
            nl.data.DataLoader(ds, batch_size=8, sampler=sampler)
        model = nl.nn.Sequential(nl.nn.Linear(6, 16), nl.nn.ReLU(), nl.nn.Linear(16, 3))
        losses = []

        class Record(nl.train.Callback):
            def on_batch_end(self, state):
                losses.append(state.batch_loss)

            def on_step_end(self, state):
                if state.step == stop:
                    raise KeyboardInterrupt

        try:
            nl.train.fit(model, F.cross_entropy, nl.optim.SGD(model.parameters(), lr=0.1), loader, epochs=3,
                         progress=False, callbacks=[Record()], resume=resume,
                         **(dict(checkpoint_every=1, checkpoint_dir=tmp_path / "ckpt") if stop else {}))
        except KeyboardInterrupt:
            pass
        return losses, [p.data.copy() for p in model.parameters()]

    samplers = {
        "sampler": lambda ds, g: (nl.data.RandomSampler(ds, replacement=True, num_samples=32, generator=g), None),
        "batch_sampler": lambda ds, g: (None, nl.data.BatchSampler(
            nl.data.RandomSampler(ds, generator=g), batch_size=8, drop_last=False)),
    }
    for name, make_sampler in samplers.items():
        whole_losses, whole = run(make_sampler)
        run(make_sampler, stop=3)                   # the newest resume point is step 2, mid-epoch 1
        losses, resumed = run(make_sampler, resume=tmp_path / "ckpt")
        assert losses == whole_losses[2:], name
        assert all(np.array_equal(a, b) for a, b in zip(whole, resumed)), name
        for f in os.listdir(tmp_path / "ckpt"):
            os.remove(tmp_path / "ckpt" / f)
