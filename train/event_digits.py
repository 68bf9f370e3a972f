"""event-digits: the embedded N-MNIST-style event data set (nothing to download).

Each of scikit-learn's 1,797 bundled handwritten digits (real 8x8 scans, values 0..16) is scaled
bilinearly to 24x24 pixels on a 34x34 sensor with two polarities and moved in three saccades, as
N-MNIST moved its camera: a triangle of small translations, (0, 0) -> (+3, +6) -> (+6, 0) -> (0, 0)
pixels in (x, y), 100 ms per saccade, 300 ms in all. A simulated DVS watches the scene: every pixel
keeps the log intensity at its last event as its reference and fires an ON (p=1) or OFF (p=0) event
each time the log intensity moves one threshold away from it; the crossing time is interpolated
between simulation steps. The sensor has a fixed per-pixel threshold mismatch and a little
background activity, both drawn from the seed, so the same seed always gives the same events.

Events are tonic-style structured arrays (fields x, y, t, p; t in microseconds, int64; p 0/1),
sorted by time. The train/test split is fixed (stratified 80/20, its own seed) and never depends
on the data seed. With ``augment=True`` every (seed, epoch, sample) gets its own random saccade
offsets, vertex perturbations and timing jitter, so training is not limited to the fixed samples.

The simulation is vectorised over samples (separable bilinear sampling as two small matrix
products per step, one loop over ~120 steps); all 1,797 samples take a few seconds on one core.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

SENSOR_SIZE = (34, 34, 2)  # tonic's convention: (width x, height y, polarities)
DURATION_US = 300_000  # three saccades of 100 ms
SPLIT_SEED = 20_240_601  # the train/test split is fixed; it does not follow the data seed
TEST_FRACTION = 0.2
EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])
CLASS_NAMES = tuple(str(d) for d in range(10))
_DIGIT_PIXELS = 8
_CHUNK = 96  # samples simulated at once (bounds the working memory to ~60 MB)


@dataclass(frozen=True)
class EventDigitsConfig:
    """How the scene is rendered and how the simulated DVS sees it (defaults are the data set)."""

    scale: float = 3.0  # sensor pixels per digit pixel (8x8 -> 24x24)
    saccade_px: float = 6.0  # triangle size: (0,0) -> (A/2, A) -> (A, 0) -> (0,0) in (x, y)
    step_us: int = 5_000  # simulation step; crossings are interpolated inside it
    threshold: float = 0.4  # contrast threshold on log intensity
    threshold_mismatch: float = 0.03  # per-pixel relative spread of the threshold (fixed per seed)
    background: float = 0.08  # intensity of the empty background (digit ink is 1.0)
    noise_rate_hz: float = 0.2  # background-activity events per pixel per second
    # augmentation (used only when augment=True)
    offset_range_px: float = 2.0  # random shift of the whole trajectory, uniform +-range
    vertex_jitter_px: float = 0.5  # Gaussian perturbation of each saccade vertex
    time_jitter_us: float = 1_000.0  # Gaussian jitter of every event time

    def __post_init__(self):
        if DURATION_US % self.step_us or (DURATION_US // self.step_us) % 3:
            raise ValueError(f"step_us must divide {DURATION_US // 3} (one saccade)")
        if not (self.threshold > 0 and 0 < self.background < 1 and self.scale > 0):
            raise ValueError("threshold and scale must be positive, background in (0, 1)")
        extent = _DIGIT_PIXELS * self.scale + self.saccade_px + 2 * self.offset_range_px
        if extent > SENSOR_SIZE[0]:
            raise ValueError(f"digit, saccades and offsets ({extent:g} px) exceed the sensor")


@functools.lru_cache(maxsize=1)
def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 scikit-learn digits as (images float in [0, 1] of shape (N, 8, 8), labels int64).

    Read-only arrays (cached: every caller shares them).
    """
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images, labels = (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def split_size(split: str) -> int:
    """Number of samples in the fixed split."""
    return len(split_indices(load_digits()[1], split))


def split_indices(labels: np.ndarray, split: str) -> np.ndarray:
    """Indices of the fixed stratified split ("train" or "test"), sorted."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    rng = np.random.default_rng(SPLIT_SEED)
    test = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n_test = int(round(TEST_FRACTION * len(members)))
        test.append(rng.permutation(members)[:n_test])
    test_mask = np.zeros(len(labels), dtype=bool)
    test_mask[np.concatenate(test)] = True
    return np.flatnonzero(test_mask if split == "test" else ~test_mask)


def saccade_vertices(cfg: EventDigitsConfig, rng: np.random.Generator | None) -> np.ndarray:
    """The four (x, y) offsets of the digit's top-left corner at t = 0, 100, 200, 300 ms.

    Without ``rng`` the fixed N-MNIST-like triangle, centred on the sensor; with it, the triangle
    shifted uniformly by up to ``offset_range_px`` and each vertex perturbed (first = last kept).
    """
    a = cfg.saccade_px
    tri = np.array([[0.0, 0.0], [a / 2, a], [a, 0.0], [0.0, 0.0]])
    centre = (SENSOR_SIZE[0] - (_DIGIT_PIXELS * cfg.scale + a)) / 2.0
    verts = tri + centre
    if rng is not None:
        verts = verts + rng.uniform(-cfg.offset_range_px, cfg.offset_range_px, size=2)
        wobble = rng.normal(0.0, cfg.vertex_jitter_px, size=(3, 2))
        verts[:3] += wobble
        verts[3] = verts[0]
        limit = SENSOR_SIZE[0] - _DIGIT_PIXELS * cfg.scale
        verts = np.clip(verts, 0.0, limit)
    return verts


def _interp_matrices(offsets: np.ndarray, scale: float, size: int) -> np.ndarray:
    """Bilinear sampling weights (..., size, 8): sensor pixel centre -> digit pixel, zero outside.

    Sensor pixel k's centre k+0.5 maps to digit coordinate u = (k + 0.5 - offset)/scale - 0.5;
    the weight of digit pixel i is the hat function max(0, 1 - |u - i|).
    """
    k = np.arange(size, dtype=np.float32) + 0.5
    u = (k - offsets[..., None].astype(np.float32)) / scale - 0.5
    i = np.arange(_DIGIT_PIXELS, dtype=np.float32)
    return np.maximum(0.0, 1.0 - np.abs(u[..., None] - i))


def _render_log(images: np.ndarray, verts: np.ndarray, cfg: EventDigitsConfig) -> np.ndarray:
    """Log intensity (B, S+1, H, W) of each image moved along its vertices, at every step edge."""
    steps = DURATION_US // cfg.step_us
    per_saccade = steps // 3
    # piecewise-linear trajectory on the step grid (steps is a multiple of 3 by construction)
    frac = np.arange(steps + 1) / per_saccade
    seg = np.minimum(frac.astype(int), 2)
    w = (frac - seg)[None, :, None]
    pos = verts[:, seg] * (1 - w) + verts[:, seg + 1] * w  # (B, S+1, 2) as (x, y)
    wx = _interp_matrices(pos[..., 0], cfg.scale, SENSOR_SIZE[0])  # (B, S+1, W, 8)
    wy = _interp_matrices(pos[..., 1], cfg.scale, SENSOR_SIZE[1])  # (B, S+1, H, 8)
    ink = wy @ images[:, None] @ np.swapaxes(wx, -1, -2)  # (B, S+1, H, W)
    return np.log(cfg.background + (1.0 - cfg.background) * ink)


def _dvs_events(logi: np.ndarray, thresholds: np.ndarray, step_us: int):
    """Run the per-pixel-reference DVS over log intensities (B, S+1, H, W).

    Returns flat arrays (b, x, y, t_us, p) of all threshold crossings, unsorted.
    """
    n_steps = logi.shape[1] - 1
    ref = logi[:, 0].copy()
    crossings = np.zeros((logi.shape[0], n_steps) + logi.shape[2:], dtype=np.int8)
    refs = np.empty((logi.shape[0], n_steps) + logi.shape[2:], dtype=logi.dtype)
    for s in range(n_steps):  # the reference scan is sequential in time, vectorised over pixels
        n = np.trunc((logi[:, s + 1] - ref) / thresholds)
        crossings[:, s] = n
        refs[:, s] = ref
        ref += n * thresholds
    b, s, y, x = np.nonzero(crossings)
    n = crossings[b, s, y, x].astype(np.int64)
    ref0, prev, cur = refs[b, s, y, x], logi[b, s, y, x], logi[b, s + 1, y, x]
    s = s + 1
    count = np.abs(n)
    rep = np.repeat(np.arange(b.size), count)
    # k-th crossing of this step (1-based) for each repeated event
    k = np.arange(rep.size) - np.repeat(np.cumsum(count) - count, count) + 1
    sign = np.sign(n[rep])
    level = ref0[rep] + sign * k * thresholds[y[rep], x[rep]]
    step = cur[rep] - prev[rep]
    safe = np.where(step == 0, 1.0, step)  # a crossing left over from float rounding: end of step
    frac = np.clip(np.where(step == 0, 1.0, (level - prev[rep]) / safe), 0.0, 1.0)
    t = ((s[rep] - 1) + frac) * step_us
    return b[rep], x[rep], y[rep], t, (sign > 0).astype(np.int64)


def _noise_events(rng: np.random.Generator, cfg: EventDigitsConfig):
    """Background activity: Poisson count, uniform pixel, time and polarity."""
    w, h, _ = SENSOR_SIZE
    n = rng.poisson(cfg.noise_rate_hz * w * h * DURATION_US * 1e-6)
    return (rng.integers(0, w, n), rng.integers(0, h, n),
            rng.uniform(0, DURATION_US, n), rng.integers(0, 2, n))


def sensor_thresholds(seed: int, cfg: EventDigitsConfig) -> np.ndarray:
    """Per-pixel contrast thresholds (H, W) of the one simulated sensor for this seed."""
    rng = np.random.default_rng([seed, 0xD5])
    spread = rng.normal(0.0, cfg.threshold_mismatch, size=SENSOR_SIZE[1::-1])
    return (cfg.threshold * np.clip(1.0 + spread, 0.5, 1.5)).astype(np.float32)


def make_events(
    images: np.ndarray,
    indices: np.ndarray,
    seed: int = 0,
    augment: bool = False,
    epoch: int = 0,
    cfg: EventDigitsConfig = EventDigitsConfig(),
) -> list[np.ndarray]:
    """Event streams for ``images[indices]``, one sorted structured array per sample.

    Randomness of sample i comes only from (seed, i) or, with augment, (seed, epoch, i), so a
    sample's events do not depend on which other samples are made with it.
    """
    thresholds = sensor_thresholds(seed, cfg)
    indices = np.asarray(indices, dtype=np.int64)
    out: list[np.ndarray] = []
    for start in range(0, len(indices), _CHUNK):
        chunk = indices[start:start + _CHUNK]
        rngs = [np.random.default_rng([seed, 1 + epoch if augment else 0, int(i)]) for i in chunk]
        verts = np.stack([saccade_vertices(cfg, r if augment else None) for r in rngs])
        logi = _render_log(images[chunk], verts, cfg)
        b, x, y, t, p = _dvs_events(logi, thresholds, cfg.step_us)
        order = np.argsort(b, kind="stable")
        bounds = np.searchsorted(b[order], np.arange(len(chunk) + 1))
        for j, rng in enumerate(rngs):
            sel = order[bounds[j]:bounds[j + 1]]
            nx, ny, nt, np_ = _noise_events(rng, cfg)
            tt = np.concatenate([t[sel], nt])
            if augment and cfg.time_jitter_us > 0:
                tt = tt + rng.normal(0.0, cfg.time_jitter_us, size=tt.size)
            out.append(_to_structured(np.concatenate([x[sel], nx]), np.concatenate([y[sel], ny]),
                                      tt, np.concatenate([p[sel], np_])))
    return out


def _to_structured(x, y, t, p) -> np.ndarray:
    """Sorted tonic-style events; times floored to whole microseconds inside [0, DURATION_US)."""
    ev = np.empty(len(x), dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["p"] = x, y, p
    ev["t"] = np.clip(np.floor(t), 0, DURATION_US - 1).astype(np.int64)
    return ev[np.argsort(ev["t"], kind="stable")]


class EventDigits:
    """The event-digits split as a tonic-style data set: ``events, label = ds[i]``.

    Parameters: split ("train" or "test"), seed (sensor noise and augmentation), augment (random
    saccades and timing jitter, redrawn per ``epoch``), subset (positions within the split to make,
    default all), transform (applied to the events, as in tonic), cfg (the simulation; the
    defaults are the data set). Events are made once, at construction; ``indices`` are the
    samples' indices among the 1,797 digits.
    """

    sensor_size = SENSOR_SIZE
    dtype = EVENT_DTYPE
    ordering = "xytp"
    classes = list(CLASS_NAMES)
    duration_us = DURATION_US

    def __init__(self, split: str = "train", seed: int = 0, augment: bool = False, epoch: int = 0,
                 subset=None, transform=None, cfg: EventDigitsConfig = EventDigitsConfig()):
        images, labels = load_digits()
        self.indices = split_indices(labels, split)
        if subset is not None:
            self.indices = self.indices[np.asarray(subset, dtype=np.int64)]
        self.targets = labels[self.indices]
        self.split, self.seed, self.augment, self.epoch = split, seed, augment, epoch
        self.transform = transform
        self.events = make_events(images, self.indices, seed, augment, epoch, cfg)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        events = self.events[index]
        if self.transform is not None:
            events = self.transform(events)
        return events, int(self.targets[index])
