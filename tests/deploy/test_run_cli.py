import json

import pytest

from spikeship.cli import main
from nets import make_checkpoint_case


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return make_checkpoint_case(tmp_path_factory.mktemp("ckpt"))


def test_run_lava_and_emulator_agree(exported, tmp_path, capsys):
    _, net = exported
    outs = {}
    for backend, extra in (("lava", ["--workers", "2"]), ("emulator", [])):
        out = tmp_path / f"{backend}.json"
        assert main(["run", str(net), "--samples", "12", "--backend", backend, "--out", str(out),
                     "--no-progress"] + extra) == 0
        outs[backend] = json.loads(out.read_text())
    lava, emu = outs["lava"], outs["emulator"]
    assert lava["samples"] == emu["samples"] == 12
    for key in ("accuracy", "correct", "predictions", "labels", "readout", "sample_indices"):
        assert lava[key] == emu[key], key
    assert lava["spike_counts"]["per_sample"] == emu["spike_counts"]["per_sample"]
    assert len(lava["spike_counts"]["per_sample"]) == 12 and len(lava["spike_counts"]["layers"]) == 2
    assert sum(map(sum, lava["spike_counts"]["per_sample"])) > 0
    assert lava["workers"] == 2 and lava["wall_s"] > 0 and lava["steps_per_s"] > 0
    assert "accuracy" in capsys.readouterr().out


def test_more_samples_than_the_split_has(exported, capsys):
    _, net = exported
    assert main(["run", str(net), "--samples", "100000", "--backend", "lava", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spikeship: asked for 100000 samples; the test split of event-digits has")
    assert "\n" not in err


def test_not_a_net_file(tmp_path, capsys):
    p = tmp_path / "model.net"
    p.write_text("hello")
    assert main(["run", str(p), "--samples", "2", "--no-progress"]) == 2
    assert "not a netx .net file" in capsys.readouterr().err


def test_data_that_does_not_fit_the_network(dense_case, capsys):
    # dense_case takes 2 x 4 x 4 inputs; event-digits frames are 2 x 34 x 34
    assert main(["run", str(dense_case[0]), "--dataset", "event-digits", "--samples", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not match the network input" in err and "\n" not in err


def test_a_file_that_names_no_data_set_needs_one(dense_case, capsys):
    assert main(["run", str(dense_case[0]), "--samples", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("spikeship: the .net file's model card names no data set; give --dataset NAME "
                   "(event-digits, event-speech, nmnist, dvsgesture, shd)")


def test_the_data_set_comes_from_the_model_card(tmp_path, capsys):
    """A network trained on nmnist is run on nmnist by default, never silently on event-digits (same shape)."""
    from nets import random_model, random_two_weights, write_net

    model = random_model((2, 34, 34), 10, (("dense", 8),), seed=1)
    net = write_net(model, random_two_weights(8, 1), tmp_path / "n.net",
                    model_card={"dataset": "nmnist", "config": {"data_dir": str(tmp_path / "nowhere")}})
    assert main(["run", str(net), "--samples", "2", "--no-progress"]) == 2
    assert "nmnist: no such folder in" in capsys.readouterr().err
