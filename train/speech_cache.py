"""A disk cache of generated arrays: one ``.npz`` file per key, written atomically, built once.

    arrays = load_or_build(path, key, build)   # build() -> dict of numpy arrays

The file holds the arrays and the key it was built for. It is read without a lock when present and
valid. Otherwise the builder takes an exclusive ``fcntl.flock`` on ``<path>.lock`` beside it,
checks again (another process - a parallel test, a torchrun rank - may have built it while this
one waited), builds, and writes through ``spikeship.files.atomic_output`` (a temporary file in the
same folder, renamed over ``path``), so a reader never sees half a file. A file that cannot be read
(truncated, bad CRC, not a zip) or that holds another key is rebuilt, with one line on stderr.
Without fcntl (Windows) there is no lock: two processes may both build, and the last rename wins.
"""

from __future__ import annotations

import os
import sys
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np

from spikeship.errors import SpikeshipError
from spikeship.files import atomic_output

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

KEY_FIELD = "cache_key"


def cache_root() -> Path:
    """``$SPIKESHIP_CACHE``, else ``$XDG_CACHE_HOME/spikeship``, else ``~/.cache/spikeship``."""
    if os.environ.get("SPIKESHIP_CACHE"):
        return Path(os.environ["SPIKESHIP_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "spikeship"


def read(path: Path, key: str) -> tuple[dict | None, str]:
    """(arrays, "") when ``path`` holds ``key``; (None, why) when it is missing, unreadable or
    holds another key (why is "" for a missing file)."""
    if not path.exists():
        return None, ""
    try:
        with np.load(path, allow_pickle=False) as npz:
            stored = str(npz[KEY_FIELD]) if KEY_FIELD in npz.files else None
            if stored != key:
                return None, "stale (built for other parameters or versions)"
            return {k: npz[k] for k in npz.files if k != KEY_FIELD}, ""
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        return None, f"unreadable ({type(e).__name__}: {e})"


@contextmanager
def _exclusive(lock_path: Path):
    if fcntl is None:
        yield
        return
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise SpikeshipError(f"cannot open the cache lock {lock_path}: {e.strerror or e}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # blocks while another process builds
        yield
    finally:
        os.close(fd)  # closing releases the lock


def load_or_build(path: str | Path, key: str, build: Callable[[], dict],
                  what: str = "cache") -> dict:
    """The arrays cached in ``path`` for ``key``, building and writing them first if needed."""
    path = Path(path)
    arrays, _ = read(path, key)
    if arrays is not None:
        return arrays
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SpikeshipError(f"cannot create the cache folder {path.parent}: {e.strerror or e}") from None
    with _exclusive(path.with_name(path.name + ".lock")):
        arrays, why = read(path, key)  # built by another process while we waited?
        if arrays is not None:
            return arrays
        if why:
            print(f"spikeship: {what} {path} is {why}; rebuilding it", file=sys.stderr)
        arrays = build()
        if KEY_FIELD in arrays:
            raise ValueError(f"{KEY_FIELD} is reserved")
        with atomic_output(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays, **{KEY_FIELD: np.array(key)})
        return arrays
