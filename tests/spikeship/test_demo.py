"""The demo's bookkeeping: a missing or failing stage is reported as such, never filled in; and the speech
task end to end on a tiny event-speech set (real eSpeak, training, export, emulator, Lava, parity).

The default demo itself (train, export, Lava, parity, report; 15-50 s) runs in `make demo`, not here."""

import importlib.util
import json
import sys

import pytest

from spikeship.cli import main
from spikeship.demo import TASKS, DemoConfig, Step, print_summary, run_demo
from spikeship.errors import SpikeshipError
from spikeship.train import event_speech, speech_synth

needs_espeak = pytest.mark.skipif(importlib.util.find_spec("espeakng_loader") is None,
                                  reason="the speech extra (eSpeak NG) is not installed")
# 2 train speakers and 1 test speaker saying the 20 words once: 40 / 20 samples of 12 channels
TINY = event_speech.EventSpeechConfig(train_speakers=2, test_speakers=1, repetitions=1, channels=12)


def test_step_records_missing_and_failed_stages(capsys):
    log = {}
    with Step(log, "lava", "Lava"):
        import spikeship.deploy.no_such_runner  # noqa: F401
    with Step(log, "export", "export"):
        raise SpikeshipError("layer 0: fan-in 5000 > 4096")
    with Step(log, "data", "data"):
        pass
    assert log["lava"]["status"] == "not built (missing module: spikeship.deploy.no_such_runner)"
    assert log["export"]["status"] == "failed: layer 0: fan-in 5000 > 4096"
    assert log["data"]["status"] == "ok"
    with pytest.raises(ZeroDivisionError):  # a bug is not swallowed
        with Step(log, "train", "train"):
            1 / 0


def test_summary_says_what_did_not_run(capsys):
    s = {"dataset": "event-digits", "arch": "dense", "time_steps": 16, "epochs": 1, "test_samples": 359,
         "pytorch_float": 0.9, "quantized_deploy": 0.9, "wall_s": 3.0,
         "steps": {"data": {"status": "ok", "seconds": 1.0}, "train": {"status": "ok", "seconds": 2.0},
                   "export": {"status": "not built (missing module: spikeship.export.netx)", "seconds": 0.0}}}
    print_summary(s)
    out = capsys.readouterr().out
    assert "90.00%" in out
    rows = [line for line in out.splitlines() if line.startswith("  ") and "  " in line[2:]]
    lines = {line.split("  ")[1].strip(): line for line in rows}
    assert lines["emulator (bit-exact integer)"].rstrip().endswith("not run")
    assert lines["Lava (fixed_pt CPU simulator)"].rstrip().endswith("not run")
    assert "parity: not run" in out and "energy report: not run" in out


def test_config_is_validated():
    with pytest.raises(SpikeshipError, match="--epochs"):
        DemoConfig(epochs=0)
    with pytest.raises(SpikeshipError, match="--lava-samples"):
        DemoConfig(lava_samples=-1)


def test_tasks_pick_their_defaults():
    digits, speech = DemoConfig(), DemoConfig(task="speech")
    assert (digits.dataset, digits.arch, digits.time_steps, digits.epochs) == ("event-digits", "dense", 16, 6)
    assert (speech.dataset, speech.arch, speech.time_steps, speech.epochs) == \
        ("event-speech", "speech", TASKS["speech"].time_steps, TASKS["speech"].epochs)
    assert DemoConfig(task="speech", epochs=2, time_steps=8).epochs == 2
    with pytest.raises(SpikeshipError, match="--arch must be speech for --task speech, not 'dense'"):
        DemoConfig(task="speech", arch="dense")
    with pytest.raises(SpikeshipError, match="--task must be one of digits, speech"):
        DemoConfig(task="words")


def test_speech_task_without_the_extra_is_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # import fails as if not installed
    monkeypatch.setattr(speech_synth, "_STATE", {})  # as in a fresh process: library not loaded
    monkeypatch.setenv("SPIKESHIP_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    assert main(["demo", "--task", "speech", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"spikeship: {speech_synth.EXTRA_MISSING}\n"
    assert not out.exists() and not (tmp_path / "cache").exists()


@needs_espeak
def test_speech_demo_end_to_end_on_a_tiny_set(tmp_path, monkeypatch, capsys):
    """train (recurrent, MSG + TWO) -> export -> emulator on the whole test split -> Lava on a subset -> parity,
    the summary and its file; the emulator's accuracy is the trained network's deployed integer decode."""
    monkeypatch.setenv("SPIKESHIP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(event_speech, "DEFAULT_CONFIG", TINY)
    s = run_demo(DemoConfig(task="speech", out=str(tmp_path / "demo"), epochs=2, time_steps=8, lava_samples=3))
    out = capsys.readouterr().out
    assert {k: v["status"] for k, v in s["steps"].items()} == dict.fromkeys(
        ("imports", "data", "train", "export", "emulator", "lava"), "ok")
    assert (s["dataset"], s["arch"], s["test_samples"], s["lava_samples"]) == ("event-speech", "speech", 20, 3)
    assert s["parity_ok"] is True and s["reports_identical"] is True
    assert s["emulator"] == s["quantized_deploy"]  # the whole test split, integer for integer
    assert s["parity_compared"] == 2 * 3 * 8 * 128  # (PyTorch, Lava) x samples x steps x recurrent neurons
    assert "first use: synthesizing the set" in out
    assert "input (12, 1, 1) (channel, 1, 1), T = 8 bins of 125.00 ms" in out
    assert "Lava (fixed_pt CPU simulator) on 3 of the 20 test samples" in out
    assert "spikeship demo: event-speech, recurrent network, T = 8, 2 epochs MSG + TWO" in out
    written = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert written["parity_ok"] is True and written["lava_samples"] == 3
    for name in ("model.net", "model.onnx", "parity.json", "report/report.json", "report-lava/report.json",
                 "train/model.pt"):
        assert (tmp_path / "demo" / name).is_file(), name
