"""Tiny real SpikeNets with varied 8-bit weights (every weight an even integer / 64 before the hook)."""

from __future__ import annotations

import numpy as np
import torch

from spikeship.train.model import LayerSpec, ModelSpec, NeuronSpec, SpikeNet


def set_integer_weights(net: SpikeNet, seed: int = 0, low: int = -40, high: int = 40) -> SpikeNet:
    """Give every trainable synapse random even integer weights in [2*low, 2*high] (units of 1/64)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        synapses = [b.synapse for b in net.blocks if type(b).__name__ != "MSGPool"] + [net.readout]
        for s in synapses:
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


def two_for(net: SpikeNet, time_steps: int = 8) -> np.ndarray:
    """Float TWO weights (sum T) with distinct values so quantization is visible."""
    a = np.linspace(0.5, 1.5, time_steps)
    return a * time_steps / a.sum()
