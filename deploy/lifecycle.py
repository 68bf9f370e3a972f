"""Lava's processes end with the run that started them, and take that run's shared memory with them.

How Lava 0.10 starts a network (``create_runtime`` -> ``Runtime.initialize``): it forks, with
multiprocessing, first the server of a ``multiprocessing.managers.SharedMemoryManager`` (Lava's
``MultiProcessing.start``), then creates every channel as a POSIX shared-memory segment
(``/dev/shm/psm_*``, made by the starting process and tracked by that server, which unlinks them at
``stop()``), then forks one ``SystemProcess`` (an ``mp.Process``) per Python process model and one per
runtime service. Each of them, and the starting process itself, then runs threads of Lava's channel ports.
If the starting process is killed (SIGKILL: nothing of it runs), these processes are re-parented to PID 1,
wait on their channels forever and keep the segments.

:class:`ChildGuard` makes each of them notice that by itself. While one run starts its processes (and only
then), the guard sits in multiprocessing's after-fork registry (``multiprocessing.util.register_after_fork``:
multiprocessing runs its entries in every child it starts, before the child's target; the registry holds
the guard weakly). Nothing in Lava is replaced or patched: its code runs unchanged, and the hook is ours
alone. In each child, before Lava's code runs, it sets Ctrl-C to be ignored (the terminal sends it to the
whole process group; the parent stops the network) and SIGTERM to its default action (so ``terminate()``
ends the child, instead of the CLI's handler, copied by fork, raising in Lava's code), then calls
:func:`watch_parent`, whose thread, once the parent process is gone, unlinks exactly this run's segments
(never by pattern), removes the run's temporary folder and exits the child.

:func:`watch_parent` asks Linux for :data:`PARENT_DEATH_SIGNAL` when the parent dies
(``prctl(PR_SET_PDEATHSIG)``) and takes it in a thread of its own with ``sigwait``, the signal being
blocked in every other thread. Two facts make that necessary:

- the kernel sends the signal when the parent *thread* that forked the child exits (and again at each
  re-parenting), so the watcher acts only if ``os.getppid()`` changed (the parent process is gone), and
  ignores a thread of a living parent ending;
- a process-directed signal goes to any thread that does not block it; a Python handler runs only in the
  main thread, and only when that thread returns to the interpreter. Measured: about one child in twenty
  got it in one of Lava's port threads while its main thread kept waiting on a channel, so it never ran.

:func:`signals_blocked` applies the second fact to the process that starts Lava: Ctrl-C, SIGTERM and the
parent-death signal are blocked while Lava starts its threads there, so they reach only the thread that
handles them, at once, not after the main thread's current wait (a whole chunk of steps).

Which segments: the names Lava holds (``smm._shared_memory_handles``) as the child's copy of the parent's
memory has them (Lava builds every channel before it forks a model or service process, so those children
know all of them), and the names the parent writes to ``NAMES_FILE`` in the run's folder once the network
is started. Removing a segment also tells Python's resource tracker (the process that would otherwise
unlink leftovers, with a warning, once every process of the run has exited), and only the process whose
unlink succeeded tells it, so several children cleaning at once never report a name twice.

Linux only (``prctl``); elsewhere :func:`set_parent_death_signal` returns False and no watcher starts.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import sys
import threading
from contextlib import contextmanager
from multiprocessing import util as mp_util
from pathlib import Path
from typing import Callable, Iterable, Iterator

#: what a guarded child receives when its parent dies; SIGHUP ("death of the controlling process") is
#: otherwise only sent by a closing terminal, which the watcher ignores while the parent lives
PARENT_DEATH_SIGNAL = signal.SIGHUP
#: the signals a process that runs Lava handles itself: Ctrl-C, SIGTERM, its parent's death
HANDLED_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, PARENT_DEATH_SIGNAL})
#: the run folder's record of its shared-memory segments, one name per line
NAMES_FILE = "shm-segments"
#: exit status of a child that ended because its parent died
EXIT_PARENT_DIED = 128 + PARENT_DEATH_SIGNAL

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def set_parent_death_signal(sig: int) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent (thread) exits; False off Linux."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


@contextmanager
def signals_blocked(signals=HANDLED_SIGNALS) -> Iterator[None]:
    """Block ``signals`` in this thread for the block. Threads started meanwhile (Lava's port threads) and
    processes forked meanwhile keep them blocked: the kernel then delivers them only to a thread that
    takes them (the main thread's Python handler, the watcher's ``sigwait``). One that arrives during the
    block is delivered when it ends."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def watch_parent(parent_pid: int, on_death: Callable[[], None]) -> bool:
    """In a freshly started child of ``parent_pid``, before it starts threads of its own: call ``on_death``,
    in a thread of its own, once that process has gone (right away, in this thread, if it already has).
    Returns False where the kernel cannot tell (not Linux)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {PARENT_DEATH_SIGNAL})  # here and in every thread started later
    if not set_parent_death_signal(PARENT_DEATH_SIGNAL):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {PARENT_DEATH_SIGNAL})
        return False
    if os.getppid() != parent_pid:  # it died before the line above
        on_death()
        return True

    def watch() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)  # Ctrl-C and SIGTERM are the main thread's
        while True:
            signal.sigwait({PARENT_DEATH_SIGNAL})
            if os.getppid() != parent_pid:  # re-parented: the parent process is gone, not just one of its threads
                on_death()
                return

    threading.Thread(target=watch, name="spikeship-parent-watch", daemon=True).start()
    return True


def remove_segments(names: Iterable[str]) -> list[str]:
    """Unlink the POSIX shared-memory segments ``names`` (exactly these; one already gone is skipped) and
    tell Python's resource tracker. Returns the names this call removed. Safe to run in several processes
    at once: the kernel lets exactly one unlink of a name succeed, and only that process tells the tracker."""
    import _posixshmem  # CPython's shm_open/shm_unlink binding, what multiprocessing.shared_memory uses
    from multiprocessing import resource_tracker

    removed = []
    for name in sorted(set(names)):
        path = name if name.startswith("/") else "/" + name
        try:
            _posixshmem.shm_unlink(path)
        except FileNotFoundError:
            continue
        removed.append(name)
        try:
            resource_tracker.unregister(path, "shared_memory")
        except Exception:  # noqa: BLE001 - the tracker is gone: nothing of it is left to tell
            pass
    return removed


def record_segments(folder: str | Path, names: Iterable[str]) -> None:
    """Write the run's segment names to ``folder/NAMES_FILE`` (renamed into place, never half-written)."""
    folder = Path(folder)
    tmp = folder / f".{NAMES_FILE}.tmp"
    tmp.write_text("".join(f"{n}\n" for n in names))
    os.replace(tmp, folder / NAMES_FILE)


def recorded_segments(folder: str | Path) -> list[str]:
    try:
        return (Path(folder) / NAMES_FILE).read_text().split()
    except OSError:
        return []


class ChildGuard:
    """While registered (``with ChildGuard(folder, names):`` around the start of a run's processes), every
    multiprocessing child started by this process dies with it and then removes the run's segments and
    ``folder``. ``names``: called in the child (in its watcher thread), returns the segment names it knows."""

    def __init__(self, folder: str | Path, names: Callable[[], Iterable[str]]):
        self.folder = Path(folder)
        self.names = names
        self.parent_pid = os.getpid()
        self._active = False
        self._armed_in: int | None = None

    def __enter__(self) -> "ChildGuard":
        self._active = True
        mp_util.register_after_fork(self, ChildGuard._in_child)  # held weakly: gone with this object
        return self

    def __exit__(self, *exc) -> None:
        self._active = False  # children started from now on are not this run's

    def _in_child(self) -> None:
        if not self._active or self._armed_in is not None:  # not this run's, or a grandchild (Lava starts none)
            return
        self._armed_in = os.getpid()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})  # see signals_blocked
        watch_parent(self.parent_pid, self._parent_died)

    def _parent_died(self) -> None:
        try:
            names = set(recorded_segments(self.folder))
            try:
                names.update(self.names())
            except Exception:  # noqa: BLE001 - the file's names are still removed
                pass
            remove_segments(names)
            shutil.rmtree(self.folder, ignore_errors=True)
        finally:
            os._exit(EXIT_PARENT_DIED)
