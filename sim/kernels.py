"""The emulator's numba kernels: event-driven synapses and the CUBA neuron over a whole window.

Every kernel releases the GIL (``nogil``), so the emulator runs them in threads over chunks of samples.

* :func:`cuba_window`: the CUBA neuron over a layer's window, calling :func:`spikeship.fixedpoint.cuba_step`
  itself (each function of the fixed-point core is registered with ``register_jitable``, so the kernels and
  every other runtime share one definition). The synaptic input arrives as floats holding exact integers.
* :func:`cuba_recurrent_window`: the same for a layer with a recurrent synapse, step by step (each step's
  feedback, event-driven from the step before, in int64).
* :func:`scatter_dense`, :func:`scatter_conv`: event-driven synapses. Only the input spikes are visited, each
  adding its weights to its fan-out: cheaper than a dense product when few inputs spike. Channels last, so the
  innermost loop runs over contiguous output channels. The sums are those of the integer weights; in float32
  they are exact when every partial sum stays below 2**24 (the engines check that, else they use float64).
* ``dense_accumulate``, ``conv_accumulate``, ``cuba_step``: the step-by-step int64 kernels of the ``numba``
  engine (the emulator before per-step method choice and threads), kept as the reference it is measured
  against.

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


def tap_lists(size: int, out: int, kernel: int, stride: int, padding: int, dilation: int) -> np.ndarray:
    """``(3, size, kernel)`` int64 for one axis of a cross-correlation (``torch.nn.functional.conv2d``): for
    input position ``i``, ``[0, i, 0]`` taps reach an output; ``[1, i, :n]`` are those taps and ``[2, i, :n]``
    the output positions they reach."""
    lists = np.zeros((3, size, kernel), np.int64)
    for i in range(size):
        pos = i + padding - np.arange(kernel) * dilation
        taps = np.flatnonzero((pos >= 0) & (pos % stride == 0) & (pos // stride < out))
        lists[0, i, 0] = len(taps)
        lists[1, i, :len(taps)] = taps
        lists[2, i, :len(taps)] = pos[taps] // stride
    return lists


if AVAILABLE:
    for _function in fixedpoint.FUNCTIONS:  # callable from jitted code, unchanged for Python callers
        register_jitable(_function)

    #: neurons whose state a :func:`cuba_window` pass keeps at once (16 bytes each: well within L2)
    NEURON_BLOCK = 2048

    @numba.njit(cache=True, nogil=True)
    def cuba_window(a, i_decay, v_decay, vth, spikes, counts):
        """The CUBA neuron over a window from zero state: ``a`` ``(T, B, N)`` synaptic input (floats holding
        exact integers, or integers), writes ``spikes`` ``(T, B, N)`` uint8 and ``counts`` ``(T, B)`` (spikes
        of each sample at each step). Blocks of neurons go through all steps at a time, so their state stays
        in the cache."""
        n_t, n_b, n_n = a.shape
        u = np.zeros(NEURON_BLOCK, np.int64)
        v = np.zeros(NEURON_BLOCK, np.int64)
        counts[:] = 0
        for b in range(n_b):
            for lo in range(0, n_n, NEURON_BLOCK):
                m = min(NEURON_BLOCK, n_n - lo)
                u[:] = 0
                v[:] = 0
                for t in range(n_t):
                    a_t, s_t = a[t, b, lo:lo + m], spikes[t, b, lo:lo + m]
                    for n in range(m):
                        s, u[n], v[n] = fixedpoint.cuba_step(np.int64(a_t[n]), u[n], v[n], i_decay, v_decay, vth)
                        s_t[n] = s
                    c = 0
                    for n in range(m):
                        c += s_t[n]
                    counts[t, b] += c

    # Indices below are unsigned: numba then skips the negative-index wraparound, which keeps the innermost
    # loops vectorised. The scatter kernels first list the inputs that spiked without a branch per input (a
    # mispredicted branch per spike cost more than its additions).
    U = np.uint64

    @numba.njit(cache=True, nogil=True)
    def _list_active(row, active):
        m = 0
        for i in range(row.shape[0]):
            active[m] = i
            m += row[i] != 0
        return m

    @numba.njit(cache=True, nogil=True)
    def scatter_dense(spikes, steps, weight_t, out):
        """``out[t, b] = sum of weight_t[i]`` over the inputs ``i`` that spiked, for the steps ``t`` where
        ``steps[t]`` (other steps are left as they are): ``spikes`` ``(T, B, F)`` uint8, ``weight_t``
        ``(F, O)``, ``out`` ``(T, B, O)``."""
        n_t, n_b, n_in = spikes.shape
        n_out = U(weight_t.shape[1])
        w = weight_t.reshape(-1)
        active = np.empty(n_in, np.int64)
        for t in range(n_t):
            if not steps[t]:
                continue
            for b in range(n_b):
                acc = out[t, b]
                acc[:] = 0
                for j in range(_list_active(spikes[t, b], active)):
                    base = U(active[j]) * n_out
                    for o in range(n_out):
                        acc[o] += w[base + o]

    @numba.njit(cache=True, nogil=True)
    def scatter_conv(spikes, steps, weight, c_out_g, where, rows, cols, out):
        """Scatter form of a grouped cross-correlation, channels last, for the steps ``t`` where ``steps[t]``
        (their rows of ``out`` are overwritten, the others left as they are):
        ``spikes`` ``(T, B, H * W * C)`` uint8; ``weight`` ``(kH, kW, C / groups, O)``; ``c_out_g`` outputs per
        group; ``where`` ``(H * W * C, 4)``: each input's y, x, channel within its group and its group's first
        output channel; ``rows``, ``cols``: :func:`tap_lists` of the rows and columns; ``out`` ``(T, B, OH,
        OW * O)``."""
        n_t, n_b, n_in = spikes.shape
        k_w, c_in_g, c_out = U(weight.shape[1]), U(weight.shape[2]), U(weight.shape[3])
        width = U(out.shape[3])
        n_out_g = U(c_out_g)
        w = weight.reshape(-1)
        active = np.empty(n_in, np.int64)
        for t in range(n_t):
            if not steps[t]:
                continue
            for b in range(n_b):
                acc = out[t, b].reshape(-1)
                acc[:] = 0
                for j in range(_list_active(spikes[t, b], active)):
                    i = active[j]
                    y, x, ci, lo = where[i, 0], where[i, 1], U(where[i, 2]), U(where[i, 3])
                    for p in range(rows[0, y, 0]):
                        ky, oy = U(rows[1, y, p]), U(rows[2, y, p])
                        for q in range(cols[0, x, 0]):
                            kx, ox = U(cols[1, x, q]), U(cols[2, x, q])
                            o_base = oy * width + ox * c_out + lo
                            w_base = ((ky * k_w + kx) * c_in_g + ci) * c_out + lo
                            for o in range(n_out_g):
                                acc[o_base + o] += w[w_base + o]

    @numba.njit(cache=True, nogil=True)
    def depthwise_conv(spikes, weight, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, out):
        """Dense direct form of a depthwise cross-correlation (one input and one output channel per group),
        channels last: ``spikes`` ``(R, H, W, C)`` uint8, ``weight`` ``(kH, kW, C)``, ``out`` ``(R, OH, OW,
        C)`` (overwritten); the innermost loop runs over the contiguous channels."""
        n_r, n_h, n_w, n_c = spikes.shape
        k_h, k_w = weight.shape[0], weight.shape[1]
        o_h, o_w = out.shape[1], out.shape[2]
        c = U(n_c)
        w = weight.reshape(-1)
        for r in range(n_r):
            row, acc = spikes[r].reshape(-1), out[r].reshape(-1)
            acc[:] = 0
            for oy in range(o_h):
                for ky in range(k_h):
                    iy = oy * stride_h - pad_h + ky * dil_h
                    if iy < 0 or iy >= n_h:
                        continue
                    for ox in range(o_w):
                        o_base = U(oy * o_w + ox) * c
                        for kx in range(k_w):
                            ix = ox * stride_w - pad_w + kx * dil_w
                            if ix < 0 or ix >= n_w:
                                continue
                            s_base, w_base = U(iy * n_w + ix) * c, U(ky * k_w + kx) * c
                            for ch in range(c):
                                acc[o_base + ch] += row[s_base + ch] * w[w_base + ch]

    @numba.njit(cache=True, nogil=True)
    def cuba_recurrent_window(a, feedback_t, i_decay, v_decay, vth, spikes, counts):
        """:func:`cuba_window` for a layer with a recurrent synapse: step ``t`` also receives, event-driven, the
        layer's own spikes of step ``t - 1`` through ``feedback_t`` ``(N, N)`` int64 (from, to), added in int64
        to ``a[t]`` (nothing at the window's first step, as Lava's synapse buffer is cleared)."""
        n_t, n_b, n_n = a.shape
        u = np.zeros(n_n, np.int64)
        v = np.zeros(n_n, np.int64)
        fed = np.zeros(n_n, np.int64)
        active = np.empty(n_n, np.int64)
        w = feedback_t.reshape(-1)
        width = U(n_n)
        for b in range(n_b):
            u[:] = 0
            v[:] = 0
            for t in range(n_t):
                fed[:] = 0
                if t > 0:
                    for j in range(_list_active(spikes[t - 1, b], active)):
                        base = U(active[j]) * width
                        for o in range(width):
                            fed[o] += w[base + o]
                a_t, s_t = a[t, b], spikes[t, b]
                for n in range(n_n):
                    s, u[n], v[n] = fixedpoint.cuba_step(np.int64(a_t[n]) + fed[n], u[n], v[n], i_decay, v_decay,
                                                         vth)
                    s_t[n] = s
                c = 0
                for n in range(n_n):
                    c += s_t[n]
                counts[t, b] = c

    @numba.njit(cache=True, nogil=True)
    def time_major(x, out, active):
        """``out[t, b, p, c] = x[b, c, p, t]`` (samples' input, time last and channels first, to steps first and
        channels last), and ``active[t]``: the spikes of step ``t`` over every sample."""
        n_b, n_c, n_p, n_t = x.shape
        active[:] = 0
        for b in range(n_b):
            for p in range(n_p):
                for c in range(n_c):
                    for t in range(n_t):
                        out[t, b, p, c] = x[b, c, p, t]
                        active[t] += x[b, c, p, t]

    # --- the step-by-step int64 kernels of the ``numba`` engine -------------------------------------------

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
