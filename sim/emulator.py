"""Batched integer emulator of the deployed graph, bit-exact with Lava's fixed-point CPU models.

It reads only the ``.net`` file (through :mod:`spikeship.sim.netfile`) and reproduces, operation by
operation, what ``Loihi2SimCfg(select_tag='fixed_pt')`` runs for a netx network plus the TWO readout:

* netx Dense: weights go through netx's ``optimize_weight_bits`` and the Dense model's ``clip_weights`` /
  ``truncate_weights`` (Lava's own pure functions, called here so the effective weights cannot drift); the
  accumulated input is shifted by the weight exponent (``>>`` floors, as numpy's does) and sent as int32.
* netx Conv: plain integer convolution (groups included; pooling is a depthwise conv), wrapped to signed
  24 bits like ``signed_clamp``; the weight exponent is not applied (Lava's conv model ignores it).
* CUBA neuron (``PyLifResetModelBitAcc``): ``u = wrap24(round0(u * (4096 - iDecay) / 4096) + (a << 6))``,
  ``v = clip(round0(v * (4096 - vDecay) / 4096) + u, +-(2**23 - 1))``, spike when ``v > vThMant << 6``,
  then ``v = 0``; ``round0`` is a right shift of the magnitude (rounds toward zero).

Two engines compute the same integers (the tests check them against each other, slayer and Lava):

* ``numba`` (default; numba is installed with tonic): event-driven synapses (each input spike adds its
  weights to its fan-out) and one fused int64 pass for the CUBA step (:mod:`spikeship.sim.kernels`).
* ``torch``: dense GEMMs and ``unfold`` + GEMM convolutions in float32 when every partial sum stays below
  2**24, else float64 (below 2**53), so the float results are exact integers; neuron state in float64,
  which holds every intermediate exactly (see :class:`CubaState`). Never ``conv2d``: its float32
  algorithms (NNPACK Winograd/FFT) were measured inexact on spike convolutions.

The emulator simulates every sample in isolation for ``T + L`` steps (see :mod:`spikeship.sim.layout`),
which contains both PyTorch's view of each layer and Lava's window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..errors import SpikeshipError
from . import kernels, layout
from .lava_compat import import_lava
from .netfile import ConvLayer, CubaParams, DenseLayer, NetSpec

import_lava()  # before anything else touches multiprocessing (Lava sets the start method at import)

UV_BITS = 24
DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT
ACT_SHIFT = 6
VTH_SHIFT = 6
_MAX_UV = 1 << (UV_BITS - 1)


@dataclass(frozen=True)
class CubaState:
    """Current and voltage of a population, float64 tensors of the population's shape (batch first).

    float64 holds every value exactly: states are 24-bit integers, the largest intermediate is the decay
    product ``u * (4096 - d) < 2**36``, and the only division is by 4096 (a power of two) followed by an
    explicit truncation. It is faster than int64, whose division is the slowest elementwise operation."""

    u: torch.Tensor
    v: torch.Tensor

    @staticmethod
    def zeros(shape: tuple[int, ...]) -> "CubaState":
        return CubaState(torch.zeros(shape, dtype=torch.float64), torch.zeros(shape, dtype=torch.float64))


def signed_wrap(x: torch.Tensor, bits: int) -> torch.Tensor:
    """``lava.proc.conv.utils.signed_clamp``: wrap integers (int or integer-valued float tensors) to a signed
    ``bits``-bit value (two's complement)."""
    half = 1 << (bits - 1)
    if x.numel() == 0 or (float(x.max()) < half and float(x.min()) >= -half):
        return x  # the common case: nothing to wrap, skip the modulo
    return torch.remainder(x + half, 2 * half) - half


def wrap_int32(x: torch.Tensor) -> torch.Tensor:
    """Two's-complement wrap to int32 (what storing into an int32 array or channel does)."""
    return signed_wrap(x, 32)


def _decay(x: torch.Tensor, decay: int) -> torch.Tensor:
    """``sign(p) * (|p| >> 12)`` with ``p = x * (4096 - decay)``: division by 4096 rounding toward zero."""
    return torch.trunc(x * ((DECAY_UNITY - decay) / DECAY_UNITY))


def cuba_step(a_in: torch.Tensor, state: CubaState, p: CubaParams) -> tuple[torch.Tensor, CubaState]:
    """One step of Lava's bit-accurate CUBA neuron (``PyLifResetModelBitAcc`` between resets): integer
    synaptic input -> (bool spikes, new state)."""
    act = wrap_int32(a_in.to(torch.float64) * (1 << ACT_SHIFT))
    current = wrap_int32(_decay(state.u, p.i_decay) + act)
    if current.numel() and (float(current.max()) > _MAX_UV or float(current.min()) <= -_MAX_UV):
        wrapped = torch.where(current > _MAX_UV, current - 2 * _MAX_UV, current)
        current = torch.where(wrapped <= -_MAX_UV, current + 2 * _MAX_UV, wrapped)
    voltage = torch.clamp(_decay(state.v, p.v_decay) + current, -_MAX_UV + 1, _MAX_UV - 1)
    spikes = voltage > (p.vth_mant << VTH_SHIFT)
    voltage.masked_fill_(spikes, 0.0)
    return spikes, CubaState(current, voltage)


def lava_dense_params(weight: np.ndarray) -> tuple[np.ndarray, int, int]:
    """What netx hands to Lava's Dense for a dense weight: ``(weights, num_weight_bits, weight_exp)``."""
    from lava.lib.dl.netx.utils import optimize_weight_bits

    w, num_bits, exponent, _ = optimize_weight_bits(np.asarray(weight).astype(int))
    return np.asarray(w), int(num_bits), int(exponent)


def lava_dense_weights(weight: np.ndarray) -> tuple[np.ndarray, int]:
    """The integer weights and exponent Lava's bit-accurate Dense applies to a netx dense weight."""
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

    w, num_bits, exponent = lava_dense_params(weight)
    mode = determine_sign_mode(w)
    w = truncate_weights(clip_weights(w, mode, num_bits=8), mode, num_bits)
    return np.asarray(w, dtype=np.int64), exponent


def shift_exponent(x: torch.Tensor, exponent: int) -> torch.Tensor:
    return x << exponent if exponent > 0 else x >> -exponent


def _exact_float_dtype(weight: np.ndarray) -> torch.dtype:
    """float32 when every partial sum of binary inputs times ``weight`` rows is an integer below 2**24
    (then float32 GEMM is exact in any summation order), else float64 (exact below 2**53)."""
    bound = np.abs(weight).reshape(weight.shape[0], -1).sum(1).max() if weight.size else 0
    return torch.float32 if bound < (1 << 24) else torch.float64


class _DenseSynapse:
    """netx Dense in Lava: effective weights and exponent; spikes (batch first) -> int64 input."""

    def __init__(self, weight: np.ndarray) -> None:
        w, self.exponent = lava_dense_weights(weight)
        self.dtype = _exact_float_dtype(w)
        self.weight = torch.from_numpy(w).to(self.dtype).T.contiguous()

    def __call__(self, spikes: torch.Tensor) -> torch.Tensor:
        acc = (spikes.reshape(spikes.shape[0], -1).to(self.dtype) @ self.weight).to(torch.int64)
        return wrap_int32(shift_exponent(acc, self.exponent))


class _ConvSynapse:
    """netx Conv in Lava: integer convolution (groups included) wrapped to 24 bits.

    Computed as im2col (``unfold``) and a batched GEMM, never with ``conv2d``: PyTorch's float32 convolutions
    may pick Winograd/FFT algorithms (NNPACK) that are not exact even on small integers (measured: errors
    of 0.015 on a 3x3 conv of spikes), while a GEMM of integers whose partial sums stay below 2**24
    (float32) or 2**53 (float64) is exact in any summation order."""

    def __init__(self, layer: ConvLayer) -> None:
        self.layer = layer
        g = layer.groups
        out_c, in_per_group, kh, kw = layer.weight.shape
        self.dtype = _exact_float_dtype(layer.weight)
        # (G, out/G, in/G * kH * kW), the row order unfold produces within a group
        self.weight = torch.from_numpy(layer.weight.reshape(g, out_c // g, in_per_group * kh * kw)).to(self.dtype)

    def __call__(self, spikes: torch.Tensor) -> torch.Tensor:
        lyr = self.layer
        b = spikes.shape[0]
        cols = torch.nn.functional.unfold(spikes.to(self.dtype), lyr.weight.shape[2:], dilation=lyr.dilation,
                                          padding=lyr.padding, stride=lyr.stride)  # (B, C * kH * kW, P)
        cols = cols.reshape(b, lyr.groups, -1, cols.shape[-1])
        acc = torch.matmul(self.weight, cols)  # (B, G, out/G, P)
        acc = acc.reshape((b,) + tuple(lyr.shape)).to(torch.int64)
        return signed_wrap(acc, UV_BITS)


def make_synapse(layer):
    return _DenseSynapse(layer.weight) if isinstance(layer, DenseLayer) else _ConvSynapse(layer)


@dataclass(frozen=True, eq=False)
class EmulatorResult:
    """Per-sample results. ``spikes[k]``: canonical ``s_k`` of layer k, ``(N, *shape, T + L)`` uint8 (None
    unless recorded). ``counts``: ``(N, L)`` spikes in Lava's window of each layer (what the chip emits
    for that sample). ``readout_steps``: ``(N, classes, T)`` integer readout input ``r_t``.
    ``readout``: ``(N, classes)`` int64 TWO accumulators. ``predictions``: ``(N,)`` argmax."""

    spikes: list | None
    counts: np.ndarray
    readout_steps: np.ndarray
    readout: np.ndarray
    predictions: np.ndarray


def check_inputs(net: NetSpec, inputs) -> np.ndarray:
    """Inputs as an ``(N, *feed_shape, T)`` uint8 array of binary spikes, or a one-line error."""
    x = inputs.detach().cpu().numpy() if isinstance(inputs, torch.Tensor) else np.asarray(inputs)
    feed = net.feed_shape
    expected = tuple(feed) + (net.time_steps,)
    if x.ndim >= 3 and len(feed) == 1 and x.shape[-1] == net.time_steps \
            and tuple(x.shape[1:-1]) in (tuple(net.input_shape), feed):
        x = x.reshape(x.shape[0], -1, x.shape[-1])  # (N, C, H, W, T) into a dense first layer: CHW order
    if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
        raise SpikeshipError(f"input shape {tuple(x.shape[1:])} does not match the network input {expected} "
                             f"(input {tuple(net.input_shape)}, T={net.time_steps})")
    if x.size and not np.all((x == 0) | (x == 1)):
        raise SpikeshipError("input must be binary spikes (0/1); got other values")
    return x.astype(np.uint8)


class _TorchEngine:
    """The emulator's arithmetic with torch tensors (dense GEMMs, unfold convolutions, float64 neurons)."""

    def __init__(self, net: NetSpec) -> None:
        self.net = net
        self.synapses = [make_synapse(layer) for layer in net.layers]
        self.readout_syn = _DenseSynapse(net.readout_weight)

    def start(self, batch: int) -> None:
        self.states = [CubaState.zeros((batch,) + s) for s in self.net.layer_shapes]

    def layer(self, k: int, src: np.ndarray) -> np.ndarray:
        s, self.states[k] = cuba_step(self.synapses[k](torch.from_numpy(src)), self.states[k],
                                      self.net.layers[k].neuron)
        return s.to(torch.uint8).numpy()

    def readout(self, src: np.ndarray) -> np.ndarray:
        return self.readout_syn(torch.from_numpy(src)).numpy()


class _NumbaEngine:
    """The same arithmetic in int64 with numba kernels: event-driven synapses, one fused CUBA pass."""

    def __init__(self, net: NetSpec) -> None:
        self.net = net
        self.params = []
        for layer in net.layers:
            if isinstance(layer, DenseLayer):
                w, exponent = lava_dense_weights(layer.weight)
                self.params.append(("dense", np.ascontiguousarray(w.T), exponent))
            else:
                self.params.append(("conv", np.ascontiguousarray(layer.weight, dtype=np.int64), None))
        w, exponent = lava_dense_weights(net.readout_weight)
        self.readout_params = (np.ascontiguousarray(w.T), exponent)

    def start(self, batch: int) -> None:
        self.batch = batch
        sizes = [int(np.prod(s)) for s in self.net.layer_shapes]
        self.u = [np.zeros(batch * n, np.int64) for n in sizes]
        self.v = [np.zeros(batch * n, np.int64) for n in sizes]

    @staticmethod
    def _dense(src: np.ndarray, weight_t: np.ndarray, exponent: int) -> np.ndarray:
        acc = np.zeros((src.shape[0], weight_t.shape[1]), np.int64)
        kernels.dense_accumulate(np.ascontiguousarray(src.reshape(src.shape[0], -1)), weight_t, acc)
        acc = acc << exponent if exponent > 0 else acc >> -exponent
        return kernels.signed_wrap(acc, 32)

    def layer(self, k: int, src: np.ndarray) -> np.ndarray:
        kind, w, exponent = self.params[k]
        layer = self.net.layers[k]
        if kind == "dense":
            acc = self._dense(src, w, exponent)
        else:
            acc = np.zeros((self.batch,) + tuple(layer.shape), np.int64)
            kernels.conv_accumulate(np.ascontiguousarray(src), w, *layer.stride, *layer.padding, *layer.dilation,
                                    layer.groups, acc)
            acc = kernels.signed_wrap(acc, UV_BITS)
        spikes = np.empty((self.batch,) + tuple(layer.shape), np.uint8)
        p = layer.neuron
        kernels.cuba_step(acc.reshape(-1), self.u[k], self.v[k], p.i_decay, p.v_decay, p.vth_mant,
                          spikes.reshape(-1))
        return spikes

    def readout(self, src: np.ndarray) -> np.ndarray:
        return self._dense(src, *self.readout_params)


ENGINES = {"torch": _TorchEngine, "numba": _NumbaEngine}


def emulate(net: NetSpec, inputs, *, record_spikes: bool = True, batch_size: int = 256,
            progress: Callable[[int], None] | None = None, engine: str = "auto") -> EmulatorResult:
    """Run every sample of ``inputs`` ``(N, *input_shape, T)`` through the integer graph of ``net``.

    ``engine``: ``numba`` (event-driven kernels, the default when numba is installed) or ``torch``; both
    compute the same integers (tests/sim check them against each other, slayer and Lava)."""
    if engine == "auto":
        engine = "numba" if kernels.AVAILABLE else "torch"
    if engine not in ENGINES:
        raise SpikeshipError(f"unknown emulator engine {engine!r}; choose {', '.join(ENGINES)}")
    x = check_inputs(net, inputs)
    n, T, L = x.shape[0], net.time_steps, net.num_layers
    steps = layout.isolated_steps(T, L)
    shapes = net.layer_shapes
    run = ENGINES[engine](net)
    spikes = [np.zeros((n,) + s + (steps,), np.uint8) for s in shapes] if record_spikes else None
    counts = np.zeros((n, L), np.int64)
    readout_steps = np.zeros((n, net.num_classes, T), np.int64)
    with torch.no_grad():
        for lo in range(0, n, batch_size):
            hi = min(n, lo + batch_size)
            b = hi - lo
            xb = np.ascontiguousarray(np.moveaxis(x[lo:hi], -1, 0))  # (T, B, *feed) uint8
            zero_in = np.zeros((b,) + tuple(net.feed_shape), np.uint8)
            run.start(b)
            prev = [np.zeros((b,) + s, np.uint8) for s in shapes]
            record = [np.empty((steps, b) + s, np.uint8) for s in shapes] if spikes is not None else None
            for tau in range(steps):
                new = []
                for k in range(L):
                    src = (xb[tau] if tau < T else zero_in) if k == 0 else prev[k - 1]
                    s = run.layer(k, src)
                    new.append(s)
                    if k <= tau < k + T:
                        counts[lo:hi, k] += s.reshape(b, -1).sum(1, dtype=np.int64)
                    if record is not None:
                        record[k][tau] = s  # time-major while running (contiguous writes)
                if tau + 1 < T:  # readout input r_t = W_r s_{L-1}[t - 1] for t = tau + 1
                    readout_steps[lo:hi, :, tau + 1] = run.readout(new[-1])
                prev = new
            if record is not None:
                for k in range(L):
                    spikes[k][lo:hi] = np.moveaxis(record[k], 0, -1)
            if progress is not None:
                progress(b)
    readout = (readout_steps * net.two_weights.reshape(1, 1, -1)).sum(-1)
    return EmulatorResult(spikes=spikes, counts=counts, readout_steps=readout_steps, readout=readout,
                          predictions=readout.argmax(1))
