"""`spikeship import` end to end: a graph written as snnTorch writes it -> checkpoint -> export -> Lava, parity exact;
metadata defaults; fine-tuning with `train --init`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nir_graphs import digits_graph, write
from spikeship.cli import main
from spikeship.export.netx import read_net
from spikeship.train.checkpoint import load_checkpoint


def test_snntorch_graph_to_lava_with_parity(tmp_path, capsys):
    nir_path = write(digits_graph(), tmp_path / "snn.nir")
    ckpt, net = tmp_path / "model.pt", tmp_path / "model.net"
    assert main(["import", str(nir_path), "--out", str(ckpt), "--dt", "1e-4", "--dataset", "event-digits",
                 "--time-steps", "8", "--samples", "6"]) == 0
    out = capsys.readouterr().out
    assert "Input -> Flatten -> Linear -> CubaLIF -> Linear -> CubaLIF -> Output; dt = 0.0001 s (--dt), T = 8" in out
    assert "layer 0 dense 2312 -> 12 from '1', '2' (CubaLIF, gain 1): current decay 0.5 -> 2048/4096 (exact); " \
           "voltage decay 0.1 -> 410/4096 (tau 0.000999 s, -0.10%)" in out
    assert "readout 10 -> 10: spike count: identity readout of layer 1's spikes, uniform TWO weights (exact)" in out
    assert "check on 6 test samples of event-digits:" in out and "spikes vs the float reference: layer 0 " in out
    card = load_checkpoint(ckpt).config["import"]
    assert card["dt"] == 1e-4 and card["dt_from"] == "--dt" and card["two_weights"] == "uniform (a_t = 1)"
    assert [layer["nodes"] for layer in card["layers"]] == [["1", "2"], ["3", "4"]]
    assert "reset to zero without delay" in card["reset"] and "forward Euler" in card["discretization"]
    assert "truncating each decay product" in card["errors"]
    assert main(["export", str(ckpt), "--out", str(net)]) == 0
    deployed = read_net(net)
    assert deployed.dataset == "event-digits" and deployed.model_card["config"]["import"] == card
    np.testing.assert_array_equal(deployed.two_weights, [0, 0, 64, 64, 64, 64, 64, 64])
    capsys.readouterr()
    assert main(["export", "--inspect", str(net)]) == 0
    assert f"imported from NIR {nir_path} at dt = 0.0001 s; readout: spike count: identity readout of layer 1's " \
           "spikes" in capsys.readouterr().out
    assert main(["parity", str(ckpt), str(net), "--samples", "3", "--no-progress"]) == 0
    assert "parity: all equal over 3 samples x 8 steps x 2 layers" in capsys.readouterr().out


def test_metadata_gives_dt_data_set_classes_and_two_weights(tmp_path, capsys):
    graph = digits_graph(readout="affine")
    two = np.linspace(0.2, 1.8, 10)
    names = [f"digit {i}" for i in range(10)]
    graph.metadata = {"dt": 1e-4, "two_weights": two, "dataset": "event-digits", "class_names": json.dumps(names)}
    ckpt = tmp_path / "model.pt"
    assert main(["import", str(write(graph, tmp_path / "g.nir")), "--out", str(ckpt), "--samples", "0"]) == 0
    out = capsys.readouterr().out
    assert "dt = 0.0001 s (graph metadata), T = 10, data set event-digits" in out
    assert "readout 12 -> 10: node '5' kept as the non-spiking readout" in out and "check on" not in out
    c = load_checkpoint(ckpt)
    assert c.class_names == tuple(names) and np.allclose(c.two_weights, two) and c.time_steps == 10
    assert c.epoch == 0 and c.optimizer_state is None and c.config["import"]["two_weights"] == "graph metadata"


def test_fine_tune_an_imported_network_with_train_init(tmp_path, capsys):
    ckpt = tmp_path / "model.pt"
    assert main(["import", str(write(digits_graph(), tmp_path / "g.nir")), "--out", str(ckpt), "--dt", "1e-4",
                 "--dataset", "event-digits", "--time-steps", "6", "--samples", "0"]) == 0
    start = load_checkpoint(ckpt)
    run = tmp_path / "tuned"
    assert main(["train", "--init", str(ckpt), "--epochs", "1", "--max-samples", "16", "--batch-size", "8",
                 "--out", str(run), "--quiet"]) == 0
    tuned = load_checkpoint(run / "model.pt")
    assert tuned.spec == start.spec and tuned.time_steps == 6 and tuned.dataset == "event-digits"
    assert tuned.config["init"] == str(ckpt) and tuned.config["import"] == start.config["import"]
    assert tuned.metrics["arch"] == f"init:{ckpt}"
    moved = [k for k in start.state_dict if "synapse.weight" in k or k == "readout.weight"]
    assert any(not torch.equal(start.state_dict[k], tuned.state_dict[k]) for k in moved)
    capsys.readouterr()
    # the network comes from --init or --config, not both (argparse's check, as one line)
    assert main(["train", "--init", str(ckpt), "--config", "x.toml", "--out", str(run)]) == 2
    assert capsys.readouterr().err == ("spikeship: train: argument --config: not allowed with argument --init "
                                       "(see `spikeship train --help`)\n")


@pytest.mark.parametrize("out, message", [
    ("missing/model.pt", "output folder does not exist: {tmp}/missing"),
    (".", "cannot write {tmp}: it is a folder"),
])
def test_a_bad_out_is_reported_before_the_graph_is_read(out, message, tmp_path, monkeypatch, capsys):
    """--out is checked first: a folder that does not exist or a folder given as the file is the one line, even
    when the graph (here a file that is not NIR at all) would fail too; nothing is written."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "garbage.nir").write_bytes(b"not hdf5")
    assert main(["import", "garbage.nir", "--out", str(tmp_path / out), "--dt", "1e-4"]) == 2
    assert capsys.readouterr().err == "spikeship: " + message.format(tmp=tmp_path) + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.nir"]
