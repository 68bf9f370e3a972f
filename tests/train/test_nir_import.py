"""The import's mapping onto Loihi's integers (train.nir_graph + train.nir_import), with values worked out by hand."""

from __future__ import annotations

import nir
import numpy as np

from nir_graphs import chain, conv, cuba, flatten, lif, write
from spikeship.export.quantize import quantize_model
from spikeship.train.nir_graph import read_graph, walk_graph
from spikeship.train.nir_import import build_model, fits, largest_fit, map_to_loihi, to_grid
from spikeship.train.nir_reference import agreement, aligned_weights, decide

W = np.array([[0.5, -0.25, 0.1, 0.0], [0.2, 0.3, -0.4, 0.05]])


def test_snntorch_synaptic_layer_maps_to_these_integers():
    """alpha 0.5, beta 0.9, threshold 1 (snnTorch's parameters, dt 1e-4): decays 2048/4096 and 410/4096, gain 1;
    the largest weight 0.5 sets the threshold mantissa to 254 / 0.5 = 508, weights 2 round(508 w / 2)."""
    graph = chain(flatten((1, 2, 2)), nir.Linear(weight=W), cuba(2), input_shape=(1, 2, 2), output=[2])
    imported = map_to_loihi(walk_graph(graph, 1e-4, (1, 2, 2)))
    (layer,) = imported.layers
    assert (layer.current.integer, layer.voltage.integer, layer.vth_mant) == (2048, 410, 508)
    assert layer.layer.neuron.gain == 1.0 and not layer.exact
    np.testing.assert_array_equal(layer.weight, [[254, -128, 50, 0], [102, 152, -204, 26]])
    assert abs(layer.error["max"] - (128 / 508 - 0.25) / 0.5) < 1e-12
    assert abs(layer.voltage.tau_deployed - 1e-4 * 4096 / 410) < 1e-15 and layer.current.tau_deployed == 2e-4
    assert "voltage decay 0.1 -> 410/4096 (tau 0.000999 s, -0.10%)" in layer.line()
    assert imported.readout.readout.spike_count and imported.readout.exact
    np.testing.assert_array_equal(imported.readout.weight, 254 * np.eye(2, dtype=np.int64))
    spec = imported.spec
    assert (spec.input_shape, spec.num_classes, spec.layers[0].kind, spec.layers[0].features) == ((1, 2, 2), 2, "dense", 2)
    assert (spec.neuron.threshold, spec.neuron.current_decay, spec.neuron.voltage_decay) == (508 / 64, 0.5, 410 / 4096)
    net = quantize_model(build_model(imported), np.ones(4))  # the SpikeNet holds exactly these integers
    np.testing.assert_array_equal(net.layers[0].weight, layer.weight)
    assert (net.layers[0].neuron.i_decay, net.layers[0].neuron.v_decay, net.layers[0].neuron.vth_mant) == (2048, 410, 508)


def test_the_largest_scale_that_fits():
    m, w = largest_fit(W, 131071)
    assert m == 508 and fits(w) and not fits(to_grid(W, 520))
    many = np.full((1, 300), 0.01)  # 300 inputs: the worst-case input (half of int16) binds before the 8-bit range
    m, w = largest_fit(many, 131071)
    assert fits(w, 0.5) and 16000 < int(w.sum()) <= 16383 and not fits(to_grid(many, m + 400), 0.5)
    assert fits(2 * w)  # the other half of int16: room for fine-tuning (every weight may double)
    assert largest_fit(np.array([[1.0]]), 100)[0] == 100  # the cap (vThMant's 17 bits) binds


