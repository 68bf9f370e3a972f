"""quantize_model: the integers are slayer's own, the model is left untouched, pooling becomes depthwise conv."""

from __future__ import annotations

import copy

import h5py
import numpy as np
import pytest
import torch
from lava.lib.dl import slayer

from nets import set_integer_weights, two_for
from spikeship.errors import SpikeshipError
from spikeship.export.quantize import quantize_layers, quantize_model
from spikeship.train.msg import MSGDense
from spikeship.train.model import NeuronSpec
from spikeship.train.two import quantize_two_weights


def _snapshot(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def test_quantize_does_not_touch_the_model(conv_net):
    before = _snapshot(conv_net)
    with torch.no_grad():  # a decay outside slayer's clamp range: device_params would clamp it in place
        conv_net.blocks[0].neuron.current_decay.fill_(5000.0)
    before["blocks.0.neuron.current_decay"] = torch.tensor([5000.0])
    q = quantize_model(conv_net, two_for(conv_net))
    after = _snapshot(conv_net)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert q.layers[0].neuron.i_decay == 5000  # reported as the forward uses it; validation refuses it


def test_integers_equal_slayers_own_hdf5_export(conv_net, tmp_path):
    """Compare with slayer's export_hdf5, run on a deep copy (it has side effects on the model)."""
    q = quantize_model(conv_net, two_for(conv_net))
    clone = copy.deepcopy(conv_net)
    with h5py.File(tmp_path / "slayer.h5", "w") as f:
        for i, block in enumerate(clone.blocks):
            block.export_hdf5(f.create_group(str(i)))
    with h5py.File(tmp_path / "slayer.h5", "r") as f:
        for i, layer in enumerate(q.layers):
            g = f[str(i)]
            w = g["weight"][()]
            if layer.kind == "pool":
                assert g["type"][0] == b"pool"
                w = np.tile(w.reshape(1, 1, *w.shape[-2:]), (layer.input_shape[0], 1, 1, 1))
            else:
                assert g["type"][0] == layer.kind.encode()
            assert np.array_equal(w.astype(np.int64), layer.weight) and np.array_equal(w, np.round(w))
            n = layer.neuron
            assert (n.i_decay, n.v_decay, n.vth_mant, n.ref_delay, n.graded_spike) == (
                g["neuron/iDecay"][()], g["neuron/vDecay"][()], g["neuron/vThMant"][()],
                g["neuron/refDelay"][()], bool(g["neuron/gradedSpike"][()]))
            assert tuple(g["shape"][()]) == layer.shape
            if layer.kind == "conv":
                assert tuple(g["stride"][()]) == layer.stride and tuple(g["padding"][()]) == layer.padding
                assert int(g["groups"][()]) == layer.groups
    readout = conv_net.readout.pre_hook_fx(conv_net.readout.weight, descale=True).detach()
    assert np.array_equal(q.readout.weight, readout.reshape(readout.shape[:2]).numpy().astype(np.int64))


def test_pool_becomes_depthwise_conv(conv_net):
    q = quantize_model(conv_net, two_for(conv_net))
    pool = q.layers[1]
    assert (pool.kind, pool.groups, pool.kernel, pool.stride, pool.padding) == ("pool", 3, (2, 2), (2, 2), (0, 0))
    assert pool.weight.shape == (3, 1, 2, 2) and pool.weight.dtype == np.int64 and np.all(pool.weight == 64)
    assert (pool.input_shape, pool.shape) == ((3, 6, 6), (3, 3, 3))


def test_shapes_and_geometry(conv_net):
    q = quantize_model(conv_net, two_for(conv_net))
    assert [l.kind for l in q.layers] == ["conv", "pool", "conv", "dense"]
    assert [l.shape for l in q.layers] == [(3, 6, 6), (3, 3, 3), (4, 2, 2), (5,)]
    assert [l.input_shape for l in q.layers] == [(2, 6, 6), (3, 6, 6), (3, 3, 3), (16,)]
    assert q.layers[2].stride == (2, 2) and q.layers[2].padding == (1, 1)
    assert q.layers[3].weight.shape == (5, 16)
    assert q.readout.weight.shape == (3, 5) and q.readout.input_shape == (5,) and q.readout.neuron is None
    assert all(l.bias is None and not l.has_delay and l.delay_shift for l in q.layers)


def test_two_weights_use_train_two(conv_net):
    a = two_for(conv_net, 8)
    q = quantize_model(conv_net, a)
    assert np.array_equal(q.two_weights, quantize_two_weights(a, 4))
    assert q.two_weights.dtype == np.int64 and list(q.two_weights[:4]) == [0, 0, 0, 0]
    ints = np.array([0, 0, 0, 0, 1, 2, 3, 4])
    assert np.array_equal(quantize_model(conv_net, ints).two_weights, ints)  # integers pass through


@pytest.mark.filterwarnings("ignore:torch.nn.utils.weight_norm is deprecated")
def test_weight_norm_is_read_not_removed():
    block = MSGDense(NeuronSpec().slayer_params(), 6, 3, weight_norm=True, delay_shift=True)
    with torch.no_grad():
        block(torch.zeros(1, 6, 2))
        block.synapse.weight_v.copy_(torch.randint(-20, 21, block.synapse.weight_v.shape).float() / 32)
    (layer,) = quantize_layers([block], ["dense"], (6,))
    assert hasattr(block.synapse, "weight_g") and hasattr(block.synapse, "weight_v")  # still normalised
    assert block.synapse.weight_norm_enabled
    expected = torch._weight_norm(block.synapse.weight_v, block.synapse.weight_g, 0)
    expected = block.synapse.pre_hook_fx(expected, descale=True).detach().reshape(3, 6).numpy()
    assert np.array_equal(layer.weight, expected.astype(np.int64))


def test_a_kind_without_a_quantizer_is_refused_naming_the_supported_ones(dense_net):
    with pytest.raises(SpikeshipError, match=r"layer 1: layer kind 'sparse' has no quantizer; "
                                             r"known: dense, recurrent, conv, pool"):
        quantize_layers(dense_net.blocks, ["dense", "sparse"], (2, 3, 3))


def test_per_neuron_decays_are_refused():
    params = {**NeuronSpec().slayer_params(), "shared_param": False}
    block = slayer.block.cuba.Dense(params, 4, 3, delay_shift=True)
    with torch.no_grad():
        block(torch.zeros(1, 4, 2))
    with pytest.raises(SpikeshipError, match=r"layer 0 \(dense\): per-neuron current decay"):
        quantize_layers([block], ["dense"], (4,))


def test_recurrent_block_gives_both_weights_as_slayer_exports_them(recurrent_net, tmp_path):
    before = _snapshot(recurrent_net)
    q = quantize_model(recurrent_net, two_for(recurrent_net, 5))
    assert all(torch.equal(before[k], v) for k, v in _snapshot(recurrent_net).items())
    layer = q.layers[0]
    assert layer.kind == "recurrent" and layer.input_shape == (18,) and layer.shape == (6,)
    clone = copy.deepcopy(recurrent_net)
    with h5py.File(tmp_path / "slayer.h5", "w") as f:
        clone.blocks[0].export_hdf5(f.create_group("0"))
    with h5py.File(tmp_path / "slayer.h5", "r") as f:
        assert f["0/type"][0] == b"dense_rec"
        assert np.array_equal(f["0/weight"][()].astype(np.int64), layer.weight)
        assert np.array_equal(f["0/weight_rec"][()].astype(np.int64), layer.recurrent_weight)
    assert layer.recurrent_weight.any() and layer.recurrent_weight.dtype == np.int64
    assert q.layers[1].recurrent_weight is None


def test_a_recurrent_block_bias_is_kept_for_validation(recurrent_net):
    recurrent_net.blocks[0].bias = torch.full((6, 1), 0.5)  # slayer's recurrent block adds it to its input
    assert quantize_model(recurrent_net, two_for(recurrent_net, 5)).layers[0].bias.tolist() == [0.5] * 6
