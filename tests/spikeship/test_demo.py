"""The demo's bookkeeping: a missing or failing stage is reported as such, never filled in.

The demo itself (train, export, Lava, parity, report; 1.5-2.5 minutes) runs in `make demo`, not here."""

import pytest

from spikeship.demo import DemoConfig, Step, print_summary
from spikeship.errors import SpikeshipError


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
