import json
import shutil

import h5py
import pytest

from spikeship.cli import main
from nets import make_checkpoint_case


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return make_checkpoint_case(tmp_path_factory.mktemp("ckpt"))


def test_parity_passes_and_writes_json_and_rasters(exported, tmp_path, capsys):
    ckpt, net = exported
    out, plot = tmp_path / "parity.json", tmp_path / "raster.png"
    assert main(["parity", str(ckpt), str(net), "--samples", "20", "--out", str(out), "--plot", str(plot),
                 "--no-progress"]) == 0
    d = json.loads(out.read_text())
    assert d["ok"] is True and d["first_mismatch"] is None and d["samples"] == 20
    assert all(layer["equal"] == layer["compared"] for layer in d["layers"])
    assert d["accuracy"]["pytorch"] == d["accuracy"]["emulator"] == d["accuracy"]["lava"]
    assert plot.stat().st_size > 10_000
    assert "parity: all equal over 20 samples" in capsys.readouterr().out


def test_parity_names_the_first_difference_and_exits_1(exported, tmp_path, capsys):
    ckpt, net = exported
    tampered = tmp_path / "tampered.net"
    shutil.copy(net, tampered)
    with h5py.File(tampered, "r+") as f:
        w = f["layer/1/weight"]
        w[...] = -w[()]  # layer 1 (the second spiking layer) changes in the .net only
    code = main(["parity", str(ckpt), str(tampered), "--samples", "20", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1
    assert err[0].startswith("parity: pytorch-emulator differ first at layer 1, sample ")
    assert ", step " in err[0]


def test_parity_of_pytorch_and_the_emulator_alone(exported, tmp_path, capsys):
    """`--backend emulator`: PyTorch against the emulator only (what a machine without Lava can check, e.g.
    with --device cuda on a GPU)."""
    ckpt, net = exported
    out = tmp_path / "parity.json"
    assert main(["parity", str(ckpt), str(net), "--samples", "8", "--backend", "emulator", "--out", str(out),
                 "--no-progress"]) == 0
    d = json.loads(out.read_text())
    assert d["ok"] is True and set(d["accuracy"]) == {"pytorch", "emulator"}
    assert "parity: all equal over 8 samples" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["run", "report", "parity"])
def test_device_cuda_without_a_gpu_is_one_line_before_any_work(exported, tmp_path, capsys, command):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: tests/sim/test_engines.py runs on it")
    ckpt, net = exported
    args = {"run": ["run", str(net), "--backend", "emulator"], "report": ["report", str(net), "--out", str(tmp_path)],
            "parity": ["parity", str(ckpt), str(net)]}[command]
    assert main(args + ["--device", "cuda", "--samples", "2"] + ([] if command == "report" else ["--no-progress"])) == 2
    err = capsys.readouterr().err.strip()
    assert err == "spikeship: --device cuda: no CUDA device is available here (use --device cpu)"


def test_device_cuda_is_refused_for_lava(exported, capsys):
    _, net = exported
    assert main(["run", str(net), "--backend", "lava", "--device", "cuda", "--samples", "2", "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == ("spikeship: the lava backend runs on cpu, not --device cuda "
                                               "(that is for the emulator)")
