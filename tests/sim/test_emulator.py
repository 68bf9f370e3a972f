"""The emulator's engines against slayer, each other and hand-made cases (Lava: tests/deploy)."""

import numpy as np
import pytest
import torch

from spikeship.backends import check_inputs
from spikeship.errors import SpikeshipError
from spikeship.export.netx import read_net
from spikeship.sim import kernels
from spikeship.sim.emulator import ENGINES, emulate
from spikeship.train.model import decode_integer, readout_integers


def slayer_windows(model, inputs, num_layers):
    """slayer's forward on the samples followed by L + 1 zero steps: layer k's window s_k[k : k + T]
    (slayer's y_k[t] is s_k[t - 1])."""
    T = inputs.shape[-1]
    x = torch.from_numpy(inputs).float()
    x = torch.cat([x, torch.zeros(*x.shape[:-1], num_layers + 1)], -1)
    with torch.no_grad():
        _, ys = model(x)
    return [y.numpy()[..., k + 1:k + 1 + T].astype(np.uint8) for k, y in enumerate(ys)]


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("case", ["dense_case", "conv_case", "recurrent_case", "mixed_case", "conv_recurrent_case"])
def test_emulator_equals_slayer_on_every_step_of_every_window(case, engine, request):
    path, model, inputs, labels, two = request.getfixturevalue(case)
    net = read_net(path)
    T, L = net.time_steps, net.num_layers
    res = emulate(net, inputs, batch_size=7, engine=engine)  # batches that do not divide N
    expected = slayer_windows(model, inputs, L)
    for k in range(L):
        assert res.windows[k].shape == expected[k].shape
        assert np.array_equal(res.windows[k], expected[k]), f"layer {k}"
        assert res.windows[k].sum() > 0, f"layer {k} never spikes: the test would prove nothing"
        assert np.array_equal(res.counts[:, k], res.windows[k].reshape(len(inputs), -1).sum(1))
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
    assert b.windows is None
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
