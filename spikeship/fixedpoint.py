"""Loihi's fixed-point CUBA neuron, written once: what every runtime of spikeship computes.

Lava's bit-accurate LIF model (``PyLifResetModelBitAcc``, lava/proc/lif/models.py), one step for the
integer synaptic input ``a`` (the sum of the weights of the inputs that spiked, in weight units):

    u = wrap(decay(u, iDecay) + a * 2**6)             current, 24 bits
    v = clamp(decay(v, vDecay) + u)                   voltage, 24 bits
    spike = v > vThMant * 2**6;  v = 0 where it spiked

    decay(x, d) = sign(p) * (|p| >> 12),  p = x * (4096 - d)     (rounds toward zero)
    wrap(u):  u - 2**24 if u > 2**23;  u + 2**24 if u <= -2**23  (so u stays in (-2**23, 2**23])
    clamp(v): v limited to [-(2**23 - 1), 2**23 - 1]

Every constant comes from :mod:`spikeship.hardware`. The functions use only ``+ - * abs >>`` and comparisons
(a comparison is used as a 0/1 factor, never in an ``if``), so the very same code runs on

* Python and numba integers (``sim/kernels.py`` registers these functions with numba),
* numpy and torch int64 arrays (the emulator's torch engine, training's 24-bit correction in
  ``train/msg.py``), on any device,
* the ONNX builder's symbolic tensors (``export/onnx_export.py`` writes the graph by calling them).

Right shifts are applied to magnitudes only (ONNX's BitShift is defined on unsigned integers). Operands are
integers; every intermediate fits int64 (``|u|, |v| <= 2**23``, products below ``2**36``).
"""

from __future__ import annotations

from .hardware import value

DECAY_SHIFT = int(value("decay_shift"))
DECAY_UNITY = 1 << DECAY_SHIFT
ACTIVATION_SCALE = 1 << int(value("activation_shift"))
THRESHOLD_SCALE = 1 << int(value("threshold_shift"))
CURRENT_MAX = 1 << (int(value("current_bits")) - 1)
CURRENT_RANGE = 1 << int(value("current_bits"))
VOLTAGE_MAX = (1 << (int(value("voltage_bits")) - 1)) - 1
WEIGHT_SCALE = int(value("weight_scale"))
#: internal scale of slayer's CUBA states: a state of 1.0 is this many Loihi units (w_scale << 6)
SLAYER_STATE_SCALE = WEIGHT_SCALE * ACTIVATION_SCALE


def decay(x, d):
    """``x * (4096 - d) / 4096`` rounded toward zero (Loihi shifts the magnitude)."""
    p = x * (DECAY_UNITY - d)
    q = abs(p) >> DECAY_SHIFT
    return q - 2 * q * (p < 0)


def wrap_current(u):
    """Lava's 24-bit current: above 2**23 subtract 2**24, at or below -2**23 add it."""
    return u - CURRENT_RANGE * (u > CURRENT_MAX) + CURRENT_RANGE * (u <= -CURRENT_MAX)


def clamp_voltage(v):
    """Lava's 24-bit voltage saturates at +-(2**23 - 1)."""
    return v - (v - VOLTAGE_MAX) * (v > VOLTAGE_MAX) - (v + VOLTAGE_MAX) * (v < -VOLTAGE_MAX)


def integrate(a, u, v, i_decay, v_decay):
    """Current and voltage after one step with synaptic input ``a``; the voltage before any reset."""
    u = wrap_current(decay(u, i_decay) + a * ACTIVATION_SCALE)
    return u, clamp_voltage(decay(v, v_decay) + u)


def fire(v, vth_mant):
    """``(spike, v after reset)``: a spike where ``v > vth_mant << 6``, and the voltage reset to zero there."""
    threshold = vth_mant * THRESHOLD_SCALE
    return v > threshold, v * (v <= threshold)


def cuba_step(a, u, v, i_decay, v_decay, vth_mant):
    """One step of the CUBA neuron: ``(spike, u, v)`` (see the module docstring)."""
    u, v = integrate(a, u, v, i_decay, v_decay)
    spike, v = fire(v, vth_mant)
    return spike, u, v


#: float32 holds every integer of magnitude up to 2**24 exactly (a property of float32, not of Loihi)
FLOAT32_EXACT = 1 << 24


def weight_bound(weight) -> int:
    """The largest sum of |weights| into one neuron: what binary inputs can add up to, in any order."""
    import numpy as np

    w = np.abs(np.asarray(weight))
    return int(w.reshape(w.shape[0], -1).sum(axis=1).max()) if w.size else 0


def in_range(u_min, u_max, v_min, v_max) -> bool:
    """Whether currents within [u_min, u_max] and voltages within [v_min, v_max] are untouched by
    :func:`wrap_current` and :func:`clamp_voltage` (then an unbounded integrator gives the same numbers)."""
    return -CURRENT_MAX < u_min and u_max <= CURRENT_MAX and -VOLTAGE_MAX <= v_min and v_max <= VOLTAGE_MAX


#: the functions above, in call order (``sim/kernels.py`` registers each with numba)
FUNCTIONS = (decay, wrap_current, clamp_voltage, integrate, fire, cuba_step)
