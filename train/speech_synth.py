"""eSpeak NG through ctypes, from the optional ``espeakng-loader`` wheel (the ``speech`` extra).

The wheel ships ``libespeak-ng`` and its ``espeak-ng-data`` (no system package is needed). eSpeak NG
is GPL-3.0; spikeship only loads it at run time when event-speech is made, and the extra is optional.

eSpeak keeps its synthesis state in process-global C variables (the pitch flutter phase, wave
phase, resonator and echo buffers, the random generators): an utterance's samples depend on every
utterance synthesized before it in the same process, and no API call resets that state (measured:
``espeak_Terminate`` + ``espeak_Initialize`` does not). ``espeak_ng_SetRandSeed`` and libc's
``srand`` seed the two random generators it uses. So a reproducible waveform needs a fresh
process, seeded generators and a fixed order of utterances; event-speech synthesizes each speaker
that way (one fresh worker process per speaker). Within a process the library is initialized once
and every call holds one lock.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from dataclasses import dataclass

import numpy as np

from spikeship.errors import SpikeshipError

EXTRA_MISSING = ("event-speech needs the optional speech extra (eSpeak NG, GPL-3.0): "
                 "pip install 'spikeship[speech]'")
AUDIO_OUTPUT_RETRIEVAL = 1  # espeak_AUDIO_OUTPUT: samples go to the synth callback
CHARS_UTF8 = 1
PARAM_RATE, PARAM_PITCH, PARAM_RANGE = 1, 3, 4  # espeak_PARAMETER
RATE_RANGE = (80, 450)  # words per minute eSpeak accepts
PITCH_RANGE = (0, 99)  # base pitch and pitch range, 50 = the voice's own

_LOCK = threading.Lock()
_STATE: dict = {}  # "lib": CDLL (loaded), "rate": sample rate once initialized, "callback"
_CALLBACK_TYPE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.c_void_p)


@dataclass(frozen=True)
class Voice:
    """One eSpeak voice setting: ``name`` such as "en+m3" (language + variant), speaking rate in
    words per minute, base pitch and pitch range (0-99, 50 = the variant's own)."""

    name: str
    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50

    def __post_init__(self):
        if not (RATE_RANGE[0] <= self.rate <= RATE_RANGE[1]):
            raise ValueError(f"eSpeak rate must be in {RATE_RANGE} words per minute, not {self.rate}")
        for what in ("pitch", "pitch_range"):
            if not (PITCH_RANGE[0] <= getattr(self, what) <= PITCH_RANGE[1]):
                raise ValueError(f"eSpeak {what} must be in {PITCH_RANGE}, not {getattr(self, what)}")


def _paths() -> tuple[str, str]:
    """(library path, data path) from the espeakng-loader wheel; the one-line error without it."""
    try:
        import espeakng_loader
    except ImportError:
        raise SpikeshipError(EXTRA_MISSING) from None
    try:
        return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
    except RuntimeError as e:  # the wheel's data folder is missing
        raise SpikeshipError(f"{EXTRA_MISSING} ({e})") from None


def _library() -> ctypes.CDLL:
    """The loaded (not yet initialized) library; call with _LOCK held."""
    if "lib" not in _STATE:
        lib_path, _ = _paths()
        try:
            lib = ctypes.CDLL(lib_path)
        except OSError as e:
            raise SpikeshipError(f"{EXTRA_MISSING} (cannot load {lib_path}: {e})") from None
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK_TYPE]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        _STATE["lib"] = lib
    return _STATE["lib"]


def _libc_srand(seed: int) -> None:
    """Seed the C library's rand() (process-global). On Windows the DLL's C runtime is assumed to be
    ucrtbase (not tested there)."""
    if "srand" not in _STATE:
        libc = ctypes.CDLL("ucrtbase") if sys.platform == "win32" else ctypes.CDLL(None)
        libc.srand.argtypes = [ctypes.c_uint]
        _STATE["srand"] = libc.srand
    _STATE["srand"](seed & 0xFFFFFFFF)


def espeak_version() -> str:
    """eSpeak NG's version string (e.g. "1.52.0"); loads the library but does not initialize it."""
    with _LOCK:
        return _library().espeak_Info(None).decode()


def _initialized() -> ctypes.CDLL:
    """The library, initialized once per process for retrieval into our callback; _LOCK held."""
    lib = _library()
    if "rate" not in _STATE:
        _, data_path = _paths()
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_RETRIEVAL, 0, data_path.encode(), 0)
        if rate <= 0:
            raise SpikeshipError(f"eSpeak NG failed to initialize with its data in {data_path}")
        chunks = _STATE["chunks"] = []

        def collect(wav, n, _events):
            if n > 0:
                chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        _STATE["callback"] = _CALLBACK_TYPE(collect)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(_STATE["callback"])
        _STATE["rate"] = rate
    return lib


def sample_rate() -> int:
    """The synthesis sample rate in Hz (22050 for eSpeak NG); initializes the library."""
    with _LOCK:
        _initialized()
        return int(_STATE["rate"])


def synthesize(text: str, voice: Voice, seed: int = 0) -> np.ndarray:
    """Speak ``text`` with ``voice``; int16 samples at :func:`sample_rate`.

    The random generators are seeded with ``seed`` first, but the samples still depend on what
    this process synthesized before (see the module docstring).
    """
    with _LOCK:
        lib = _initialized()
        if lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise SpikeshipError(f"eSpeak NG has no voice {voice.name!r}")
        for param, value in ((PARAM_RATE, voice.rate), (PARAM_PITCH, voice.pitch),
                             (PARAM_RANGE, voice.pitch_range)):
            lib.espeak_SetParameter(param, int(value), 0)
        lib.espeak_ng_SetRandSeed(seed)
        _libc_srand(seed)  # wavegen's noise uses the C library's rand()
        chunks = _STATE["chunks"]
        chunks.clear()
        data = text.encode()
        if lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, CHARS_UTF8, None, None) != 0:
            raise SpikeshipError(f"eSpeak NG could not synthesize {text!r}")
        lib.espeak_Synchronize()
        out = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        chunks.clear()
        return out
