"""The unquantized mode of an imported network: the NIR graph simulated in float64 with the same forward-Euler
discretization as the import (``train.nir_graph``) but float weights and decays, and no pipeline delay (layer k
at step t takes layer k-1's spikes of the same step, as snnTorch and the NIR graph do).

    readout, spikes = simulate(walked, x)        # x (N, C, H, W, T) binary; spikes[k] (N, *shape_k, T)

It is the yardstick for what the import's rounding costs: ``agreement`` compares its spikes with a deployed run's
layer windows (``sim/layout.py``: the deployed layer k at local step ``k + t`` is this layer at step ``t``), and
``aligned_weights`` gives its readout the steps the deployed readout sees (the deployed readout at step t takes
the last layer's step ``t - L``, so the last L steps of the T fall outside the deployed window).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .nir_graph import FloatLayer, Walked


def _dense(layer: FloatLayer, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1) @ w.T


def _conv(layer: FloatLayer, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    spec = layer.synapse.spec
    return F.conv2d(x, w, stride=spec.effective_stride, padding=spec.padding)


def _pool(layer: FloatLayer, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    spec, channels = layer.synapse.spec, x.shape[1]
    return F.conv2d(x, w.expand(channels, 1, *w.shape[2:]), stride=spec.effective_stride, padding=spec.padding,
                    groups=channels)


#: layer kind -> its synapse on one step's input (float64), ``op(layer, weight, x) -> input current``; a
#: recurrent layer adds ``R s[t-1]`` to its dense synapse's
SYNAPSES = {"dense": _dense, "recurrent": _dense, "conv": _conv, "pool": _pool}


@torch.no_grad()
def simulate(walked: Walked, x) -> tuple[np.ndarray, list[np.ndarray]]:
    """Readout per step ``(N, classes, T)`` and each layer's spikes ``(N, *shape, T)`` (uint8)."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    n, steps = x.shape[0], x.shape[-1]
    weights = [torch.from_numpy(layer.weight) for layer in walked.layers]
    recurrent = [None if layer.recurrent is None else torch.from_numpy(layer.recurrent) for layer in walked.layers]
    readout_w = torch.from_numpy(walked.readout.weight)
    current = [torch.zeros((n,) + layer.synapse.shape, dtype=torch.float64) for layer in walked.layers]
    voltage = [torch.zeros_like(c) for c in current]
    spikes: list[list[torch.Tensor]] = [[] for _ in walked.layers]
    readout = []
    for t in range(steps):
        s = x[..., t]
        for k, layer in enumerate(walked.layers):
            neuron = layer.neuron
            a = SYNAPSES[layer.kind](layer, weights[k], s)
            if recurrent[k] is not None and t:  # its own spikes of the step before
                a = a + spikes[k][-1] @ recurrent[k].T
            current[k] = (1.0 - neuron.current_decay) * current[k] + a
            voltage[k] = (1.0 - neuron.voltage_decay) * voltage[k] + current[k]
            s = (voltage[k] > neuron.threshold).to(torch.float64)
            voltage[k] = voltage[k] * (1.0 - s)
            spikes[k].append(s)
        readout.append(s.reshape(n, -1) @ readout_w.T)
    return (torch.stack(readout, -1).numpy(),
            [torch.stack(layer, -1).to(torch.uint8).numpy() for layer in spikes])


def aligned_weights(two_weights, num_layers: int) -> np.ndarray:
    """TWO weights for an undelayed readout that sees what the deployed one sees: ``a[t + L]`` at step t, zero for
    the last L steps."""
    a = np.asarray(two_weights, dtype=np.float64)
    out = np.zeros_like(a)
    out[: len(a) - num_layers] = a[num_layers:]
    return out


def decide(readout_steps: np.ndarray, weights) -> np.ndarray:
    """Predictions: argmax over classes of ``sum_t a_t o_t``."""
    return (np.asarray(readout_steps) * np.asarray(weights, dtype=np.float64).reshape(1, 1, -1)).sum(-1).argmax(1)


def agreement(a: np.ndarray, b: np.ndarray) -> dict:
    """Spike by spike: the share of equal entries (neuron x step x sample), the spikes of each side, the spikes
    both have, and ``jaccard`` = both / either (1.0 when neither spikes)."""
    a, b = np.asarray(a).astype(bool), np.asarray(b).astype(bool)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare spikes of shapes {a.shape} and {b.shape}")
    both, either = int((a & b).sum()), int((a | b).sum())
    return {"equal": float((a == b).mean()), "spikes": [int(a.sum()), int(b.sum())], "both": both,
            "jaccard": both / either if either else 1.0}
