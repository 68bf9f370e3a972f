"""event-speech: spoken digits as cochlea spikes, modelled on SHD, made on the machine (no download).

The ten digits in English and German (20 classes, "en-zero" ... "de-neun") are spoken by synthetic
speakers with eSpeak NG (the optional ``speech`` extra, GPL-3.0; see ``speech_synth``). A speaker is
a voice variant ("m3", "f2", "klatt3", ...) speaking both languages, with its own speaking rate,
base pitch and pitch range; train and test speakers are disjoint and so are their voice variants.
Each utterance is then roughened: rate jitter, a random speed / vocal-tract factor (resampling),
a random onset in the first part of the fixed 1 s window, a random gain and white noise at a random
SNR. A cochlea-like front end (``cochlea``: ERB-spaced gammatone bank, rectification, compression,
adaptation, one integrate-and-fire neuron per channel) turns the sound into spikes.

Events are tonic-style structured arrays like tonic's SHD: fields ("t", "x", "p"), t in
microseconds (int64) within [0, window), x the channel (0 = lowest frequency), p = 0, sorted by
time. The randomness of an utterance comes from (seed, split, speaker, repetition, class) only.

Reproducibility: eSpeak keeps process-global state, so every speaker is synthesized in a fresh
worker process (a forkserver pool, one task per process) in a fixed order: the same seed gives the
same spikes whatever the number of workers. The front end runs in float32 FFTs; another CPU or
FFT library may round differently and flip a spike near a threshold, so identical spikes are
promised on one machine, not across machines. The whole set is cached on disk (``speech_cache``).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from dataclasses import dataclass

import numpy as np

from spikeship.errors import SpikeshipError
from spikeship.train import cochlea

WORDS = {
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "de": ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"),
}
CLASS_NAMES = tuple(f"{lang}-{w}" for lang in ("en", "de") for w in WORDS[lang])
_TEXTS = tuple((lang, w) for lang in ("en", "de") for w in WORDS[lang])
DURATION_US = 1_000_000  # the fixed window of every sample
EVENT_DTYPE = np.dtype([("t", np.int64), ("x", np.int16), ("p", np.int8)])
# eSpeak NG voice variants that speak both languages intelligibly (whisper, croak and the robot
# voices are left out). Train and test speakers draw from disjoint parts of this list.
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt",
            "klatt2", "klatt3", "klatt4", "Alex", "anika", "max", "steph", "linda", "michael",
            "john", "paul", "david", "edward", "iven", "grandma", "grandpa", "Annie", "benjamin",
            "Andy", "robert", "quincy")
TEST_VARIANTS = 11  # of the 34 variants, this many are kept for test speakers
_SPLIT_CODE = {"train": 0, "test": 1}


def _pair(lo_hi, what: str, lo: float, hi: float) -> None:
    a, b = lo_hi
    if not (lo <= a <= b <= hi):
        raise SpikeshipError(f"event-speech: {what} must be an ordered pair within [{lo}, {hi}], "
                             f"not {lo_hi}")


@dataclass(frozen=True)
class EventSpeechConfig:
    """How event-speech is made (the defaults are the data set). Fields marked (epoch) only shape
    the per-epoch augmentation and are not part of the cached set."""

    train_speakers: int = 48
    test_speakers: int = 16
    repetitions: int = 2  # utterances of every word by every speaker
    channels: int = 64  # SHD has 700
    low_hz: float = 100.0  # lowest and highest centre frequency (ERB-spaced)
    high_hz: float = 7_000.0
    sample_rate: int = 16_000  # front-end rate; eSpeak's 22,050 Hz output is resampled to it
    window_us: int = DURATION_US
    step_us: int = 500  # hair-cell and encoder step
    compression: float = 0.5  # power law applied to the smoothed rectified motion
    adaptation: float = 0.5  # share of the running mean subtracted (0 = none)
    adaptation_ms: float = 50.0
    fire_rate_hz: float = 400.0  # firing rate of a channel whose drive is 1
    # speakers (per speaker, uniform)
    rate_wpm: tuple[int, int] = (130, 220)
    pitch: tuple[int, int] = (20, 80)
    pitch_range: tuple[int, int] = (20, 80)
    # per utterance (uniform)
    rate_jitter: float = 0.05  # relative change of the speaker's rate
    max_onset_ms: float = 150.0  # onset within [0, max_onset] of the window (see docs)
    speed: tuple[float, float] = (0.85, 1.15)  # resampling factor: duration / speed, formants * speed
    gain: tuple[float, float] = (0.3, 1.0)
    snr_db: tuple[float, float] = (5.0, 20.0)  # white noise over the whole window vs the speech
    # (epoch) per-epoch augmentation with augment=True
    time_jitter_us: float = 1_000.0  # Gaussian jitter of every spike
    max_shift_us: int = 50_000  # whole-sample shift, uniform +-
    dropout: float = 0.1  # share of spikes removed

    def __post_init__(self):
        for name in ("train_speakers", "test_speakers", "repetitions", "channels"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise SpikeshipError(f"event-speech: {name} must be a positive integer, not {value!r}")
        if self.channels > 700:
            raise SpikeshipError(f"event-speech: at most 700 channels (SHD's count), not {self.channels}")
        if not (0 < self.low_hz < self.high_hz < self.sample_rate / 2):
            raise SpikeshipError("event-speech: need 0 < low_hz < high_hz < sample_rate / 2")
        if self.step_us <= 0 or (self.sample_rate * self.step_us) % 1_000_000 or \
                self.window_us % self.step_us:
            raise SpikeshipError("event-speech: step_us must be a whole number of samples and "
                                 "divide window_us")
        if not (0 <= self.max_onset_ms * 1000 < self.window_us):
            raise SpikeshipError("event-speech: max_onset_ms must lie within the window")
        if not (0 < self.compression <= 1 and self.adaptation >= 0 and self.adaptation_ms > 0
                and self.fire_rate_hz > 0):
            raise SpikeshipError("event-speech: need 0 < compression <= 1, adaptation >= 0, "
                                 "adaptation_ms > 0, fire_rate_hz > 0")
        _pair(self.rate_wpm, "rate_wpm", 80, 450)
        _pair(self.pitch, "pitch", 0, 99)
        _pair(self.pitch_range, "pitch_range", 0, 99)
        _pair(self.speed, "speed", 0.5, 2.0)
        _pair(self.gain, "gain", 1e-3, 1e3)
        _pair(self.snr_db, "snr_db", -20.0, 200.0)
        if not (0 <= self.rate_jitter < 0.5 and 0 <= self.dropout < 1 and self.time_jitter_us >= 0
                and 0 <= self.max_shift_us < self.window_us):
            raise SpikeshipError("event-speech: need 0 <= rate_jitter < 0.5, 0 <= dropout < 1, "
                                 "time_jitter_us >= 0, 0 <= max_shift_us < window_us")

    def generation_fields(self) -> dict:
        """The fields that shape the cached set (all but the per-epoch augmentation)."""
        skip = {"time_jitter_us", "max_shift_us", "dropout"}
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in skip}


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: an eSpeak variant speaking English and German at its own rate
    (words per minute), base pitch and pitch range (eSpeak's 0-99)."""

    split: str
    index: int  # position among the split's speakers
    variant: str
    rate_wpm: int
    pitch: int
    pitch_range: int


