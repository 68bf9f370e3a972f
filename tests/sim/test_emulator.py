import numpy as np
import pytest
import torch

from spikeship.errors import SpikeshipError
from spikeship.sim import kernels, layout
from spikeship.sim.emulator import (CubaState, check_inputs, cuba_step, emulate, lava_dense_weights,
                                    signed_wrap, wrap_int32)
from spikeship.sim.netfile import CubaParams, read_net
from spikeship.train.model import decode_integer, readout_integers


def step(a, u, v, p):
    """One CUBA step on one neuron, by the torch path and by the numba kernel (which must agree)."""
    s, st = cuba_step(torch.tensor([a]), CubaState(torch.tensor([float(u)]), torch.tensor([float(v)])), p)
    result = bool(s[0]), int(st.u[0]), int(st.v[0])
    uu, vv, ss = np.array([u]), np.array([v]), np.zeros(1, np.uint8)
    kernels.cuba_step(np.array([a]), uu, vv, p.i_decay, p.v_decay, p.vth_mant, ss)
    assert (bool(ss[0]), int(uu[0]), int(vv[0])) == result
    return result


def test_cuba_step_integrates_thresholds_strictly_and_resets():
    p = CubaParams(i_decay=1024, v_decay=128, vth_mant=80)  # threshold 80 << 6 = 5120
    assert step(100, 0, 0, p) == (True, 6400, 0)  # u = 100 << 6; v = 6400 > 5120 -> spike, v = 0
    # u decays by 3072/4096: 6400 -> 4800, plus -30 << 6; v (0) + u
    assert step(-30, 6400, 0, p) == (False, 2880, 2880)
    assert step(80, 0, 0, p) == (False, 5120, 5120)  # equal to the threshold: no spike (v > vth)
    # v decays by (4096 - 128)/4096: 5000 * 3968 >> 12 = 4843
    assert step(0, 0, 5000, p) == (False, 0, 4843)


def test_cuba_decay_rounds_toward_zero():
    p = CubaParams(i_decay=1024, v_decay=0, vth_mant=1000)
    # -6401 * 3072 / 4096 = -4800.75: Loihi shifts the magnitude, giving -4800 (floor would be -4801)
    assert step(0, -6401, 0, p) == (False, -4800, -4800)


def test_cuba_current_wraps_at_24_bits_and_voltage_saturates():
    p = CubaParams(i_decay=4096, v_decay=0, vth_mant=131071)
    spiked, u, v = step(140000, 0, 0, p)  # 140000 << 6 = 8,960,000 > 2**23
    assert u == 8_960_000 - (1 << 24)
    _, u, v = step(-100000, 0, -6_400_000, p)
    assert u == -6_400_000 and v == -(1 << 23) + 1


def test_wraps():
    assert int(wrap_int32(torch.tensor(2**31))) == -(2**31)
    assert int(wrap_int32(torch.tensor(-(2**31) - 1))) == 2**31 - 1
    assert int(signed_wrap(torch.tensor(2**23), 24)) == -(2**23)
    assert int(signed_wrap(torch.tensor(2**23 - 1), 24)) == 2**23 - 1


@pytest.mark.parametrize("seed", range(4))
def test_lava_dense_weights_keep_8bit_even_weights_exact(seed):
    rng = np.random.default_rng(seed)
    w = 2 * rng.integers(-128, 128, size=(7, 11))
    w[0, :2] = (-256, 254)  # mixed signs: the full 8-bit even range
    if seed == 1:
        w = -2 * rng.integers(1, 128, size=(7, 11))  # inhibitory only, down to -254
    if seed == 2:
        w = 2 * rng.integers(0, 128, size=(7, 11))  # excitatory only, up to 254
    eff, exp = lava_dense_weights(w)
    assert np.array_equal(eff * 2.0 ** exp, w)


def test_lava_dense_turns_minus_256_into_minus_254_when_all_weights_are_negative():
    # A quirk of Lava's bit-accurate Dense the emulator reproduces: an all-inhibitory matrix is negated,
    # clipped to [0, 255] and its low bit truncated, so -256 becomes -254 (slayer keeps -256).
    w = np.array([[-256, -2], [-4, -6]])
    eff, exp = lava_dense_weights(w)
    assert np.array_equal(eff * 2.0 ** exp, [[-254, -2], [-4, -6]])


