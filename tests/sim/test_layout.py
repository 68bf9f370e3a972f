import numpy as np

from spikeship.sim import layout


def test_windows_follow_the_pipeline_delay():
    T = 8
    assert layout.layer_window(0, 0, T) == (1, 9)
    assert layout.layer_window(2, 3, T) == (2 * 8 + 3 + 1, 2 * 8 + 3 + 1 + 8)
    assert layout.window_taus(3, T) == slice(3, 11)
    assert layout.lava_steps(5, T, 3) == 43
    assert layout.isolated_steps(T, 3) == 11


def test_readout_steps_map_global_steps_to_sample_and_t():
    T = 6
    assert layout.readout_step(0, T) == (-1, 5)  # before the first sample: previous-sample slot
    assert layout.readout_step(1, T) == (0, 0)
    assert layout.readout_step(6, T) == (0, 5)
    assert layout.readout_step(7, T) == (1, 0)
    assert layout.readout_done_step(0, T) == 6
    assert layout.readout_done_step(3, T) == 24
    for j in range(4):
        assert layout.readout_step(layout.readout_done_step(j, T), T) == (j, T - 1)


def test_slayer_view_is_the_one_step_shift():
    s = np.arange(2 * 11).reshape(2, 11)
    y = layout.slayer_view(s, 8)
    assert y.shape == (2, 8)
    assert (y[:, 0] == 0).all()
    assert np.array_equal(y[:, 1:], s[:, :7])
    assert np.array_equal(layout.isolated_from_slayer(y), s[:, :7])


def test_chw_whc_round_trip():
    x = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)  # C, H, W, T
    w = layout.chw_to_whc(x)
    assert w.shape == (4, 3, 2, 5)
    assert w[3, 1, 0, 2] == x[0, 1, 3, 2]
    assert np.array_equal(layout.whc_to_chw(w), x)
    dense = np.arange(6).reshape(3, 2)
    assert layout.to_lava_layout((3,), dense) is dense
    assert np.array_equal(layout.from_lava_layout((2, 3, 4), layout.to_lava_layout((2, 3, 4), x)), x)