#: the set ``--dataset event-speech`` means (train.datasets opens it; tests swap in a tiny one)
DEFAULT_CONFIG = EventSpeechConfig()


def split_size(split: str, config: EventSpeechConfig = EventSpeechConfig()) -> int:
    """Number of samples in ``split``: speakers x 20 words x repetitions."""
    return len(speakers(split, 0, config)) * len(CLASS_NAMES) * config.repetitions


def speakers(split: str, seed: int = 0, config: EventSpeechConfig = EventSpeechConfig()) -> list:
    """The split's speakers for this seed; train and test use disjoint voice variants."""
    if split not in _SPLIT_CODE:
        raise SpikeshipError(f"event-speech: split must be 'train' or 'test', not {split!r}")
    order = np.random.default_rng([seed, 0x5EED]).permutation(len(VARIANTS))
    pool = order[len(VARIANTS) - TEST_VARIANTS:] if split == "test" else \
        order[:len(VARIANTS) - TEST_VARIANTS]
    count = config.test_speakers if split == "test" else config.train_speakers
    out = []
    for k in range(count):
        rng = np.random.default_rng([seed, _SPLIT_CODE[split], k])
        out.append(Speaker(split, k, VARIANTS[pool[k % len(pool)]],
                           int(rng.integers(config.rate_wpm[0], config.rate_wpm[1] + 1)),
                           int(rng.integers(config.pitch[0], config.pitch[1] + 1)),
                           int(rng.integers(config.pitch_range[0], config.pitch_range[1] + 1))))
    return out


