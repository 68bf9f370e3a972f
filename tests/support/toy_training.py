"""A tiny learnable data set and a training config for it, shared by the training-loop tests."""

from __future__ import annotations

import numpy as np

from spikeship.train.data import FramedDataset
from spikeship.train.loop import TrainConfig

T = 6


def _data(n_train=48, n_test=24, classes=3, seed=0):
    """A tiny learnable data set: class c fires mostly in its own third of an 8x8 sensor."""
    rng = np.random.default_rng(seed)

    def make(n):
        labels = np.arange(n) % classes
        spikes = (rng.random((n, 2, 8, 8, T)) < 0.05).astype(np.uint8)
        for i, c in enumerate(labels):
            spikes[i, :, :, c * 2:c * 2 + 3, :] |= (rng.random((2, 8, 3, T)) < 0.5).astype(np.uint8)
        return spikes, labels

    names = tuple(str(c) for c in range(classes))
    tr, te = make(n_train), make(n_test)
    return (FramedDataset("toy", "train", tr[0], tr[1], (8, 8, 2), names, 1000, np.arange(n_train)),
            FramedDataset("toy", "test", te[0], te[1], (8, 8, 2), names, 1000, np.arange(n_test)))


def _cfg(tmp_path, **kw):
    base = dict(dataset="event-digits", time_steps=T, epochs=3, batch_size=16, lr=0.01, method="msg",
                decode="two", seed=3, out=str(tmp_path / "run"), progress=False)
    return TrainConfig(**{**base, **kw})
