"""A cochlea-like front end: sound -> spike times per auditory channel (pure functions).

    centres = erb_space(100.0, 7000.0, 64)                     # channel centre frequencies, ERB-spaced
    bank = gammatone_bank(len(x), 16_000, centres)             # frequency responses, once per length
    y = filter_bank(x, bank)                                   # (channels, samples) basilar membrane
    drive = hair_cell(y, step=8, exponent=0.3, adaptation=...) # rectify, smooth, compress, adapt
    t_us, channel = integrate_and_fire(drive, threshold, phase, step_us=500)

The filters are 4th-order gammatones (Patterson/Holdsworth), applied in the frequency domain with
one FFT of the whole signal: the positive-frequency response of a gammatone of centre ``fc`` and
bandwidth ``b = 1.019 ERB(fc)`` is, up to a constant, ``(1 + j (f - fc) / b) ** -4``; its inverse
transform is causal, so onsets are not smeared backwards in time. ERB (Glasberg & Moore 1990):
``24.7 (4.37 fc / 1000 + 1)`` Hz.

The hair cell half-wave rectifies, averages over ``step`` samples (a low-pass that keeps the phase
locking of the low channels below about 1 kHz), compresses with a power law, and subtracts a slow
running mean (adaptation: onsets fire most, steady sounds such as background noise fire less).
Spikes come from a non-leaky integrate-and-fire neuron per channel with reset by subtraction: the
k-th spike is where the integral of the drive crosses ``k * threshold - phase``, linearly
interpolated within a step, so the encoder is deterministic and vectorised over channels and time.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.signal

GAMMATONE_ORDER = 4


def erb_bandwidth(freq_hz) -> np.ndarray:
    """Equivalent rectangular bandwidth in Hz at ``freq_hz`` (Glasberg & Moore 1990)."""
    return 24.7 * (4.37e-3 * np.asarray(freq_hz, dtype=np.float64) + 1.0)


def erb_space(low_hz: float, high_hz: float, n: int) -> np.ndarray:
    """``n`` centre frequencies equally spaced on the ERB-rate scale from low to high (inclusive)."""
    if not (0 < low_hz < high_hz and n >= 1):
        raise ValueError("need 0 < low < high and at least one channel")
    rate = lambda f: 21.4 * np.log10(4.37e-3 * f + 1.0)  # noqa: E731
    e = np.linspace(rate(low_hz), rate(high_hz), n) if n > 1 else np.array([rate(low_hz)])
    return (10.0 ** (e / 21.4) - 1.0) / 4.37e-3


def fft_length(n_samples: int, sample_rate: int, centres) -> int:
    """FFT length for ``n_samples``: room for the slowest filter's ringing (no circular wrap)."""
    decay = 8.0 / (2 * np.pi * 1.019 * erb_bandwidth(np.min(centres)))  # e^-8 of the envelope
    return scipy.fft.next_fast_len(n_samples + int(np.ceil(decay * sample_rate)), real=True)


def gammatone_bank(n_samples: int, sample_rate: int, centres) -> np.ndarray:
    """Complex frequency responses (channels, n_fft // 2 + 1) of the gammatone bank, unit gain at
    each centre frequency, for signals of ``n_samples`` at ``sample_rate``."""
    n_fft = fft_length(n_samples, sample_rate, centres)
    f = scipy.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    fc = np.asarray(centres, dtype=np.float64)[:, None]
    b = 1.019 * erb_bandwidth(fc)
    return ((1.0 + 1j * (f - fc) / b) ** -GAMMATONE_ORDER).astype(np.complex64)


def filter_bank(x: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """Basilar-membrane motion (channels, len(x)) float32: ``x`` through every filter of ``bank``."""
    n_fft = 2 * (bank.shape[1] - 1)
    spectrum = scipy.fft.rfft(np.asarray(x, dtype=np.float32), n_fft)
    return scipy.fft.irfft(spectrum[None, :] * bank, n_fft, axis=1)[:, : len(x)]


def hair_cell(y: np.ndarray, step: int, exponent: float, adaptation: float,
              adaptation_steps: float) -> np.ndarray:
    """Drive (channels, len // step) >= 0: rectify, mean over ``step`` samples, ``** exponent``,
    minus ``adaptation`` times a one-pole running mean with time constant ``adaptation_steps``
    (in steps) that starts at each channel's median, so the window's start is no onset."""
    n = y.shape[1] // step
    env = np.maximum(y[:, : n * step], 0.0).reshape(y.shape[0], n, step).mean(axis=2)
    env = env ** exponent
    if adaptation > 0:  # the running mean starts at the window's median: adapted to the background
        a = np.exp(-1.0 / adaptation_steps)
        start = a * np.median(env, axis=1, keepdims=True)
        slow, _ = scipy.signal.lfilter([1.0 - a], [1.0, -a], env, axis=1, zi=start)
        env = np.maximum(env - adaptation * slow, 0.0)
    return env.astype(np.float32)


def integrate_and_fire(drive: np.ndarray, threshold: float, phase: np.ndarray,
                       step_us: float) -> tuple[np.ndarray, np.ndarray]:
    """Spikes of one non-leaky integrate-and-fire neuron per channel (reset by subtraction).

    ``drive`` (channels, steps) >= 0 is integrated per step; ``phase`` (channels,) in [0, 1) is
    each neuron's initial charge in units of ``threshold``. Returns (times in us, float64, within
    [0, steps * step_us); channel int64), unsorted.
    """
    charge = np.cumsum(drive.astype(np.float64), axis=1) / threshold + phase[:, None]
    level = np.floor(charge).astype(np.int64)
    level0 = np.floor(phase).astype(np.int64)[:, None]
    count = np.diff(np.concatenate([level0, level], axis=1), axis=1)  # spikes in each step
    ch, s = np.nonzero(count)
    n = count[ch, s]
    rep = np.repeat(np.arange(ch.size), n)
    k = np.arange(rep.size) - np.repeat(np.cumsum(n) - n, n) + 1  # k-th spike of its step
    before = np.where(s == 0, phase[ch], charge[ch, s - 1])[rep]
    target = np.floor(before) + k  # the integer level crossed
    per_step = drive[ch[rep], s[rep]] / threshold
    frac = np.clip((target - before) / per_step, 0.0, 1.0)
    return (s[rep] + frac) * step_us, ch[rep].astype(np.int64)
