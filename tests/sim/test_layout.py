import numpy as np

from spikeship.sim import layout


def test_windows_follow_the_pipeline_delay():
    T = 8
    assert layout.layer_window(0, 0, T) == (1, 9)
    assert layout.layer_window(2, 3, T) == (2 * 8 + 3 + 1, 2 * 8 + 3 + 1 + 8)
    assert layout.lava_steps(5, T, 3) == 43


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


def test_slayer_view_is_the_one_step_shift_of_the_window():
    T = 8
    s = np.arange(1, 2 * 11 + 1).reshape(2, 11)  # a canonical s_k over tau in [0, 11)
    for k in (0, 2, 7, 9):
        s_k = s.copy()
        s_k[:, :k] = 0  # a layer receives nothing before tau = k
        window = s_k[:, k:k + T] if k + T <= 11 else np.pad(s_k[:, k:], ((0, 0), (0, k + T - 11)))
        y = layout.slayer_view(window, k)
        assert y.shape == (2, T)
        assert (y[:, 0] == 0).all()
        assert np.array_equal(y[:, 1:], s_k[:, :T - 1]), k  # y_k[t] = s_k[t - 1]
        back = layout.window_from_slayer(y, k)
        assert np.array_equal(back[:, :max(0, T - 1 - k)], window[:, :max(0, T - 1 - k)])
        assert (back[:, max(0, T - 1 - k):] == 0).all()


def test_chw_whc_round_trip():
    x = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)  # C, H, W, T
    w = layout.chw_to_whc(x)
    assert w.shape == (4, 3, 2, 5)
    assert w[3, 1, 0, 2] == x[0, 1, 3, 2]
    assert np.array_equal(layout.whc_to_chw(w), x)
    dense = np.arange(6).reshape(3, 2)
    assert layout.to_lava_layout((3,), dense) is dense
    assert np.array_equal(layout.from_lava_layout((2, 3, 4), layout.to_lava_layout((2, 3, 4), x)), x)
