"""`spikeship export`: checkpoint -> .net (+ ONNX), --inspect, and one-line errors with exit 2."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from nets import two_for
from spikeship.cli import main
from spikeship.export.netx import read_net
from spikeship.train.checkpoint import save_checkpoint
from spikeship.train.model import LayerSpec, ModelSpec, NeuronSpec, SpikeNet


def _checkpoint(net, path, time_steps=8):
    return save_checkpoint(path, spec=net.spec, state_dict=net.state_dict(), two_weights=two_for(net, time_steps),
                           dataset="event-digits", data_dir=None, time_steps=time_steps,
                           class_names=[f"c{i}" for i in range(net.spec.num_classes)],
                           config={"epochs": 3, "lr": 0.001}, metrics={"test_accuracy": 0.75}, epoch=3)


def test_export_writes_net_and_onnx(conv_net, tmp_path, capsys):
    ckpt = _checkpoint(conv_net, tmp_path / "run" / "model.pt")
    out, onnx_path = tmp_path / "model.net", tmp_path / "model.onnx"
    assert main(["export", str(ckpt), "--out", str(out), "--onnx", str(onnx_path)]) == 0
    assert "exported 4 spiking layers, T = 8" in capsys.readouterr().out
    nf = read_net(out)
    assert nf.class_names == ("c0", "c1", "c2")
    card = nf.model_card
    assert card["dataset"] == "event-digits" and card["metrics"] == {"test_accuracy": 0.75}
    assert card["config"] == {"epochs": 3, "lr": 0.001} and card["epoch"] == 3 and card["time_steps"] == 8
    assert card["spec"]["layers"][1]["kind"] == "pool"
    assert nf.two_weights.tolist() == [0, 0, 0, 0, 69, 78, 87, 96]
    onnx.checker.check_model(onnx.load(str(onnx_path)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.net", "model.onnx", "run"]


def test_inspect(conv_net, tmp_path, capsys):
    ckpt = _checkpoint(conv_net, tmp_path / "model.pt")
    out = tmp_path / "model.net"
    assert main(["export", str(ckpt), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["export", "--inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "input (C, H, W) (2, 6, 6), T = 8, 3 classes: c0, c1, c2" in text
    assert "model card: dataset event-digits, epoch 3, test_accuracy 0.75" in text
    lines = text.splitlines()
    pool = next(line for line in lines if "pool->conv" in line)
    assert "(3, 6, 6) -> (3, 3, 3)" in pool and "k2x2 s2 p0 g3" in pool and "[64, 64]" in pool
    assert "TWO weights (x64): 0 0 0 0 69 78 87 96" in text
    assert "about 4 of 128 Loihi 1 cores" in text
    assert "checks: all Loihi limits hold" in text


@pytest.mark.parametrize("content", [b"", b"garbage, not a zip", "torch-dict"])
def test_bad_checkpoint_is_one_line_exit_2(tmp_path, capsys, content):
    bad = tmp_path / "model.pt"
    if content == "torch-dict":
        torch.save({"weights": torch.zeros(3)}, bad)  # a valid torch file, not a spikeship checkpoint
    else:
        bad.write_bytes(content)
    out = tmp_path / "model.net"
    assert main(["export", str(bad), "--out", str(out), "--onnx", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spikeship: ") and "model.pt" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def _broken_checkpoint(tmp_path):
    """A checkpoint whose stored current decay was edited to 0 (training refuses it; export must too)."""
    net = SpikeNet(ModelSpec((1, 2, 2), 2, (LayerSpec("dense", 3),)))
    with torch.no_grad():
        net.blocks[0].neuron.current_decay.fill_(0.0)
    return _checkpoint(net, tmp_path / "model.pt", time_steps=4)


def test_refused_export_writes_neither_file(tmp_path, capsys):
    ckpt = _broken_checkpoint(tmp_path)
    assert main(["export", str(ckpt), "--out", str(tmp_path / "m.net"), "--onnx", str(tmp_path / "m.onnx")]) == 2
    assert "layer 0 (dense): iDecay 0 outside [1, 4096]" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_an_onnx_path_that_cannot_be_written_leaves_no_net_either(conv_net, tmp_path, capsys):
    ckpt = _checkpoint(conv_net, tmp_path / "model.pt")
    (tmp_path / "folder.onnx").mkdir()
    assert main(["export", str(ckpt), "--out", str(tmp_path / "m.net"), "--onnx", str(tmp_path / "folder.onnx")]) == 2
    assert capsys.readouterr().err.strip() == f"spikeship: cannot write {tmp_path / 'folder.onnx'}: it is a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.onnx", "model.pt"]


def test_inspect_of_a_file_that_fails_the_checks_describes_it_and_exits_2(conv_net, tmp_path, capsys):
    import h5py

    ckpt = _checkpoint(conv_net, tmp_path / "model.pt")
    out = tmp_path / "model.net"
    assert main(["export", str(ckpt), "--out", str(out)]) == 0
    with h5py.File(out, "a") as f:
        f["layer/0/neuron/vThMant"][()] = 0
    capsys.readouterr()
    assert main(["export", "--inspect", str(out)]) == 2
    captured = capsys.readouterr()
    assert "TWO weights (x64)" in captured.out
    assert captured.err.strip() == (f"spikeship: {out}: fails the checks: layer 0 (conv): vThMant 0 outside "
                                    "[1, 131071]")


@pytest.mark.parametrize("argv, message", [
    (["export"], "needs a checkpoint"),
    (["export", "x.pt"], "needs --out"),
    (["export", "x.pt", "--inspect", "m.net"], "--inspect takes only"),
])
def test_usage_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_inspect_of_a_non_net_file(tmp_path, capsys):
    bad = tmp_path / "model.net"
    bad.write_bytes(b"nope")
    assert main(["export", "--inspect", str(bad)]) == 2
    assert "not a netx .net file (not HDF5)" in capsys.readouterr().err


def test_output_path_that_is_a_folder(conv_net, tmp_path, capsys):
    ckpt = _checkpoint(conv_net, tmp_path / "model.pt")
    (tmp_path / "taken").mkdir()
    assert main(["export", str(ckpt), "--out", str(tmp_path / "taken")]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "taken"]