def render(wave: np.ndarray, wave_rate: int, config: EventSpeechConfig,
           rng: np.random.Generator) -> np.ndarray:
    """One utterance as the fixed window (float32, config.sample_rate): silence trimmed,
    resampled by a random speed factor, scaled to unit RMS, placed at a random onset, white noise
    at a random SNR added over the whole window, everything times a random gain."""
    from scipy.signal import resample

    speed = rng.uniform(*config.speed)
    onset_frac, snr_db, gain = rng.uniform(), rng.uniform(*config.snr_db), rng.uniform(*config.gain)
    n_window = config.sample_rate * config.window_us // 1_000_000
    x = wave.astype(np.float32)
    loud = np.flatnonzero(np.abs(x) > 0.02 * max(np.abs(x).max(), 1.0))
    x = x[loud[0]:loud[-1] + 1] if loud.size else x[:0]
    n = int(round(len(x) * config.sample_rate / wave_rate / speed))
    out = np.zeros(n_window, dtype=np.float32)
    if n > 0:
        x = resample(x, n).astype(np.float32)
        onset = min(int(onset_frac * config.max_onset_ms * config.sample_rate / 1000), n_window - 1)
        x = x[:n_window - onset]
        out[onset:onset + len(x)] = x / max(float(np.sqrt(np.mean(x ** 2))), 1e-9)
    noise = rng.standard_normal(n_window).astype(np.float32) * np.float32(10 ** (-snr_db / 20))
    return (out + noise) * np.float32(gain)


