"""One training process owns a run folder at a time: ``DIR/.lock``.

    with run_lock(out):
        ...  # only this process writes into out

The lock is the kernel's: an exclusive ``flock`` on ``DIR/.lock``, which the kernel drops when the
holding process ends in any way (also SIGKILL, a crash or the machine going down), so a lock can never be
left behind by a dead process, and a recycled PID can never be mistaken for its holder. The file itself
names the holder (host, PID, start time) for the message a second process prints, and is removed when the
block ends (normally, on an error, on Ctrl-C, and on SIGTERM, which the CLI turns into an exception).
A file whose process died without removing it is found unlocked and taken over with a one-line note.
On a file system without ``flock`` (it then fails with an error, not silently) the recorded holder is
checked instead: a live PID on this host, or any holder on another host, refuses.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import SpikeshipError

LOCK_NAME = ".lock"


def _describe(holder: dict) -> str:
    since = holder.get("since")
    return (f"PID {holder.get('pid', '?')} on {holder.get('host', '?')}"
            + (f" (since {since})" if since else ""))


def _read(fd: int) -> dict | None:
    """The recorded holder; ``{}`` for an empty file (being created); None if it is not ours to read."""
    os.lseek(fd, 0, os.SEEK_SET)
    raw = b""
    while chunk := os.read(fd, 4096):
        raw += chunk
    if not raw.strip():
        return {}
    try:
        holder = json.loads(raw)
    except ValueError:
        return None
    return holder if isinstance(holder, dict) else None


def _alive_here(holder: dict) -> bool:
    """Whether the recorded holder may still run: it does if it is on another host (not checkable here)."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder.get("pid", -1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    return True


def _flock(fd: int) -> bool | None:
    """True: locked; False: another process holds it; None: this file system cannot lock."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as e:
        if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return None
        raise


@contextmanager
def run_lock(folder: str | Path) -> Iterator[Path]:
    """Hold ``folder/.lock`` for the block (the folder is created if missing, and removed again if the block
    left it empty); a folder in use by another process is a one-line :class:`SpikeshipError`."""
    from ..files import output_folder

    folder = Path(folder)
    path = folder / LOCK_NAME
    created = not folder.exists()
    output_folder(folder, "a training run")  # a file, or a folder that cannot be written: one line now
    try:
        fd = _acquire(folder, path)
    except OSError as e:
        raise SpikeshipError(f"cannot lock {path}: {e.strerror or e}") from None
    try:
        yield path
    finally:
        try:
            if _same_file(fd, path):
                path.unlink()
        finally:
            os.close(fd)  # drops the flock
        if created:  # a run that failed before writing anything leaves no empty folder behind
            try:
                folder.rmdir()
            except OSError:
                pass


def _same_file(fd: int, path: Path) -> bool:
    try:
        st, fst = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)


def _acquire(folder: Path, path: Path) -> int:
    for _ in range(10):  # only a race with another process's release repeats the loop
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            locked = _flock(fd)
            holder = _read(fd)
            if locked is False:
                raise SpikeshipError(f"{folder} is in use by {_describe(holder or {})}")
            if not _same_file(fd, path):  # the holder removed it between our open and our lock: open anew
                os.close(fd)
                continue
            if holder is None:
                raise SpikeshipError(f"{path} is not a spikeship lock; if no training uses {folder}, remove it")
            if holder and locked is None and _alive_here(holder):
                raise SpikeshipError(f"{folder} is in use by {_describe(holder)}")
            if holder:
                print(f"spikeship: note: {path} was left by {_describe(holder)}, which no longer runs; "
                      f"taking it over", file=sys.stderr)
            me = {"host": socket.gethostname(), "pid": os.getpid(),
                  "since": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": " ".join(sys.argv)}
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps(me) + "\n").encode())
            return fd
        except BaseException:
            os.close(fd)
            raise
    raise SpikeshipError(f"cannot lock {path}: it keeps changing")
