"""`export --nir`: our networks as NIR graphs, and back: ours -> NIR -> ours is the same network, integer for
integer, rebuilt from the nodes' parameters alone (the metadata holds only dt, TWO weights, data set, classes)."""

from __future__ import annotations

import json
from dataclasses import replace

import nir
import numpy as np
import pytest
import torch

from nets import random_spikes, set_integer_weights, two_for
from spikeship import backends
from spikeship.backends import RunOptions
from spikeship.cli import main
from spikeship.errors import SpikeshipError
from spikeship.export.nir_export import network_graph, write_graph
from spikeship.export.quantize import quantize_model
from spikeship.network import Neuron
from spikeship.train.checkpoint import save_checkpoint
from spikeship.train.model import LayerSpec, ModelSpec, NeuronSpec, SpikeNet
from spikeship.train.nir_graph import graph_metadata, read_graph, walk_graph
from spikeship.train.nir_import import build_model, map_to_loihi


def round_trip(net, two, path, dt=1e-4):
    """net -> NIR file -> walk -> Loihi integers -> SpikeNet -> quantize: the network the import gives."""
    write_graph(network_graph(net, two_weights=two, dt=dt, dataset="event-digits"), path)
    graph = read_graph(path)
    imported = map_to_loihi(walk_graph(graph, graph_metadata(graph).dt, net.input_shape))
    model = build_model(imported)
    return imported, model, quantize_model(model, np.asarray(graph_metadata(graph).two_weights),
                                           class_names=graph_metadata(graph).class_names)


def _mixed_spec() -> ModelSpec:
    """conv, pool (a learned, non-uniform kernel), conv, dense; layers with their own neurons, one with an instant
    synapse (current decay 1: a NIR LIF)."""
    return ModelSpec(
        input_shape=(2, 6, 6), num_classes=3,
        layers=(LayerSpec("conv", 3, kernel=3, padding=1),
                LayerSpec("pool", kernel=2, neuron=NeuronSpec(threshold=0.75, current_decay=1.0, voltage_decay=0.5)),
                LayerSpec("conv", 4, kernel=3, stride=2, padding=1),
                LayerSpec("dense", 5, neuron=NeuronSpec(threshold=2.0, current_decay=0.125, voltage_decay=0.0625))),
        neuron=NeuronSpec(threshold=1.25, current_decay=0.25, voltage_decay=0.03))


@pytest.mark.parametrize("which", ["dense", "conv-pool", "mixed"])
def test_round_trip_is_the_same_network_and_the_same_spikes(which, conv_net, dense_net, tmp_path):
    if which == "mixed":
        torch.manual_seed(1)
        model = set_integer_weights(SpikeNet(_mixed_spec()), seed=4)
        with torch.no_grad():  # a pooling kernel that is not uniform: written as a depthwise Conv2d
            model.blocks[1].synapse.weight.copy_(torch.tensor([[1.0, 0.5], [0.25, 2.0]]).reshape(1, 1, 2, 2, 1))
    else:
        model = dense_net if which == "dense" else conv_net
    two = two_for(model, 8)
    net = quantize_model(model, two, class_names=[f"c{i}" for i in range(model.spec.num_classes)])
    imported, back_model, back = round_trip(net, two, tmp_path / "model.nir")
    assert back.layers == net.layers and back.readout == net.readout
    np.testing.assert_array_equal(back.two_weights, net.two_weights)
    assert back.class_names == net.class_names and back.input_shape == net.input_shape
    assert all(m.exact for m in imported.layers) and imported.readout.exact
    assert max(m.error["max"] for m in imported.layers) < 1e-12  # float noise of the gains, nothing rounded
    def geometry(spec):
        return [(x.kind, x.features, x.kernel, x.effective_stride, x.padding) for x in spec.layers]

    assert geometry(back_model.spec) == geometry(model.spec)
    # the same spikes: PyTorch forward of both models, and the emulator of both networks
    x = random_spikes(6, model.spec.input_shape, 8, seed=2)
    with torch.no_grad():
        r1, s1 = model(torch.as_tensor(x, dtype=torch.float32))
        r2, s2 = back_model(torch.as_tensor(x, dtype=torch.float32))
    assert torch.equal(r1, r2) and all(torch.equal(a, b) for a, b in zip(s1, s2))
    assert sum(int(s.sum()) for s in s1) > 0
    e1, e2 = (backends.run("emulator", n, x, RunOptions(record_spikes=True)) for n in (net, back))
    assert all(np.array_equal(a, b) for a, b in zip(e1.windows, e2.windows))
    np.testing.assert_array_equal(e1.readout, e2.readout)


