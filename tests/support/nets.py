"""Small seeded networks and inputs for the tests (and benchmarks, which put this folder on their path).

* ``random_model``/``make_case``: a random ``SpikeNet`` with integer TWO weights, written to a ``.net`` file by
  the exporter (``export.quantize`` + ``export.netx``), plus random binary input spikes. Deterministic per seed.
* ``set_integer_weights``, ``conv_pool_dense_spec``, ``dense_spec_tiny``, ``two_for``: tiny real SpikeNets with
  varied 8-bit weights (every weight an even integer / 64 before the hook), for the export tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from spikeship.train.model import LayerSpec, ModelSpec, NeuronSpec, SpikeNet
from spikeship.train.msg import synapses

DENSE_LAYERS = (("dense", 48), ("dense", 32), ("dense", 24))
CONV_LAYERS = (("conv", 6, 3, 1), ("pool", 2), ("conv", 8, 3, 0), ("dense", 24))


RECURRENT_LAYERS = (("recurrent", 24), ("recurrent", 16))
MIXED_LAYERS = (("dense", 24), ("recurrent", 20), ("dense", 16))
CONV_RECURRENT_LAYERS = (("conv", 4, 3, 1), ("recurrent", 20))


def _layer(entry):
    kind = entry[0]
    if kind in ("dense", "recurrent"):
        return LayerSpec(kind, entry[1])
    if kind == "conv":
        return LayerSpec("conv", entry[1], kernel=entry[2], padding=entry[3])
    return LayerSpec("pool", kernel=entry[1])


def random_model(input_shape, num_classes: int, layers, *, seed: int = 0, weight_scale: float = 3.0,
                 threshold: float = 1.0):
    """A ``SpikeNet`` with seeded random weights, scaled so that every layer spikes."""
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


def write_net(model, two_weights_int: np.ndarray, path, *, class_names=(), model_card=None) -> Path:
    """Quantize ``model`` and write its ``.net`` file with the exporter (``export.netx.write_net``)."""
    from spikeship.export.netx import write_net as export_net
    from spikeship.export.quantize import quantize_model

    export_net(quantize_model(model, np.asarray(two_weights_int, dtype=np.int64), class_names=class_names,
                              model_card=model_card), path)
    return Path(path)


NETS = {
    # name: (input shape, layers, weight scale)
    "dense": ((2, 4, 4), DENSE_LAYERS, 3.0),
    "conv": ((2, 10, 10), CONV_LAYERS, 3.0),
    "recurrent": ((2, 4, 4), RECURRENT_LAYERS, 3.0),
    "mixed": ((2, 4, 4), MIXED_LAYERS, 3.0),
    "conv_recurrent": ((1, 5, 5), CONV_RECURRENT_LAYERS, 3.0),
}


def make_case(name: str, folder, *, time_steps: int = 8, samples: int = 20, classes: int = 5, seed: int = 0):
    """``(net path, model, inputs (N, C, H, W, T) uint8, labels, two_weights)`` for ``NETS[name]``."""
    shape, layers, scale = NETS[name]
    model = random_model(shape, classes, layers, seed=seed, weight_scale=scale)
    two = random_two_weights(time_steps, len(layers), seed=seed + 1)
    path = write_net(model, two, Path(folder) / f"{name}.net")
    inputs = random_spikes(samples, shape, time_steps, seed=seed + 2)
    labels = np.arange(samples) % classes
    return path, model, inputs, labels, two


def make_checkpoint_case(folder, *, time_steps: int = 8, hidden=(32, 16), seed: int = 0):
    """A random dense model for event-digits saved as a training checkpoint and exported: ``(ckpt, net)``."""
    from spikeship.train.checkpoint import save_checkpoint
    from spikeship.train.data import load_dataset

    folder = Path(folder)
    ds = load_dataset("event-digits", None, time_steps, "test", max_samples=1)
    layers = tuple(("dense", h) for h in hidden)
    model = random_model(ds.input_shape, ds.num_classes, layers, seed=seed, weight_scale=3.0)
    rng = np.random.default_rng(seed)
    two = np.concatenate([np.zeros(len(layers)), rng.uniform(0.5, 1.5, time_steps - len(layers))])
    ckpt = save_checkpoint(folder / "model.pt", spec=model.spec, state_dict=model.state_dict(), two_weights=two,
                           dataset="event-digits", data_dir=None, time_steps=time_steps,
                           class_names=ds.class_names)
    write_net(model, two, folder / "model.net", class_names=ds.class_names,
              model_card={"dataset": "event-digits", "time_steps": time_steps})
    return ckpt, folder / "model.net"


def set_integer_weights(net: SpikeNet, seed: int = 0, low: int = -40, high: int = 40) -> SpikeNet:
    """Give every trainable synapse random even integer weights in [2*low, 2*high] (units of 1/64)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        trained = [s for b in net.blocks if type(b).__name__ != "MSGPool" for s in synapses(b)] + [net.readout]
        for s in trained:
            s.weight.copy_(torch.randint(low, high + 1, s.weight.shape, generator=g).float() * 2 / 64)
    return net


def conv_pool_dense_spec() -> ModelSpec:
    return ModelSpec(
        input_shape=(2, 6, 6),
        num_classes=3,
        layers=(LayerSpec("conv", 3, kernel=3, padding=1), LayerSpec("pool", kernel=2),
                LayerSpec("conv", 4, kernel=3, stride=2, padding=1), LayerSpec("dense", 5)),
        neuron=NeuronSpec(threshold=1.25, current_decay=0.25, voltage_decay=0.03),
    )


def dense_spec_tiny() -> ModelSpec:
    return ModelSpec(input_shape=(2, 3, 3), num_classes=2, layers=(LayerSpec("dense", 6), LayerSpec("dense", 4)))


def recurrent_spec_tiny() -> ModelSpec:
    return ModelSpec(input_shape=(2, 3, 3), num_classes=3, layers=(LayerSpec("recurrent", 6), LayerSpec("dense", 4)))


def two_for(net: SpikeNet, time_steps: int = 8) -> np.ndarray:
    """Float TWO weights (sum T) with distinct values so quantization is visible."""
    a = np.linspace(0.5, 1.5, time_steps)
    return a * time_steps / a.sum()
