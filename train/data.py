"""The one data interface: every data set becomes binary spike frames (N, C, H, W, T).

    ds = load_dataset("event-digits", time_steps=16, split="train")
    ds.frames        # torch.float32 (N, C, H, W, T), values 0.0 or 1.0
    ds.labels        # torch.int64 (N,)
    ds.input_shape   # (C, H, W): what the network's first layer takes
    ds[i]            # (frame (C, H, W, T) float32, label int): a torch Dataset for DataLoader

Conventions (the contract with model, export and sim):

- C is the polarity channel (OFF = 0, ON = 1), H the sensor's y, W its x; tonic's ``ToFrame``
  gives (T, P, H, W) and the time axis is moved last (slayer's NCHWT).
- SHD (700 cochlea channels, no polarity) is shaped (C=700, H=1, W=1): each channel is a feature,
  so flattening in C-H-W or W-H-C order gives the same vector.
- Frames are clipped to 0/1: several events of one pixel in one bin make one spike. The networks
  are binary-spike end to end (Lava's LIF input is binary); counts would be graded spikes.
- Time bins are fixed windows from t = 0 (tonic ``ToFrame(time_window=w, start_time=0,
  end_time=T*w)``), not ``n_time_bins`` (which spans first-to-last event of each sample and drops
  the events at the last timestamp). The window is ``ceil(duration / T)`` microseconds. The
  duration is ``duration_us`` when given (later events are dropped), else event-digits' own
  300 ms, else (tonic sets, recordings of varying length) each sample's last event + 1 us, so
  every sample is cut into T bins from t = 0 and no event is lost.
- ``max_samples`` takes a fixed pseudo-random subset (the same for every seed), in index order.
- ``augment=True`` draws a fresh variant of every sample per (seed, epoch): event-digits redraws
  its saccades and timing jitter; the tonic sets get a random shift of up to 2 pixels (2-D
  sensors) and 1 ms timing jitter. Call ``load_dataset(..., augment=True, epoch=e)`` each epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spikeship.errors import SpikeshipError
from spikeship.train.datasets import DATASETS, entry, subset_indices

AUGMENT_SHIFT_PX = 2
AUGMENT_JITTER_US = 1_000.0


@dataclass(frozen=True)
class DataConfig:
    """Which data set and how to frame it; validated on construction."""

    name: str = "event-digits"
    data_dir: str | None = None
    time_steps: int = 16
    split: str = "train"
    augment: bool = False
    seed: int = 0
    epoch: int = 0
    downsample: int = 1  # spatial factor for 2-D sensors (dvsgesture 128x128 -> 32x32 with 4)
    duration_us: int | None = None
    max_samples: int | None = None

    def __post_init__(self):
        if entry(self.name).built_in and self.data_dir is not None:
            raise SpikeshipError(f"{self.name} is built in; it takes no --data-dir")
        if self.split not in ("train", "test"):
            raise SpikeshipError(f"split must be 'train' or 'test', not {self.split!r}")
        if not (isinstance(self.time_steps, int) and self.time_steps >= 1):
            raise SpikeshipError(f"time steps must be a positive integer, not {self.time_steps!r}")
        if not (isinstance(self.downsample, int) and self.downsample >= 1):
            raise SpikeshipError(f"sensor downsample must be a positive integer, not {self.downsample!r}")
        if self.duration_us is not None and self.duration_us < self.time_steps:
            raise SpikeshipError(f"duration {self.duration_us} us is shorter than {self.time_steps} steps")
        if self.max_samples is not None and self.max_samples < 1:
            raise SpikeshipError(f"max samples must be at least 1, not {self.max_samples}")


class FramedDataset:
    """Framed spikes, labels and what describes them. A torch ``Dataset`` (``ds[i]``, ``len``).

    Attributes: name, split, time_steps, window_us (length of one bin in us; None when each
    sample's own span is cut into T bins), sensor_size (tonic's
    (W, H, P) after downsampling), input_shape (C, H, W), class_names (tuple of str),
    labels (torch.int64, N), frames (torch.float32, N x C x H x W x T; built on access from the
    uint8 store ``spikes``, so it costs 4 bytes per entry: keep a reference rather than
    calling it in a loop), indices (the samples' positions in the source split).
    """

    def __init__(self, name, split, spikes, labels, sensor_size, class_names, window_us, indices):
        import torch

        self.name, self.split = name, split
        self.spikes = torch.from_numpy(spikes)  # uint8 (N, C, H, W, T), 0/1
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        self.sensor_size = tuple(int(s) for s in sensor_size)
        self.class_names = tuple(class_names)
        self.window_us = None if window_us is None else int(window_us)
        self.indices = np.asarray(indices, dtype=np.int64)

    @property
    def time_steps(self) -> int:
        return int(self.spikes.shape[-1])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.spikes.shape[1:4])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def frames(self):
        return self.spikes.float()

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i):
        return self.spikes[i].float(), int(self.labels[i])

    def __repr__(self) -> str:
        return (f"FramedDataset({self.name!r}, split={self.split!r}, n={len(self)}, "
                f"input_shape={self.input_shape}, T={self.time_steps}, window_us={self.window_us})")


def load_dataset(name: str = "event-digits", data_dir=None, time_steps: int = 16,
                 split: str = "train", augment: bool = False, seed: int = 0, *,
                 epoch: int = 0, downsample: int = 1, duration_us: int | None = None,
                 max_samples: int | None = None) -> FramedDataset:
    """Load ``name`` and frame it into binary spikes; see the module docstring for conventions."""
    return frame_dataset(DataConfig(name, None if data_dir is None else str(data_dir), time_steps,
                                    split, augment, seed, epoch, downsample, duration_us,
                                    max_samples))


def frame_dataset(cfg: DataConfig) -> FramedDataset:
    """Build the FramedDataset that ``cfg`` describes (its data set's entry in ``train.datasets``)."""
    spec = entry(cfg.name)
    opened = spec.open(cfg)
    sensor = downsampled_sensor(tuple(opened.sensor_size), cfg.downsample, cfg.name)
    fixed = cfg.duration_us or spec.duration_us
    augment = cfg.augment and not spec.own_augmentation
    c, h, w = input_shape_of(sensor)
    spikes = np.zeros((len(opened.indices), c, h, w, cfg.time_steps), dtype=np.uint8)
    labels = np.empty(len(opened.indices), dtype=np.int64)
    for k, (index, pos) in enumerate(zip(opened.indices, opened.positions)):
        events, labels[k] = opened.source[int(pos)]
        check_events(events, opened.sensor_size, f"{cfg.name} {cfg.split} sample {int(index)}",
                     getattr(opened.source, "data", None), int(pos))
        events = _prepare(events, cfg, int(index), opened.sensor_size, augment)
        spikes[k] = frame_events(events, sensor, cfg.time_steps,
                                 window_for(events, cfg.time_steps, fixed))
    if len(spikes) and not spikes.any():
        raise SpikeshipError(f"{cfg.name}: none of the {len(spikes)} samples of the {cfg.split} split holds an "
                             f"event in its {cfg.time_steps} bins; the files hold no events")
    window = None if fixed is None else window_for(None, cfg.time_steps, fixed)
    return FramedDataset(cfg.name, cfg.split, spikes, labels, sensor, opened.class_names, window,
                         opened.indices)


def check_events(events, sensor_size, where: str, paths=None, position: int = 0) -> None:
    """One line when a sample's events do not fit its sensor (garbage in a data file): every coordinate
    inside ``sensor_size`` (W, H, P) and no negative time (polarity is not checked: tonic's SHD marks every
    event p = 1 on its one-polarity sensor)."""
    names = events.dtype.names or ()
    limits = {"x": sensor_size[0], "y": sensor_size[1]}
    for field in ("x", "y", "t"):
        if field not in names or not len(events):
            continue
        values = events[field]
        lo, hi = values.min(), values.max()
        if lo < 0 or (field in limits and hi >= limits[field]):
            bad = lo if lo < 0 else hi
            source = f" ({paths[position]})" if isinstance(paths, list) and position < len(paths) \
                and isinstance(paths[position], str) else ""
            bound = "a time" if field == "t" else f"{field} in [0, {limits[field]})"
            raise SpikeshipError(f"{where}{source}: event {field}={bad} is not {bound}; the file does not "
                                 "hold this data set's events")


@dataclass(frozen=True, eq=False)
class Samples:
    """Samples of a split as the runtimes take them: ``inputs`` (N, C, H, W, T) uint8, ``labels`` (N,),
    ``indices`` (their positions in the split), and the data set's name."""

    dataset: str
    split: str
    inputs: np.ndarray
    labels: np.ndarray
    indices: np.ndarray


def load_samples(dataset: str, data_dir, split: str, time_steps: int, samples: int | None,
                 downsample: int = 1) -> Samples:
    """``samples`` samples of the split (a fixed subset; all when None); more than the split has is an error."""
    ds = load_dataset(dataset, data_dir, time_steps, split, downsample=downsample, max_samples=samples)
    if samples is not None and samples > len(ds):
        raise SpikeshipError(f"asked for {samples} samples; the {split} split of {dataset} has {len(ds)}")
    return Samples(dataset, split, ds.spikes.numpy(), ds.labels.numpy(), np.asarray(ds.indices))


def run_data(net, dataset: str | None, data_dir: str | None, downsample: int | None) -> tuple[str, str | None, int]:
    """(data set, folder, downsampling) to run a network on: what is given, else what the network's model card
    recorded from training; a network whose card names no data set needs ``--dataset``."""
    card = net.model_card if isinstance(net.model_card, dict) else {}
    trained = card.get("config") if isinstance(card.get("config"), dict) else {}
    name = dataset or net.dataset
    if name is None:
        raise SpikeshipError("the .net file's model card names no data set; give --dataset NAME "
                             f"({', '.join(DATASETS)})")
    same = name == net.dataset
    if data_dir is None and same and not entry(name).built_in:
        data_dir = trained.get("data_dir")
    if downsample is None:
        downsample = int(trained.get("sensor_downsample", 1) or 1) if same else 1
    return name, data_dir, downsample


def window_for(events, time_steps: int, duration_us: int | None) -> int:
    """Bin length in us: ceil(duration / T), the duration fixed or this sample's last event + 1."""
    if duration_us is None:
        duration_us = int(events["t"].max()) + 1 if len(events) else time_steps
    return max(1, math.ceil(duration_us / time_steps))


def downsampled_sensor(sensor_size, factor: int, name: str) -> tuple[int, int, int]:
    """tonic sensor size (W, H, P) after integer spatial downsampling."""
    w, h, p = sensor_size
    if factor == 1:
        return (w, h, p)
    if h == 1 or w % factor or h % factor:
        raise SpikeshipError(f"{name}: sensor {w}x{h} cannot be downsampled by {factor}")
    return (w // factor, h // factor, p)


def input_shape_of(sensor_size) -> tuple[int, int, int]:
    """(C, H, W) for a tonic sensor size (W, H, P); 1-D sensors (H = 1) become (W, 1, 1)."""
    w, h, p = sensor_size
    return (w, 1, 1) if h == 1 and p == 1 else (p, h, w)


def _prepare(events, cfg: DataConfig, index: int, sensor, augment: bool):
    """Augment (sets without their own augmentation) and downsample one sample's events; returns a new array."""
    events = np.array(events, copy=True)
    if augment:
        rng = np.random.default_rng([cfg.seed, 1 + cfg.epoch, index])
        events = augment_events(events, sensor, rng)
    if cfg.downsample != 1:
        events["x"] = events["x"] // cfg.downsample
        events["y"] = events["y"] // cfg.downsample
    return events


def augment_events(events: np.ndarray, sensor_size, rng: np.random.Generator) -> np.ndarray:
    """Random whole-sample shift (2-D sensors; events leaving the sensor dropped) and timing jitter."""
    w, h, _ = sensor_size
    keep = np.ones(len(events), dtype=bool)
    if "y" in events.dtype.names and h > 1:
        dx, dy = rng.integers(-AUGMENT_SHIFT_PX, AUGMENT_SHIFT_PX + 1, size=2)
        x, y = events["x"].astype(np.int64) + dx, events["y"].astype(np.int64) + dy
        keep = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        events["x"], events["y"] = np.clip(x, 0, w - 1), np.clip(y, 0, h - 1)
    t = events["t"] + rng.normal(0.0, AUGMENT_JITTER_US, size=len(events))
    events["t"] = np.maximum(np.round(t), 0).astype(events["t"].dtype)
    events = events[keep]
    return events[np.argsort(events["t"], kind="stable")]


def frame_events(events: np.ndarray, sensor_size, time_steps: int, window_us: int) -> np.ndarray:
    """Binary frames (C, H, W, T) uint8 of one sample: tonic's ToFrame over fixed windows from 0.

    Bin k holds events with k*window <= t < (k+1)*window; events at or after T*window are dropped.
    Events need not be in time order.
    """
    from tonic.transforms import ToFrame

    c, h, w = input_shape_of(sensor_size)
    events = events[events["t"] < time_steps * window_us]
    if np.any(np.diff(events["t"]) < 0):  # ToFrame's slicing assumes time order
        events = events[np.argsort(events["t"], kind="stable")]
    if len(events) == 0:  # ToFrame returns a (1, P, W, H) placeholder for empty input
        return np.zeros((c, h, w, time_steps), dtype=np.uint8)
    frames = ToFrame(sensor_size=tuple(sensor_size), time_window=window_us, start_time=0,
                     end_time=time_steps * window_us)(events)
    if frames.shape[0] != time_steps:
        raise AssertionError(f"ToFrame gave {frames.shape[0]} bins, expected {time_steps}")
    binary = np.minimum(frames, 1).astype(np.uint8)
    if frames.ndim == 3:  # (T, P=1, X) from a 1-D sensor -> (X, 1, 1, T)
        return np.ascontiguousarray(binary[:, 0, :].T.reshape(c, 1, 1, time_steps))
    return np.ascontiguousarray(np.moveaxis(binary, 0, -1))  # (T, P, H, W) -> (P, H, W, T)


def dataset_help() -> str:
    """What ``--dataset`` lists: every registered data set with its one line."""
    return "; ".join(f"{name}: {e.help}" for name, e in DATASETS.items())


def add_data_arguments(parser, *, default: str | None = "event-digits", default_help: str = "event-digits") -> None:
    """The data flags of the stages that run a network: --dataset, --data-dir, --sensor-downsample (the time
    steps come from the network)."""
    parser.add_argument("--dataset", default=default, metavar="NAME",
                        help=f"data set (default: {default_help}). {dataset_help()}")
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="folder holding a tonic data set (see README for the layouts)")
    parser.add_argument("--sensor-downsample", type=int, default=None, metavar="K",
                        help="divide the sensor's x and y by K (e.g. 4 for dvsgesture; default: as trained)")


def data_config_from_args(args, split: str = "train", **overrides) -> DataConfig:
    """DataConfig from the shared flags (plus split, seed, augment, ... as keyword overrides)."""
    fields = dict(name=args.dataset, data_dir=args.data_dir, time_steps=args.time_steps,
                  split=split, downsample=getattr(args, "sensor_downsample", 1))
    if getattr(args, "seed", None) is not None:
        fields["seed"] = args.seed
    fields.update(overrides)
    return DataConfig(**fields)
