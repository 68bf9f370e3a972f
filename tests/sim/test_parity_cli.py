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
