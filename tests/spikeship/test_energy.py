"""Counting and energy arithmetic, each checked against a second, independent count."""

import itertools

import numpy as np
import pytest
import torch

from spikeship.energy import (
    CoreLimits,
    LoihiOpEnergy,
    ac_energy_pj,
    check_geometry,
    active_updates,
    ann_macs,
    conv_output_size,
    cores_needed,
    count_layer,
    fan_in_map,
    fan_out_map,
    loihi_energy_pj,
    mac_energy_pj,
    received_input,
    synapse_count,
    synaptic_operations,
)
from spikeship.network import Layer, Neuron


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def synapse_layer(kind, in_shape, out_shape, kernel=1, stride=1, padding=0, dilation=1, groups=1):
    """A layer record with the given geometry (zero weights of the implied shape) for the counting functions."""
    kernel, stride, padding, dilation = map(_pair, (kernel, stride, padding, dilation))
    if kind == "dense":
        weight = np.zeros((out_shape[0], int(np.prod(in_shape))), np.int64)
        in_shape = (int(np.prod(in_shape)),)
    else:
        weight = np.zeros((out_shape[0], in_shape[0] // groups, *kernel), np.int64)
    return Layer(kind=kind, index=0, input_shape=tuple(in_shape), shape=tuple(out_shape), weight=weight,
                 neuron=Neuron(1, 0, 1), kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                 groups=groups)


def conv_geometry(c_in=4, h=7, w=6, c_out=6, k=(3, 2), s=(2, 1), p=(1, 1), d=(1, 1), groups=2):
    h_out = conv_output_size(h, k[0], s[0], p[0], d[0])
    w_out = conv_output_size(w, k[1], s[1], p[1], d[1])
    return synapse_layer("conv", (c_in, h, w), (c_out, h_out, w_out), kernel=k, stride=s, padding=p,
                         dilation=d, groups=groups)


def random_spikes(shape, steps, seed=0, rate=0.3):
    rng = np.random.default_rng(seed)
    return (rng.random((*shape, steps)) < rate).astype(np.uint8)


def brute_force_synapses(g):
    """Every (output neuron, kernel tap, input channel of its group) whose tap lands inside the input: one
    synapse from that input neuron. Returns the list of (input index, output index) pairs."""
    c_in, h, w = g.input_shape
    c_out, h_out, w_out = g.shape
    per_group_in, per_group_out = c_in // g.groups, c_out // g.groups
    pairs = []
    for co, oy, ox in itertools.product(range(c_out), range(h_out), range(w_out)):
        grp = co // per_group_out
        for ci, ky, kx in itertools.product(range(per_group_in), range(g.kernel[0]), range(g.kernel[1])):
            y = oy * g.stride[0] - g.padding[0] + ky * g.dilation[0]
            x = ox * g.stride[1] - g.padding[1] + kx * g.dilation[1]
            if 0 <= y < h and 0 <= x < w:
                pairs.append(((grp * per_group_in + ci, y, x), (co, oy, ox)))
    return pairs


GEOMETRIES = [
    conv_geometry(),  # stride, padding, groups, non-square kernel
    conv_geometry(c_in=3, h=9, w=9, c_out=5, k=(3, 3), s=(2, 2), p=(0, 0), groups=1),
    conv_geometry(c_in=2, h=8, w=8, c_out=2, k=(2, 2), s=(2, 2), p=(0, 0), groups=2),  # pool as depthwise
    conv_geometry(c_in=2, h=8, w=7, c_out=4, k=(3, 3), s=(1, 2), p=(2, 1), d=(2, 1), groups=1),  # dilation
]


@pytest.mark.parametrize("g", GEOMETRIES)
def test_conv_synops_equal_brute_force_and_ones_kernel(g):
    spikes = random_spikes((3, *g.input_shape), steps=5, seed=1)
    synops = synaptic_operations(g, spikes)

    # 1) brute force: loop over every synapse, add the presynaptic neuron's spike count
    counts = spikes.sum(-1).astype(np.int64)
    brute = np.zeros(3, dtype=np.int64)
    for src, _dst in brute_force_synapses(g):
        brute += counts[(slice(None), *src)]
    assert synops.tolist() == brute.tolist()

    # 2) spikes convolved with an all-ones kernel of the layer's shape (torch, a different code path), summed
    ones = torch.ones(g.shape[0], g.input_shape[0] // g.groups, *g.kernel, dtype=torch.float64)
    x = torch.from_numpy(counts.astype(np.float64))
    conv = torch.nn.functional.conv2d(x, ones, stride=g.stride, padding=g.padding, dilation=g.dilation,
                                      groups=g.groups)
    assert tuple(conv.shape[1:]) == g.shape
    assert synops.tolist() == conv.sum(dim=(1, 2, 3)).round().long().tolist()
    assert synops.min() > 0


@pytest.mark.parametrize("g", GEOMETRIES)
def test_fan_in_fan_out_and_synapse_count_match_connection_list(g):
    pairs = brute_force_synapses(g)
    out_deg = np.zeros(g.input_shape, dtype=np.int64)
    in_deg = np.zeros(g.shape, dtype=np.int64)
    for src, dst in pairs:
        out_deg[src] += 1
        in_deg[dst] += 1
    assert np.array_equal(fan_out_map(g), out_deg)
    assert np.array_equal(fan_in_map(g), in_deg)
    assert synapse_count(g) == len(pairs)


def test_conv_fan_out_borders_by_hand():
    # 1 channel 4x4, 3x3 kernel, stride 1, padding 1 -> 4x4; two output channels.
    g = synapse_layer("conv", (1, 4, 4), (2, 4, 4), kernel=3, stride=1, padding=1)
    # along one axis, positions 0..3 are read by 2, 3, 3, 2 outputs
    axis = np.array([2, 3, 3, 2])
    assert np.array_equal(fan_out_map(g)[0], 2 * np.outer(axis, axis))
    spikes = np.zeros((1, 1, 4, 4, 3), dtype=np.uint8)
    spikes[0, 0, 0, 0, 0] = 1  # corner: 2 * 2 * 2 = 8 synapses
    spikes[0, 0, 1, 2, 1] = 1  # interior: 2 * 3 * 3 = 18
    spikes[0, 0, 1, 2, 2] = 1  # same neuron again: 18
    assert synaptic_operations(g, spikes).tolist() == [8 + 18 + 18]


def test_dense_synops_are_spikes_in_times_fan_out():
    g = synapse_layer("dense", (2, 3, 3), (7,))  # flattening a conv output
    spikes = random_spikes((4, 2, 3, 3), steps=6, seed=2)
    expected = spikes.reshape(4, -1).sum(1) * 7
    assert synaptic_operations(g, spikes).tolist() == expected.tolist()
    assert synapse_count(g) == 18 * 7 == ann_macs(g)


def test_ann_macs_exact():
    g = conv_geometry()  # 4x7x6 -> 6 x 4 x 7 (k 3x2, s 2x1, p 1x1), groups 2
    assert g.shape == (6, 4, 7)
    assert ann_macs(g) == (4 * 7) * 6 * (4 // 2) * 3 * 2 == 2016
    # padded taps count for the ANN, not as synapses
    assert synapse_count(g) < ann_macs(g)
    pool = synapse_layer("conv", (8, 16, 16), (8, 8, 8), kernel=2, stride=2, groups=8)
    assert ann_macs(pool) == 8 * 8 * 8 * 1 * 4 == synapse_count(pool)
    assert ann_macs(synapse_layer("dense", (100,), (10,))) == 1000


def test_received_input_and_active_updates_by_hand():
    g = synapse_layer("conv", (1, 3, 3), (1, 3, 3), kernel=1)  # one-to-one
    spikes_in = np.zeros((1, 1, 3, 3, 4), dtype=np.uint8)
    spikes_in[0, 0, 0, 0, 0] = 1  # neuron (0,0) receives at step 0
    spikes_in[0, 0, 1, 1, 3] = 1  # neuron (1,1) receives at step 3
    spikes_out = np.zeros((1, 1, 3, 3, 4), dtype=np.uint8)
    spikes_out[0, 0, 0, 0, 0] = 1  # same (neuron, step) as an input: counted once
    spikes_out[0, 0, 0, 0, 1] = 1  # spiked without input: active
    spikes_out[0, 0, 2, 2, 2] = 1
    recv = received_input(g, spikes_in)
    assert recv.shape == (1, 1, 3, 3, 4) and recv.sum() == 2
    assert active_updates(g, spikes_in, spikes_out).tolist() == [4]

    # 3x3 kernel, padding 1 on 3x3: an input spike at the centre reaches all 9 outputs, a corner one 4
    g3 = synapse_layer("conv", (1, 3, 3), (1, 3, 3), kernel=3, padding=1)
    spikes_in = np.zeros((2, 1, 3, 3, 2), dtype=np.uint8)
    spikes_in[0, 0, 1, 1, 0] = 1
    spikes_in[1, 0, 0, 0, 1] = 1
    assert active_updates(g3, spikes_in, np.zeros_like(spikes_in)).tolist() == [9, 4]

    dense = synapse_layer("dense", (2,), (3,))
    d_in = np.array([[[1, 0, 0], [1, 0, 1]]], dtype=np.uint8)  # (1, 2, T=3): input at steps 0 and 2
    d_out = np.zeros((1, 3, 3), dtype=np.uint8)
    d_out[0, 1, 1] = 1
    assert active_updates(dense, d_in, d_out).tolist() == [3 + 1 + 3]


def test_count_layer_readout_and_shapes():
    g = synapse_layer("dense", (5,), (2,))
    spikes_in = random_spikes((3, 5), steps=4, seed=3)
    c = count_layer("readout", g, spikes_in, None)
    assert not c.spiking and c.spikes_out.tolist() == [0, 0, 0]
    assert c.synops.tolist() == (spikes_in.reshape(3, -1).sum(1) * 2).tolist()
    assert c.updates == 8 and (c.idle + c.active == 8).all()
    with pytest.raises(ValueError, match="presynaptic spikes must be"):
        synaptic_operations(g, spikes_in[:, :4])


def test_geometry_rejects_inconsistent_shapes():
    with pytest.raises(ValueError, match=r"output \(1, 4, 4\) do not match the geometry \(expected .* -> \(1, 3, 3\)"):
        check_geometry(synapse_layer("conv", (1, 5, 5), (1, 4, 4), kernel=3))
    check_geometry(synapse_layer("conv", (1, 5, 5), (1, 3, 3), kernel=3))
    dense = synapse_layer("dense", (4,), (3,))
    with pytest.raises(ValueError, match=r"weight \(3, 4\) and output \(3,\) do not match the geometry \(expected \(3, 5\)"):
        check_geometry(Layer(**{**dense.__dict__, "input_shape": (5,)}))


def test_energy_arithmetic_on_a_hand_example():
    e = LoihiOpEnergy(synop_pj=23.6, update_active_pj=81.0, update_idle_pj=52.0, spike_pj=1.7)
    # 1000 SynOps, 30 active and 70 idle updates, 40 spikes
    assert loihi_energy_pj(1000, 30, 70, 40, e) == pytest.approx(23600 + 2430 + 3640 + 68, abs=1e-9)
    assert ac_energy_pj(1000, 0.9) == pytest.approx(900.0)
    assert mac_energy_pj(2016, 4.6) == pytest.approx(9273.6)
    assert mac_energy_pj(2016, 0.23) == pytest.approx(463.68)
    per_sample = loihi_energy_pj(np.array([0, 10]), np.array([0, 1]), np.array([2, 1]), np.array([0, 1]), e)
    assert per_sample.tolist() == pytest.approx([104.0, 236.0 + 81 + 52 + 1.7])


def test_cores_needed_and_limits():
    limits = CoreLimits(neurons_per_core=1024, synapse_bytes_per_core=128 * 1024, fan_in_axons_per_core=4096,
                        cores_per_chip=128)
    small = cores_needed(synapse_layer("dense", (100,), (2000,)), limits)
    assert (small.cores, small.by_neurons, small.by_synapse_memory, small.exceeded) == (2, 2, 2, ())
    assert small.synapse_bytes == 200_000
    wide = cores_needed(synapse_layer("dense", (5000,), (10,)), limits)
    assert wide.max_fan_in == 5000 and wide.exceeded == ("fan-in 5000 > 4096 axons per core",)
    assert wide.by_synapse_memory == 1  # 50,000 bytes
    huge = cores_needed(synapse_layer("dense", (4000,), (4000,)), limits)
    assert huge.cores == 123  # 16,000,000 bytes / 131,072
    too_many = cores_needed(synapse_layer("dense", (4096,), (8192,)), limits)
    assert too_many.cores == 256 and too_many.exceeded == ("256 cores > 128 per chip",)


def recurrent_layer(n_in=5, n=4, seed=0):
    rng = np.random.default_rng(seed)
    return Layer(kind="recurrent", index=0, input_shape=(n_in,), shape=(n,), weight=2 * rng.integers(-60, 60, (n, n_in)),
                 recurrent_weight=2 * rng.integers(-60, 60, (n, n)), neuron=Neuron(1, 0, 1))


def test_recurrent_counts_equal_a_brute_force_over_every_synapse():
    """Every synapse of the layer, input -> neuron and neuron -> neuron, carries one event per spike of its
    source: SynOps, fan-in, synapse count and ANN MACs from the connection list."""
    g = recurrent_layer()
    n_in, n = g.num_inputs, g.num_neurons
    spikes_in, spikes_out = random_spikes((3, n_in), 6, seed=4), random_spikes((3, n), 6, seed=5)
    synapses = [(("in", i), j) for j in range(n) for i in range(n_in)] + \
               [(("own", m), j) for j in range(n) for m in range(n)]
    brute = np.zeros(3, np.int64)
    in_deg = np.zeros(n, np.int64)
    for (source, i), j in synapses:
        in_deg[j] += 1
        for t in range(6):
            brute += (spikes_in if source == "in" else spikes_out)[:, i, t]
    assert synaptic_operations(g, spikes_in, spikes_out).tolist() == brute.tolist()
    assert brute.tolist() == (spikes_in.reshape(3, -1).sum(1) * n + spikes_out.reshape(3, -1).sum(1) * n).tolist()
    assert fan_in_map(g).tolist() == in_deg.tolist() == [n_in + n] * n
    assert synapse_count(g) == len(synapses) == ann_macs(g) == n_in * n + n * n
    c = count_layer("0:recurrent", g, spikes_in, spikes_out)
    assert c.synops.tolist() == brute.tolist()
    assert c.spikes_in.tolist() == spikes_in.reshape(3, -1).sum(1).tolist()
    assert c.messages.tolist() == (c.spikes_in + spikes_out.reshape(3, -1).sum(1)).tolist()
    with pytest.raises(ValueError, match=r"layer 0 \(recurrent\): a recurrent layer's counts need its own spikes"):
        synaptic_operations(g, spikes_in)
    dense = synapse_layer("dense", (n_in,), (n,))
    assert count_layer("0:dense", dense, spikes_in, spikes_out).messages.tolist() == c.spikes_in.tolist()


def test_recurrent_received_input_includes_the_previous_steps_own_spikes():
    g = recurrent_layer(n_in=2, n=3)
    spikes_in = np.zeros((1, 2, 5), np.uint8)
    spikes_in[0, 1, 0] = 1  # every neuron receives at step 0
    spikes_out = np.zeros((1, 3, 5), np.uint8)
    spikes_out[0, 1, 1] = 1  # every neuron receives at step 2, from neuron 1
    spikes_out[0, 0, 4] = 1  # the last step: its events arrive after the window
    recv = received_input(g, spikes_in, spikes_out)
    assert recv[0].sum(0).tolist() == [3, 0, 3, 0, 0] and recv[0, :, 0].all() and recv[0, :, 2].all()
    assert active_updates(g, spikes_in, spikes_out).tolist() == [3 + 1 + 3 + 1]


def test_recurrent_worst_case_input_and_geometry():
    from spikeship.energy import worst_case_input

    g = Layer(kind="recurrent", index=0, input_shape=(2,), shape=(2,), weight=np.array([[10, -4], [2, 6]]),
              recurrent_weight=np.array([[-8, 20], [100, -50]]), neuron=Neuron(1, 0, 1))
    assert worst_case_input(g) == (min(-4 - 8, -50), max(10 + 20, 2 + 6 + 100))  # per neuron, both matrices
    check_geometry(g)
    with pytest.raises(ValueError, match=r"layer 0 \(recurrent\): recurrent weight \(2, 3\), expected \(2, 2\)"):
        check_geometry(Layer(**{**g.__dict__, "recurrent_weight": np.zeros((2, 3), np.int64)}))
    with pytest.raises(ValueError, match=r"layer 0 \(recurrent\): recurrent weight none, expected \(2, 2\)"):
        check_geometry(Layer(**{**g.__dict__, "recurrent_weight": None}))
    with pytest.raises(ValueError, match=r"layer 0 \(dense\): has recurrent weights, which a dense layer cannot "
                                         r"hold \(recurrent kinds: recurrent\)"):
        check_geometry(Layer(**{**g.__dict__, "kind": "dense"}))
