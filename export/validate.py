"""Checks of a :class:`~spikeship.network.Network` against what netx builds and what Loihi holds, before
anything is written and after anything is read.

``check_net(net)`` raises ``SpikeshipError`` at the first violation, one line naming the layer and the limit;
``estimate_resources(net)`` gives cores per layer. Every number comes from
``spikeship.hardware`` through ``LoihiLimits`` (tests pass tighter limits to exercise refusals cheaply).

Rules (why each exists):

- weights: integers, even, in [weight_min, weight_max] = [-256, 254] (slayer's 8-bit quantization; netx's
  ``optimize_weight_bits`` silently clips anything else); a recurrent layer's recurrent weights too.
- Lava's ``Dense`` (netx dense layers, checked by ``export.netx`` for the kinds it writes as ``dense``, and the
  readout, which ``deploy.lava_run`` builds the same way), read from
  lava/lib/dl/netx/utils.py ``optimize_weight_bits`` and lava/utils/weightutils.py: all-zero weights crash it
  (it divides by the largest weight). When no weight is positive it uses the inhibitory sign mode, whose
  magnitudes hold 8 bits (at most 255), and netx first scales the weights so that the most negative one
  becomes ``min * 2**s`` in (-256, -128]; that is exactly -256, and is clipped, iff ``min = -2**k``. Lava then
  truncates the low bits, so every weight equal to ``min`` becomes ``min + 2**n`` (``2**n`` the largest power
  of two <= 256 dividing all weights; ``2**(n-1)`` if some weight is 0): -256 -> -254 for even weights, and
  a layer of -2 only becomes zeros. Other weights, and conv layers (Lava's ``Conv`` applies the weights as
  they are), are exact. slayer keeps the true weight, so such a layer is refused rather than altered.
  A recurrent layer (netx ``dense_rec``): netx fits one shift and weight width to the input and recurrent
  weights side by side, then Lava holds each in its own ``Dense`` with that matrix's own sign mode; the same
  clip applies to whichever matrix has no positive weight (``lava_dense_weights`` reproduces Lava's steps;
  a test compares it with Lava's own functions).
- no bias (Lava integrates a bias while the pipeline fills; slayer does not), no axonal delays (not
  exported), slayer's one-step ``delay_shift`` on (it is the chip's layer pipeline delay), binary spikes
  (Lava's LIF is binary), CUBA neuron, refDelay 1.
- iDecay in [1, 4096] (netx writes ``du = iDecay - 1`` into a 12-bit unsigned register, Lava adds 1 back),
  vDecay in [0, 4096], vThMant in [1, 2**17 - 1] (17-bit threshold mantissa).
- per-step synaptic input within int16 (Lava's LIF ``a_in`` is int16 and wraps, slayer uses int64). Worst
  case, defined exactly: for neuron j, ``max_in(j) = sum of w_ji > 0 over its fan-in`` (every excitatory
  input spikes in the same step, no inhibitory one) and ``min_in(j) = sum of w_ji < 0``; borders of a conv
  count only the taps that land inside the input (``spikeship.energy.worst_case_input``, per kind). Need
  ``min_in >= -32768`` and ``max_in <= 32767`` for every neuron; binary inputs make these bounds attainable.
  A recurrent layer adds its own neurons' previous spikes: the sums run over both weight matrices.
  The readout synapse is checked the same way. The accumulated current and voltage are not bounded here:
  every runtime, training included, keeps them in Lava's 24 bits exactly as Lava does
  (:mod:`spikeship.fixedpoint`).
- fan-in: no neuron may have more synapses than a core has input axons (4,096); a core of a dense layer
  needs all its inputs as axons (a recurrent layer: its inputs and its own neurons).
- cores: per layer max(neurons / 1,024, synapse bytes / 128 KB) with synapses stored as a full list (no
  weight sharing on Loihi 1; 1 byte per 8-bit synapse, list overhead ignored: a lower bound); the total must
  fit ``chips`` chips of 128 cores.
- shapes: weight shapes agree with the layer shapes (``spikeship.energy.GEOMETRY``, per kind); the readout
  takes the last layer's neurons; the TWO weights are integers and zero for the first L steps (pipeline
  fill).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..energy import GEOMETRY, CoreEstimate, CoreLimits, check_geometry, cores_needed, worst_case_input
from ..errors import SpikeshipError
from ..hardware import value as hw
from ..network import Layer, Network, by_kind


@dataclass(frozen=True)
class LoihiLimits:
    """The limits checked at export; defaults are Loihi 1's, from ``spikeship.hardware``."""

    weight_min: int = hw("weight_min")
    weight_max: int = hw("weight_max")
    weight_step: int = hw("weight_step")
    input_min: int = hw("synaptic_input_min")
    input_max: int = hw("synaptic_input_max")
    i_decay_min: int = hw("current_decay_min")
    i_decay_max: int = hw("current_decay_max")
    v_decay_min: int = hw("voltage_decay_min")
    v_decay_max: int = hw("voltage_decay_max")
    vth_mant_min: int = hw("vth_mant_min")
    vth_mant_max: int = hw("vth_mant_max")
    ref_delay: int = hw("ref_delay")
    neurons_per_core: int = hw("neurons_per_core")
    synapse_bytes_per_core: int = hw("synaptic_memory_per_core")
    fan_in_axons_per_core: int = hw("fan_in_axons_per_core")
    cores_per_chip: int = hw("cores_per_chip")
    weight_bits: int = hw("weight_bits")
    chips: int = 1

    def __post_init__(self) -> None:
        if self.weight_min > self.weight_max or self.input_min > self.input_max or self.chips < 1:
            raise ValueError(f"inconsistent limits: {self}")

    def core_limits(self) -> CoreLimits:
        return CoreLimits(neurons_per_core=self.neurons_per_core, synapse_bytes_per_core=self.synapse_bytes_per_core,
                          fan_in_axons_per_core=self.fan_in_axons_per_core, cores_per_chip=self.cores_per_chip,
                          weight_bits=self.weight_bits)