def test_lif_is_an_instant_synapse_and_avgpool_a_quarter():
    """LIF(beta 0.8): current decay 4096/4096, voltage round(4096 * 0.2) = 819, gain r dt/tau = 1. A conv on the
    grid (w = k/64) with threshold 1 is kept exactly; AvgPool2d(2) is a pool of weight 1/4 = 16/64."""
    k = np.array([[[[2.0, -4.0], [6.0, 0.0]]]]) / 64
    c = nir.Conv2d(input_shape=np.array([4, 4]), weight=k, stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(1))
    imported = map_to_loihi(walk_graph(chain(c, lif((1, 5, 5), beta=0.8), input_shape=(1, 4, 4)), 1e-4, (1, 4, 4)))
    (layer,) = imported.layers
    assert (layer.current.integer, layer.voltage.integer, layer.vth_mant, layer.exact) == (4096, 819, 64, True)
    assert layer.layer.neuron.type == "LIF" and abs(layer.layer.neuron.gain - 1.0) < 1e-12
    np.testing.assert_array_equal(layer.weight, [[[[2, -4], [6, 0]]]])
    half = nir.Conv2d(input_shape=np.array([4, 4]), weight=np.full((1, 1, 1, 1), 0.5), stride=1, padding=0, dilation=1,
                      groups=1, bias=np.zeros(1))
    pool = nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    graph = chain(half, cuba((1, 4, 4)), pool, cuba((1, 2, 2)), input_shape=(1, 4, 4))
    imported = map_to_loihi(walk_graph(graph, 1e-4, (1, 4, 4)))
    assert [m.layer.kind for m in imported.layers] == ["conv", "pool"]
    assert imported.layers[1].exact and imported.layers[1].weight.tolist() == [[[[16, 16], [16, 16]]]]
    assert imported.spec.layers[1].effective_stride == 2 and imported.readout.weight.shape == (4, 4)


def test_a_depthwise_conv_with_one_kernel_is_pooling():
    k = np.tile(np.array([[1.0, 0.5], [0.25, 2.0]]), (3, 1, 1, 1))
    c = nir.Conv2d(input_shape=None, weight=k, stride=2, padding=0, dilation=1, groups=3, bias=np.zeros(3))
    graph = chain(conv(3, 2, 3, input_hw=(6, 6), padding=1), cuba((3, 6, 6)), c, cuba((3, 3, 3)), input_shape=(2, 6, 6))
    imported = map_to_loihi(walk_graph(graph, 1e-4, (2, 6, 6)))
    assert [m.layer.kind for m in imported.layers] == ["conv", "pool"]
    np.testing.assert_array_equal(imported.layers[1].weight, [[[[64, 32], [16, 128]]]])


def test_snntorch_scalar_parameters_read_from_a_file(tmp_path):
    """snnTorch writes a Synaptic layer's parameters as 0-d arrays (nir.write takes them only uncompressed); they
    map as the per-neuron arrays do."""
    tau_syn, tau_mem = 1e-4 / 0.5, 1e-4 / 0.1
    scalar = nir.CubaLIF(tau_syn=np.array(tau_syn), tau_mem=np.array(tau_mem), r=np.array(tau_mem / 1e-4),
                         v_leak=np.array(0.0), v_threshold=np.array(1.0), v_reset=np.array(0.0),
                         w_in=np.array(tau_syn / 1e-4))
    graph = chain(flatten((1, 2, 2)), nir.Linear(weight=W), scalar, input_shape=(1, 2, 2), output=[2])
    read = read_graph(write(graph, tmp_path / "scalar.nir", compression=None))
    imported = map_to_loihi(walk_graph(read, 1e-4, (1, 2, 2)))
    assert (imported.layers[0].current.integer, imported.layers[0].voltage.integer, imported.layers[0].vth_mant) == \
        (2048, 410, 508)


def test_an_affine_readout_is_scaled_and_kept():
    r = np.array([[0.3, -0.7], [0.1, 0.2]])
    graph = chain(flatten((1, 2, 2)), nir.Linear(weight=W), cuba(2), nir.Affine(weight=r, bias=np.zeros(2)),
                  input_shape=(1, 2, 2), output=[2])
    readout = map_to_loihi(walk_graph(graph, 1e-4, (1, 2, 2))).readout
    assert readout.readout.node == "3" and not readout.exact and readout.scale == 254 / 0.7
    np.testing.assert_array_equal(readout.weight, [[108, -254], [36, 72]])


def test_reference_helpers():
    a = np.array([[[0, 1, 1], [0, 0, 1]]], dtype=np.uint8)
    b = np.array([[[0, 1, 0], [0, 0, 1]]], dtype=np.uint8)
    assert agreement(a, b) == {"equal": 5 / 6, "spikes": [3, 2], "both": 2, "jaccard": 2 / 3}
    np.testing.assert_array_equal(aligned_weights([1.0, 2.0, 3.0, 4.0], 1), [2.0, 3.0, 4.0, 0.0])
    readout = np.array([[[1.0, 0.0], [0.0, 3.0]]])  # class 0 at step 0, class 1 at step 1
    assert decide(readout, [1, 0]).tolist() == [0] and decide(readout, [1, 1]).tolist() == [1]
