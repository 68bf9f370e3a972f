"""The report stage on real exported .net files: counts from the run, Lava == emulator, files and CLI."""

import json

import numpy as np
import pytest
import torch

from spikeship.cli import main
from spikeship.backends import RunOptions
from spikeship.export.netx import read_net
from spikeship.report import counted_layers, counts_only, render_markdown, report_on_inputs, write_report
from spikeship.sim.emulator import emulate
from nets import make_case, make_checkpoint_case


@pytest.fixture(scope="module")
def conv_case(tmp_path_factory):
    return make_case("conv", tmp_path_factory.mktemp("conv"), samples=6)


@pytest.fixture(scope="module")
def emulator_report(conv_case):
    path, _model, inputs, labels, _two = conv_case
    net = read_net(path)
    report, raster = report_on_inputs(net, inputs, labels, "emulator", {"backend": "emulator"}, batch_size=4)
    return net, inputs, labels, report, raster


def test_layers_of_the_exported_file_keep_their_kind(conv_case):
    net = read_net(conv_case[0])
    names = [name for name, _ in counted_layers(net)]
    assert names == ["0:conv", "1:pool", "2:conv", "3:dense", "readout"]
    g = dict(counted_layers(net))
    assert g["1:pool"].groups == 6 and g["1:pool"].stride == (2, 2) and g["1:pool"].kernel == (2, 2)
    assert g["0:conv"].padding == (1, 1) and g["2:conv"].padding == (0, 0)
    assert g["readout"].shape == (5,)


def test_counts_equal_an_independent_count_from_the_emulator(emulator_report):
    net, inputs, labels, report, _ = emulator_report
    res = emulate(net, inputs, record_spikes=True)
    T = net.time_steps
    windows = [w.astype(np.float64) for w in res.windows]
    layers = report["layers"]
    # spikes: the emulator's own per-window counts
    for k in range(net.num_layers):
        assert layers[k]["spikes"]["total"] == int(res.counts[:, k].sum())
        assert layers[k]["spikes"]["mean"] == pytest.approx(res.counts[:, k].mean())
    # SynOps, recomputed with torch: each layer's input convolved with an all-ones kernel, summed
    sources = [inputs.astype(np.float64)] + windows
    for k, layer in enumerate(net.layers):
        x = torch.from_numpy(sources[k].sum(-1))
        if len(layer.input_shape) == 3:
            ones = torch.ones(layer.weight.shape, dtype=torch.float64)
            expected = torch.nn.functional.conv2d(x, ones, stride=layer.stride, padding=layer.padding,
                                                  groups=layer.groups).sum().item()
        else:
            expected = x.sum().item() * layer.weight.shape[0]
        assert layers[k]["synops"]["total"] == int(expected), k
    assert layers[-1]["synops"]["total"] == int(windows[-1].sum()) * net.num_classes
    assert report["totals"]["input_events"]["total"] == int(inputs.sum())
    assert report["totals"]["correct"] == int((res.predictions == labels).sum())
    for layer in layers:
        assert layer["neuron_updates"] == layer["neurons"] * T
        assert 0 < layer["active_updates"]["total"] <= layer["neuron_updates"] * len(inputs)


def test_report_does_not_depend_on_batching(conv_case, emulator_report):
    net, inputs, labels, report, _ = emulator_report
    again, _ = report_on_inputs(net, inputs, labels, "emulator", {"backend": "emulator"}, batch_size=64)
    assert counts_only(again) == counts_only(report)


def test_energy_totals_add_up(emulator_report):
    report = emulator_report[3]
    t = report["totals"]
    for key in ("loihi", "ann_fp32", "ann_int8", "snn_ac_fp32"):
        assert t["energy_pj"][key] == pytest.approx(sum(x["energy_pj"][key] for x in report["layers"]))
    first = report["layers"][0]
    assert first["energy_pj"]["ann_fp32"] == pytest.approx(first["ann_macs"] * 4.6)
    assert first["energy_pj"]["snn_ac_int8"] == pytest.approx(first["synops"]["mean"] * 0.03)
    terms = first["energy_pj"]["loihi_terms"]
    assert terms["synops"] == pytest.approx(first["synops"]["mean"] * 23.6)
    assert terms["spikes"] == pytest.approx(first["spikes_in"]["mean"] * 1.7)
    active = first["active_updates"]["mean"]
    assert terms["updates"] == pytest.approx(active * 81 + (first["neuron_updates"] - active) * 52)
    assert t["latency_steps"] == report["time_steps"] and t["pipeline_depth_steps"] == 5
    assert t["ann_steps"] == 1  # feed-forward: the ANN reference runs once per inference


def test_lava_and_emulator_reports_are_identical(conv_case, emulator_report):
    net, inputs, labels, report, _ = emulator_report
    lava, _ = report_on_inputs(net, inputs[:4], labels[:4], "lava", {"backend": "lava"}, RunOptions(workers=2))
    emu, _ = report_on_inputs(net, inputs[:4], labels[:4], "emulator", {"backend": "emulator"})
    assert lava["totals"]["spikes"]["total"] > 0
    assert counts_only(lava) == counts_only(emu)
    assert lava["meta"] != emu["meta"]


def test_files_and_markdown(emulator_report, tmp_path):
    report, raster = emulator_report[3], emulator_report[4]
    paths = write_report(report, tmp_path / "rep", raster)
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == ["energy.png", "raster.png", "report.json",
                                                                    "report.md"]
    for key in ("energy", "raster"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(paths["json"].read_text()) == json.loads(json.dumps(report))
    md = render_markdown(report)
    assert "No per-operation energy figures are published for Loihi 2" in md
    for c in report["constants"]:
        assert f"| {c['name']} | {c['value']:,} | {c['unit']} | {c['source']} |" in md
    assert md.count("\n| 0:conv |") == 1 and "| **total** |" in md


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return make_checkpoint_case(tmp_path_factory.mktemp("ckpt"))


def test_report_cli_on_event_digits(exported, tmp_path, capsys):
    _, net = exported
    out = tmp_path / "rep"
    assert main(["report", str(net), "--samples", "4", "--backend", "emulator", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "energy per inference: Loihi table" in printed and str(out / "report.md") in printed
    report = json.loads((out / "report.json").read_text())
    assert report["totals"]["samples"] == 4 and report["meta"]["dataset"] == "event-digits"
    assert len(report["meta"]["sample_indices"]) == 4
    assert (out / "raster.png").is_file() and (out / "energy.png").is_file()


def test_report_cli_errors(exported, tmp_path, capsys):
    _, net = exported
    (tmp_path / "file").write_text("x")
    assert main(["report", str(net), "--out", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"spikeship: --out {tmp_path / 'file'} is a file; the report needs a folder"
    assert main(["report", str(tmp_path / "missing.net"), "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["report", str(net), "--samples", "0", "--out", str(tmp_path)]) == 2
    assert "--samples must be at least 1" in capsys.readouterr().err
    assert main(["report", str(net), "--samples", "100000", "--out", str(tmp_path)]) == 2
    assert "asked for 100000 samples" in capsys.readouterr().err
