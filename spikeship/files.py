"""Writing output files: to a temporary name beside the target, then renamed, so nothing half-written is
ever left under the target's name. Every stage writes through here."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import SpikeshipError


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_outputs(*paths: str | Path) -> Iterator[tuple[Path, ...]]:
    """Yield one temporary path per target, each in its target's folder (same suffix, so writers that go by
    the suffix, such as matplotlib, still work). When the block ends normally every file is synced, given the
    mode ``open()`` would give (mkstemp makes 0600) and renamed over its target, all after all were written;
    on any error every temporary file is removed and no target is touched. A missing folder, a target that is
    a folder, or an OSError is a one-line :class:`SpikeshipError`."""
    paths = tuple(Path(p) for p in paths)
    for path in paths:
        if not path.parent.is_dir():
            raise SpikeshipError(f"output folder does not exist: {path.parent}")
        if path.is_dir():
            raise SpikeshipError(f"cannot write {path}: it is a folder")
    temps: list[Path] = []
    current = paths[0] if paths else None
    try:
        for path in paths:
            current = path
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix or ".tmp", dir=path.parent)
            os.close(fd)
            temps.append(Path(name))
        try:
            yield tuple(temps)
            for tmp, path in zip(temps, paths):
                current = path
                with open(tmp, "rb") as f:
                    os.fsync(f.fileno())
                os.chmod(tmp, _default_mode())
            for tmp, path in zip(temps, paths):
                current = path
                os.replace(tmp, path)
        finally:
            for tmp in temps:
                tmp.unlink(missing_ok=True)
    except OSError as e:
        raise SpikeshipError(f"cannot write {current}: {e.strerror or e}") from None


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """:func:`atomic_outputs` for one file."""
    with atomic_outputs(path) as (tmp,):
        yield tmp


def check_writable(*paths: str | Path) -> None:
    """Fail now, with the error :func:`atomic_outputs` would give later, when a target cannot be written:
    its folder is missing, it is a folder, or no file can be created beside it. Writes nothing."""
    for path in paths:
        path = Path(path)
        if not path.parent.is_dir():
            raise SpikeshipError(f"output folder does not exist: {path.parent}")
        if path.is_dir():
            raise SpikeshipError(f"cannot write {path}: it is a folder")
        try:
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".check", dir=path.parent)
        except OSError as e:
            raise SpikeshipError(f"cannot write {path}: {e.strerror or e}") from None
        os.close(fd)
        os.unlink(name)


def output_folder(path: str | Path, what: str = "the output") -> Path:
    """``path`` as a folder the caller may write into: created if missing (with its parents); a path that is a
    file, or a folder that cannot be created or written, is one line naming the cause."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SpikeshipError(f"--out {path} is a file; {what} needs a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SpikeshipError(f"cannot create the folder {path}: {e.strerror or e}") from None
    try:
        fd, name = tempfile.mkstemp(prefix=".write-check.", dir=path)
    except OSError as e:
        raise SpikeshipError(f"cannot write into the folder {path}: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(name)
    return path


@contextmanager
def new_output_folder(path: str | Path, what: str = "the output") -> Iterator[Path]:
    """:func:`output_folder` for a stage that may still fail after making it: if the block raises (a bad input
    found later, Ctrl-C), the folders this call created are removed again while they are still empty."""
    path = Path(path)
    created = [p for p in (path, *path.parents) if not p.exists()]  # deepest first
    output_folder(path, what)
    try:
        yield path
    except BaseException:
        for folder in created:
            try:
                folder.rmdir()
            except OSError:  # not empty (something was written) or already gone: leave it and its parents
                break
        raise


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode())


def write_json(path: str | Path, obj, **dumps_kwargs) -> Path:
    dumps_kwargs.setdefault("indent", 1)
    return write_text(path, json.dumps(obj, **dumps_kwargs) + "\n")
