"""event-speech: spoken digits synthesized by eSpeak NG, heard by a cochlea model, cached on disk.

Real eSpeak runs (no mocks); tiny configurations (a few speakers, few channels) keep it to seconds.
"""

import hashlib
import importlib.util
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from spikeship.errors import SpikeshipError
from spikeship.train import cochlea, speech_synth
from spikeship.train import event_speech as es

needs_espeak = pytest.mark.skipif(importlib.util.find_spec("espeakng_loader") is None,
                                  reason="the speech extra (eSpeak NG) is not installed")

TINY = es.EventSpeechConfig(train_speakers=2, test_speakers=1, repetitions=1, channels=16)
MINI = es.EventSpeechConfig(train_speakers=1, test_speakers=1, repetitions=1, channels=8)


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    """The TINY set built once into a module-wide cache folder."""
    folder = tmp_path_factory.mktemp("speech-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPIKESHIP_CACHE", str(folder))
        arrays = es.load_set(TINY, seed=0)
    return folder, arrays


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKESHIP_CACHE", str(tmp_path))
    return tmp_path / "event-speech"


def _digest(arrays: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        h.update(k.encode()), h.update(np.ascontiguousarray(arrays[k]).tobytes())
    return h.hexdigest()


def _count_builds(monkeypatch) -> list:
    """Wrap the real speaker generation to count the times it runs (eSpeak still runs)."""
    calls = []
    real = es.speak_speakers

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(es, "speak_speakers", counted)
    return calls


# ---------------------------------------------------------------- the front end, exact where it can be

def test_erb_space_and_gammatone_unit_gain_at_centres():
    centres = cochlea.erb_space(100.0, 7000.0, 64)
    assert centres[0] == pytest.approx(100.0) and centres[-1] == pytest.approx(7000.0)
    assert np.all(np.diff(centres) > 0) and np.all(np.diff(centres)[1:] > np.diff(centres)[:-1])
    bank = cochlea.gammatone_bank(16_000, 16_000, centres[[0, 40]])
    n_fft = 2 * (bank.shape[1] - 1)
    assert n_fft >= 16_000
    freqs = np.fft.rfftfreq(n_fft, 1 / 16_000)
    for row, fc in zip(bank, centres[[0, 40]]):
        peak = freqs[np.argmax(np.abs(row))]
        assert abs(peak - fc) <= 16_000 / n_fft and np.abs(row).max() == pytest.approx(1.0, abs=1e-3)


def test_a_pure_tone_excites_the_channel_tuned_to_it():
    centres = cochlea.erb_space(100.0, 7000.0, 32)
    t = np.arange(16_000) / 16_000
    bank = cochlea.gammatone_bank(len(t), 16_000, centres)
    for tone in (300.0, 1000.0, 4000.0):
        energy = (cochlea.filter_bank(np.sin(2 * np.pi * tone * t), bank) ** 2).mean(axis=1)
        assert np.argmax(energy) == np.argmin(np.abs(centres - tone))


def test_integrate_and_fire_is_exact_on_a_constant_drive():
    # drive 0.25 per step, threshold 1: a spike every 4 steps; channel 1 starts half charged
    drive = np.full((2, 12), 0.25, dtype=np.float32)
    t, ch = cochlea.integrate_and_fire(drive, 1.0, np.array([0.0, 0.5]), step_us=1000)
    order = np.lexsort((t, ch))
    assert ch[order].tolist() == [0, 0, 0, 1, 1, 1]
    assert t[order].tolist() == [4000.0, 8000.0, 12000.0, 2000.0, 6000.0, 10000.0]
    burst = cochlea.integrate_and_fire(np.array([[2.5]], np.float32), 1.0, np.zeros(1), 1000)[0]
    assert burst.tolist() == [400.0, 800.0]  # two crossings inside one step, interpolated


def test_adapted_hair_cell_has_no_onset_burst_at_the_window_start():
    # steady noise: the adaptation starts adapted (at the median), so the first 50 ms drive no more
    # than the rest; an adaptation starting from zero would let the start through unadapted
    rng = np.random.default_rng(0)
    bank = cochlea.gammatone_bank(16_000, 16_000, cochlea.erb_space(100.0, 7000.0, 16))
    motion = cochlea.filter_bank(rng.standard_normal(16_000).astype(np.float32), bank)
    drive = cochlea.hair_cell(motion, 8, 0.5, 0.5, 100.0)
    plain = cochlea.hair_cell(motion, 8, 0.5, 0.0, 100.0)
    assert drive.shape == (16, 2000) and np.all(drive >= 0)
    assert drive[:, :100].mean() < 1.1 * drive[:, 100:].mean()
    # half the running mean subtracted; clipping at zero only adds back
    assert 0.49 * plain.mean() < drive.mean() < 0.65 * plain.mean()


# ---------------------------------------------------------------- configuration and speakers

@pytest.mark.parametrize("fields", [dict(channels=0), dict(channels=701), dict(repetitions=1.5),
                                    dict(high_hz=9000.0), dict(speed=(1.2, 0.8)),
                                    dict(step_us=333), dict(max_onset_ms=1000.0),
                                    dict(rate_wpm=(60, 200)), dict(dropout=1.0)])
def test_bad_config_is_one_line_error(fields):
    with pytest.raises(SpikeshipError) as err:
        es.EventSpeechConfig(**fields)
    assert "\n" not in str(err.value) and str(err.value).startswith("event-speech")


def test_classes_sizes_and_disjoint_speakers():
    assert len(es.CLASS_NAMES) == 20 and es.CLASS_NAMES[0] == "en-zero" and es.CLASS_NAMES[-1] == "de-neun"
    assert es.split_size("train") == 48 * 20 * 2 and es.split_size("test") == 16 * 20 * 2
    assert es.split_size("train", TINY) == 40 and es.DURATION_US == 1_000_000
    for seed in (0, 1):
        train, test = es.speakers("train", seed), es.speakers("test", seed)
        assert {s.variant for s in train}.isdisjoint({s.variant for s in test})
        assert len({(s.variant, s.rate_wpm, s.pitch, s.pitch_range) for s in train + test}) == 64
    assert es.speakers("train", 0) != es.speakers("train", 1)
    with pytest.raises(SpikeshipError, match="split must be"):
        es.speakers("validation")


# ---------------------------------------------------------------- the generated set

@needs_espeak
def test_events_are_tonic_style_sorted_and_in_the_window(tiny_cache, monkeypatch):
    monkeypatch.setenv("SPIKESHIP_CACHE", str(tiny_cache[0]))
    train = es.EventSpeech("train", config=TINY)
    assert train.sensor_size == (16, 1, 1) and len(train) == 40 and train.duration_us == es.DURATION_US
    assert train.targets.tolist() == list(range(20)) * 2 and train.speakers.tolist() == [0] * 20 + [1] * 20
    counts = []
    for i in range(len(train)):
        ev, label = train[i]
        assert ev.dtype.names == ("t", "x", "p") and ev.dtype["t"] == np.int64
        assert label == train.targets[i] and np.all(ev["p"] == 0)
        assert np.all(np.diff(ev["t"]) >= 0) and ev["t"].min() >= 0 and ev["t"].max() < 1_000_000
        assert ev["x"].min() >= 0 and ev["x"].max() < 16
        counts.append(len(ev))
        # the word starts within the first 150 ms: the first 750 ms hold most of the spikes
        assert (ev["t"] < 750_000).mean() > 0.6
    assert 100 < np.mean(counts) < 1500 and len(set(counts)) > 30  # sparse, and samples differ
    test = es.EventSpeech("test", config=TINY)
    assert len(test) == 20 and {s.variant for s in test.speaker_info}.isdisjoint(
        {s.variant for s in train.speaker_info})


@needs_espeak
def test_frames_through_the_data_layer(tiny_cache, monkeypatch):
    from spikeship.train.data import frame_events

    monkeypatch.setenv("SPIKESHIP_CACHE", str(tiny_cache[0]))
    ds = es.EventSpeech("test", config=TINY)
    ev, _ = ds[3]
    frames = frame_events(ev, ds.sensor_size, 100, es.DURATION_US // 100)
    assert frames.shape == (16, 1, 1, 100) and frames.max() == 1
    per_bin = np.zeros((16, 100), dtype=int)
    np.add.at(per_bin, (ev["x"], ev["t"] // 10_000), 1)
    assert np.array_equal(frames[:, 0, 0], np.minimum(per_bin, 1))


@needs_espeak
def test_same_seed_same_spikes_whatever_the_workers_and_other_seed_differs(tiny_cache):
    _, cached = tiny_cache
    again = es.build_set(TINY, seed=0, workers=1)
    assert _digest(again) == _digest(cached)
    other = es.build_set(TINY, seed=1)
    assert not np.array_equal(other["train_t"][:100], cached["train_t"][:100])


@needs_espeak
def test_subset_and_augmentation(tiny_cache, monkeypatch):
    monkeypatch.setenv("SPIKESHIP_CACHE", str(tiny_cache[0]))
    full = es.EventSpeech("train", config=TINY)
    part = es.EventSpeech("train", config=TINY, subset=[3, 25])
    assert part.targets.tolist() == [3, 5] and np.array_equal(part[1][0], full[25][0])
    a0 = es.EventSpeech("train", config=TINY, augment=True, epoch=0)
    b0 = es.EventSpeech("train", config=TINY, augment=True, epoch=0, subset=[3])
    a1 = es.EventSpeech("train", config=TINY, augment=True, epoch=1)
    assert np.array_equal(a0[3][0], b0[0][0])  # drawn from (seed, epoch, index), not position
    for i in (0, 7, 33):
        plain, v0, v1 = full[i][0], a0[i][0], a1[i][0]
        assert not np.array_equal(v0, plain) and not np.array_equal(v0, v1)
        assert 0.75 * len(plain) < len(v0) < len(plain)  # 10% dropout, a few shifted out
        assert np.all(np.diff(v0["t"]) >= 0) and v0["t"].min() >= 0 and v0["t"].max() < 1_000_000
        assert np.array_equal(np.bincount(v0["x"], minlength=16) > 0,
                              np.bincount(plain["x"], minlength=16) > 0) or len(plain) < 200


# ---------------------------------------------------------------- the cache

@needs_espeak
def test_cache_hit_reads_without_synthesizing(tiny_cache, monkeypatch):
    folder, cached = tiny_cache
    monkeypatch.setenv("SPIKESHIP_CACHE", str(folder))
    calls = _count_builds(monkeypatch)
    assert _digest(es.load_set(TINY, seed=0)) == _digest(cached) and calls == []
    assert es.cache_path(TINY, 0).parent == folder / "event-speech"
    assert es.cache_path(TINY, 0) != es.cache_path(TINY, 1) != es.cache_path(MINI, 0)
    # the per-epoch augmentation fields do not change what is cached
    assert es.cache_path(TINY, 0) == es.cache_path(es.EventSpeechConfig(
        train_speakers=2, test_speakers=1, repetitions=1, channels=16, dropout=0.3), 0)


@needs_espeak
@pytest.mark.parametrize("damage", ["truncated", "garbage", "stale key"])
def test_corrupt_or_stale_cache_is_rebuilt_with_one_line(cache, monkeypatch, capsys, damage):
    first = es.load_set(MINI, seed=0)
    path = es.cache_path(MINI, 0)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not an npz file at all")
    else:
        with open(path, "wb") as f:
            np.savez(f, **first, cache_key=np.array("some other key"))
    capsys.readouterr()
    calls = _count_builds(monkeypatch)
    assert _digest(es.load_set(MINI, seed=0)) == _digest(first) and len(calls) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "rebuilding" in err and str(path) in err
    assert ("is stale" in err) == (damage == "stale key") and ("is unreadable" in err) != ("is stale" in err)
    assert _digest(es.load_set(MINI, seed=0)) == _digest(first) and len(calls) == 1  # now valid
    assert sorted(p.name for p in cache.iterdir()) == [path.name, path.name + ".lock"]


@needs_espeak
def test_two_processes_build_once_and_read_the_same(cache):
    script = textwrap.dedent("""
        import hashlib, sys
        import numpy as np
        from spikeship.train import event_speech as es
        real = es.build_set
        def counted(*a, **k):
            print("BUILT", flush=True)
            return real(*a, **k)
        es.build_set = counted
        if __name__ == "__main__":
            cfg = es.EventSpeechConfig(train_speakers=1, test_speakers=1, repetitions=1, channels=8)
            arrays = es.load_set(cfg, seed=5)
            h = hashlib.sha256(b"".join(np.ascontiguousarray(arrays[k]).tobytes() for k in sorted(arrays)))
            print("DIGEST", h.hexdigest())
    """)
    env = {**__import__("os").environ, "SPIKESHIP_CACHE": str(cache.parent)}
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    lines = [o[0].split() for o in outs]
    assert sum(words.count("BUILT") for words in lines) == 1
    digests = {words[words.index("DIGEST") + 1] for words in lines}
    assert len(digests) == 1 and len(list(cache.glob("*.npz"))) == 1
    assert list(cache.glob(".*")) == []  # no temporary file left


def test_missing_speech_extra_is_one_line_and_writes_nothing(cache, monkeypatch):
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # import fails as if not installed
    monkeypatch.setattr(speech_synth, "_STATE", {})  # as in a fresh process: library not loaded
    with pytest.raises(SpikeshipError) as err:
        es.EventSpeech("train", config=MINI)
    msg = str(err.value)
    assert msg == speech_synth.EXTRA_MISSING and "\n" not in msg
    assert "pip install 'spikeship[speech]'" in msg and "GPL-3.0" in msg and err.value.exit_code == 2
    assert not cache.exists() or list(cache.iterdir()) == []


def test_missing_extra_from_a_script_is_exit_2_one_line_nothing_written(tmp_path):
    import os
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "out" / "speech.png"
    run = ("import runpy, sys; sys.modules['espeakng_loader'] = None; "
           f"sys.argv = ['plot_event_speech.py', '--out', {str(out)!r}]; "
           f"runpy.run_path({str(root / 'bench' / 'plot_event_speech.py')!r}, run_name='__main__')")
    env = {**os.environ, "SPIKESHIP_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f"spikeship: {speech_synth.EXTRA_MISSING}"
    assert list(tmp_path.rglob("*")) == []  # no figure, no cache folder, no temporary file


def test_registered_as_a_built_in_data_set(tiny_cache, monkeypatch):
    """--dataset event-speech through the one data interface: fixed 1 s window cut into T bins, 20 classes."""
    from spikeship.train.data import load_dataset
    from spikeship.train.datasets import DATASETS

    monkeypatch.setenv("SPIKESHIP_CACHE", str(tiny_cache[0]))
    monkeypatch.setattr(es, "DEFAULT_CONFIG", TINY)
    assert DATASETS["event-speech"].built_in and DATASETS["event-speech"].duration_us == es.DURATION_US
    ds = load_dataset("event-speech", time_steps=20, split="train")
    assert ds.input_shape == (16, 1, 1) and ds.frames.shape == (len(ds), 16, 1, 1, 20)
    assert ds.window_us == 50_000 and len(ds) == es.split_size("train", TINY)
    assert ds.class_names == es.CLASS_NAMES and sorted(set(ds.labels.tolist())) == list(range(20))
    assert ds.spikes.any(-1).any()
    with pytest.raises(SpikeshipError, match="event-speech is built in; it takes no --data-dir"):
        load_dataset("event-speech", "/tmp", time_steps=20)
