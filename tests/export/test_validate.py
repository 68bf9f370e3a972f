"""Every refusal reason: one line naming the layer and the limit, and no file left behind."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from lava.lib.dl import slayer

from export_nets import set_integer_weights, two_for
from spikeship.errors import SpikeshipError
from spikeship.export.netx import LAYER_WRITERS, write_net
from spikeship.export.quantize import quantize_model
from spikeship.export.validate import LOIHI1, LoihiLimits, check_net, estimate_resources, worst_case_input
from spikeship.train.model import LayerSpec, ModelSpec, NeuronSpec, SpikeNet


def _replace_layer(q, i, **changes):
    layers = list(q.layers)
    layers[i] = dataclasses.replace(layers[i], **changes)
    return dataclasses.replace(q, layers=tuple(layers))


def _replace_neuron(q, i, **changes):
    return _replace_layer(q, i, neuron=dataclasses.replace(q.layers[i].neuron, **changes))


def _set_weight(q, i, index, value):
    w = q.layers[i].weight.copy()
    w[index] = value
    return _replace_layer(q, i, weight=w)


def _refused(q, tmp_path, pattern, limits=LOIHI1):
    with pytest.raises(SpikeshipError, match=pattern) as e:
        write_net(q, tmp_path / "model.net", limits=limits)
    assert "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []  # a refused export leaves no file, not even a temporary one
    return str(e.value)


def test_valid_net_passes_and_is_written(conv_net, tmp_path):
    q = quantize_model(conv_net, two_for(conv_net))
    resources = write_net(q, tmp_path / "model.net")
    assert [r.cores for r in resources] == [1, 1, 1, 1]
    assert [p.name for p in tmp_path.iterdir()] == ["model.net"]


CASES = {
    "weight above 254": (lambda q: _set_weight(q, 0, (0, 0, 1, 1), 256), r"layer 0 \(conv\): weight 256 outside the 8-bit range \[-256, 254\]"),
    "weight below -256": (lambda q: _set_weight(q, 3, (1, 2), -258), r"layer 3 \(dense\): weight -258 outside"),
    "odd weight": (lambda q: _set_weight(q, 2, (0, 0, 0, 0), 3), r"layer 2 \(conv\): weight 3 is not a multiple of 2"),
    "float weight": (lambda q: _replace_layer(q, 0, weight=q.layers[0].weight + 0.5), r"layer 0 \(conv\): weight .* is not an integer"),
    "bias": (lambda q: _replace_layer(q, 3, bias=np.zeros(5)), r"layer 3 \(dense\): has a bias"),
    "axonal delay": (lambda q: _replace_layer(q, 0, has_delay=True), r"layer 0 \(conv\): axonal delays"),
    "no delay_shift": (lambda q: _replace_layer(q, 1, delay_shift=False), r"layer 1 \(pool\): delay_shift is off"),
    "unsupported kind": (lambda q: _replace_layer(q, 1, kind="pool"), r"layer 1 \(pool\): layer type 'pool' cannot be built by netx; supported: dense, conv"),
    "graded spikes": (lambda q: _replace_neuron(q, 2, graded_spike=True), r"layer 2 \(conv\): graded spikes"),
    "neuron type": (lambda q: _replace_neuron(q, 0, type="SDNN"), r"layer 0 \(conv\): neuron type 'SDNN'"),
    "iDecay above 4096": (lambda q: _replace_neuron(q, 0, i_decay=4097), r"layer 0 \(conv\): iDecay 4097 outside \[1, 4096\]"),
    "vDecay negative": (lambda q: _replace_neuron(q, 3, v_decay=-1), r"layer 3 \(dense\): vDecay -1 outside \[0, 4096\]"),
    "vThMant zero": (lambda q: _replace_neuron(q, 1, vth_mant=0), r"layer 1 \(pool\): vThMant 0 outside \[1, 131071\]"),
    "vThMant 18 bits": (lambda q: _replace_neuron(q, 1, vth_mant=1 << 17), r"vThMant 131072 outside \[1, 131071\]"),
    "refDelay": (lambda q: _replace_neuron(q, 0, ref_delay=2), r"layer 0 \(conv\): refDelay 2"),
    "shape mismatch": (lambda q: _replace_layer(q, 3, shape=(6,)), r"layer 3 \(dense\): weight \(5, 16\) and output \(6,\) do not match"),
    "readout odd weight": (lambda q: dataclasses.replace(q, readout_weight=q.readout_weight + 1), r"readout: weight -?\d+ is not a multiple of 2"),
    "readout bias": (lambda q: dataclasses.replace(q, readout_bias=np.zeros(3)), r"readout: has a bias"),
    "readout shape": (lambda q: dataclasses.replace(q, readout_weight=q.readout_weight[:, :4]), r"readout: weight \(3, 4\) does not take the last layer's 5 outputs"),
    "TWO during pipeline fill": (lambda q: dataclasses.replace(q, two_weights=np.r_[5, q.two_weights[1:]]), r"readout: the TWO weights of the first 4 steps \(pipeline fill\) must be zero"),
    "TWO not integer": (lambda q: dataclasses.replace(q, two_weights=q.two_weights.astype(float)), r"readout: TWO weights must be a non-empty integer vector"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refusal(case, conv_net, tmp_path):
    mutate, pattern = CASES[case]
    _refused(mutate(quantize_model(conv_net, two_for(conv_net))), tmp_path, pattern)


def test_non_integer_weights_from_a_block_without_the_8bit_hook(dense_net, tmp_path):
    with torch.no_grad():
        dense_net.blocks[0].synapse.weight.fill_(0.3 / 64)
    dense_net.blocks[0].synapse.pre_hook_fx = None
    q = quantize_model(dense_net, two_for(dense_net, 5))
    assert q.layers[0].weight.dtype == np.float64
    _refused(q, tmp_path, r"layer 0 \(dense\): weight 0\.3 is not an integer .*8-bit hook")


def test_bias_from_a_slayer_norm_is_refused(dense_net, tmp_path):
    neuron = dense_net.blocks[1].neuron
    neuron.norm = slayer.neuron.norm.MeanOnlyBatchNorm(num_features=4, pre_hook_fx=neuron.quantize_8bit)
    q = quantize_model(dense_net, two_for(dense_net, 5))
    _refused(q, tmp_path, r"layer 1 \(dense\): has a bias")


def test_current_decay_zero_is_refused(tmp_path):
    """iDecay 0 cannot be expressed: netx writes du = iDecay - 1 into a 12-bit unsigned register."""
    spec = ModelSpec((1, 2, 2), 2, (LayerSpec("dense", 3),), neuron=NeuronSpec(current_decay=0.0))
    net = set_integer_weights(SpikeNet(spec))
    _refused(quantize_model(net, two_for(net, 4)), tmp_path, r"layer 0 \(dense\): iDecay 0 outside \[1, 4096\]")


def test_fan_in_above_4096_axons_is_refused(tmp_path):
    spec = ModelSpec((1, 1, 4097), 2, (LayerSpec("dense", 2),))
    net = set_integer_weights(SpikeNet(spec), low=0, high=0)
    _refused(quantize_model(net, two_for(net, 4)), tmp_path, r"layer 0 \(dense\): fan-in 4097 above 4096 axons per core")


def test_readout_fan_in_above_4096_is_refused(tmp_path):
    spec = ModelSpec((1, 1, 1), 2, (LayerSpec("dense", 4097),))
    net = set_integer_weights(SpikeNet(spec), low=0, high=0)
    _refused(quantize_model(net, two_for(net, 4)), tmp_path, r"readout: fan-in 4097 above 4096")


def test_too_many_neurons_for_the_chip_is_refused(tmp_path):
    """128 cores x 1,024 compartments = 131,072 neurons per Loihi 1 chip."""
    spec = ModelSpec((1, 1, 1), 2, (LayerSpec("dense", 128 * 1024 + 1),))
    net = set_integer_weights(SpikeNet(spec), low=0, high=0)
    _refused(quantize_model(net, two_for(net, 4)), tmp_path,
             r"network needs 129 cores, 1 chip\(s\) hold 128 \(largest: layer 0 \(dense\), 131073 neurons at 1024 per core")


def test_neurons_per_core_with_tighter_limits(conv_net, tmp_path):
    q = quantize_model(conv_net, two_for(conv_net))
    limits = LoihiLimits(neurons_per_core=16, cores_per_chip=8)
    # layer 0: 3*6*6 = 108 neurons -> 7 cores; 27 -> 2; 16 -> 1; 5 -> 1: 11 cores > 8
    assert [r.cores for r in estimate_resources(q, limits)] == [7, 2, 1, 1]
    _refused(q, tmp_path, r"network needs 11 cores, 1 chip\(s\) hold 8 \(largest: layer 0 \(conv\), 108 neurons", limits)
    assert len(check_net(q, tuple(LAYER_WRITERS), dataclasses.replace(limits, chips=2))) == 4


def test_synaptic_memory_counts_cores(tmp_path):
    """A 4096 x 1024 dense layer holds 4 MiB of 8-bit synapses: 32 cores of 128 KB, though 1 core of neurons."""
    spec = ModelSpec((1, 1, 4096), 2, (LayerSpec("dense", 1024),))
    net = set_integer_weights(SpikeNet(spec), low=0, high=0)
    (r,) = estimate_resources(quantize_model(net, two_for(net, 4)))
    assert (r.cores_by_neurons, r.cores_by_memory, r.cores, r.synapse_bytes) == (1, 32, 32, 4096 * 1024)


def test_per_step_input_above_int16_is_refused(tmp_path):
    """129 inputs of weight 254: 129 * 254 = 32766 fits int16; 130 * 254 = 33020 does not."""
    for n_in, ok in ((129, True), (130, False)):
        spec = ModelSpec((1, 1, n_in), 2, (LayerSpec("dense", 2),))
        net = set_integer_weights(SpikeNet(spec), low=0, high=0)
        with torch.no_grad():
            net.blocks[0].synapse.weight.fill_(254 / 64)
        q = quantize_model(net, two_for(net, 4))
        assert worst_case_input(q.layers[0]) == (0, n_in * 254)
        if ok:
            check_net(q, tuple(LAYER_WRITERS))
        else:
            _refused(q, tmp_path, r"layer 0 \(dense\): worst-case per-step input 33020 outside int16 \[-32768, 32767\] \(sum of the positive weights")


def test_negative_per_step_input_below_int16_is_refused(tmp_path):
    spec = ModelSpec((1, 1, 129), 2, (LayerSpec("dense", 2),))
    net = set_integer_weights(SpikeNet(spec), low=0, high=0)
    with torch.no_grad():
        net.blocks[0].synapse.weight.fill_(-256 / 64)  # 129 * -256 = -33024
    _refused(quantize_model(net, two_for(net, 4)), tmp_path, r"worst-case per-step input -33024 outside int16 .*negative")


def test_worst_case_conv_input_counts_only_taps_inside_the_input(conv_net):
    """Conv bound is per neuron: a padded border neuron sees fewer taps. Brute force over positions."""
    q = quantize_model(conv_net, two_for(conv_net))
    layer = q.layers[2]  # 3x3 kernel, stride 2, padding 1 on a 3x3 input: no neuron sees the full kernel
    c, h, w = layer.input_shape
    best_hi, best_lo = -10**9, 10**9
    for o in range(layer.shape[0]):
        for y in range(layer.shape[1]):
            for x in range(layer.shape[2]):
                hi = lo = 0
                for ci in range(c):
                    for ky in range(3):
                        for kx in range(3):
                            iy, ix = y * 2 - 1 + ky, x * 2 - 1 + kx
                            if 0 <= iy < h and 0 <= ix < w:
                                v = int(layer.weight[o, ci, ky, kx])
                                hi += max(v, 0)
                                lo += min(v, 0)
                best_hi, best_lo = max(best_hi, hi), min(best_lo, lo)
    full = np.clip(layer.weight, 0, None).sum(axis=(1, 2, 3)).max()
    assert worst_case_input(layer) == (best_lo, best_hi)
    assert best_hi < full