def test_the_graph_holds_what_the_docstring_says(conv_net, tmp_path):
    two = two_for(conv_net, 8)
    net = quantize_model(conv_net, two, class_names=["a", "b", "c"])
    dt = 2e-3
    graph = network_graph(net, two_weights=two, dt=dt, dataset="event-digits")
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    assert kinds == {"input": "Input", "conv0": "Conv2d", "lif0": "CubaLIF", "pool1": "SumPool2d", "lif1": "CubaLIF",
                     "conv2": "Conv2d", "lif2": "CubaLIF", "flatten3": "Flatten", "dense3": "Linear",
                     "lif3": "CubaLIF", "readout": "Affine", "output": "Output"}
    names = list(graph.nodes)
    assert graph.edges == list(zip(names, names[1:]))
    n = net.layers[0].neuron  # iDecay 1024, vDecay 123, vThMant 80
    lif = graph.nodes["lif0"]
    assert lif.tau_syn.shape == tuple(net.layers[0].shape)
    np.testing.assert_allclose(lif.tau_syn, dt * 4096 / n.i_decay)
    np.testing.assert_allclose(lif.tau_mem, dt * 4096 / n.v_decay)
    np.testing.assert_allclose(lif.w_in * dt / lif.tau_syn * lif.r * dt / lif.tau_mem, 1.0)
    assert np.all(lif.v_threshold == n.vth_mant / 64) and not lif.v_leak.any() and not lif.v_reset.any()
    np.testing.assert_array_equal(graph.nodes["conv0"].weight, net.layers[0].weight / 64)
    pool = net.layers[1].weight[0, 0, 0, 0] / 64  # the uniform pooling weight (64 from the fixture's spec) goes
    np.testing.assert_allclose(graph.nodes["lif1"].w_in * dt / graph.nodes["lif1"].tau_syn, pool)  # into the gain
    np.testing.assert_array_equal(graph.nodes["readout"].weight, net.readout.weight / 64)
    assert not graph.nodes["readout"].bias.any()
    assert set(graph.metadata) == {"dt", "two_weights", "dataset", "class_names"}
    path = write_graph(graph, tmp_path / "model.nir")
    read = nir.read(path)  # NIR's own type check passes
    meta = graph_metadata(read)
    assert meta == graph_metadata(graph) and meta.dt == dt and meta.class_names == ("a", "b", "c")
    assert json.loads(read.metadata["class_names"]) == ["a", "b", "c"] and meta.two_weights == tuple(two)


def test_an_instant_synapse_is_written_as_lif(dense_net):
    net = quantize_model(dense_net, two_for(dense_net, 8))
    layer = net.layers[1]
    net = replace(net, layers=(net.layers[0], replace(layer, neuron=replace(layer.neuron, i_decay=4096))))
    graph = network_graph(net, two_weights=two_for(dense_net, 8))
    lif = graph.nodes["lif1"]
    assert type(lif).__name__ == "LIF"
    np.testing.assert_allclose(lif.r * 1e-4 / lif.tau, 1.0)


def test_no_leak_has_no_nir_form(dense_net):
    net = quantize_model(dense_net, two_for(dense_net, 8))
    layer = replace(net.layers[0], neuron=Neuron(i_decay=1024, v_decay=0, vth_mant=80))
    with pytest.raises(SpikeshipError, match=r"layer 0 \(dense\): voltage decay 0 \(no leak\) has no NIR form"):
        network_graph(replace(net, layers=(layer,) + net.layers[1:]), two_weights=two_for(dense_net, 8))


