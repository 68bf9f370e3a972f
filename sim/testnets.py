"""Small seeded networks and inputs for tests and benchmarks of the run/parity stages.

A random ``SpikeNet`` (train.model) with integer TWO weights, written to a ``.net`` file through
``export.quantize`` and a netx HDF5 writer, plus random binary input spikes. Deterministic per seed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

DENSE_LAYERS = (("dense", 48), ("dense", 32), ("dense", 24))
CONV_LAYERS = (("conv", 6, 3, 1), ("pool", 2), ("conv", 8, 3, 0), ("dense", 24))


def _layer(entry):
    from ..train.model import LayerSpec

    kind = entry[0]
    if kind == "dense":
        return LayerSpec("dense", entry[1])
    if kind == "conv":
        return LayerSpec("conv", entry[1], kernel=entry[2], padding=entry[3])
    return LayerSpec("pool", kernel=entry[1])


def random_model(input_shape, num_classes: int, layers, *, seed: int = 0, weight_scale: float = 3.0,
                 threshold: float = 1.0):
    """A ``SpikeNet`` with seeded random weights, scaled so that every layer spikes."""
    from ..train.model import ModelSpec, NeuronSpec, SpikeNet

    spec = ModelSpec(tuple(input_shape), num_classes, tuple(_layer(e) for e in layers),
                     NeuronSpec(threshold=threshold), weight_scale=weight_scale)
    torch.manual_seed(seed)
    model = SpikeNet(spec).eval()
    with torch.no_grad():  # pooling weights: slayer initialises them to weight_scale; make them 1.25
        for layer, block in zip(spec.layers, model.blocks):
            if layer.kind == "pool":
                block.synapse.weight.data.fill_(1.25)
    return model


def random_two_weights(time_steps: int, num_layers: int, *, seed: int = 0) -> np.ndarray:
    """Integer TWO weights around 64 (a_t = 1), zero for the first ``num_layers`` steps."""
    rng = np.random.default_rng(seed)
    a = rng.integers(16, 128, size=time_steps).astype(np.int64)
    a[:num_layers] = 0
    return a


def random_spikes(num: int, input_shape, time_steps: int, *, rate: float = 0.3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((num,) + tuple(input_shape) + (time_steps,)) < rate).astype(np.uint8)


def write_net(model, two_weights_int: np.ndarray, path, *, class_names=None) -> Path:
    """Quantize ``model`` and write its ``.net`` file (netx layers + the ``spikeship/`` group)."""
    from ..export.quantize import quantize_model

    qnet = quantize_model(model, np.asarray(two_weights_int, dtype=np.int64))
    names = class_names or [str(i) for i in range(qnet.num_classes)]
    return _write_minimal(qnet, Path(path), names)


def _write_minimal(qnet, path: Path, class_names) -> Path:
    """netx's HDF5 layout, written the way slayer's ``export_hdf5`` writes it (stand-in for export.netx)."""
    import h5py

    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        layers = f.create_group("layer")
        index = 0
        previous = "input"
        for layer in qnet.layers:
            if layer.kind == "dense" and previous == "conv":
                g = layers.create_group(str(index))
                g.create_dataset("type", (1,), "S10", [b"flatten"])
                g.create_dataset("shape", data=np.array([int(np.prod(layer.input_shape)), 1, 1]))
                index += 1
            g = layers.create_group(str(index))
            g.create_dataset("type", (1,), "S10", [layer.kind.encode("ascii")])
            g.create_dataset("shape", data=np.array(layer.shape))
            g.create_dataset("weight", data=np.asarray(layer.weight, dtype=np.float32))
            if layer.kind == "conv":
                g.create_dataset("inChannels", data=layer.input_shape[0])
                g.create_dataset("outChannels", data=layer.shape[0])
                g.create_dataset("kernelSize", data=np.array(layer.kernel))
                g.create_dataset("stride", data=np.array(layer.stride))
                g.create_dataset("padding", data=np.array(layer.padding))
                g.create_dataset("dilation", data=np.array(layer.dilation))
                g.create_dataset("groups", data=layer.groups)
            n = layer.neuron
            g.create_dataset("neuron/type", data="CUBA")
            g.create_dataset("neuron/iDecay", data=n.i_decay)
            g.create_dataset("neuron/vDecay", data=n.v_decay)
            g.create_dataset("neuron/vThMant", data=n.vth_mant)
            g.create_dataset("neuron/refDelay", data=n.ref_delay)
            g.create_dataset("neuron/gradedSpike", data=False)
            previous = layer.kind
            index += 1
        s = f.create_group("spikeship")
        s.create_dataset("format_version", data=1)
        s.create_dataset("readout/weight", data=np.asarray(qnet.readout_weight, dtype=np.int64))
        s.create_dataset("readout/two_weights", data=np.asarray(qnet.two_weights, dtype=np.int64))
        s.create_dataset("time_steps", data=qnet.time_steps)
        s.create_dataset("input_shape", data=np.array(qnet.input_shape))
        s.create_dataset("class_names", data=np.array([c.encode() for c in class_names]))
        s.create_dataset("model_card", data="{}")
    os.replace(tmp, path)
    return path