def encode(sound: np.ndarray, config: EventSpeechConfig, bank: np.ndarray,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Spikes of one window of sound: (t in us int32, sorted; channel int16)."""
    step = config.sample_rate * config.step_us // 1_000_000
    motion = cochlea.filter_bank(sound, bank)
    drive = cochlea.hair_cell(motion, step, config.compression, config.adaptation,
                              config.adaptation_ms * 1000 / config.step_us)
    threshold = 1e6 / (config.fire_rate_hz * config.step_us)
    t, ch = cochlea.integrate_and_fire(drive, threshold, rng.uniform(0, 1, config.channels),
                                       config.step_us)
    t = np.minimum(np.floor(t), config.window_us - 1).astype(np.int32)
    order = np.lexsort((ch, t))
    return t[order], ch[order].astype(np.int16)


def filter_bank_for(config: EventSpeechConfig) -> np.ndarray:
    """The gammatone bank of ``config`` for its window length."""
    centres = cochlea.erb_space(config.low_hz, config.high_hz, config.channels)
    return cochlea.gammatone_bank(config.sample_rate * config.window_us // 1_000_000,
                                  config.sample_rate, centres)


def speak_speaker(task) -> dict:
    """All utterances of one speaker (repetition-major, then class): events and, on request, the
    sounds. Meant to run in a fresh process (see the module docstring): ``task`` is
    (config, seed, speaker, keep_sound)."""
    from spikeship.train import speech_synth

    config, seed, speaker, keep_sound = task
    bank = filter_bank_for(config)
    wave_rate = speech_synth.sample_rate()
    times, chans, counts, sounds = [], [], [], []
    for rep in range(config.repetitions):
        for c, (lang, word) in enumerate(_TEXTS):
            rng = np.random.default_rng([seed, _SPLIT_CODE[speaker.split], speaker.index, rep, c])
            rate = speaker.rate_wpm * (1 + rng.uniform(-config.rate_jitter, config.rate_jitter))
            rate = min(max(int(round(rate)), speech_synth.RATE_RANGE[0]), speech_synth.RATE_RANGE[1])
            voice = speech_synth.Voice(f"{lang}+{speaker.variant}", rate,
                                       speaker.pitch, speaker.pitch_range)
            wave = speech_synth.synthesize(word, voice, seed=int(rng.integers(2 ** 31)))
            sound = render(wave, wave_rate, config, rng)
            t, ch = encode(sound, config, bank, rng)
            times.append(t), chans.append(ch), counts.append(len(t))
            if keep_sound:
                sounds.append(sound)
    return {"t": np.concatenate(times), "x": np.concatenate(chans),
            "counts": np.asarray(counts, dtype=np.int64),
            "sounds": np.stack(sounds) if keep_sound else None}


def _context():
    """A start method whose children start with a fresh eSpeak: forkserver where there is one."""
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["spikeship.train.event_speech", "scipy.signal", "scipy.fft"])
    return ctx


def default_workers() -> int:
    """Worker processes for generation: the CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def speak_speakers(config: EventSpeechConfig, seed: int, chosen: list, keep_sound: bool = False,
                   workers: int | None = None) -> list:
    """:func:`speak_speaker` for every speaker in ``chosen``, each in a fresh process, in order."""
    tasks = [(config, seed, s, keep_sound) for s in chosen]
    workers = max(1, min(workers or default_workers(), len(tasks)))
    if multiprocessing.current_process().daemon:
        raise SpikeshipError("event-speech cannot be generated inside a daemonic worker process; "
                             "make it once in the main process (it is cached)")
    with _context().Pool(workers, maxtasksperchild=1) as pool:
        return pool.map(speak_speaker, tasks, chunksize=1)


GENERATOR_VERSION = 2  # bump whenever the generator changes its output (the cache key holds it)


def cache_key(config: EventSpeechConfig, seed: int) -> str:
    """What the cached set depends on: generation fields, seed, generator and eSpeak versions."""
    import hashlib
    import json

    from spikeship.train import speech_synth

    described = {"config": config.generation_fields(), "seed": int(seed),
                 "generator": GENERATOR_VERSION, "espeak": speech_synth.espeak_version(),
                 "scipy": _scipy_version()}
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def cache_path(config: EventSpeechConfig = EventSpeechConfig(), seed: int = 0):
    """Where the set of (config, seed) is cached: <cache root>/event-speech/<key prefix>.npz."""
    from spikeship.train.speech_cache import cache_root

    return cache_root() / "event-speech" / f"event-speech-{cache_key(config, seed)[:20]}.npz"


def build_set(config: EventSpeechConfig, seed: int, workers: int | None = None) -> dict:
    """Generate both splits (no cache): per split ``<split>_t`` (int32 us), ``<split>_x`` (int16),
    ``<split>_offsets`` (int64, samples + 1), ``<split>_labels``, ``<split>_speakers`` (int16)."""
    chosen = {split: speakers(split, seed, config) for split in ("train", "test")}
    results = speak_speakers(config, seed, chosen["train"] + chosen["test"], workers=workers)
    arrays, first = {}, 0
    for split, people in chosen.items():
        mine = results[first:first + len(people)]
        first += len(people)
        counts = np.concatenate([r["counts"] for r in mine])
        per_speaker = len(CLASS_NAMES) * config.repetitions
        arrays[f"{split}_t"] = np.concatenate([r["t"] for r in mine])
        arrays[f"{split}_x"] = np.concatenate([r["x"] for r in mine])
        arrays[f"{split}_offsets"] = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        arrays[f"{split}_labels"] = np.tile(np.arange(len(CLASS_NAMES)),
                                            len(people) * config.repetitions).astype(np.int16)
        arrays[f"{split}_speakers"] = np.repeat(np.arange(len(people)), per_speaker).astype(np.int16)
    return arrays


def load_set(config: EventSpeechConfig = EventSpeechConfig(), seed: int = 0) -> dict:
    """Both splits of (config, seed) from the cache, generated and cached first if needed."""
    from spikeship.train import speech_cache

    return speech_cache.load_or_build(cache_path(config, seed), cache_key(config, seed),
                                      lambda: build_set(config, seed), what="event-speech cache")


class EventSpeech:
    """An event-speech split as a tonic-style data set: ``events, label = ds[i]``.

    Parameters: split ("train" or "test"), seed (speakers, utterances, noise; and augmentation),
    augment (a cheap per-epoch variant of every sample: spike time jitter, a whole-sample shift
    and spike dropout, drawn from (seed, epoch, index); no new synthesis), subset (positions
    within the split, default all), transform (applied to the events, as in tonic), config.
    Attributes: sensor_size (channels, 1, 1), targets, speakers (speaker per sample, numbered
    within the split), speaker_info (the split's ``Speaker`` records), classes, indices.
    """

    dtype = EVENT_DTYPE
    ordering = "txp"
    classes = list(CLASS_NAMES)

    def __init__(self, split: str = "train", seed: int = 0, augment: bool = False, epoch: int = 0,
                 subset=None, transform=None, config: EventSpeechConfig = EventSpeechConfig()):
        self.speaker_info = speakers(split, seed, config)  # validates split
        arrays = load_set(config, seed)
        self.indices = np.arange(split_size(split, config))
        if subset is not None:
            self.indices = self.indices[np.asarray(subset, dtype=np.int64)]
        self._t, self._x = arrays[f"{split}_t"], arrays[f"{split}_x"]
        self._offsets = arrays[f"{split}_offsets"]
        self.targets = arrays[f"{split}_labels"].astype(np.int64)[self.indices]
        self.speakers = arrays[f"{split}_speakers"].astype(np.int64)[self.indices]
        self.split, self.seed, self.augment, self.epoch = split, seed, augment, epoch
        self.transform, self.config = transform, config
        self.sensor_size = (config.channels, 1, 1)
        self.duration_us = config.window_us

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        index = int(self.indices[i])
        lo, hi = self._offsets[index], self._offsets[index + 1]
        events = np.zeros(hi - lo, dtype=EVENT_DTYPE)
        events["t"], events["x"] = self._t[lo:hi], self._x[lo:hi]
        if self.augment:
            rng = np.random.default_rng([self.seed, 1 + self.epoch, _SPLIT_CODE[self.split], index])
            events = augment_events(events, self.config, rng)
        if self.transform is not None:
            events = self.transform(events)
        return events, int(self.targets[i])


def augment_events(events: np.ndarray, config: EventSpeechConfig,
                   rng: np.random.Generator) -> np.ndarray:
    """A per-epoch variant: drop a share of spikes, shift the sample, jitter every spike; spikes
    leaving the window are dropped. Returns a new sorted array."""
    keep = rng.uniform(size=len(events)) >= config.dropout
    shift = rng.integers(-config.max_shift_us, config.max_shift_us + 1)
    t = events["t"] + shift + rng.normal(0.0, config.time_jitter_us, size=len(events))
    t = np.floor(t).astype(np.int64)
    keep &= (t >= 0) & (t < config.window_us)
    out = events[keep].copy()
    out["t"] = t[keep]
    return out[np.lexsort((out["x"], out["t"]))]


def _scipy_version() -> str:
    import scipy

    return scipy.__version__  # its FFTs compute the front end
