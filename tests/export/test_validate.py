"""Every refusal reason: one line naming the layer and the limit, and no file left behind."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from lava.lib.dl import slayer

from nets import set_integer_weights, two_for
from spikeship.errors import SpikeshipError
from spikeship.export.netx import check, write_net
from spikeship.export.quantize import quantize_model
from spikeship.export import validate
from spikeship.energy import worst_case_input
from spikeship.export.validate import LOIHI1, LoihiLimits, estimate_resources
from spikeship.train.model import LayerSpec, ModelSpec, NeuronSpec, SpikeNet


def _replace_layer(q, i, **changes):
    layers = list(q.layers)
    layers[i] = dataclasses.replace(layers[i], **changes)
    return dataclasses.replace(q, layers=tuple(layers))


def _replace_neuron(q, i, **changes):
    return _replace_layer(q, i, neuron=dataclasses.replace(q.layers[i].neuron, **changes))


def _replace_readout(q, **changes):
    return dataclasses.replace(q, readout=dataclasses.replace(q.readout, **changes))


def _set_weight(q, i, index, value):
    w = q.layers[i].weight.copy()
    w[index] = value
    return _replace_layer(q, i, weight=w)


def check_refused(q, tmp_path, pattern, limits=LOIHI1):
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
    "unsupported kind": (lambda q: _replace_layer(q, 1, kind="sparse"), r"layer 1 \(sparse\): layer kind 'sparse' has no netx form; known: dense, recurrent, conv, pool"),
    "graded spikes": (lambda q: _replace_neuron(q, 2, graded_spike=True), r"layer 2 \(conv\): graded spikes"),
    "neuron type": (lambda q: _replace_neuron(q, 0, type="SDNN"), r"layer 0 \(conv\): neuron type 'SDNN'"),
    "iDecay above 4096": (lambda q: _replace_neuron(q, 0, i_decay=4097), r"layer 0 \(conv\): iDecay 4097 outside \[1, 4096\]"),
    "vDecay negative": (lambda q: _replace_neuron(q, 3, v_decay=-1), r"layer 3 \(dense\): vDecay -1 outside \[0, 4096\]"),
    "vThMant zero": (lambda q: _replace_neuron(q, 1, vth_mant=0), r"layer 1 \(pool\): vThMant 0 outside \[1, 131071\]"),
    "vThMant 18 bits": (lambda q: _replace_neuron(q, 1, vth_mant=1 << 17), r"vThMant 131072 outside \[1, 131071\]"),
    "refDelay": (lambda q: _replace_neuron(q, 0, ref_delay=2), r"layer 0 \(conv\): refDelay 2"),
    "shape mismatch": (lambda q: _replace_layer(q, 3, shape=(6,)), r"layer 3 \(dense\): weight \(5, 16\) and output \(6,\) do not match"),
    "readout odd weight": (lambda q: _replace_readout(q, weight=q.readout.weight + 1), r"readout: weight -?\d+ is not a multiple of 2"),
    "readout bias": (lambda q: _replace_readout(q, bias=np.zeros(3)), r"readout: has a bias"),
    "readout shape": (lambda q: _replace_readout(q, weight=q.readout.weight[:, :4]), r"readout: weight \(3, 4\) does not take the last layer's 5 outputs"),
    "TWO during pipeline fill": (lambda q: dataclasses.replace(q, two_weights=np.r_[5, q.two_weights[1:]]), r"readout: the TWO weights of the first 4 steps \(pipeline fill\) must be zero"),
    "TWO not integer": (lambda q: dataclasses.replace(q, two_weights=q.two_weights.astype(float)), r"readout: TWO weights must be a non-empty integer vector"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refusal(case, conv_net, tmp_path):
    mutate, pattern = CASES[case]
    check_refused(mutate(quantize_model(conv_net, two_for(conv_net))), tmp_path, pattern)


def test_non_integer_weights_from_a_block_without_the_8bit_hook(dense_net, tmp_path):
    with torch.no_grad():
        dense_net.blocks[0].synapse.weight.fill_(0.3 / 64)
    dense_net.blocks[0].synapse.pre_hook_fx = None
    q = quantize_model(dense_net, two_for(dense_net, 5))
    assert q.layers[0].weight.dtype == np.float64
    check_refused(q, tmp_path, r"layer 0 \(dense\): weight 0\.3 is not an integer .*8-bit hook")


def test_bias_from_a_slayer_norm_is_refused(dense_net, tmp_path):
    neuron = dense_net.blocks[1].neuron
    neuron.norm = slayer.neuron.norm.MeanOnlyBatchNorm(num_features=4, pre_hook_fx=neuron.quantize_8bit)
    q = quantize_model(dense_net, two_for(dense_net, 5))
    check_refused(q, tmp_path, r"layer 1 \(dense\): has a bias")


def test_current_decay_zero_is_refused(conv_net, tmp_path):
    """iDecay 0 cannot be expressed: netx writes du = iDecay - 1 into a 12-bit unsigned register (training
    refuses it too: tests/train/test_model.py)."""
    q = _replace_neuron(quantize_model(conv_net, two_for(conv_net)), 3, i_decay=0)
    check_refused(q, tmp_path, r"layer 3 \(dense\): iDecay 0 outside \[1, 4096\]")


def test_fan_in_above_4096_axons_is_refused(tmp_path):
    spec = ModelSpec((1, 1, 4097), 2, (LayerSpec("dense", 2),))
    net = set_integer_weights(SpikeNet(spec), low=1, high=1)
    check_refused(quantize_model(net, two_for(net, 4)), tmp_path, r"layer 0 \(dense\): fan-in 4097 above 4096 axons per core")


def test_readout_fan_in_above_4096_is_refused(tmp_path):
    spec = ModelSpec((1, 1, 1), 2, (LayerSpec("dense", 4097),))
    net = set_integer_weights(SpikeNet(spec), low=1, high=1)
    check_refused(quantize_model(net, two_for(net, 4)), tmp_path, r"readout: fan-in 4097 above 4096")


def test_too_many_neurons_for_the_chip_is_refused(tmp_path):
    """128 cores x 1,024 compartments = 131,072 neurons per Loihi 1 chip."""
    spec = ModelSpec((1, 1, 1), 2, (LayerSpec("dense", 128 * 1024 + 1),))
    net = set_integer_weights(SpikeNet(spec), low=1, high=1)
    check_refused(quantize_model(net, two_for(net, 4)), tmp_path,
             r"network needs 129 cores, 1 chip\(s\) hold 128 \(largest: layer 0 \(dense\), 131073 neurons at 1024 per core")


def test_neurons_per_core_with_tighter_limits(conv_net, tmp_path):
    q = quantize_model(conv_net, two_for(conv_net))
    limits = LoihiLimits(neurons_per_core=16, cores_per_chip=8)
    # layer 0: 3*6*6 = 108 neurons -> 7 cores; 27 -> 2; 16 -> 1; 5 -> 1: 11 cores > 8
    assert [r.cores for r in estimate_resources(q, limits)] == [7, 2, 1, 1]
    check_refused(q, tmp_path, r"network needs 11 cores, 1 chip\(s\) hold 8 \(largest: layer 0 \(conv\), 108 neurons", limits)
    assert len(check(q, dataclasses.replace(limits, chips=2))) == 4


def test_synaptic_memory_counts_cores(tmp_path):
    """A 4096 x 1024 dense layer holds 4 MiB of 8-bit synapses: 32 cores of 128 KB, though 1 core of neurons."""
    spec = ModelSpec((1, 1, 4096), 2, (LayerSpec("dense", 1024),))
    net = set_integer_weights(SpikeNet(spec), low=1, high=1)
    (r,) = estimate_resources(quantize_model(net, two_for(net, 4)))
    assert (r.cores_by_neurons, r.cores_by_memory, r.cores, r.synapse_bytes) == (1, 32, 32, 4096 * 1024)


def test_per_step_input_above_int16_is_refused(tmp_path):
    """129 inputs of weight 254: 129 * 254 = 32766 fits int16; 130 * 254 = 33020 does not."""
    for n_in, ok in ((129, True), (130, False)):
        spec = ModelSpec((1, 1, n_in), 2, (LayerSpec("dense", 2),))
        net = set_integer_weights(SpikeNet(spec), low=1, high=1)
        with torch.no_grad():
            net.blocks[0].synapse.weight.fill_(254 / 64)
        q = quantize_model(net, two_for(net, 4))
        assert worst_case_input(q.layers[0]) == (0, n_in * 254)
        if ok:
            check(q)
        else:
            check_refused(q, tmp_path, r"layer 0 \(dense\): worst-case per-step input 33020 outside int16 \[-32768, 32767\] \(sum of the positive weights")


def test_negative_per_step_input_below_int16_is_refused(tmp_path):
    spec = ModelSpec((1, 1, 129), 2, (LayerSpec("dense", 2),))
    net = set_integer_weights(SpikeNet(spec), low=1, high=1)
    with torch.no_grad():
        net.blocks[0].synapse.weight.fill_(-256 / 64)  # 129 * -256 = -33024 into neuron 0
        net.blocks[0].synapse.weight[1, 0] = 2 / 64  # a positive weight: Lava's Dense holds -256 exactly
    check_refused(quantize_model(net, two_for(net, 4)), tmp_path, r"worst-case per-step input -33024 outside int16 .*negative")


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


def _all_negative_dense(q, corner):
    """Layer 3 (dense) of ``conv_net`` with every weight negative; w[0, :2] = corner."""
    w = -np.abs(q.layers[3].weight) - 2
    w[0, :2] = corner
    return _replace_layer(q, 3, weight=w)


def test_all_zero_dense_weights_are_refused(conv_net, tmp_path):
    q = quantize_model(conv_net, two_for(conv_net))
    check_refused(_replace_layer(q, 3, weight=np.zeros_like(q.layers[3].weight)), tmp_path,
             r"^layer 3 \(dense\): all weights are zero \(netx and Lava's Dense cannot load such a layer\)$")
    check_refused(_replace_readout(q, weight=np.zeros_like(q.readout.weight)), tmp_path,
             r"^readout: all weights are zero")


@pytest.mark.parametrize("corner, zero, lava", [((-256, -2), False, -254), ((-256, -2), True, -255),
                                                 ((-128, -4), False, -126), ((-128, -128), True, -127)])
def test_dense_weights_lava_would_change_are_refused(conv_net, tmp_path, corner, zero, lava):
    q = _all_negative_dense(quantize_model(conv_net, two_for(conv_net)), corner)
    if zero:
        q = _set_weight(q, 3, (1, 0), 0)
    lo = corner[0]
    check_refused(q, tmp_path, rf"^layer 3 \(dense\): no weight is positive and the most negative, {lo}, is a power "
                          rf"of two: Lava's Dense \(inhibitory sign mode, magnitudes up to 255\) would make it "
                          rf"{lava}, slayer keeps {lo}$")
    readout = -np.abs(q.readout.weight) - 2
    readout[0, :2] = corner
    check_refused(_replace_readout(quantize_model(conv_net, two_for(conv_net)), weight=readout), tmp_path,
             rf"^readout: no weight is positive and the most negative, {lo}, is a power of two: .* would make it ")


def test_what_lava_holds_exactly_is_accepted(conv_net):
    q = quantize_model(conv_net, two_for(conv_net))
    for net in (_all_negative_dense(q, (-254, -2)),  # not a power of two
                _set_weight(_all_negative_dense(q, (-256, -2)), 3, (1, 1), 2)):  # mixed sign
        w = net.layers[3].weight
        assert np.array_equal(_lava_dense_effective(w), w)  # Lava's own functions keep every weight
        assert len(check(net)) == net.num_layers  # and the check accepts it: resources for every layer
    conv = -np.abs(q.layers[0].weight) - 2  # Lava's Conv applies weights as they are: all negative is fine
    conv[0, 0, 0, 0] = -256
    net = _replace_layer(q, 0, weight=conv)
    assert len(check(net)) == net.num_layers and net.layers[0].weight.min() == -256


def _lava_dense_effective(w: np.ndarray) -> np.ndarray:
    """What Lava's fixed-point Dense applies for a netx dense weight ``w`` (netx's optimize_weight_bits, then
    the Dense model's clip_weights and truncate_weights, then the weight exponent): Lava's own functions."""
    import contextlib
    import io

    from lava.lib.dl.netx.utils import optimize_weight_bits
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

    with contextlib.redirect_stdout(io.StringIO()), np.errstate(divide="ignore"):  # its prints; 127 / 0
        shifted, bits, exp, _ = optimize_weight_bits(w)
    mode = determine_sign_mode(shifted)
    return truncate_weights(clip_weights(shifted, mode, num_bits=8), mode, bits).astype(np.int64) >> -exp


def test_refused_exactly_when_lavas_dense_changes_a_weight():
    """Random even 8-bit matrices of every sign pattern: refusal <=> Lava changes a weight, to the value named."""
    rng = np.random.default_rng(0)
    refused = 0
    for trial in range(3000):
        lo, hi = [(-128, 127), (-128, 0), (-128, -1), (0, 127)][trial % 4]
        step = 1 << int(rng.integers(1, 8))
        w = np.clip(rng.integers(lo, hi + 1, size=(2, 3)) * 2 // step * step, -256, 254)
        if not w.any():
            continue
        lava = _lava_dense_effective(w)
        try:
            validate.check_lava_dense("x", ("weight", w))
        except SpikeshipError as e:
            refused += 1
            assert f"would make it {int(lava[w == w.min()][0])}, " in str(e)
            assert not np.array_equal(lava, w)
        else:
            assert np.array_equal(lava, w), w
    assert refused > 300


def test_lava_dense_really_turns_minus_256_into_minus_254():
    """Real Lava processes, built as netx builds a dense layer (and deploy.lava_run the readout): an all-negative
    Dense with -256 applies -254; a mixed-sign one applies -256; Lava's Conv applies -256 as it is."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.lib.dl.netx.utils import optimize_weight_bits

    def run(proc, x):
        source, sink = Source(data=x), Sink(shape=proc.a_out.shape, buffer=x.shape[-1])
        source.s_out.connect(proc.s_in)
        proc.a_out.connect(sink.a_in)
        try:
            proc.run(condition=RunSteps(num_steps=x.shape[-1]), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
            return sink.data.get()
        finally:
            proc.stop()

    def dense(w):
        shifted, bits, exp, _ = optimize_weight_bits(np.asarray(w))
        return Dense(weights=shifted, weight_exp=exp, num_weight_bits=bits)

    x = np.array([[1, 0, 0], [0, 1, 0]], np.int8)  # input 0 spikes at step 0, input 1 at step 1; 1-step delay
    assert run(dense([[-256, -2], [-100, -30]]), x)[:, 1:].tolist() == [[-254, -2], [-100, -30]]
    assert run(dense([[-256, 2], [-100, -30]]), x)[:, 1:].tolist() == [[-256, 2], [-100, -30]]
    conv = Conv(weight=np.full((1, 1, 1, 1), -256), input_shape=(1, 1, 1))
    assert run(conv, np.array([1, 0], np.int8).reshape(1, 1, 1, 2)).reshape(-1).tolist() == [0, -256]


def _set_recurrent(q, i, index, value):
    r = q.layers[i].recurrent_weight.copy()
    r[index] = value
    return _replace_layer(q, i, recurrent_weight=r)


RECURRENT_CASES = {
    "recurrent weight above 254": (lambda q: _set_recurrent(q, 0, (1, 2), 256),
                                   r"layer 0 \(recurrent\): recurrent weight 256 outside the 8-bit range"),
    "odd recurrent weight": (lambda q: _set_recurrent(q, 0, (0, 0), 5),
                             r"layer 0 \(recurrent\): recurrent weight 5 is not a multiple of 2"),
    "float recurrent weight": (lambda q: _replace_layer(q, 0, recurrent_weight=q.layers[0].recurrent_weight + 0.5),
                               r"layer 0 \(recurrent\): recurrent weight .* is not an integer"),
    "no recurrent weight": (lambda q: _replace_layer(q, 0, recurrent_weight=None),
                            r"layer 0 \(recurrent\): recurrent weight none, expected \(6, 6\)"),
    "recurrent weight on a dense layer": (lambda q: _replace_layer(q, 1, recurrent_weight=np.zeros((4, 4), int)),
                                          r"layer 1 \(dense\): has recurrent weights, which a dense layer cannot hold"),
}


@pytest.mark.parametrize("case", sorted(RECURRENT_CASES))
def test_recurrent_refusal(case, recurrent_net, tmp_path):
    q = quantize_model(recurrent_net, two_for(recurrent_net, 5))
    write_net(q, tmp_path / "ok.net")
    (tmp_path / "ok.net").unlink()
    mutate, pattern = RECURRENT_CASES[case]
    check_refused(mutate(q), tmp_path, pattern)


def test_recurrent_per_step_input_counts_both_matrices(tmp_path):
    """Neuron 0 takes 100 inputs of 254 (25,400) and its 30 own neurons at 254 (7,620): 33,020 > 32,767;
    with 29 own neurons it is 32,766 and fits."""
    for n, ok in ((29, True), (30, False)):
        net = SpikeNet(ModelSpec((1, 1, 100), 2, (LayerSpec("recurrent", n),)))
        set_integer_weights(net, low=1, high=1)
        with torch.no_grad():
            net.blocks[0].input_synapse.weight[0].fill_(254 / 64)
            net.blocks[0].recurrent_synapse.weight[0].fill_(254 / 64)
        q = quantize_model(net, two_for(net, 4))
        assert worst_case_input(q.layers[0]) == (0, 100 * 254 + n * 254)
        assert estimate_resources(q)[0].max_fan_in == 100 + n
        if ok:
            check(q)
        else:
            check_refused(q, tmp_path, r"layer 0 \(recurrent\): worst-case per-step input 33020 outside int16")


def test_recurrent_fan_in_counts_its_own_neurons(tmp_path):
    net = set_integer_weights(SpikeNet(ModelSpec((1, 1, 4000), 2, (LayerSpec("recurrent", 97),))), low=1, high=1)
    check_refused(quantize_model(net, two_for(net, 4)), tmp_path,
                  r"layer 0 \(recurrent\): fan-in 4097 above 4096 axons per core")


def test_a_recurrent_matrix_lava_would_clip_is_refused(recurrent_net, tmp_path):
    """The input weights reach -128 and +126 (netx's shift 1), the recurrent ones have no positive weight and
    reach -128 too: shifted to -256, which the recurrent Dense (inhibitory mode) clips to -255 and truncates to
    -254, i.e. -127."""
    q = quantize_model(recurrent_net, two_for(recurrent_net, 5))
    w = np.clip(q.layers[0].weight, -126, 126)
    w[0, 0], w[0, 1] = -128, 126
    r = -(np.abs(q.layers[0].recurrent_weight) % 126) - 2
    r[2, 3] = -128
    check_refused(_replace_layer(q, 0, weight=w, recurrent_weight=r), tmp_path,
                  r"^layer 0 \(recurrent\): no recurrent weight is positive and the most negative, -128, is a power "
                  r"of two: Lava's Dense \(inhibitory sign mode, magnitudes up to 255\) would make it -127, slayer "
                  r"keeps -128; netx scales the input and recurrent weights together$")


def _lava_dense_rec_effective(w: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What Lava's fixed-point Dense processes apply for a netx dense_rec layer, with Lava's own functions as
    netx's create_dense and RecurrentDense use them: one optimize_weight_bits of both side by side, then each
    matrix's Dense with its own sign mode, clip and truncation, and the shared weight exponent."""
    import contextlib
    import io

    from lava.lib.dl.netx.utils import optimize_weight_bits
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

    with contextlib.redirect_stdout(io.StringIO()), np.errstate(divide="ignore"):
        both, bits, exp, _ = optimize_weight_bits(np.hstack([w, r]))
    parts = both[:, :w.shape[1]], both[:, w.shape[1]:]
    held = []
    for part in parts:
        mode = determine_sign_mode(part)
        held.append(truncate_weights(clip_weights(part, mode, num_bits=8), mode, bits).astype(np.int64))
    return tuple(h >> -exp for h in held), tuple(h != p for h, p in zip(held, parts))


def test_recurrent_refused_exactly_when_lava_changes_a_weight():
    """Random even 8-bit pairs of every sign pattern: refusal <=> Lava holds a different weight in either Dense."""
    rng = np.random.default_rng(1)
    patterns = [(-128, 127), (-128, 0), (-128, -1), (0, 127), (0, 0)]
    refused = 0
    for trial in range(3000):
        ranges = patterns[trial % 5], patterns[(trial // 5) % 5]
        step = 1 << int(rng.integers(1, 8))
        w, r = (np.clip(rng.integers(lo, hi + 1, size=(3, 2 + i)) * 2 // step * step, -256, 254)
                for i, (lo, hi) in enumerate(ranges))
        if not (w.any() or r.any()):
            continue
        (lava_w, lava_r), changed = _lava_dense_rec_effective(w, r)
        exact = np.array_equal(lava_w, w) and np.array_equal(lava_r, r) and not any(c.any() for c in changed)
        try:
            validate.check_lava_dense("x", ("input weight", w), ("recurrent weight", r))
        except SpikeshipError as e:
            refused += 1
            assert not exact, (w, r)
            what, lava = ("input weight", lava_w) if changed[0].any() else ("recurrent weight", lava_r)
            part = w if what == "input weight" else r
            assert f"no {what} is positive and the most negative, {part.min()}," in str(e)
            assert f"would make it {int(lava[part == part.min()][0])}, " in str(e)
        else:
            assert exact, (w, r)
    assert refused > 200