LOIHI1 = LoihiLimits()


@dataclass(frozen=True)
class LayerResources:
    """One layer's footprint: neurons, max fan-in, synapses (full list), worst-case per-step input, cores."""

    name: str
    neurons: int
    max_fan_in: int
    synapse_bytes: int
    input_min: int
    input_max: int
    cores: int
    cores_by_neurons: int
    cores_by_memory: int


def _check_weights(name: str, w: np.ndarray, limits: LoihiLimits, what: str = "weight") -> None:
    w = np.asarray(w)
    if w.size == 0:
        raise SpikeshipError(f"{name}: no {what}s")
    if w.dtype.kind not in "iu":
        bad = w[~np.isfinite(w) | (w != np.round(w))].reshape(-1)
        raise SpikeshipError(f"{name}: {what} {float(bad[0] if bad.size else w.reshape(-1)[0]):.6g} is not an integer "
                             f"(8-bit weights are integers; was the block quantized with slayer's 8-bit hook?)")
    lo, hi = int(w.min()), int(w.max())
    if lo < limits.weight_min or hi > limits.weight_max:
        bad = lo if lo < limits.weight_min else hi
        raise SpikeshipError(f"{name}: {what} {bad} outside the 8-bit range [{limits.weight_min}, "
                             f"{limits.weight_max}]")
    odd = w[w % limits.weight_step != 0].reshape(-1)
    if odd.size:
        raise SpikeshipError(f"{name}: {what} {int(odd[0])} is not a multiple of {limits.weight_step} "
                             f"(8-bit weights are even integers in [{limits.weight_min}, {limits.weight_max}])")


#: Lava's synapse word (netx's ``optimize_weight_bits`` and Lava's ``Dense`` are written for 8 bits)
_BITS = int(hw("weight_bits"))


def _netx_weight_bits(w: np.ndarray) -> tuple[int, int]:
    """``(left shift, num_weight_bits)`` that netx's ``optimize_weight_bits`` gives the matrix ``w`` (its sign
    mode: inhibitory when every weight is negative, excitatory when none is, else mixed; the same float
    arithmetic: 256 / |min|, 255 / max, or the smaller of 127 / max and 128 / |min| with a sign bit)."""
    hi, lo = float(w.max()), float(w.min())
    full, half = 1 << _BITS, 1 << (_BITS - 1)
    if hi < 0:
        scale, signed = -full / lo, 0
    elif lo >= 0:
        scale, signed = (full - 1) / hi, 0
    else:
        scale, signed = min((half - 1) / hi if hi else np.inf, -half / lo), 1
    shift = int(np.floor(np.log2(scale))) + signed
    n = next(b for b in range(_BITS, -1, -1) if not np.any(w % (1 << b)))  # largest 2**n dividing every weight
    return shift, _BITS - shift - (n - signed)