def test_export_cli_writes_every_file_or_none(dense_net, tmp_path, capsys):
    def checkpoint(model, path):
        return save_checkpoint(path, spec=model.spec, state_dict=model.state_dict(), two_weights=two_for(model, 8),
                               dataset="event-digits", data_dir=None, time_steps=8, class_names=["x", "y"])

    ckpt = checkpoint(dense_net, tmp_path / "model.pt")
    out, nir_path = tmp_path / "model.net", tmp_path / "model.nir"
    assert main(["export", str(ckpt), "--out", str(out), "--nir", str(nir_path), "--nir-dt", "1e-3"]) == 0
    assert f"-> {out}, {nir_path}" in capsys.readouterr().out
    assert graph_metadata(read_graph(nir_path)).dt == 1e-3
    assert main(["export", str(ckpt), "--nir", str(tmp_path / "only.nir")]) == 0
    assert (tmp_path / "only.nir").is_file()
    # a network NIR cannot hold (no voltage leak) is refused before any file is written
    torch.manual_seed(0)
    still = set_integer_weights(SpikeNet(replace(dense_net.spec, neuron=NeuronSpec(voltage_decay=0.0))), seed=2)
    bad = checkpoint(still, tmp_path / "bad" / "model.pt")
    assert main(["export", str(bad), "--out", str(tmp_path / "bad" / "m.net"), "--nir",
                 str(tmp_path / "bad" / "m.nir")]) == 2
    assert "voltage decay 0 (no leak) has no NIR form" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "bad").iterdir()) == ["model.pt"]
    assert main(["export", str(ckpt), "--out", str(out), "--nir", str(out)]) == 2
    assert "--out, --onnx and --nir must name different files" in capsys.readouterr().err
    assert main(["export", str(ckpt), "--out", str(out), "--nir-dt", "1e-3"]) == 2


@pytest.mark.parametrize("name", ["recurrent", "mixed", "conv_recurrent"])
def test_recurrent_round_trip_and_snntorch_form(name, request, tmp_path):
    """A recurrent layer goes out as snnTorch 1.0 writes RSynaptic (Linear, then CubaLIF <-> Linear written flat)
    and comes back the same layer, recurrent weights included; the same spikes in the emulator."""
    _, model, inputs, _, two_int = request.getfixturevalue(f"{name}_case")
    two = two_int / 64  # float TWO weights that quantize to the network's integers
    net = quantize_model(model, two)
    graph = network_graph(net, two_weights=two)
    k = next(layer.index for layer in net.layers if layer.recurrent_weight is not None)
    assert (f"rec{k}.lif", f"rec{k}.w_rec") in graph.edges and (f"rec{k}.w_rec", f"rec{k}.lif") in graph.edges
    np.testing.assert_array_equal(graph.nodes[f"rec{k}.w_rec"].weight, net.layers[k].recurrent_weight / 64)
    imported, _, back = round_trip(net, two, tmp_path / "model.nir")
    assert [m.layer.kind for m in imported.layers] == [layer.kind for layer in net.layers]
    assert back.layers == net.layers and back.readout == net.readout
    e1, e2 = (backends.run("emulator", n, inputs[:6], RunOptions(record_spikes=True)) for n in (net, back))
    assert all(np.array_equal(a, b) for a, b in zip(e1.windows, e2.windows))
    assert int(e1.windows[k].sum()) > 0


def test_recurrence_takes_one_step_in_the_float_reference_as_on_loihi(recurrent_net, tmp_path):
    """Memoryless neurons (current and voltage decay 1: v[t] = W x[t] + R s[t-1]) make Loihi's integer step and
    the float reference the same arithmetic: their spikes are equal only if the recurrence has the same delay."""
    from spikeship.train.nir_reference import simulate

    two = two_for(recurrent_net, 8)
    net = quantize_model(recurrent_net, two)
    memoryless = tuple(replace(layer, neuron=replace(layer.neuron, i_decay=4096, v_decay=4096, vth_mant=40))
                       for layer in net.layers)
    net = replace(net, layers=memoryless)
    x = random_spikes(10, net.input_shape, 8, rate=0.5, seed=5)
    walked = walk_graph(network_graph(net, two_weights=two), 1e-4, net.input_shape)
    reference = simulate(walked, x)[1]
    windows = backends.run("emulator", net, x, RunOptions(record_spikes=True)).windows
    for k in range(len(net.layers)):
        np.testing.assert_array_equal(windows[k], reference[k])
    assert int(windows[0].sum()) > 20 and int(np.abs(net.layers[0].recurrent_weight).sum()) > 0
