"""A recurrent network on SHD from a folder, through every stage by the real CLI: train (``--arch speech``),
export (.net and ONNX), run in Lava, parity, report. The SHD files are tiny but in the real format (tonic reads
them); each class fires its own band of the 700 channels, so one epoch learns something."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from spikeship.cli import main
from spikeship.export.netx import read_net
from tonic_files import write_shd_h5

T = 10


def write_tiny_shd(root, train: int = 16, test: int = 8, classes: int = 4) -> None:
    rng = np.random.default_rng(0)
    band = 700 // classes
    for split, n in (("train", train), ("test", test)):
        times, units, labels = [], [], []
        for i in range(n):
            label = i % classes
            units.append(rng.integers(label * band, (label + 1) * band, 300))
            times.append(np.sort(rng.uniform(0.0, 0.8, 300)))
            labels.append(label)
        write_shd_h5(root / f"SHD/shd_{split}.h5", times, units, labels)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("speech")
    write_tiny_shd(folder / "data")
    run = folder / "run"
    assert main(["train", "--quiet", "--dataset", "shd", "--data-dir", str(folder / "data"), "--arch", "speech",
                 "--epochs", "1", "--time-steps", str(T), "--batch-size", "8", "--out", str(run)]) == 0
    assert main(["export", str(run / "model.pt"), "--out", str(folder / "m.net"), "--onnx", str(folder / "m.onnx")]) == 0
    return folder


def test_the_exported_speech_network_is_a_netx_recurrent_layer(trained, capsys):
    net = read_net(trained / "m.net")
    assert net.dataset == "shd" and net.feed_shape == (700,) and net.time_steps == T
    assert [layer.kind for layer in net.layers] == ["recurrent"]
    assert net.layers[0].weight.shape == (128, 700) and net.layers[0].recurrent_weight.shape == (128, 128)
    with h5py.File(trained / "m.net", "r") as f:
        assert f["layer/0/type"][0] == b"dense_rec" and f["layer/0/weight_rec"].shape == (128, 128)
    assert (trained / "m.onnx").stat().st_size > 0
    capsys.readouterr()
    assert main(["export", "--inspect", str(trained / "m.net")]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(" 0 "))
    assert row.split()[1] == "recurrent->dense_rec" and " recurrent [" in row and row.split()[-4] == str(700 + 128)


def test_run_parity_and_report_default_to_the_speech_data(trained, capsys):
    """No --dataset or --data-dir: run, parity and report take SHD and its folder from the model card and the
    checkpoint (never event-digits)."""
    net = str(trained / "m.net")
    assert main(["run", net, "--backend", "lava", "--samples", "6", "--out", str(trained / "run.json"),
                 "--no-progress"]) == 0
    run = json.loads((trained / "run.json").read_text())
    assert run["dataset"] == "shd" and run["samples"] == 6 and sum(map(sum, run["spike_counts"]["per_sample"])) > 0

    assert main(["parity", str(trained / "run" / "model.pt"), net, "--samples", "6",
                 "--out", str(trained / "parity.json"), "--no-progress"]) == 0
    parity = json.loads((trained / "parity.json").read_text())
    assert parity["ok"] and parity["dataset"] == "shd"
    (layer,) = parity["layers"]
    assert layer["kind"] == "recurrent" and layer["equal"] == layer["compared"]
    assert layer["compared"]["lava-emulator"] == 6 * 128 * T and layer["spikes"]["lava-emulator"][0] > 0

    assert main(["report", net, "--backend", "lava", "--samples", "6", "--out", str(trained / "rep")]) == 0
    report = json.loads((trained / "rep" / "report.json").read_text())
    assert report["meta"]["dataset"] == "shd"
    rec = report["layers"][0]
    assert rec["synapses"] == 700 * 128 + 128 * 128 and rec["max_fan_in"] == 700 + 128
    # the ANN reference of a recurrent network is an RNN stepped over the T frames
    assert report["totals"]["ann_steps"] == T and rec["ann_macs"] == (700 * 128 + 128 * 128) * T
    assert report["totals"]["ann_macs"] == (700 * 128 + 128 * 128 + 128 * report["layers"][1]["shape"][0]) * T
    assert rec["spikes_in_recurrent"] == rec["spikes"]
    assert rec["synops"]["total"] == 128 * (rec["spikes_in"]["total"] + rec["spikes"]["total"])
    assert report["layers"][1]["spikes_in_recurrent"] is None  # the readout
    assert rec["spikes"]["total"] == sum(s[0] for s in run["spike_counts"]["per_sample"])  # same 6 samples
    capsys.readouterr()
