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
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder (same suffix, so writers that go by the suffix, such as
    matplotlib, still work). When the block ends normally the file is synced, given the mode ``open()``
    would give (mkstemp makes 0600) and renamed over ``path``; on any error it is removed. A missing folder
    or an OSError is one-line :class:`SpikeshipError`."""
    path = Path(path)
    if not path.parent.is_dir():
        raise SpikeshipError(f"output folder does not exist: {path.parent}")
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix or ".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            yield tmp
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.chmod(tmp, _default_mode())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as e:
        raise SpikeshipError(f"cannot write {path}: {e.strerror or e}") from None


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode())


def write_json(path: str | Path, obj, **dumps_kwargs) -> Path:
    dumps_kwargs.setdefault("indent", 1)
    return write_text(path, json.dumps(obj, **dumps_kwargs) + "\n")
