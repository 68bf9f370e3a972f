"""One run folder, one training process; a folder that holds a run is resumed, not overwritten; a run is
found by its contents, not by how its folder is spelled; a finished run can be extended.

The CLI runs in subprocesses (``python -m spikeship train``) on a tiny SHD file in tonic's real layout;
a long run (``--epochs`` far more than it will get) stands for a training job that another one collides
with. Every process started here is killed by PID in the teardown.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tonic_files import write_small_shd

from toy_training import _cfg, _data

from spikeship.train.checkpoint import load_checkpoint
from spikeship.train.loop import train

FOREVER = "100000"  # epochs: the run goes on until the test stops it


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_small_shd(tmp_path_factory.mktemp("data"))


@pytest.fixture
def spikeship(data_dir):
    """``spikeship("train", ...)`` starts the CLI (data flags added) and returns the Popen; killed at teardown."""
    procs: list[subprocess.Popen] = []

    def start(*argv: str, cwd: Path, data: str | None = None) -> subprocess.Popen:
        """``data``: the --data-dir to give (default: the module's data folder, absolute)."""
        cmd = [sys.executable, "-m", "spikeship", *argv, "--quiet", "--dataset", "shd",
               "--data-dir", data or str(data_dir), "--time-steps", "8"]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}  # leave a core to the other process of a test
        procs.append(subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
        return procs[-1]

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.communicate(timeout=30)


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err.strip()


def _wait_for(condition, what: str, proc: subprocess.Popen, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        assert proc.poll() is None, f"ended before {what}: {proc.communicate()}"
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s:.0f} s: {what}")


def test_one_folder_one_training_process(tmp_path, spikeship):
    run = tmp_path / "run"
    first = spikeship("train", "--out", str(run), "--epochs", FOREVER, cwd=tmp_path)
    _wait_for(lambda: (run / "model.pt").is_file(), "the first epoch's checkpoint", first)
    lock = (run / ".lock").read_text()
    assert f'"pid": {first.pid}' in lock and socket.gethostname() in lock

    # a second training into the folder is refused while the first one runs (resumed or not: the lock is
    # taken before anything else)
    code, err = _finish(spikeship("train", "--out", str(run), "--resume", cwd=tmp_path))
    assert code == 2
    assert err.startswith(f"spikeship: {run} is in use by PID {first.pid} on {socket.gethostname()} (since ")
    assert "\n" not in err
    # SIGTERM ends the first one cleanly, and it unlocks the folder
    first.send_signal(signal.SIGTERM)
    code, err = _finish(first)
    assert code == 143 and err.splitlines()[-1] == "spikeship: terminated"
    assert not (run / ".lock").exists()
    # the folder holds a run now: a new training there is refused before it does anything
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    code, err = _finish(spikeship("train", "--out", str(run), "--epochs", "1", cwd=tmp_path))
    assert code == 2
    assert err == f"spikeship: {run} already holds a training run; use --resume to continue it or another --out"
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before


def test_killed_run_resumes_from_a_copy_elsewhere_and_extends(tmp_path, data_dir, spikeship):
    """A run killed outright (its .lock stays behind) is copied to another folder and resumed from another
    working directory, its folder and data folder spelled differently, with more epochs than it was started
    with (it was started with far more than it got; --epochs is its new total)."""
    (tmp_path / "data").symlink_to(data_dir, target_is_directory=True)
    first = spikeship("train", "--out", "rs", "--epochs", FOREVER, cwd=tmp_path, data="data")
    _wait_for(lambda: (tmp_path / "rs" / "model.pt").is_file(), "the first epoch's checkpoint", first)
    first.kill()
    first.wait(timeout=30)
    assert (tmp_path / "rs" / ".lock").is_file()  # SIGKILL: nothing of the process ran
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copytree(tmp_path / "rs", elsewhere / "copy")
    done = load_checkpoint(elsewhere / "copy" / "model.pt").epoch

    code, err = _finish(spikeship("train", "--resume", "--out", "./copy/", "--epochs", str(done + 1),
                                  cwd=elsewhere, data="../data/"))
    assert code == 0, err
    assert err.startswith(f"spikeship: note: copy/.lock was left by PID {first.pid} on {socket.gethostname()} "
                          f"(since ")
    assert err.endswith("), which no longer runs; taking it over") and "\n" not in err
    ckpt = load_checkpoint(elsewhere / "copy" / "model.pt")
    assert ckpt.epoch == done + 1 and [r["epoch"] for r in ckpt.history] == list(range(1, done + 2))
    assert not (elsewhere / "copy" / ".lock").exists()


def test_extended_run_takes_the_longer_schedules_rates_from_where_it_stopped(tmp_path):
    """--resume --epochs 3 after 2 epochs: epoch 3 trains at exactly the learning rate of a run planned for 3
    epochs from the start; epochs 1 and 2 kept those of the 2-epoch plan, so the weights differ."""
    data = _data(n_train=32, n_test=16)
    train(_cfg(tmp_path / "a", epochs=3), data=data)
    short = train(_cfg(tmp_path / "b", epochs=2), data=data)
    extended = train(_cfg(tmp_path / "b", epochs=3, resume=True), data=data)
    full = load_checkpoint(tmp_path / "a" / "run" / "model.pt")
    ext = load_checkpoint(tmp_path / "b" / "run" / "model.pt")
    lrs_full, lrs_ext = [r["lr"] for r in full.history], [r["lr"] for r in ext.history]
    assert lrs_ext[2] == lrs_full[2]  # bit for bit
    lr = _cfg(tmp_path).lr  # cosine: epoch e of n trains at lr (1 + cos(pi (e - 1) / n)) / 2
    assert lrs_full == pytest.approx([lr, 0.75 * lr, 0.25 * lr], rel=1e-12)
    assert lrs_ext == pytest.approx([lr, 0.5 * lr, 0.25 * lr], rel=1e-12)
    assert short["epochs"] == 2 and extended["epochs"] == 3 and ext.epoch == 3
    assert not all(torch.equal(full.state_dict[k], ext.state_dict[k]) for k in full.state_dict)
