import numpy as np
import pytest

from spikeship.sim import layout
from spikeship.sim.emulator import emulate
from spikeship.sim.netfile import read_net
from spikeship.sim.parity import Views, check_parity, compare, first_difference, plot_rasters, pytorch_views


def test_first_difference_is_sample_major_then_step():
    a = np.zeros((3, 4, 5), np.uint8)
    b = a.copy()
    assert first_difference(a, b) is None
    b[2, 0, 1] = 1
    b[1, 3, 4] = 1
    assert first_difference(a, b) == (1, 4)


@pytest.fixture
def views(dense_case):
    path, model, inputs, labels, two = dense_case
    net = read_net(path)
    emu = emulate(net, inputs)
    py_spikes, py_steps, py_acc = pytorch_views(model, inputs, two)
    T = net.time_steps
    lava = [s[..., layout.window_taus(k, T)].copy() for k, s in enumerate(emu.spikes)]  # what Lava must give
    return Views(T, emu.spikes, emu.readout_steps, emu.readout, py_spikes, py_steps, py_acc, lava, emu.readout.copy())


def test_compare_equal_views(views):
    r = compare(views, np.zeros(views.emulator_readout.shape[0], int))
    assert r.ok and r.first_mismatch is None
    for layer in r.layers:
        assert layer.compared == layer.equal
        assert layer.spikes["lava_window"] == layer.spikes["emulator_window"] > 0
    assert r.readout_equal == {"pytorch-emulator-steps": True, "pytorch-emulator": True, "lava-emulator": True}
    assert len(set(r.accuracy.values())) == 1


def test_compare_names_the_lowest_layer_then_sample_then_step(views):
    views.lava_spikes[2][3, 5, 4] ^= 1  # Lava window index 4 of layer 2 is tau = 6
    views.lava_spikes[2][1, 0, 6] ^= 1
    r = compare(views)
    assert not r.ok
    m = r.first_mismatch
    assert (m.pair, m.layer, m.sample, m.step) == ("lava-emulator", 2, 1, 8)
    assert r.layers[2].equal["lava-emulator"] == r.layers[2].compared["lava-emulator"] - 2
    views.pytorch_spikes[1][7, 3, 5] ^= 1  # slayer's y_1[5] is tau = 4
    m = compare(views).first_mismatch
    assert (m.pair, m.layer, m.sample, m.step) == ("pytorch-emulator", 1, 7, 4)
    assert "layer 1, sample 7, step 4" in m.line()


def test_compare_reports_readout_only_differences(views):
    views.lava_readout[4, 2] += 1
    m = compare(views).first_mismatch
    assert (m.pair, m.layer, m.sample, m.step) == ("lava-emulator", "accumulator", 4, None)


@pytest.mark.parametrize("case", ["dense_case", "conv_case"])
def test_parity_pytorch_emulator_lava_over_20_samples(case, request, tmp_path):
    path, model, inputs, labels, _ = request.getfixturevalue(case)
    assert len(inputs) >= 20
    r, views = check_parity(path, model, inputs, labels)
    assert r.ok, r.first_mismatch.line()
    for layer in r.layers:
        assert set(layer.compared) == {"pytorch-emulator", "lava-emulator"}
        assert layer.equal == layer.compared
        assert layer.spikes["lava_window"] > 0
    assert all(r.readout_equal.values()) and all(r.predictions_equal.values())
    assert r.accuracy["pytorch"] == r.accuracy["emulator"] == r.accuracy["lava"]
    plot_rasters(views, tmp_path / "raster.png")
    assert (tmp_path / "raster.png").stat().st_size > 10_000
