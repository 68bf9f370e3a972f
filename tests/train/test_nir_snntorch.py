"""NIR with snnTorch 1.0 itself (a dev dependency): its networks, written by its own node exporter
(``snntorch_nets.snntorch_graph``), simulate spike for spike as the import's float reference; and the other way,
a spikeship network exported to NIR runs in snnTorch's ``import_from_nir`` spike for spike as that same
reference."""

from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn  # the dev extra installs it (a test dependency, not a runtime one)
import torch

from nets import random_model
from spikeship import backends
from spikeship.backends import RunOptions
from spikeship.export.nir_export import network_graph
from spikeship.export.quantize import quantize_model
from spikeship.train.nir_graph import walk_graph
from spikeship.train.nir_reference import agreement, simulate
from snntorch_nets import FAITHFUL, snntorch_graph, snntorch_spikes

def snntorch_uint8(net, x) -> list[np.ndarray]:
    with torch.no_grad():
        return [s.to(torch.uint8).numpy() for s in snntorch_spikes(net, x)]


def test_snntorch_conv_pool_dense_network_is_the_float_reference_spike_for_spike():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, bias=False), snn.Synaptic(alpha=0.6, beta=0.8, **FAITHFUL),
        torch.nn.AvgPool2d(2), snn.Synaptic(alpha=0.5, beta=0.9, threshold=0.3, **FAITHFUL),
        torch.nn.Flatten(), torch.nn.Linear(64, 6, bias=False), snn.Leaky(beta=0.85, **FAITHFUL))
    with torch.no_grad():
        net[0].weight.mul_(4)
        net[5].weight.mul_(4)
    walked = walk_graph(snntorch_graph(net, (2, 10, 10), 6), 1e-4, (2, 10, 10))
    assert [layer.kind for layer in walked.layers] == ["conv", "pool", "dense"]
    assert [layer.neuron.type for layer in walked.layers] == ["CubaLIF", "CubaLIF", "LIF"]
    assert walked.readout.spike_count
    x = (torch.rand(5, 2, 10, 10, 12) < 0.3).float()
    ours = simulate(walked, x.numpy())[1]
    theirs = snntorch_uint8(net, x)
    assert [int(s.sum()) for s in theirs] == [2835, 1680, 54]  # every layer spikes
    for mine, snn_spikes in zip(ours, theirs):
        np.testing.assert_array_equal(mine, snn_spikes)


def test_spikeship_network_runs_in_snntorch_as_its_float_reference():
    """ours -> NIR (dt 1e-4, what snnTorch assumes) -> snnTorch's import_from_nir: its spikes are the float
    reference's; against our Loihi integers (the emulator) they agree closely, not exactly."""
    from snntorch.import_nir import import_from_nir

    model = random_model((2, 4, 4), 5, (("dense", 12), ("dense", 8)), seed=3, weight_scale=3.0)
    two = np.linspace(0.5, 1.5, 10)
    net = quantize_model(model, two)
    graph = network_graph(net, two_weights=two, dt=1e-4)
    imported = import_from_nir(graph)
    neurons = [dict(imported.named_children())[f"lif{k}"] for k in range(2)]
    recorded: list[list] = [[], []]
    for k, module in enumerate(neurons):
        module.register_forward_hook(lambda m, i, out, k=k: recorded[k].append(out[0] if isinstance(out, tuple) else out))
    x = (np.random.default_rng(0).random((6, 2, 4, 4, 10)) < 0.4).astype(np.uint8)
    theirs = [[], []]
    with torch.no_grad():
        for sample in x:  # unbatched: snnTorch maps NIR's Flatten(start_dim=0) to torch's, which would flatten a batch
            for module in neurons:
                module.reset_mem()
            state = None
            for t in range(x.shape[-1]):
                readout, state = imported(torch.as_tensor(sample[..., t], dtype=torch.float32), state)
            for k in range(2):
                theirs[k].append(torch.stack(recorded[k], -1).to(torch.uint8).numpy())
                recorded[k].clear()
    theirs = [np.stack(t) for t in theirs]
    walked = walk_graph(graph, 1e-4, (2, 4, 4))
    reference = simulate(walked, x)[1]
    for k in range(2):
        np.testing.assert_array_equal(theirs[k], reference[k])
    windows = backends.run("emulator", net, x, RunOptions(record_spikes=True)).windows
    for k in range(2):
        a = agreement(windows[k], theirs[k])
        assert a["spikes"][1] > 0 and a["equal"] > 0.9, a


@pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph is being deprecated")
def test_snntorch_rsynaptic_export_imports_as_a_recurrent_layer():
    """snnTorch 1.0 (with nirtorch 2.6) writes RSynaptic flat: Linear '0', CubaLIF '1.lif' <-> Affine '1.w_rec'. Its
    recurrent Linear has a bias by default, which Loihi cannot hold: refused until it is zero. (snnTorch 1.0's
    RSynaptic fails with reset_delay=False, TypeError in its forward, so this one keeps its default reset; NIR does not
    record the reset anyway.)"""
    from snntorch.export_nir import export_to_nir

    from spikeship.errors import SpikeshipError

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 5, bias=False),
                              snn.RSynaptic(alpha=0.5, beta=0.9, linear_features=5, init_hidden=True,
                                            reset_mechanism="zero"))
    graph = export_to_nir(net, torch.zeros(1, 8), ignore_dims=[0])
    assert ("1.lif", "1.w_rec") in graph.edges and ("1.w_rec", "1.lif") in graph.edges
    with pytest.raises(SpikeshipError, match=r"node '1.w_rec' \(Affine\): non-zero bias"):
        walk_graph(graph, 1e-4, (8, 1, 1))
    with torch.no_grad():
        net[1].recurrent.bias.zero_()
    walked = walk_graph(export_to_nir(net, torch.zeros(1, 8), ignore_dims=[0]), 1e-4, (8, 1, 1))
    (layer,) = walked.layers
    assert layer.kind == "recurrent" and layer.nodes == ("0", "1.w_rec", "1.lif")
    np.testing.assert_allclose(layer.weight, net[0].weight.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(layer.recurrent, net[1].recurrent.weight.detach().numpy(), rtol=1e-6)
    assert (layer.neuron.current_decay, round(layer.neuron.voltage_decay, 6)) == (0.5, 0.1)
