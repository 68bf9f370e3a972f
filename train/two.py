"""TWO: temporally weighted output decoding, as pure functions (MSG_TWO.md, docs/DESIGN.md "The model").

The readout o_t (N, classes, T) is decoded as y = (1/T) sum_t a_t o_t. The weights a_t start at 1 (so
sum_t a_t = T) and are not learnable. During an epoch the per-step correctness acc_t (argmax o_t == label,
mean over all samples of the epoch) is accumulated; at the start of each epoch after the warm-up

    new_t = acc_t / mean_t(acc_t),    a <- (1 - beta) a + beta new,

a convex combination of two vectors that both sum to T, so sum_t a_t = T is kept. ``decode="mean"`` keeps
a_t = 1 (plain mean over time). For deployment the float a_t become integers once:
``quantize_two_weights`` (a_int = round(64 a_t), zero for the first L steps, which carry only pipeline fill).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..hardware import value

DECODES = ("two", "mean")
#: a_int[t] = round(TWO_SCALE * a_t) at export (docs/DESIGN.md); the TWO readout's integer scale
TWO_SCALE = int(value("two_weight_scale"))


@dataclass(frozen=True)
class TWOConfig:
    """decode: ``two`` (weights updated) or ``mean`` (a_t = 1 always). The first update happens at the
    start of epoch ``max(warmup, 1)`` (epoch 0 has no statistics yet); beta is the update rate."""

    time_steps: int
    decode: str = "two"
    beta: float = 0.3
    warmup: int = 0

    def __post_init__(self) -> None:
        if self.decode not in DECODES:
            raise ValueError(f"decode must be one of {', '.join(DECODES)}, got {self.decode!r}")
        if self.time_steps < 1:
            raise ValueError(f"time_steps must be positive, got {self.time_steps}")
        if not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"TWO beta must be in [0, 1], got {self.beta}")
        if self.warmup < 0:
            raise ValueError(f"TWO warm-up must be >= 0, got {self.warmup}")


def initial_weights(time_steps: int) -> torch.Tensor:
    """a_t = 1 for every step (float64, sum T)."""
    return torch.ones(time_steps, dtype=torch.float64)


def step_correct(readout: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Number of samples whose per-step readout o_t (N, classes, T) has argmax == label, per step: (T,) int64."""
    pred = readout.detach().argmax(dim=1)  # (N, T)
    return (pred == labels.view(-1, 1)).sum(dim=0).to(torch.int64).cpu()


def update_weights(weights: torch.Tensor, step_accuracy: torch.Tensor, beta: float) -> torch.Tensor:
    """a <- (1 - beta) a + beta acc / mean(acc). With no correct step at all the weights stay as they are."""
    a = torch.as_tensor(weights, dtype=torch.float64)
    acc = torch.as_tensor(step_accuracy, dtype=torch.float64)
    if acc.shape != a.shape:
        raise ValueError(f"step accuracy has shape {tuple(acc.shape)}, weights {tuple(a.shape)}")
    mean = acc.mean()
    if not mean > 0:
        return a.clone()
    return (1.0 - beta) * a + beta * (acc / mean)


def should_update(epoch: int, config: TWOConfig) -> bool:
    """Whether the weights are updated at the start of ``epoch`` (0-based)."""
    return config.decode == "two" and epoch >= max(config.warmup, 1)


def deployed_weights(weights, num_spiking_layers: int) -> torch.Tensor:
    """The TWO weights as the chip applies them, as floats: ``a_int[t] / TWO_SCALE`` (rounded to 1/64, zero for
    the first L steps of pipeline fill). Training and evaluation decode with these, so the float decode weighs
    the time steps exactly as the deployed integer decode does (same predictions)."""
    return torch.from_numpy(quantize_two_weights(weights, num_spiking_layers).astype(np.float64) / TWO_SCALE)


def decode(readout: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """y = (1/T) sum_t a_t o_t, readout (N, classes, T) -> (N, classes). No gradient flows into a."""
    a = torch.as_tensor(weights).detach().to(dtype=readout.dtype, device=readout.device)
    return (readout * a.view(1, 1, -1)).sum(-1) / readout.shape[-1]


def quantize_two_weights(weights, num_spiking_layers: int) -> np.ndarray:
    """The deployed TWO weights: a_int[t] = round(64 a_t), 0 for t < L (int64, length T).

    The readout sees only pipeline fill in the first L = ``num_spiking_layers`` steps (one step of delay
    per spiking layer), so those steps get weight 0. Export and the deploy-equivalent forward both call this.
    """
    a = np.asarray(torch.as_tensor(weights, dtype=torch.float64).cpu().numpy(), dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"TWO weights must be a vector, got shape {a.shape}")
    if num_spiking_layers < 0:
        raise ValueError("num_spiking_layers must be >= 0")
    if a.shape[0] <= num_spiking_layers:
        raise ValueError(f"T = {a.shape[0]} must be larger than the number of spiking layers ({num_spiking_layers})")
    q = np.rint(a * TWO_SCALE).astype(np.int64)
    q[:num_spiking_layers] = 0
    return q