def lava_dense_weights(w: np.ndarray, shift: int, num_weight_bits: int) -> np.ndarray:
    """What Lava's fixed-point ``Dense`` holds for the integer matrix ``w`` given netx's ``shift`` and
    ``num_weight_bits`` (lava/proc/dense/models.py): its own sign mode, clip to the synapse word (magnitudes
    up to 255; mixed: -256..255) and truncation of the shifted weights, in units of the shifted weight (the
    layer applies ``sum >> shift``)."""
    x = w.astype(np.int64) << shift
    inhibitory, mixed = w.max() <= 0 < -w.min(), w.min() < 0 < w.max()
    m = -x if inhibitory else x
    m = np.clip(m, -(1 << _BITS) if mixed else 0, (1 << _BITS) - 1)
    bits = _BITS - num_weight_bits + int(mixed)
    m = (m >> bits) << bits
    return -m if inhibitory else m


def check_lava_dense(name: str, *parts: tuple[str, np.ndarray]) -> None:
    """Refuse weights Lava's ``Dense`` cannot hold exactly (see the module docstring). ``parts``: ``(what,
    matrix)``, one for a dense layer; a recurrent layer's input and recurrent weights, which netx scales
    together (``dense_rec``: one ``optimize_weight_bits`` of both side by side) and Lava holds in one
    ``Dense`` each, with its own sign mode."""
    both = np.hstack([np.asarray(w, dtype=np.int64) for _, w in parts])
    if not both.any():
        raise SpikeshipError(f"{name}: all weights are zero (netx and Lava's Dense cannot load such a layer)")
    shift, bits = _netx_weight_bits(both)
    together = "; netx scales the input and recurrent weights together" if len(parts) > 1 else ""
    for what, w in parts:
        w = np.asarray(w, dtype=np.int64)
        held = lava_dense_weights(w, shift, bits)
        changed = held != w << shift
        if changed.any():  # only the most negative weight of an all-negative matrix: it is clipped to -255
            lo = int(w[changed].min())
            lava = int(held[changed & (w == lo)][0]) >> shift
            raise SpikeshipError(f"{name}: no {what} is positive and the most negative, {lo}, is a power of two: "
                                 f"Lava's Dense (inhibitory sign mode, magnitudes up to 255) would make it {lava}, "
                                 f"slayer keeps {lo}{together}")


def _check_input_range(name: str, lo: int, hi: int, limits: LoihiLimits) -> None:
    if lo < limits.input_min or hi > limits.input_max:
        bad = lo if lo < limits.input_min else hi
        raise SpikeshipError(f"{name}: worst-case per-step input {bad} outside int16 [{limits.input_min}, "
                             f"{limits.input_max}] (sum of the {'negative' if bad == lo else 'positive'} "
                             f"weights of one neuron's fan-in); Lava would wrap it")


def _check_neuron(layer: Layer, limits: LoihiLimits) -> None:
    n, name = layer.neuron, layer.name
    if n.type != "CUBA":
        raise SpikeshipError(f"{name}: neuron type {n.type!r} not supported (CUBA only)")
    if n.graded_spike:
        raise SpikeshipError(f"{name}: graded spikes not supported (Lava's LIF emits binary spikes)")
    for what, v, lo, hi in (("iDecay", n.i_decay, limits.i_decay_min, limits.i_decay_max),
                            ("vDecay", n.v_decay, limits.v_decay_min, limits.v_decay_max),
                            ("vThMant", n.vth_mant, limits.vth_mant_min, limits.vth_mant_max)):
        if not lo <= v <= hi:
            raise SpikeshipError(f"{name}: {what} {v} outside [{lo}, {hi}]")
    if n.ref_delay != limits.ref_delay:
        raise SpikeshipError(f"{name}: refDelay {n.ref_delay} not supported (slayer and netx use {limits.ref_delay})")


def _check_structure(layer: Layer) -> None:
    name = layer.name
    by_kind(GEOMETRY, layer.kind, name, "synapse geometry")
    if layer.bias is not None:
        raise SpikeshipError(f"{name}: has a bias; bias is not supported (Lava integrates it while the pipeline "
                             f"fills, slayer does not)")
    if layer.has_delay:
        raise SpikeshipError(f"{name}: axonal delays are not exported")
    if not layer.delay_shift:
        raise SpikeshipError(f"{name}: delay_shift is off; slayer's one-step delay_shift is the chip's pipeline "
                             f"delay and must be on")
    if len(layer.input_shape) == 3 and (layer.groups < 1 or layer.input_shape[0] % layer.groups
                                        or layer.shape[0] % layer.groups):
        raise SpikeshipError(f"{name}: input {layer.input_shape} with groups={layer.groups} is not valid")
    try:
        check_geometry(layer)
    except ValueError as e:
        raise SpikeshipError(str(e)) from None


