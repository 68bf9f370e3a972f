"""Small seeded networks and inputs for tests and benchmarks of the run/parity stages.

A random ``SpikeNet`` (train.model) with integer TWO weights, written to a ``.net`` file by the exporter
(``export.quantize`` + ``export.netx``), plus random binary input spikes. Deterministic per seed.
"""

from __future__ import annotations

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
    """Quantize ``model`` and write its ``.net`` file with the exporter (``export.netx.write_net``)."""
    from ..export.netx import write_net as export_net
    from ..export.quantize import quantize_model

    qnet = quantize_model(model, np.asarray(two_weights_int, dtype=np.int64))
    export_net(qnet, path, class_names=tuple(class_names or ()))
    return Path(path)


NETS = {
    # name: (input shape, layers, weight scale)
    "dense": ((2, 4, 4), DENSE_LAYERS, 3.0),
    "conv": ((2, 10, 10), CONV_LAYERS, 3.0),
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
    from ..train.checkpoint import save_checkpoint
    from ..train.data import load_dataset

    folder = Path(folder)
    ds = load_dataset("event-digits", None, time_steps, "test", max_samples=1)
    layers = tuple(("dense", h) for h in hidden)
    model = random_model(ds.input_shape, ds.num_classes, layers, seed=seed, weight_scale=3.0)
    rng = np.random.default_rng(seed)
    two = np.concatenate([np.zeros(len(layers)), rng.uniform(0.5, 1.5, time_steps - len(layers))])
    ckpt = save_checkpoint(folder / "model.pt", spec=model.spec, state_dict=model.state_dict(), two_weights=two,
                           dataset="event-digits", data_dir=None, time_steps=time_steps,
                           class_names=ds.class_names)
    from ..export.netx import write_net as export_net
    from ..export.quantize import quantize_model

    export_net(quantize_model(model, two), folder / "model.net", class_names=ds.class_names)
    return ckpt, folder / "model.net"
