"""Spike counts, synaptic operations, neuron updates, ANN reference MACs, energy and cores: pure numpy.

Everything here is arithmetic on spike arrays and layer geometry; nothing reads files or runs a network.
Layouts: feature maps are CHW (slayer's order, ``(N, C, H, W, T)`` with time last; dense ``(N, F, T)``),
the order in which ``SpikeNet.forward`` returns its spikes. A dense synapse flattens its input, and since
every input of a dense layer drives the same number of synapses, the flattening order never matters here.

Definitions (ENERGY.md):

- spikes: binary spikes a layer emits over the T steps of one inference.
- synaptic operations (SynOps): for each presynaptic spike, the number of synapses it drives. Dense:
  ``out_features``. Conv: the exact structural fan-out of the input position (borders, stride, dilation and
  groups included; zero-valued weights still count: they occupy a synapse). A recurrent layer's own spikes
  are presynaptic too: each also drives its ``neurons`` recurrent synapses (every spike of its window).
- neuron updates: ``neurons x T`` (Loihi services every compartment every step). A (neuron, step) is
  counted *active* when the neuron received at least one synaptic event in that step or spiked in it,
  *idle* otherwise (a neuron whose state only decays counts as idle; a recurrent layer's own spikes of one
  step are synaptic events of the next). Alignment: a layer's input and output
  arrays are its *window* (sim/layout.py): index i of the input is integrated by the update that produces
  index i of the output. For layer k that is the input window ``s_{k-1}[k-1 : k-1+T]`` (or the input events
  ``x[0:T]`` for layer 0) against its own ``s_k[k : k+T]``: exactly what Lava computes per sample.
- ANN reference: multiply-accumulates of the same network run once as a non-spiking ANN: dense
  ``in * out`` (recurrent: ``in * out + out * out``, one step of its recurrence); conv ``out_positions * out_channels * (in_channels / groups) * kh * kw`` (padded taps
  included, as ANN MAC counts usually do).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from .network import Layer, by_kind


def conv_output_size(n: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    return (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


# ----------------------------------------------------------------------------------- geometry, per kind

@dataclass(frozen=True)
class Geometry:
    """How a kind's synapse connects presynaptic neurons (``layer.input_shape``) to postsynaptic ones
    (``layer.shape``). One entry per kind in :data:`GEOMETRY`; everything below derives from these.

    ``expected(layer)``: (weight shape, output shape) the layer's parameters imply. ``reach(layer, x)``: for
    ``x`` (B, *input_shape), the sum of ``x`` over each postsynaptic neuron's synapses, (B, *shape).
    ``weight_sum(layer, w)``: for a weight array shaped like ``layer.weight``, the sum over each neuron's
    synapses that exist (conv borders excluded), shape ``layer.shape``. ``fan_out(layer)``: synapses each
    presynaptic neuron drives, shape ``input_shape``. ``macs(layer)``: multiply-accumulates of the layer run
    once as an ANN, the recurrent synapse excluded. ``recurrent``: the layer also has a dense synapse from its
    own neurons to themselves (``layer.recurrent_weight``, one step late); every count below adds it."""

    expected: Callable[[Layer], tuple[tuple[int, ...], tuple[int, ...]]]
    reach: Callable[[Layer, np.ndarray], np.ndarray]
    weight_sum: Callable[[Layer, np.ndarray], np.ndarray]
    fan_out: Callable[[Layer], np.ndarray]
    macs: Callable[[Layer], int]
    recurrent: bool = False


def _dense_expected(layer: Layer):
    return (layer.shape[0], layer.num_inputs), (layer.shape[0],)


def _dense_reach(layer: Layer, x: np.ndarray) -> np.ndarray:
    total = x.reshape(x.shape[0], -1).sum(axis=1, dtype=np.int64)
    return np.broadcast_to(total[:, None], (x.shape[0], layer.num_neurons)).reshape(x.shape[0], *layer.shape)


DENSE = Geometry(
    expected=_dense_expected,
    reach=_dense_reach,
    weight_sum=lambda layer, w: np.asarray(w).reshape(w.shape[0], -1).sum(axis=1),
    fan_out=lambda layer: np.full(layer.input_shape, layer.num_neurons, dtype=np.int64),
    macs=lambda layer: layer.num_inputs * layer.num_neurons,
)


def _axis_cover(n_in: int, n_out: int, k: int, s: int, p: int, d: int) -> np.ndarray:
    """For each input index along one axis: how many (output index, kernel tap) pairs read it."""
    cover = np.zeros(n_in, dtype=np.int64)
    for o in range(n_out):
        idx = o * s - p + d * np.arange(k)
        idx = idx[(idx >= 0) & (idx < n_in)]
        np.add.at(cover, idx, 1)
    return cover


def _taps_inside(size: int, out: int, k: int, stride: int, padding: int, dilation: int) -> np.ndarray:
    """(out, k) 0/1: does tap ``k`` of output position ``out`` land inside an input of ``size``?"""
    pos = np.arange(out)[:, None] * stride - padding + np.arange(k)[None, :] * dilation
    return ((pos >= 0) & (pos < size)).astype(np.int64)


def _conv_expected(layer: Layer):
    c, h, w = layer.input_shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = layer.kernel, layer.stride, layer.padding, layer.dilation
    out = (layer.shape[0], conv_output_size(h, kh, sh, ph, dh), conv_output_size(w, kw, sw, pw, dw))
    return (layer.shape[0], c // max(layer.groups, 1), kh, kw), out


def _conv_reach(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Convolution of ``x`` (B, C_in, H, W) with an all-ones kernel of the layer's shape (its group's input
    channels), (B, C_out, Ho, Wo)."""
    b, c_in = x.shape[:2]
    c_out, h_out, w_out = layer.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = layer.kernel, layer.stride, layer.padding, layer.dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    acc = np.zeros((b, c_in, h_out, w_out), dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dh, kx * dw
            acc += xp[:, :, y0:y0 + sh * (h_out - 1) + 1:sh, x0:x0 + sw * (w_out - 1) + 1:sw]
    per_group = acc.reshape(b, layer.groups, c_in // layer.groups, h_out, w_out).sum(axis=2)
    return np.repeat(per_group, c_out // layer.groups, axis=1)


def _conv_weight_sum(layer: Layer, w: np.ndarray) -> np.ndarray:
    """Neuron (o, y, x) sums the kernel over its input channels and the taps inside the input: separable."""
    (_, h, wd), (_, oh, ow) = layer.input_shape, layer.shape
    kh, kw = np.asarray(w).shape[2:]
    my = _taps_inside(h, oh, kh, layer.stride[0], layer.padding[0], layer.dilation[0])
    mx = _taps_inside(wd, ow, kw, layer.stride[1], layer.padding[1], layer.dilation[1])
    return np.einsum("okl,yk,xl->oyx", np.asarray(w).sum(axis=1), my, mx)


def _conv_fan_out(layer: Layer) -> np.ndarray:
    c_in, h, w = layer.input_shape
    c_out, h_out, w_out = layer.shape
    cy = _axis_cover(h, h_out, layer.kernel[0], layer.stride[0], layer.padding[0], layer.dilation[0])
    cx = _axis_cover(w, w_out, layer.kernel[1], layer.stride[1], layer.padding[1], layer.dilation[1])
    per_position = (c_out // layer.groups) * np.outer(cy, cx)
    return np.broadcast_to(per_position, (c_in, h, w)).astype(np.int64)


def _conv_macs(layer: Layer) -> int:
    c_in = layer.input_shape[0]
    c_out, h_out, w_out = layer.shape
    return h_out * w_out * c_out * (c_in // layer.groups) * layer.kernel[0] * layer.kernel[1]


CONV = Geometry(expected=_conv_expected, reach=_conv_reach, weight_sum=_conv_weight_sum,
                fan_out=_conv_fan_out, macs=_conv_macs)

#: a dense synapse from the input plus a dense synapse from the layer's own neurons (netx ``dense_rec``)
RECURRENT = replace(DENSE, recurrent=True)

#: layer kind -> synapse geometry (pooling is a depthwise convolution)
GEOMETRY: dict[str, Geometry] = {"dense": DENSE, "conv": CONV, "pool": CONV, "recurrent": RECURRENT}


def geometry(layer: Layer) -> Geometry:
    return by_kind(GEOMETRY, layer.kind, layer.name, "synapse geometry")


def recurrent_fan_out(layer: Layer) -> int:
    """Recurrent synapses each of the layer's own neurons drives (and each receives): all of them, or 0."""
    return layer.num_neurons if geometry(layer).recurrent else 0


def check_geometry(layer: Layer) -> None:
    """ValueError when the layer's weights or output shape do not match what its parameters imply."""
    weight_shape, out_shape = geometry(layer).expected(layer)
    if tuple(np.shape(layer.weight)) != weight_shape or tuple(layer.shape) != out_shape:
        raise ValueError(f"{layer.name}: weight {tuple(np.shape(layer.weight))} and output {tuple(layer.shape)} do "
                         f"not match the geometry (expected {weight_shape} -> {out_shape})")
    n, rec = layer.num_neurons, layer.recurrent_weight
    if geometry(layer).recurrent:
        if rec is None or tuple(np.shape(rec)) != (n, n):
            got = "none" if rec is None else str(tuple(np.shape(rec)))
            raise ValueError(f"{layer.name}: recurrent weight {got}, expected ({n}, {n}) (to, from its own neurons)")
    elif rec is not None:
        raise ValueError(f"{layer.name}: has recurrent weights, which a {layer.kind} layer cannot hold "
                         f"(recurrent kinds: {', '.join(k for k, g in GEOMETRY.items() if g.recurrent)})")


def fan_out_map(layer: Layer) -> np.ndarray:
    """Synapses driven by each presynaptic neuron of the input, shape ``layer.input_shape`` (int64); a
    recurrent layer's own neurons drive :func:`recurrent_fan_out` more each."""
    return geometry(layer).fan_out(layer)


def fan_in_map(layer: Layer) -> np.ndarray:
    """Synapses into each postsynaptic neuron, shape ``layer.shape`` (int64); conv borders have fewer; a
    recurrent layer's neurons also receive one from each of its own neurons."""
    reach = geometry(layer).reach(layer, np.ones((1, *layer.input_shape), dtype=np.int64))[0]
    return reach + recurrent_fan_out(layer)


def synapse_count(layer: Layer) -> int:
    """Synapses of the layer as a full (unshared) connection list, as Loihi 1 stores a convolution; the
    recurrent matrix included."""
    return int(fan_out_map(layer).sum()) + layer.num_neurons * recurrent_fan_out(layer)


def ann_macs(layer: Layer) -> int:
    """Multiply-accumulates of the layer run once as a non-spiking ANN (one step of a recurrence)."""
    return int(geometry(layer).macs(layer)) + layer.num_neurons * recurrent_fan_out(layer)


def _signed_parts(w) -> tuple[np.ndarray, np.ndarray]:
    w = np.asarray(w)
    w = w.astype(np.int64) if w.dtype.kind in "iub" else w
    return np.clip(w, None, 0), np.clip(w, 0, None)


def worst_case_input(layer: Layer) -> tuple[int, int]:
    """(min, max) over neurons of the per-step synaptic input in weight units with binary inputs: every
    inhibitory (for the min) or excitatory (for the max) input of the neuron spiking in the same step, its
    own neurons' previous spikes included for a recurrent layer."""
    g = geometry(layer)
    (neg, pos) = (g.weight_sum(layer, part) for part in _signed_parts(layer.weight))
    if g.recurrent and layer.recurrent_weight is not None:
        rec_neg, rec_pos = (part.sum(axis=1).reshape(layer.shape) for part in _signed_parts(layer.recurrent_weight))
        neg, pos = neg + rec_neg, pos + rec_pos
    return int(neg.min()), int(pos.max())


# ------------------------------------------------------------------------------------------------- counts

def _shaped(spikes: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    """``spikes`` (N, *shape, T); a layer that flattens its input takes (N, C, H, W, T) of the same neurons."""
    if spikes.ndim >= 3 and int(np.prod(spikes.shape[1:-1])) == int(np.prod(shape)) and len(shape) == 1:
        spikes = spikes.reshape(spikes.shape[0], -1, spikes.shape[-1])
    if spikes.ndim != len(shape) + 2 or tuple(spikes.shape[1:-1]) != tuple(shape):
        raise ValueError(f"{what} spikes must be (N, {', '.join(map(str, shape))}, T), got {spikes.shape}")
    return spikes


def spike_counts(spikes: np.ndarray) -> np.ndarray:
    """Spikes per sample: (N, ..., T) binary -> (N,) int64."""
    return spikes.reshape(spikes.shape[0], -1).sum(axis=1, dtype=np.int64)


def _own_spikes(layer: Layer, spikes_out: np.ndarray | None) -> np.ndarray:
    if spikes_out is None:
        raise ValueError(f"{layer.name}: a recurrent layer's counts need its own spikes")
    return _shaped(spikes_out, layer.shape, "postsynaptic")


def synaptic_operations(layer: Layer, spikes_in: np.ndarray, spikes_out: np.ndarray | None = None) -> np.ndarray:
    """SynOps per sample: every presynaptic spike times its fan-out. ``spikes_in`` (N, *input_shape, T);
    ``spikes_out`` (N, *shape, T), the layer's own spikes, needed when it is recurrent (each drives
    :func:`recurrent_fan_out` synapses)."""
    spikes_in = _shaped(spikes_in, layer.input_shape, "presynaptic")
    per_neuron = spikes_in.sum(axis=-1, dtype=np.int64)
    ops = (per_neuron * fan_out_map(layer)).reshape(len(per_neuron), -1).sum(axis=1)
    fan_out = recurrent_fan_out(layer)
    return ops + spike_counts(_own_spikes(layer, spikes_out)) * fan_out if fan_out else ops


def received_input(layer: Layer, spikes_in: np.ndarray, spikes_out: np.ndarray | None = None) -> np.ndarray:
    """Whether each postsynaptic neuron gets at least one synaptic event from each step's input spikes (and,
    for a recurrent layer, from its own spikes of the step before, ``spikes_out`` (N, *shape, T)):
    (N, *input_shape, T) -> bool (N, *shape, T)."""
    spikes_in = _shaped(spikes_in, layer.input_shape, "presynaptic")
    n, t = spikes_in.shape[0], spikes_in.shape[-1]
    x = np.moveaxis(spikes_in, -1, 1).reshape(n * t, *layer.input_shape).astype(np.int64)
    hit = geometry(layer).reach(layer, x) > 0  # (N*T, *shape)
    hit = np.moveaxis(hit.reshape(n, t, *layer.shape), 1, -1)
    if recurrent_fan_out(layer):  # all to all: any own spike at step i - 1 reaches every neuron at step i
        fired = _own_spikes(layer, spikes_out).reshape(n, -1, t).any(axis=1)
        fed = np.zeros_like(fired)
        fed[:, 1:] = fired[:, :-1]
        hit |= fed.reshape((n,) + (1,) * len(layer.shape) + (t,))
    return hit


def active_updates(layer: Layer, spikes_in: np.ndarray, spikes_out: np.ndarray) -> np.ndarray:
    """Active (neuron, step) pairs per sample: received input or spiked in that step (aligned windows, see the
    module docstring). Returns (N,) int64."""
    spikes_out = _shaped(spikes_out, layer.shape, "postsynaptic")
    if spikes_out.shape[-1] != spikes_in.shape[-1]:
        raise ValueError(f"input and output windows differ in length: {spikes_in.shape} vs {spikes_out.shape}")
    return spike_counts(received_input(layer, spikes_in, spikes_out) | spikes_out.astype(bool))


@dataclass(frozen=True)
class LayerCounts:
    """Per-sample counts of one layer (arrays of length N) and its static sizes."""

    name: str
    layer: Layer
    steps: int
    spikes_in: np.ndarray  # presynaptic spikes reaching this layer's synapse from the layer before
    spikes_out: np.ndarray  # spikes this layer emits (zero for a non-spiking readout)
    synops: np.ndarray
    active: np.ndarray
    spiking: bool = True
    spikes_recurrent: np.ndarray | None = None  # own spikes into its recurrent synapse (None: not recurrent)

    @property
    def messages(self) -> np.ndarray:
        """Presynaptic spikes delivered to this layer's synapses: from the layer before and from itself."""
        return self.spikes_in if self.spikes_recurrent is None else self.spikes_in + self.spikes_recurrent

    @property
    def neurons(self) -> int:
        return self.layer.num_neurons

    @property
    def updates(self) -> int:
        """Neuron updates per inference (every compartment, every step)."""
        return self.neurons * self.steps

    @property
    def idle(self) -> np.ndarray:
        return self.updates - self.active


def count_layer(name: str, layer: Layer, spikes_in: np.ndarray, spikes_out: np.ndarray | None) -> LayerCounts:
    """All per-sample counts of one layer from its input and output spikes (``None``: non-spiking readout,
    whose compartments are active whenever they receive input)."""
    steps = spikes_in.shape[-1]
    if spikes_out is None:
        out = np.zeros((spikes_in.shape[0], *layer.shape, steps), dtype=bool)
    else:
        out = spikes_out
        if out.shape[-1] != steps or out.shape[0] != spikes_in.shape[0]:
            raise ValueError(f"layer {name}: input {spikes_in.shape} and output {out.shape} disagree on N or T")
    spikes_out_n = spike_counts(out)
    return LayerCounts(name=name, layer=layer, steps=steps, spikes_in=spike_counts(spikes_in),
                       spikes_out=spikes_out_n, synops=synaptic_operations(layer, spikes_in, out),
                       active=active_updates(layer, spikes_in, out), spiking=spikes_out is not None,
                       spikes_recurrent=spikes_out_n if recurrent_fan_out(layer) else None)


def concat_counts(parts: list[LayerCounts]) -> LayerCounts:
    """Join the counts of one layer over several batches of samples."""
    first = parts[0]
    cat = lambda attr: np.concatenate([getattr(p, attr) for p in parts])  # noqa: E731
    return LayerCounts(name=first.name, layer=first.layer, steps=first.steps, spikes_in=cat("spikes_in"),
                       spikes_out=cat("spikes_out"), synops=cat("synops"), active=cat("active"),
                       spiking=first.spiking,
                       spikes_recurrent=None if first.spikes_recurrent is None else cat("spikes_recurrent"))


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


def cores_needed(layer: Layer, limits: CoreLimits) -> CoreEstimate:
    """Cores for one layer: enough for its compartments and for its synapses stored as a full connection list
    (Loihi 1 has no weight sharing; ``weight_bits`` per synapse, list overhead ignored, so a lower bound).
    A neuron whose fan-in exceeds a core's input axons cannot be placed at all; a dense layer needs all its
    inputs as axons in every core it uses."""
    synapse_bytes = math.ceil(synapse_count(layer) * limits.weight_bits / 8)
    by_neurons = math.ceil(layer.num_neurons / limits.neurons_per_core)
    by_memory = math.ceil(synapse_bytes / limits.synapse_bytes_per_core)
    max_fan_in = int(fan_in_map(layer).max())
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
