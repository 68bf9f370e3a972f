"""Masked Surrogate Gradients (MSG) on slayer's Loihi-faithful CUBA neuron.

The forward pass is slayer's, bit for bit, wherever Lava's 24-bit state does not overflow: a spike is
``voltage >= threshold + eps`` on the voltage that slayer's fixed-point leaky integrator already computed
(reset included). Where a current leaves Lava's 24 bits (or a voltage its clamp), slayer's unbounded integer
state would part from the chip's; there the neuron's current and voltage are recomputed with
:mod:`spikeship.fixedpoint` (Lava's wrap and clamp), keeping slayer's gradient (see ``MSGNeuron.dynamics``).
Only the backward pass of the spike changes:

    dS/dV ~= g(x) * M / V_th,    x = (V - V_th) / V_th,    M ~ Bernoulli(1 - p) per element,

with a fresh mask at every backward pass (MSG_TWO.md). ``p = 0`` is plain surrogate gradient (SG).
Voltages are expressed relative to the threshold because slayer's states are in threshold-scaled units
of its own; the 1/V_th factor is the chain rule of that change of variable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from lava.lib.dl.slayer.block import cuba as cuba_block
from lava.lib.dl.slayer.neuron import cuba as cuba_neuron
from lava.lib.dl.slayer.neuron.dynamics import leaky_integrator
from lava.lib.dl.slayer.utils import quantize

from .. import fixedpoint

SURROGATES = ("piecewise", "arctan", "slayer")
MASK_FILL = ("zero", "mix")


@dataclass(frozen=True)
class SurrogateConfig:
    """How the spike function is differentiated.

    kind: ``piecewise`` (alpha - alpha^2 |x| on |x| < 1/alpha), ``arctan`` (alpha / (1 + (pi/2 alpha x)^2))
    or ``slayer`` (slayer's own exponential surrogate, its tau_grad/scale_grad from the neuron).
    mask_prob: drop probability p of MSG; 0 is plain SG.
    rescale: divide kept entries by (1 - p) (off in the authors' code).
    fill: ``zero`` drops masked entries; ``mix`` replaces them by the other smooth surrogate (authors' variant).
    """

    kind: str = "piecewise"
    alpha: float = 2.0
    mask_prob: float = 0.5
    rescale: bool = False
    fill: str = "zero"

    def __post_init__(self) -> None:
        if self.kind not in SURROGATES:
            raise ValueError(f"surrogate must be one of {', '.join(SURROGATES)}, got {self.kind!r}")
        if not 0.0 <= self.mask_prob < 1.0:
            raise ValueError(f"mask probability must be in [0, 1), got {self.mask_prob}")
        if self.alpha <= 0:
            raise ValueError(f"surrogate alpha must be positive, got {self.alpha}")
        if self.fill not in MASK_FILL:
            raise ValueError(f"mask fill must be one of {', '.join(MASK_FILL)}, got {self.fill!r}")


def piecewise_linear(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """g(x) = alpha - alpha^2 |x| for |x| < 1/alpha, else 0."""
    return torch.clamp(alpha - alpha * alpha * x.abs(), min=0.0)


def arctan(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """g(x) = alpha / (1 + (pi/2 * alpha * x)^2)."""
    return alpha / (1.0 + (math.pi / 2.0 * alpha * x) ** 2)


def slayer_exponential(voltage: torch.Tensor, threshold: float, tau_rho: float, scale_rho: float) -> torch.Tensor:
    """slayer's own derivative for binary spikes (slayer/spike/spike.py), in voltage units; computed with
    0-dim tensors of the voltage's dtype, in slayer's order, so it rounds exactly as slayer does."""
    th, tau, scale = (torch.tensor(c, dtype=voltage.dtype, device=voltage.device)
                      for c in (threshold, tau_rho, scale_rho))
    return scale / 2 / tau * torch.exp(-torch.abs(voltage - th) / tau)


def bernoulli_keep_mask(like: torch.Tensor, mask_prob: float) -> torch.Tensor:
    """M ~ Bernoulli(1 - p), element-wise, same shape as ``like``; drawn from torch's default generator.
    (``bernoulli_`` in place: on CPU about 20x faster than ``rand_like(...) >= p`` and a cast.)"""
    return torch.empty_like(like).bernoulli_(1.0 - mask_prob)


def surrogate_derivative(voltage: torch.Tensor, threshold: float, config: SurrogateConfig,
                         tau_rho: float = 1.0, scale_rho: float = 1.0, spike_threshold: float | None = None
                         ) -> torch.Tensor:
    """dS/dV without the mask. ``slayer`` is centred where slayer centres it, on the spike threshold
    (threshold + eps), so with p = 0 it reproduces slayer's own gradient exactly."""
    if config.kind == "slayer":
        centre = threshold if spike_threshold is None else spike_threshold
        return slayer_exponential(voltage, centre, tau_rho, scale_rho)
    x = (voltage - threshold) / threshold
    g = piecewise_linear(x, config.alpha) if config.kind == "piecewise" else arctan(x, config.alpha)
    return g / threshold


def _other_surrogate(voltage: torch.Tensor, threshold: float, config: SurrogateConfig) -> torch.Tensor:
    x = (voltage - threshold) / threshold
    g = arctan(x, config.alpha) if config.kind == "piecewise" else piecewise_linear(x, config.alpha)
    return g / threshold


def masked_derivative(voltage: torch.Tensor, threshold: float, config: SurrogateConfig,
                      tau_rho: float = 1.0, scale_rho: float = 1.0, spike_threshold: float | None = None
                      ) -> torch.Tensor:
    """dS/dV of MSG: the surrogate times a fresh Bernoulli mask (p = 0: the surrogate itself, no random
    numbers drawn)."""
    g = surrogate_derivative(voltage, threshold, config, tau_rho, scale_rho, spike_threshold)
    if config.mask_prob == 0.0:
        return g
    keep = bernoulli_keep_mask(g, config.mask_prob)
    if config.fill == "mix":
        out = g * keep + _other_surrogate(voltage, threshold, config) * (1.0 - keep)
    else:
        out = g * keep
    if config.rescale:
        out = out / (1.0 - config.mask_prob)
    return out


class MaskedSpike(torch.autograd.Function):
    """Heaviside forward identical to slayer's binary ``Spike``; MSG backward."""

    @staticmethod
    def forward(ctx, voltage, spike_threshold, surrogate_threshold, config, tau_rho, scale_rho):
        ctx.save_for_backward(voltage)
        ctx.spike_threshold = spike_threshold
        ctx.surrogate_threshold = surrogate_threshold
        ctx.config = config
        ctx.tau_rho = tau_rho
        ctx.scale_rho = scale_rho
        return (voltage >= spike_threshold).to(voltage.dtype)

    @staticmethod
    def backward(ctx, grad_spikes):
        (voltage,) = ctx.saved_tensors
        d = masked_derivative(voltage, ctx.surrogate_threshold, ctx.config, ctx.tau_rho, ctx.scale_rho,
                              ctx.spike_threshold)
        return d * grad_spikes, None, None, None, None, None


def lava_dynamics(synaptic_input: torch.Tensor, i_decay: int, v_decay: int, vth_mant: int,
                  start: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Current and voltage (before reset) per step, in Loihi units (int64, time last), of CUBA neurons from
    ``start`` (current, voltage after reset, Loihi units; None: zero), exactly as Lava computes them
    (:func:`spikeship.fixedpoint.integrate` and ``fire``). ``synaptic_input``: the per-step input in weight
    units (integers, time last)."""
    a = synaptic_input.to(torch.int64)
    u = torch.zeros(a.shape[:-1], dtype=torch.int64, device=a.device)
    v = torch.zeros_like(u)
    if start is not None:
        u, v = u + start[0].to(torch.int64), v + start[1].to(torch.int64)
    currents, voltages = [], []
    for t in range(a.shape[-1]):
        u, v = fixedpoint.integrate(a[..., t], u, v, i_decay, v_decay)
        voltages.append(v)
        _, v = fixedpoint.fire(v, vth_mant)
        currents.append(u)
    return torch.stack(currents, -1), torch.stack(voltages, -1)


class MSGNeuron(cuba_neuron.Neuron):
    """slayer's CUBA neuron with the MSG spike derivative and Lava's 24-bit state (see the module docstring)."""

    def __init__(self, *args, surrogate: SurrogateConfig = SurrogateConfig(), **kwargs):
        super().__init__(*args, **kwargs)
        if self.graded_spike:
            raise ValueError("MSG neurons emit binary spikes (Loihi's LIF is binary); graded_spike must be False")
        self.surrogate = surrogate

    def _start_state(self, input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The state slayer's dynamics starts from (cuba.Neuron.dynamics): with ``persistent_state``, the one
        the last call left (broadcast to the input's neurons; zero when the batch size changed); else zero."""
        if not self.persistent_state or self.current_state.shape[0] != input.shape[0]:
            return None
        ones = torch.ones(input.shape[:-1], dtype=self.current_state.dtype, device=self.current_state.device)
        return self.current_state.detach() * ones, self.voltage_state.detach() * ones

    def dynamics(self, input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """slayer's dynamics; where the state leaves Lava's 24 bits, the values Lava computes instead.

        slayer's states are Loihi's integers divided by ``SLAYER_STATE_SCALE`` (exact in float32 below
        2**24). When every current and voltage lies in the range Lava keeps as it is, slayer's values are
        Lava's and are returned unchanged (the common case: one min/max per tensor). Otherwise the layer is
        recomputed from its input with the fixed-point core (a loop over time in int64 on the input's device)
        and the result carries slayer's gradient: ``lava + (slayer - slayer.detach())``.

        With ``persistent_state`` (slayer's recurrent block steps its neuron one step per call) the
        recomputation starts from the state the last call left, which is Lava's as well, and leaves Lava's
        state behind for the next call, so the whole sequence stays Lava's step by step."""
        start = self._start_state(input)
        current, voltage = super().dynamics(input)
        scale = fixedpoint.SLAYER_STATE_SCALE
        u_min, u_max = (float(x) * scale for x in torch.aminmax(current.detach()))
        v_min, v_max = (float(x) * scale for x in torch.aminmax(voltage.detach()))
        if fixedpoint.in_range(u_min, u_max, v_min, v_max):
            return current, voltage
        decays = (quantize(self.current_decay).detach(), quantize(self.voltage_decay).detach())
        if any(d.numel() != 1 for d in decays):
            raise ValueError("Lava's 24-bit state is reproduced for shared decays only (one per layer)")
        a = torch.round(input.detach().double() * fixedpoint.WEIGHT_SCALE)
        if start is not None:  # slayer's states are exact multiples of 1 / scale
            start = tuple(torch.round(s.double() * scale) for s in start)
        u, v = lava_dynamics(a, int(decays[0].item()), int(decays[1].item()), int(self.v_th_mant), start)
        u, v = u.to(current.dtype) / scale, v.to(voltage.dtype) / scale
        if self.persistent_state:
            with torch.no_grad():  # as slayer keeps it; spike() then resets the voltage where it spiked
                self.current_state = u[..., -1].clone()
                self.voltage_state = v[..., -1].clone()
        return u + (current - current.detach()), v + (voltage - voltage.detach())

    def spike(self, voltage: torch.Tensor) -> torch.Tensor:
        # Same threshold expression as slayer's cuba.Neuron.spike, so the forward is bit-identical.
        threshold = float(self.threshold)
        spike = MaskedSpike.apply(
            voltage,
            threshold + self.threshold_eps,
            threshold,
            self.surrogate,
            float(self.tau_rho * cuba_neuron.TAU_RHO_MULT),
            float(self.scale_rho * cuba_neuron.SCALE_RHO_MULT),
        )
        if self.persistent_state is True:
            with torch.no_grad():
                self.voltage_state = leaky_integrator.persistent_state(self.voltage_state, spike[..., -1]).detach().clone()
        if self.drop is not None:
            spike = self.drop(spike)
        return spike


def synapses(block: torch.nn.Module) -> list[torch.nn.Module]:
    """The block's slayer synapses (``synapse``; ``input_synapse`` and ``recurrent_synapse`` of a recurrent
    block): its children that take slayer's weight pre-hook."""
    return [child for child in block.children() if hasattr(child, "pre_hook_fx")]


def msg_block(base: type) -> type:
    """A slayer CUBA block class whose neuron is an ``MSGNeuron`` (every synapse keeps the 8-bit hook).

    A block whose neuron keeps its state between calls (slayer's ``Recurrent`` sets ``persistent_state`` and
    steps its neuron one step per call) starts every forward from rest, as Lava starts every sample: slayer
    would otherwise carry the last batch's state into the next one."""

    class Block(base):
        def __init__(self, neuron_params: dict, *args, surrogate: SurrogateConfig = SurrogateConfig(), **kwargs):
            params = dict(neuron_params)
            super().__init__(params, *args, **kwargs)  # a recurrent block adds persistent_state to params
            self.neuron = MSGNeuron(**params, surrogate=surrogate)
            for synapse in synapses(self):
                synapse.pre_hook_fx = self.neuron.quantize_8bit
            if "spike_state" in self._buffers:  # slayer's Recurrent: unused, but its (N, F) shape would land
                del self._buffers["spike_state"]  # in checkpoints; kept out of the state dict
                self.register_buffer("spike_state", torch.zeros(1), persistent=False)

        def forward(self, x):
            if self.neuron.persistent_state:
                zero = torch.zeros(1, dtype=self.neuron.current_state.dtype, device=self.neuron.current_state.device)
                self.neuron.current_state, self.neuron.voltage_state = zero, zero.clone()
            return super().forward(x)

    Block.__name__ = Block.__qualname__ = f"MSG{base.__name__}"
    Block.__doc__ = f"slayer's cuba.{base.__name__} block with the MSG spike derivative."
    return Block


MSGDense = msg_block(cuba_block.Dense)
MSGConv = msg_block(cuba_block.Conv)
MSGPool = msg_block(cuba_block.Pool)
#: slayer's recurrent dense block: a[t] = W x[t] + R s[t - 1], its neuron stepped one step at a time
MSGRecurrent = msg_block(cuba_block.Recurrent)
