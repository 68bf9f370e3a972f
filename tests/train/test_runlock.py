"""train/runlock.py: who holds a run folder, what a second process is told, what a dead holder leaves."""

import json
import multiprocessing as mp
import os
import socket
import time

import pytest

from spikeship.errors import SpikeshipError
from spikeship.train.runlock import run_lock

ctx = mp.get_context("fork")


def _hold(folder, ready):
    with run_lock(folder):
        ready.set()
        time.sleep(60)


def test_a_live_holder_refuses_and_a_dead_ones_lock_is_taken_over(tmp_path, capsys):
    ready = ctx.Event()
    holder = ctx.Process(target=_hold, args=(tmp_path, ready))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(SpikeshipError) as e:
            with run_lock(tmp_path):
                pass
        assert str(e.value).startswith(f"{tmp_path} is in use by PID {holder.pid} on {socket.gethostname()} (since ")
    finally:
        holder.kill()  # like SIGKILL in real life: the file stays, the kernel drops the lock
        holder.join(10)
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == holder.pid
    with run_lock(tmp_path) as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()
    err = capsys.readouterr().err
    assert err.startswith(f"spikeship: note: {tmp_path}/.lock was left by PID {holder.pid} on "
                          f"{socket.gethostname()} (since ")
    assert err.endswith("), which no longer runs; taking it over\n") and err.count("\n") == 1
    assert not (tmp_path / ".lock").exists()


def test_released_on_error_and_a_new_empty_folder_is_not_left(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        with run_lock(run):
            assert (run / ".lock").is_file()
            raise KeyboardInterrupt
    assert not run.exists()
    run.mkdir()
    (run / "model.pt").write_bytes(b"x")
    with pytest.raises(ValueError):
        with run_lock(run):
            raise ValueError
    assert sorted(p.name for p in run.iterdir()) == ["model.pt"]


def test_a_file_that_is_not_a_lock_is_refused(tmp_path):
    (tmp_path / ".lock").write_text("my notes")
    with pytest.raises(SpikeshipError, match=r"\.lock is not a spikeship lock; if no training uses .*, remove it"):
        with run_lock(tmp_path):
            pass
    assert (tmp_path / ".lock").read_text() == "my notes"