def _check_readout(net: Network, limits: LoihiLimits) -> None:
    features = net.layers[-1].num_neurons
    readout = net.readout
    w = np.asarray(readout.weight)
    if w.ndim != 2 or w.shape[1] != features or tuple(readout.input_shape) != (features,) \
            or tuple(readout.shape) != (w.shape[0],):
        raise SpikeshipError(f"readout: weight {w.shape} does not take the last layer's {features} outputs")
    if readout.bias is not None:
        raise SpikeshipError("readout: has a bias; bias is not supported")
    _check_weights("readout", w, limits)
    check_lava_dense("readout", ("weight", w))
    if features > limits.fan_in_axons_per_core:
        raise SpikeshipError(f"readout: fan-in {features} above {limits.fan_in_axons_per_core} axons per core")
    wf = w.astype(np.int64)
    _check_input_range("readout", int(np.clip(wf, None, 0).sum(1).min()), int(np.clip(wf, 0, None).sum(1).max()),
                       limits)
    two = np.asarray(net.two_weights)
    if two.ndim != 1 or two.size == 0 or two.dtype.kind not in "iu":
        raise SpikeshipError(f"readout: TWO weights must be a non-empty integer vector, got {two.dtype} {two.shape}")
    fill = len(net.layers)
    if two.size <= fill:
        raise SpikeshipError(f"readout: T = {two.size} time steps leave nothing after the {fill}-step pipeline fill")
    if np.any(two[:fill] != 0):
        raise SpikeshipError(f"readout: the TWO weights of the first {fill} steps (pipeline fill) must be zero, "
                             f"got {two[:fill].tolist()}")


def layer_resources(layer: Layer, limits: LoihiLimits = LOIHI1) -> LayerResources:
    est: CoreEstimate = cores_needed(layer, limits.core_limits())
    lo, hi = worst_case_input(layer)
    return LayerResources(name=layer.name, neurons=layer.num_neurons, max_fan_in=est.max_fan_in,
                          synapse_bytes=est.synapse_bytes, input_min=lo, input_max=hi, cores=est.cores,
                          cores_by_neurons=est.by_neurons, cores_by_memory=est.by_synapse_memory)


def estimate_resources(net: Network, limits: LoihiLimits = LOIHI1) -> tuple[LayerResources, ...]:
    """Per-layer footprint and core estimate (no checks)."""
    return tuple(layer_resources(layer, limits) for layer in net.layers)


def _chains(layer: Layer, previous: tuple[int, ...]) -> bool:
    """Whether the layer takes the previous output: the same shape, or the same neurons flattened."""
    return tuple(layer.input_shape) == previous or (len(layer.input_shape) == 1
                                                    and layer.num_inputs == int(np.prod(previous)))


def check_net(net: Network, limits: LoihiLimits = LOIHI1) -> tuple[LayerResources, ...]:
    """Raise ``SpikeshipError`` at the first rule broken (see the module docstring); return the resources."""
    if not net.layers:
        raise SpikeshipError("the network has no spiking layer")
    if len(net.input_shape) != 3:
        raise SpikeshipError(f"input shape must be (C, H, W), got {net.input_shape}")
    expected_in: tuple[int, ...] = tuple(net.input_shape)
    resources = []
    for layer in net.layers:
        if not _chains(layer, expected_in):
            raise SpikeshipError(f"{layer.name}: input {layer.input_shape} does not match the previous output "
                                 f"{expected_in}")
        if layer.neuron is None:
            raise SpikeshipError(f"{layer.name}: a spiking layer needs a neuron")
        _check_structure(layer)
        _check_weights(layer.name, layer.weight, limits)
        if layer.recurrent_weight is not None:
            _check_weights(layer.name, layer.recurrent_weight, limits, "recurrent weight")
        _check_neuron(layer, limits)
        res = layer_resources(layer, limits)
        if res.max_fan_in > limits.fan_in_axons_per_core:
            raise SpikeshipError(f"{layer.name}: fan-in {res.max_fan_in} above {limits.fan_in_axons_per_core} "
                                 f"axons per core")
        _check_input_range(layer.name, res.input_min, res.input_max, limits)
        resources.append(res)
        expected_in = tuple(layer.shape)
    total = sum(r.cores for r in resources)
    available = limits.cores_per_chip * limits.chips
    if total > available:
        big = max(resources, key=lambda r: r.cores)
        raise SpikeshipError(f"network needs {total} cores, {limits.chips} chip(s) hold {available} "
                             f"(largest: {big.name}, {big.neurons} neurons at {limits.neurons_per_core} per core, "
                             f"{big.synapse_bytes} synapse bytes at {limits.synapse_bytes_per_core} per core "
                             f"-> {big.cores} cores)")
    _check_readout(net, limits)
    return tuple(resources)
