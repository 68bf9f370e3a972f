"""Writers for tiny data sets in the real on-disk formats tonic reads (shared by the data tests)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def write_nmnist_bin(path: Path, x, y, t_us, p) -> None:
    """N-MNIST's 5-byte events: x, y, then p (bit 7) and a 23-bit timestamp in microseconds."""
    x, y, t, p = (np.asarray(v, dtype=np.uint32) for v in (x, y, t_us, p))
    assert t.max(initial=0) < 2**23
    raw = np.empty((len(x), 5), dtype=np.uint8)
    raw[:, 0], raw[:, 1] = x, y
    raw[:, 2] = (p << 7) | ((t >> 16) & 127)
    raw[:, 3], raw[:, 4] = (t >> 8) & 255, t & 255
    path.parent.mkdir(parents=True, exist_ok=True)
    raw.tofile(path)


def write_dvsgesture_npy(path: Path, x, y, p, t_ms) -> None:
    """tonic's preprocessed DVSGesture sample: an N x 4 int array of x, y, p, t in milliseconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.stack([x, y, p, t_ms], axis=1).astype(np.int64))


def write_shd_h5(path: Path, times_s: list, units: list, labels, keys=None) -> None:
    """SHD's HDF5 file: ragged spikes/times (seconds) and spikes/units, labels, extra/keys, speaker."""
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = keys if keys is not None else [f"word-{i}".encode() for i in range(20)]
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (len(times_s),), dtype=h5py.vlen_dtype(np.float32))
        unit = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u) in enumerate(zip(times_s, units)):
            times[i] = np.asarray(t, dtype=np.float32)
            unit[i] = np.asarray(u, dtype=np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint8))
        f.create_dataset("extra/keys", data=np.array(keys))
        f.create_dataset("extra/speaker", data=np.zeros(len(labels), dtype=np.uint8))


def write_small_shd(folder: Path, train: int = 16, test: int = 8) -> Path:
    """A small SHD in ``folder`` (60 random spikes over 0.5 s per sample, 4 classes); returns ``folder``."""
    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("test", test)):
        times = [np.sort(rng.uniform(0, 0.5, 60)) for _ in range(n)]
        units = [rng.integers(0, 700, 60) for _ in range(n)]
        write_shd_h5(folder / "SHD" / f"shd_{split}.h5", times, units, np.arange(n) % 4)
    return folder


def forbid_downloads(monkeypatch) -> list:
    """Make every download path tonic has fail loudly; returns the list of attempted URLs."""
    import urllib.request

    import tonic.dataset
    import tonic.download_utils

    attempts: list = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"a download was attempted: {args}")

    monkeypatch.setattr(tonic.dataset, "download_and_extract_archive", refuse)
    monkeypatch.setattr(tonic.download_utils, "download_and_extract_archive", refuse)
    monkeypatch.setattr(tonic.download_utils, "download_url", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return attempts
