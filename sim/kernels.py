"""Fused, event-driven integer kernels for the emulator (numba), bit-exact with the torch engine.

Synapses are event driven: only the input spikes are visited, each adding its weights to its fan-out
(spikes are sparse, so this is far cheaper than a dense GEMM). The CUBA step is one pass over the neurons
calling :func:`spikeship.fixedpoint.cuba_step` itself, compiled by numba (each function of the fixed-point
core is registered with ``register_jitable``, so the kernels and every other runtime share one definition).
numba is a declared dependency; without it the emulator uses its torch engine.
"""

from __future__ import annotations

import numpy as np

from spikeship import fixedpoint

try:
    import numba
    from numba.extending import register_jitable
except ImportError:  # pragma: no cover - numba is a declared dependency
    numba = None

AVAILABLE = numba is not None

if AVAILABLE:
    for _function in fixedpoint.FUNCTIONS:  # callable from jitted code, unchanged for Python callers
        register_jitable(_function)

    @numba.njit(cache=True, nogil=True)
    def cuba_step(a, u, v, i_decay, v_decay, vth, spikes):
        """In place over flat int64 arrays ``a`` (synaptic input), ``u``, ``v``; writes uint8 ``spikes``."""
        for n in range(a.shape[0]):
            spike, u[n], v[n] = fixedpoint.cuba_step(a[n], u[n], v[n], i_decay, v_decay, vth)
            spikes[n] = spike

    @numba.njit(cache=True, nogil=True)
    def dense_accumulate(spikes, weight_t, out):
        """``out[b] += sum of weight_t[i]`` over the inputs ``i`` that spiked; ``spikes`` (B, N_in) uint8,
        ``weight_t`` (N_in, N_out) int64, ``out`` (B, N_out) int64."""
        for b in range(spikes.shape[0]):
            for i in range(spikes.shape[1]):
                if spikes[b, i]:
                    for o in range(weight_t.shape[1]):
                        out[b, o] += weight_t[i, o]

    @numba.njit(cache=True, nogil=True)
    def conv_accumulate_hwc(spikes, weight_hwio, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups, out):
        """Scatter form of ``torch.nn.functional.conv2d`` (cross-correlation) for binary input, channels
        last on the output so the innermost loop is contiguous: ``spikes`` (B, C, H, W) uint8,
        ``weight_hwio`` (kH, kW, C_in / groups, C_out) int64, ``out`` (B, OH, OW, C_out) int64."""
        n_b, n_c, n_h, n_w = spikes.shape
        k_h, k_w, c_in_g, c_out = weight_hwio.shape
        c_out_g = c_out // groups
        o_h, o_w = out.shape[1], out.shape[2]
        for b in range(n_b):
            for c in range(n_c):
                g = c // c_in_g
                ci = c - g * c_in_g
                lo, hi = g * c_out_g, (g + 1) * c_out_g
                for y in range(n_h):
                    for x in range(n_w):
                        if spikes[b, c, y, x] == 0:
                            continue
                        for ky in range(k_h):
                            ny = y + pad_h - ky * dil_h
                            if ny < 0 or ny % stride_h != 0:
                                continue
                            oy = ny // stride_h
                            if oy >= o_h:
                                continue
                            for kx in range(k_w):
                                nx = x + pad_w - kx * dil_w
                                if nx < 0 or nx % stride_w != 0:
                                    continue
                                ox = nx // stride_w
                                if ox >= o_w:
                                    continue
                                for oc in range(lo, hi):
                                    out[b, oy, ox, oc] += weight_hwio[ky, kx, ci, oc]


def conv_accumulate(spikes, weight, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups, out):
    """``out`` (B, C_out, OH, OW) int64 ``+=`` the convolution of binary ``spikes`` (B, C, H, W) with
    ``weight`` (C_out, C_in / groups, kH, kW), as ``torch.nn.functional.conv2d`` computes it."""
    hwc = np.zeros((out.shape[0], out.shape[2], out.shape[3], out.shape[1]), np.int64)
    conv_accumulate_hwc(np.ascontiguousarray(spikes), np.ascontiguousarray(weight.transpose(2, 3, 1, 0)),
                        stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups, hwc)
    out += hwc.transpose(0, 3, 1, 2)
