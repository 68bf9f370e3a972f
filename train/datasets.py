"""The data-set registry: one entry per data set, everything that differs between them in one place.

An entry says how to open a split (its folder check included), how long a sample lasts, whether the source
draws its own augmentation, and the one line ``--help`` shows. ``train.data.load_dataset`` frames every entry the
same way; the CLI lists what :data:`DATASETS` holds. Adding a data set is one entry here (and its module).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from spikeship.errors import SpikeshipError

SUBSET_SEED = 7_211  # max_samples subsets do not follow the data seed


def subset_indices(n: int, max_samples: int | None) -> np.ndarray:
    """All indices, or a fixed pseudo-random subset of ``max_samples`` of them, sorted."""
    if max_samples is None or max_samples >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(SUBSET_SEED).permutation(n)[:max_samples])


@dataclass(frozen=True)
class Opened:
    """A split, opened: ``source[positions[k]]`` is ``(events, label)`` of the sample at ``indices[k]`` of the
    split; ``sensor_size`` is tonic's ``(W, H, P)``."""

    source: object
    positions: np.ndarray
    indices: np.ndarray
    sensor_size: tuple[int, int, int]
    class_names: tuple[str, ...]


@dataclass(frozen=True)
class DatasetEntry:
    """One data set. ``open(cfg)`` returns the split ``cfg`` names (one-line errors for a missing or malformed
    folder). ``duration_us``: every sample lasts this long (its window is cut into T bins), or None (each
    sample's own span). ``own_augmentation``: the source redraws its samples per (seed, epoch) itself;
    otherwise ``augment`` shifts and jitters the events (``train.data.augment_events``). ``built_in``: made
    on the machine, takes no ``--data-dir``."""

    name: str
    help: str
    open: Callable[[object], Opened]
    duration_us: int | None = None
    own_augmentation: bool = False
    built_in: bool = False


def _open_event_digits(cfg) -> Opened:
    from . import event_digits

    if cfg.downsample != 1:
        raise SpikeshipError("event-digits is 34x34; sensor downsampling is for the tonic sets")
    indices = subset_indices(event_digits.split_size(cfg.split), cfg.max_samples)
    source = event_digits.EventDigits(cfg.split, cfg.seed, cfg.augment, cfg.epoch, subset=indices)
    return Opened(source, np.arange(len(indices)), indices, event_digits.SENSOR_SIZE, event_digits.CLASS_NAMES)


def _open_event_speech(cfg) -> Opened:
    from . import event_speech

    if cfg.downsample != 1:
        raise SpikeshipError("event-speech has 64 cochlea channels; sensor downsampling is for the tonic sets")
    config = event_speech.DEFAULT_CONFIG
    indices = subset_indices(event_speech.split_size(cfg.split, config), cfg.max_samples)
    # seed 0: the set itself (its speakers) is fixed; augmentation draws per (epoch, sample)
    source = event_speech.EventSpeech(cfg.split, 0, cfg.augment, cfg.epoch, subset=indices, config=config)
    return Opened(source, np.arange(len(indices)), indices, tuple(source.sensor_size), event_speech.CLASS_NAMES)


def _tonic_opener(name: str) -> Callable[[object], Opened]:
    def open_split(cfg) -> Opened:
        from .tonic_sets import class_names, open_tonic_set

        source = open_tonic_set(name, cfg.data_dir, cfg.split)
        if len(source) == 0:
            raise SpikeshipError(f"{name}: the {cfg.split} split is empty")
        indices = subset_indices(len(source), cfg.max_samples)
        return Opened(source, indices, indices, tuple(source.sensor_size), class_names(name, source))

    return open_split


def _entries() -> dict[str, DatasetEntry]:
    from . import event_digits, event_speech
    from .tonic_sets import TONIC_SETS

    entries = [DatasetEntry("event-digits", "built in: sklearn's 1,797 digits seen by a simulated DVS (2x34x34)",
                            _open_event_digits, duration_us=event_digits.DURATION_US, own_augmentation=True,
                            built_in=True),
               DatasetEntry("event-speech", "built in: spoken digits zero-nine in English and German by synthetic "
                            "speakers (eSpeak NG, the speech extra), 64 cochlea channels (64x1x1), 1 s",
                            _open_event_speech, duration_us=event_speech.DURATION_US, own_augmentation=True,
                            built_in=True)]
    entries += [DatasetEntry(name, f"tonic {spec.tonic_class} from --data-dir ({spec.layout})", _tonic_opener(name))
                for name, spec in TONIC_SETS.items()]
    return {e.name: e for e in entries}


#: data set name -> entry (the order is the order ``--help`` lists them in)
DATASETS: dict[str, DatasetEntry] = _entries()


def entry(name: str) -> DatasetEntry:
    try:
        return DATASETS[name]
    except KeyError:
        raise SpikeshipError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}") from None