def _torch_isolated(model, inputs, extra):
    """slayer's forward on the samples followed by `extra` zero steps, as canonical s_k."""
    x = torch.from_numpy(inputs).float()
    x = torch.cat([x, torch.zeros(*x.shape[:-1], extra)], -1)
    with torch.no_grad():
        _, ys = model(x)
    return [layout.isolated_from_slayer(y.numpy()).astype(np.uint8) for y in ys]


@pytest.mark.parametrize("engine", ["numba", "torch"])
@pytest.mark.parametrize("case", ["dense_case", "conv_case"])
def test_emulator_equals_slayer_on_every_step_of_the_isolated_view(case, engine, request):
    path, model, inputs, labels, two = request.getfixturevalue(case)
    net = read_net(path)
    T, L = net.time_steps, net.num_layers
    res = emulate(net, inputs, batch_size=7, engine=engine)  # batches that do not divide N
    expected = _torch_isolated(model, inputs, L + 1)
    for k in range(L):
        assert res.spikes[k].shape == expected[k].shape
        assert np.array_equal(res.spikes[k], expected[k]), f"layer {k}"
        assert res.spikes[k].sum() > 0, f"layer {k} never spikes: the test would prove nothing"
        assert np.array_equal(res.counts[:, k], res.spikes[k][..., k:k + T].reshape(len(inputs), -1).sum(1))
    with torch.no_grad():
        readout, _ = model(torch.from_numpy(inputs).float())
    r = readout_integers(readout)
    assert np.array_equal(res.readout_steps, r.numpy())
    assert np.array_equal(res.readout, decode_integer(r, torch.from_numpy(two)).numpy())
    assert np.array_equal(res.predictions, res.readout.argmax(1))
    assert len(set(res.predictions.tolist())) > 1


def test_emulator_without_recording_gives_the_same_numbers(dense_case):
    path, _, inputs, _, _ = dense_case
    net = read_net(path)
    a, b = emulate(net, inputs), emulate(net, inputs, record_spikes=False, batch_size=3)
    assert b.spikes is None
    assert np.array_equal(a.counts, b.counts) and np.array_equal(a.readout, b.readout)


def test_check_inputs_refuses_wrong_shapes_and_graded_values(conv_case, dense_case):
    conv = read_net(conv_case[0])
    with pytest.raises(SpikeshipError, match="does not match the network input"):
        check_inputs(conv, np.zeros((2, 2, 9, 10, 8)))
    with pytest.raises(SpikeshipError, match="does not match the network input"):
        check_inputs(conv, np.zeros((2, 2, 10, 10, 7)))
    with pytest.raises(SpikeshipError, match="binary"):
        check_inputs(conv, np.full((1, 2, 10, 10, 8), 2))
    dense = read_net(dense_case[0])
    assert check_inputs(dense, np.zeros((3, 2, 4, 4, 8))).shape == (3, 32, 8)  # CHW flatten for dense
    assert check_inputs(dense, np.zeros((3, 32, 8))).shape == (3, 32, 8)


def test_numba_conv_kernel_matches_conv2d_with_stride_padding_dilation_groups():
    rng = np.random.default_rng(0)
    x = (rng.random((3, 4, 9, 11)) < 0.3).astype(np.uint8)
    w = 2 * rng.integers(-128, 128, size=(6, 2, 3, 2))
    for stride, pad, dil in (((1, 1), (0, 0), (1, 1)), ((2, 1), (1, 2), (1, 2)), ((2, 2), (1, 0), (2, 1))):
        ref = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double(),
                                         stride=stride, padding=pad, dilation=dil, groups=2).long().numpy()
        out = np.zeros(ref.shape, np.int64)
        kernels.conv_accumulate(x, w.astype(np.int64), *stride, *pad, *dil, 2, out)
        assert np.array_equal(out, ref), (stride, pad, dil)
