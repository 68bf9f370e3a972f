"""deploy/lifecycle.py without Lava: a child notices its parent's death by itself (not a parent thread's
end), removes exactly the named shared-memory segments and the run folder, and exits.

Each test forks a stand-in "parent" process P, which starts the children the way Lava does (multiprocessing,
fork); the test then kills P with SIGKILL. PIDs travel through files; whatever survives is killed by PID.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from multiprocessing import shared_memory
from pathlib import Path

import pytest

from spikeship.deploy import lifecycle

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")

ctx = mp.get_context("fork")


def _wait_for(condition, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in "ZX"


def _kill(*pids: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _sleep_forever() -> None:
    while True:
        time.sleep(60)


# --- a child whose parent thread ends, and then whose parent process dies ---

def _watching_child(folder: Path, parent_pid: int) -> None:
    def parent_died() -> None:
        (folder / "parent-died").write_text("1")
        os._exit(7)

    lifecycle.watch_parent(parent_pid, parent_died)
    (folder / "child").write_text(str(os.getpid()))
    _sleep_forever()


def _parent_forking_from_a_thread(folder: Path) -> None:
    def fork_and_end() -> None:  # ends once the child watches: the kernel then signals the child
        ctx.Process(target=_watching_child, args=(folder, os.getpid())).start()
        _wait_for(lambda: (folder / "child").is_file())

    thread = threading.Thread(target=fork_and_end)
    thread.start()
    thread.join()
    (folder / "thread-ended").write_text("1")
    _sleep_forever()


def test_a_child_outlives_its_parent_thread_and_not_its_parent(tmp_path):
    parent = ctx.Process(target=_parent_forking_from_a_thread, args=(tmp_path,))
    parent.start()
    child = None
    try:
        assert _wait_for(lambda: (tmp_path / "child").is_file() and (tmp_path / "thread-ended").is_file())
        child = int((tmp_path / "child").read_text())
        # the thread that forked the child has ended: the kernel sent the child its parent-death signal
        # (PR_SET_PDEATHSIG follows the thread), and the child kept running because its parent lives
        time.sleep(0.5)
        assert _alive(child) and not (tmp_path / "parent-died").exists()
        parent.kill()
        assert _wait_for(lambda: not _alive(child)), "the child outlived its parent"
        assert (tmp_path / "parent-died").is_file()
    finally:
        _kill(parent.pid, *([child] if child else []))
        parent.join(5)


# --- a run's children under ChildGuard remove exactly its segments and its folder ---

def _guarded_parent(folder: Path, run: Path, names: list[str]) -> None:
    with lifecycle.ChildGuard(run, lambda: names[:1]):  # the children know the first name from memory ...
        children = [ctx.Process(target=_report_signals, args=(folder, i)) for i in range(3)]
        for c in children:
            c.start()
    lifecycle.record_segments(run, names[1:])  # ... and the rest from the run folder's record
    late = ctx.Process(target=_sleep_forever)  # started after the guard: not the run's, not guarded
    late.start()
    (folder / "pids").write_text(" ".join(str(p.pid) for p in children + [late]))
    _sleep_forever()


def _report_signals(folder: Path, i: int) -> None:
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    (folder / f"signals{i}").write_text(" ".join([
        str(signal.getsignal(signal.SIGINT) is signal.SIG_IGN),
        str(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL),
        str(lifecycle.PARENT_DEATH_SIGNAL in blocked)]))
    _sleep_forever()


def test_children_of_a_killed_run_remove_its_segments_and_folder_and_exit(tmp_path):
    segments = [shared_memory.SharedMemory(create=True, size=64) for _ in range(3)]
    bystander = shared_memory.SharedMemory(create=True, size=64)  # not the run's: must stay
    run = tmp_path / "run"
    run.mkdir()
    (run / "input.npy").write_bytes(b"x")
    parent = ctx.Process(target=_guarded_parent, args=(tmp_path, run, [s.name for s in segments]))
    parent.start()
    pids: list[int] = []
    try:
        assert _wait_for(lambda: (tmp_path / "pids").is_file() and len(list(tmp_path.glob("signals*"))) == 3)
        pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
        children, late = pids[:3], pids[3]
        for i in range(3):  # Ctrl-C ignored, SIGTERM default, the parent-death signal left to the watcher
            assert (tmp_path / f"signals{i}").read_text() == "True True True"
        parent.kill()
        assert _wait_for(lambda: not any(map(_alive, children))), "a child outlived its parent"
        assert not run.exists()
        for s in segments:
            assert not Path("/dev/shm", s.name).exists(), s.name
        assert Path("/dev/shm", bystander.name).exists()
        assert _alive(late)  # a child started outside the guard is left alone
    finally:
        _kill(parent.pid, *pids)
        parent.join(5)
        for s in segments + [bystander]:
            s.close()
        lifecycle.remove_segments([bystander.name] + [s.name for s in segments])


def test_remove_segments_removes_exactly_the_named_ones():
    a, b = (shared_memory.SharedMemory(create=True, size=16) for _ in range(2))
    try:
        assert lifecycle.remove_segments([a.name, "psm_spikeship_no_such_segment"]) == [a.name]
        assert not Path("/dev/shm", a.name).exists() and Path("/dev/shm", b.name).exists()
        assert lifecycle.remove_segments([a.name]) == []  # already gone: skipped
    finally:
        a.close()
        b.close()
        b.unlink()
