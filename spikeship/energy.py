"""Spike counts, synaptic operations, neuron updates, ANN reference MACs, energy and cores: pure numpy.

Everything here is arithmetic on spike arrays and layer geometry; nothing reads files or runs a network.
Layouts: feature maps are CHW (slayer's order, ``(N, C, H, W, T)`` with time last; dense ``(N, F, T)``),
the order in which ``SpikeNet.forward`` returns its spikes. A dense synapse flattens its input, and since
every input of a dense layer drives the same number of synapses, the flattening order never matters here.

Definitions (ENERGY.md):

- spikes: binary spikes a layer emits over the T steps of one inference.
- synaptic operations (SynOps): for each presynaptic spike, the number of synapses it drives. Dense:
  ``out_features``. Conv: the exact structural fan-out of the input position (borders, stride, dilation and
  groups included; zero-valued weights still count: they occupy a synapse).
- neuron updates: ``neurons x T`` (Loihi services every compartment every step). A (neuron, step) is
  counted *active* when the neuron received at least one synaptic event in that step or spiked in it,
  *idle* otherwise (a neuron whose state only decays counts as idle). Alignment: a layer's input and output
  arrays are its *window* (sim/layout.py): index i of the input is integrated by the update that produces
  index i of the output. For layer k that is the input window ``s_{k-1}[k-1 : k-1+T]`` (or the input events
  ``x[0:T]`` for layer 0) against its own ``s_k[k : k+T]``: exactly what Lava computes per sample.
- ANN reference: multiply-accumulates of the same network run once as a non-spiking ANN: dense
  ``in * out``; conv ``out_positions * out_channels * (in_channels / groups) * kh * kw`` (padded taps
  included, as ANN MAC counts usually do).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

SYNAPSE_KINDS = ("dense", "conv")


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return (int(v), int(v))
    a, b = v
    return (int(a), int(b))


def conv_output_size(n: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    return (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@dataclass(frozen=True)
class SynapseGeometry:
    """The synapse feeding one layer, with the shapes of its presynaptic and postsynaptic neurons.

    ``in_shape``/``out_shape``: (C, H, W) or (F,). For ``conv``: kernel, stride, padding, dilation as
    (height, width) pairs, and ``groups``. Pooling is a depthwise conv (groups = channels).
    """

    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def __post_init__(self) -> None:
        if self.kind not in SYNAPSE_KINDS:
            raise ValueError(f"unknown synapse kind {self.kind!r}; supported: {', '.join(SYNAPSE_KINDS)}")
        object.__setattr__(self, "in_shape", tuple(int(s) for s in self.in_shape))
        object.__setattr__(self, "out_shape", tuple(int(s) for s in self.out_shape))
        for name in ("kernel", "stride", "padding", "dilation"):
            object.__setattr__(self, name, _pair(getattr(self, name)))
        if self.kind == "dense":
            if len(self.out_shape) != 1:
                raise ValueError(f"dense output must be (F,), got {self.out_shape}")
            return
        if len(self.in_shape) != 3 or len(self.out_shape) != 3:
            raise ValueError(f"conv shapes must be (C, H, W), got {self.in_shape} -> {self.out_shape}")
        c_in, h, w = self.in_shape
        c_out, h_out, w_out = self.out_shape
        g = self.groups
        if g <= 0 or c_in % g or c_out % g:
            raise ValueError(f"groups {g} must divide in channels {c_in} and out channels {c_out}")
        expect = (conv_output_size(h, self.kernel[0], self.stride[0], self.padding[0], self.dilation[0]),
                  conv_output_size(w, self.kernel[1], self.stride[1], self.padding[1], self.dilation[1]))
        if expect != (h_out, w_out):
            raise ValueError(f"conv output {h_out}x{w_out} does not match its geometry (expected "
                             f"{expect[0]}x{expect[1]} from {h}x{w}, kernel {self.kernel}, stride "
                             f"{self.stride}, padding {self.padding}, dilation {self.dilation})")

    @property
    def in_neurons(self) -> int:
        return math.prod(self.in_shape)

    @property
    def out_neurons(self) -> int:
        return math.prod(self.out_shape)


# ---------------------------------------------------------------------------------------------- structure

def _axis_cover(n_in: int, n_out: int, k: int, s: int, p: int, d: int) -> np.ndarray:
    """For each input index along one axis: how many (output index, kernel tap) pairs read it."""
    cover = np.zeros(n_in, dtype=np.int64)
    for o in range(n_out):
        idx = o * s - p + d * np.arange(k)
        idx = idx[(idx >= 0) & (idx < n_in)]
        np.add.at(cover, idx, 1)
    return cover


def fan_out_map(g: SynapseGeometry) -> np.ndarray:
    """Synapses driven by each presynaptic neuron, shape ``g.in_shape`` (int64)."""
    if g.kind == "dense":
        return np.full(g.in_shape, g.out_neurons, dtype=np.int64)
    c_in, h, w = g.in_shape
    c_out, h_out, w_out = g.out_shape
    cy = _axis_cover(h, h_out, g.kernel[0], g.stride[0], g.padding[0], g.dilation[0])
    cx = _axis_cover(w, w_out, g.kernel[1], g.stride[1], g.padding[1], g.dilation[1])
    per_position = (c_out // g.groups) * np.outer(cy, cx)
    return np.broadcast_to(per_position, (c_in, h, w)).astype(np.int64)


def fan_in_map(g: SynapseGeometry) -> np.ndarray:
    """Synapses into each postsynaptic neuron, shape ``g.out_shape`` (int64); borders have fewer."""
    if g.kind == "dense":
        return np.full(g.out_shape, g.in_neurons, dtype=np.int64)
    ones = np.ones((1, *g.in_shape), dtype=np.int64)
    return window_sum(ones, g)[0]


def synapse_count(g: SynapseGeometry) -> int:
    """Synapses of the layer as a full (unshared) connection list, as Loihi 1 stores a convolution."""
    return int(fan_out_map(g).sum())


def ann_macs(g: SynapseGeometry) -> int:
    """Multiply-accumulates of the layer run once as a non-spiking ANN."""
    if g.kind == "dense":
        return g.in_neurons * g.out_neurons
    c_in = g.in_shape[0]
    c_out, h_out, w_out = g.out_shape
    return h_out * w_out * c_out * (c_in // g.groups) * g.kernel[0] * g.kernel[1]


def window_sum(x: np.ndarray, g: SynapseGeometry) -> np.ndarray:
    """Convolution of ``x`` (B, C_in, H, W) with an all-ones kernel of the layer's shape: for every output
    neuron, the sum of ``x`` over its receptive field (its group's input channels). Returns (B, C_out, Ho, Wo)."""
    b, c_in, h, w = x.shape
    c_out, h_out, w_out = g.out_shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = g.kernel, g.stride, g.padding, g.dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    acc = np.zeros((b, c_in, h_out, w_out), dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dh, kx * dw
            acc += xp[:, :, y0:y0 + sh * (h_out - 1) + 1:sh, x0:x0 + sw * (w_out - 1) + 1:sw]
    per_group = acc.reshape(b, g.groups, c_in // g.groups, h_out, w_out).sum(axis=2)
    return np.repeat(per_group, c_out // g.groups, axis=1)


# ------------------------------------------------------------------------------------------------- counts

def _check_spikes(spikes: np.ndarray, shape: tuple[int, ...], what: str) -> None:
    if spikes.ndim != len(shape) + 2 or tuple(spikes.shape[1:-1]) != tuple(shape):
        raise ValueError(f"{what} spikes must be (N, {', '.join(map(str, shape))}, T), got {spikes.shape}")


def spike_counts(spikes: np.ndarray) -> np.ndarray:
    """Spikes per sample: (N, ..., T) binary -> (N,) int64."""
    return spikes.reshape(spikes.shape[0], -1).sum(axis=1, dtype=np.int64)


def synaptic_operations(g: SynapseGeometry, spikes_in: np.ndarray) -> np.ndarray:
    """SynOps per sample: every presynaptic spike times its fan-out. ``spikes_in`` (N, *in_shape, T)."""
    _check_spikes(spikes_in, g.in_shape, "presynaptic")
    per_neuron = spikes_in.sum(axis=-1, dtype=np.int64)
    return (per_neuron * fan_out_map(g)).reshape(len(per_neuron), -1).sum(axis=1)


def received_input(g: SynapseGeometry, spikes_in: np.ndarray) -> np.ndarray:
    """Whether each postsynaptic neuron gets at least one synaptic event from each step's input spikes:
    (N, *in_shape, T) -> bool (N, *out_shape, T)."""
    _check_spikes(spikes_in, g.in_shape, "presynaptic")
    n, t = spikes_in.shape[0], spikes_in.shape[-1]
    if g.kind == "dense":
        any_in = spikes_in.reshape(n, -1, t).any(axis=1)  # (N, T)
        return np.broadcast_to(any_in[:, None, :], (n, g.out_neurons, t)).reshape(n, *g.out_shape, t)
    x = np.moveaxis(spikes_in, -1, 1).reshape(n * t, *g.in_shape).astype(np.int64)
    hit = window_sum(x, g) > 0  # (N*T, C_out, Ho, Wo)
    return np.moveaxis(hit.reshape(n, t, *g.out_shape), 1, -1)


def active_updates(g: SynapseGeometry, spikes_in: np.ndarray, spikes_out: np.ndarray) -> np.ndarray:
    """Active (neuron, step) pairs per sample: received input or spiked in that step (aligned windows, see the
    module docstring). Returns (N,) int64."""
    _check_spikes(spikes_out, g.out_shape, "postsynaptic")
    if spikes_out.shape[-1] != spikes_in.shape[-1]:
        raise ValueError(f"input and output windows differ in length: {spikes_in.shape} vs {spikes_out.shape}")
    return spike_counts(received_input(g, spikes_in) | spikes_out.astype(bool))


@dataclass(frozen=True)
class LayerCounts:
    """Per-sample counts of one layer (arrays of length N) and its static sizes."""

    name: str
    geometry: SynapseGeometry
    steps: int
    spikes_in: np.ndarray  # presynaptic spikes reaching this layer's synapse
    spikes_out: np.ndarray  # spikes this layer emits (zero for a non-spiking readout)
    synops: np.ndarray
    active: np.ndarray
    spiking: bool = True

    @property
    def neurons(self) -> int:
        return self.geometry.out_neurons

    @property
    def updates(self) -> int:
        """Neuron updates per inference (every compartment, every step)."""
        return self.neurons * self.steps

    @property
    def idle(self) -> np.ndarray:
        return self.updates - self.active


def count_layer(name: str, g: SynapseGeometry, spikes_in: np.ndarray, spikes_out: np.ndarray | None) -> LayerCounts:
    """All per-sample counts of one layer from its input and output spikes (``None``: non-spiking readout,
    whose compartments are active whenever they receive input)."""
    steps = spikes_in.shape[-1]
    if spikes_out is None:
        out = np.zeros((spikes_in.shape[0], *g.out_shape, steps), dtype=bool)
    else:
        out = spikes_out
        if out.shape[-1] != steps or out.shape[0] != spikes_in.shape[0]:
            raise ValueError(f"layer {name}: input {spikes_in.shape} and output {out.shape} disagree on N or T")
    return LayerCounts(name=name, geometry=g, steps=steps, spikes_in=spike_counts(spikes_in),
                       spikes_out=spike_counts(out), synops=synaptic_operations(g, spikes_in),
                       active=active_updates(g, spikes_in, out), spiking=spikes_out is not None)


def concat_counts(parts: list[LayerCounts]) -> LayerCounts:
    """Join the counts of one layer over several batches of samples."""
    first = parts[0]
    cat = lambda attr: np.concatenate([getattr(p, attr) for p in parts])  # noqa: E731
    return LayerCounts(name=first.name, geometry=first.geometry, steps=first.steps, spikes_in=cat("spikes_in"),
                       spikes_out=cat("spikes_out"), synops=cat("synops"), active=cat("active"),
                       spiking=first.spiking)


# ------------------------------------------------------------------------------------------------- energy

@dataclass(frozen=True)
class LoihiOpEnergy:
    """Per-operation energies in pJ used by the Loihi-table estimate (values come from the hardware table)."""

    synop_pj: float
    update_active_pj: float
    update_idle_pj: float
    spike_pj: float


def loihi_energy_pj(synops, active, idle, spike_messages, e: LoihiOpEnergy):
    """SynOps * E_synop + active updates * E_active + idle updates * E_idle + spike messages * E_spike.
    The spike traffic is a floor: one within-tile message per presynaptic spike (no tile hops)."""
    return (np.asarray(synops) * e.synop_pj + np.asarray(active) * e.update_active_pj
            + np.asarray(idle) * e.update_idle_pj + np.asarray(spike_messages) * e.spike_pj)


def loihi_energy_terms_pj(synops, active, idle, spike_messages, e: LoihiOpEnergy) -> dict:
    """The four terms of ``loihi_energy_pj`` separately."""
    return {"synops": np.asarray(synops) * e.synop_pj,
            "updates": np.asarray(active) * e.update_active_pj + np.asarray(idle) * e.update_idle_pj,
            "spikes": np.asarray(spike_messages) * e.spike_pj}


def ac_energy_pj(synops, e_ac_pj: float):
    """Common SNN-paper estimate of an SNN: every synaptic operation is one accumulate."""
    return np.asarray(synops) * e_ac_pj


def mac_energy_pj(macs, e_mac_pj: float):
    """Common SNN-paper estimate of an ANN: every MAC costs E_MAC."""
    return np.asarray(macs) * e_mac_pj


# ---------------------------------------------------------------------------------------------- resources

@dataclass(frozen=True)
class CoreLimits:
    """Per-core and per-chip limits (values come from the hardware table)."""

    neurons_per_core: int
    synapse_bytes_per_core: int
    fan_in_axons_per_core: int
    cores_per_chip: int
    weight_bits: int = 8


@dataclass(frozen=True)
class CoreEstimate:
    cores: int
    by_neurons: int
    by_synapse_memory: int
    max_fan_in: int
    synapse_bytes: int
    exceeded: tuple[str, ...] = field(default_factory=tuple)


def cores_needed(g: SynapseGeometry, limits: CoreLimits) -> CoreEstimate:
    """Cores for one layer: enough for its compartments and for its synapses stored as a full connection list
    (Loihi 1 has no weight sharing; ``weight_bits`` per synapse, list overhead ignored, so a lower bound).
    A neuron whose fan-in exceeds a core's input axons cannot be placed at all; a dense layer needs all its
    inputs as axons in every core it uses."""
    synapse_bytes = math.ceil(synapse_count(g) * limits.weight_bits / 8)
    by_neurons = math.ceil(g.out_neurons / limits.neurons_per_core)
    by_memory = math.ceil(synapse_bytes / limits.synapse_bytes_per_core)
    max_fan_in = int(fan_in_map(g).max())
    exceeded = []
    if max_fan_in > limits.fan_in_axons_per_core:
        exceeded.append(f"fan-in {max_fan_in} > {limits.fan_in_axons_per_core} axons per core")
    cores = max(by_neurons, by_memory)
    if cores > limits.cores_per_chip:
        exceeded.append(f"{cores} cores > {limits.cores_per_chip} per chip")
    return CoreEstimate(cores=cores, by_neurons=by_neurons, by_synapse_memory=by_memory, max_fan_in=max_fan_in,
                        synapse_bytes=synapse_bytes, exceeded=tuple(exceeded))


def mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and population standard deviation (0 for a single sample)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std())
