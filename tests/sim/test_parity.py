"""Parity: the comparison itself (hand-made differences) and real PyTorch = emulator = Lava runs."""

from dataclasses import replace

import numpy as np
import pytest

from spikeship.errors import SpikeshipError
from spikeship.export.netx import read_net
from spikeship.sim.emulator import emulate
from spikeship.sim.parity import check_compatible, check_parity, compare, first_difference, plot_rasters, pytorch_run


def test_first_difference_is_sample_major_then_step():
    a = np.zeros((3, 4, 5), np.uint8)
    b = a.copy()
    assert first_difference(a, b) is None
    b[2, 0, 1] = 1
    b[1, 3, 4] = 1
    assert first_difference(a, b) == (1, 4)


@pytest.fixture
def runs(dense_case):
    """The emulator's run, PyTorch's, and a copy of the emulator's standing in for what Lava must give."""
    path, model, inputs, labels, two = dense_case
    net = read_net(path)
    emu = emulate(net, inputs)
    lava = replace(emu, backend="lava", windows=tuple(w.copy() for w in emu.windows), readout=emu.readout.copy())
    return net, emu, lava, pytorch_run(model, net, inputs)


def test_compare_equal_runs(runs):
    net, emu, lava, py = runs
    r = compare(net, emu, {"lava": lava}, py, np.zeros(emu.samples, int))
    assert r.ok and r.first_mismatch is None
    for layer in r.layers:
        assert layer.compared == layer.equal
        assert layer.spikes["lava-emulator"][0] == layer.spikes["lava-emulator"][1] > 0
        assert layer.spikes["pytorch-emulator"][0] == layer.spikes["pytorch-emulator"][1] > 0
    assert r.readout_equal == {"pytorch-emulator-steps": True, "pytorch-emulator": True, "lava-emulator": True}
    assert len(set(r.accuracy.values())) == 1 and set(r.accuracy) == {"emulator", "pytorch", "lava"}


def test_compare_names_the_lowest_layer_then_sample_then_step(runs):
    net, emu, lava, py = runs
    lava.windows[2][3, 5, 4] ^= 1  # Lava window index 4 of layer 2 is tau = 6
    lava.windows[2][1, 0, 6] ^= 1
    r = compare(net, emu, {"lava": lava}, py)
    assert not r.ok
    m = r.first_mismatch
    assert (m.pair, m.layer, m.sample, m.step) == ("lava-emulator", 2, 1, 8)
    assert r.layers[2].equal["lava-emulator"] == r.layers[2].compared["lava-emulator"] - 2
    py.spikes[1][7, 3, 5] ^= 1  # slayer's y_1[5] is tau = 4
    m = compare(net, emu, {"lava": lava}, py).first_mismatch
    assert (m.pair, m.layer, m.sample, m.step) == ("pytorch-emulator", 1, 7, 4)
    assert "layer 1, sample 7, step 4" in m.line()


def test_compare_reports_readout_only_differences(runs):
    net, emu, lava, py = runs
    lava.readout[4, 2] += 1
    m = compare(net, emu, {"lava": lava}, py).first_mismatch
    assert (m.pair, m.layer, m.sample, m.step) == ("lava-emulator", "accumulator", 4, None)


def test_a_checkpoint_and_a_file_of_different_networks_are_refused_before_running(dense_case, conv_case):
    with pytest.raises(SpikeshipError, match=r"^the checkpoint and the .net file are different networks: input "):
        check_compatible(dense_case[1], read_net(conv_case[0]))


@pytest.mark.parametrize("case", ["dense_case", "conv_case", "recurrent_case", "mixed_case", "conv_recurrent_case"])
def test_parity_pytorch_emulator_lava_over_20_samples(case, request, tmp_path):
    path, model, inputs, labels, _ = request.getfixturevalue(case)
    assert len(inputs) >= 20
    net = read_net(path)
    run = check_parity(net, model, inputs, labels)
    r = run.result
    assert r.ok, r.first_mismatch.line()
    for layer in r.layers:
        assert set(layer.compared) == {"pytorch-emulator", "lava-emulator"}
        assert layer.equal == layer.compared
        assert layer.spikes["lava-emulator"][0] > 0
    assert all(r.readout_equal.values()) and all(r.predictions_equal.values())
    assert r.accuracy["pytorch"] == r.accuracy["emulator"] == r.accuracy["lava"]
    plot_rasters(run, net, tmp_path / "raster.png")
    assert (tmp_path / "raster.png").stat().st_size > 10_000
