"""Batched integer emulator of the deployed graph, bit-exact with Lava's fixed-point CPU models.

It runs a :class:`~spikeship.network.Network` (read from a ``.net`` file or straight from export) and
reproduces, operation by operation, what ``Loihi2SimCfg(select_tag='fixed_pt')`` runs for a netx network plus
the TWO readout:

* synapses (per kind, ``OPS``): the exact integer sum of the weights of the inputs that spiked. netx's dense
  layers go through Lava's ``Dense`` with netx's weight exponent, which gives the very same sum for every
  weight matrix validation accepts (``export.validate.check_lava_dense`` refuses the few it would alter);
  Lava's ``Conv`` applies the weights as they are. Validation also keeps each step's sum within int16, so no
  intermediate wrap of Lava's ever applies.
* recurrent synapses (any layer with ``recurrent_weight``; netx's ``dense_rec``): a dense synapse from the
  layer's own spikes of the step before, ``a_tau = W x_tau + R s_{tau - 1}``, the one-step delay of Lava's
  ``Dense`` in ``RecurrentDense``'s loop. Every engine keeps each layer's last spikes for it.
* CUBA neurons: :func:`spikeship.fixedpoint.cuba_step`, Lava's ``PyLifResetModelBitAcc`` (24-bit current wrap
  and voltage clamp included).

Two engines compute the same integers (the tests check them against each other, slayer and Lava):

* ``numba`` (the CPU default): event-driven synapses (each input spike adds its weights to its fan-out) and one
  fused pass for the CUBA step (:mod:`spikeship.sim.kernels`).
* ``torch`` (CPU, or CUDA with ``device="cuda"``): dense GEMMs and ``unfold`` + GEMM convolutions in float32
  when every partial sum stays below 2**24, else float64 (below 2**53), so the float results are exact
  integers; neuron state in int64. Never ``conv2d``: its float32 algorithms (NNPACK Winograd/FFT) were
  measured inexact on spike convolutions.

Every sample is simulated in isolation; layer k is computed for the steps of its window, ``tau`` in
``[k, k + T)`` (:mod:`spikeship.sim.layout`; before that it has received nothing), which is what Lava emits.
The module imports neither Lava nor numba at import time beyond :mod:`spikeship.sim.kernels`.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from .. import fixedpoint
from ..backends import RunOptions, RunResult, check_inputs
from ..errors import SpikeshipError
from ..network import Layer, Network, by_kind, recurrent_synapse
from . import kernels

#: layer kind -> the integer operation its (input) synapse computes; every engine implements every operation.
#: A recurrent synapse is always ``dense`` (from the layer's own neurons), whatever the kind.
OPS = {"dense": "dense", "recurrent": "dense", "conv": "conv", "pool": "conv"}


def _op(layer: Layer) -> str:
    return by_kind(OPS, layer.kind, layer.name, "emulator synapse")



class _NumbaEngine:
    """int64 numba kernels: event-driven synapses, one fused CUBA pass (CPU)."""

    def __init__(self, net: Network, device: str = "cpu") -> None:
        if not kernels.AVAILABLE:
            raise SpikeshipError("the numba engine needs numba; use engine='torch'")
        if device != "cpu":
            raise SpikeshipError("the numba engine runs on the CPU; use engine='torch' for CUDA")
        self.net = net
        self.synapses = [getattr(self, "_" + _op(layer))(layer) for layer in net.layers]
        self.feedback = [None if rec is None else self._dense(rec) for rec in map(recurrent_synapse, net.layers)]
        self.readout_synapse = self._dense(net.readout)

    @staticmethod
    def _dense(layer: Layer) -> Callable[[np.ndarray], np.ndarray]:
        w_t = np.ascontiguousarray(np.asarray(layer.weight, dtype=np.int64).T)

        def apply(src: np.ndarray) -> np.ndarray:
            acc = np.zeros((src.shape[0], w_t.shape[1]), np.int64)
            kernels.dense_accumulate(np.ascontiguousarray(src.reshape(src.shape[0], -1)), w_t, acc)
            return acc.reshape((src.shape[0],) + tuple(layer.shape))

        return apply

    @staticmethod
    def _conv(layer: Layer) -> Callable[[np.ndarray], np.ndarray]:
        w = np.asarray(layer.weight, dtype=np.int64)

        def apply(src: np.ndarray) -> np.ndarray:
            acc = np.zeros((src.shape[0],) + tuple(layer.shape), np.int64)
            kernels.conv_accumulate(src, w, *layer.stride, *layer.padding, *layer.dilation, layer.groups, acc)
            return acc

        return apply

    def start(self, batch: int) -> None:
        self.batch = batch
        self.u = [np.zeros(batch * layer.num_neurons, np.int64) for layer in self.net.layers]
        self.v = [np.zeros(batch * layer.num_neurons, np.int64) for layer in self.net.layers]
        self.last = [None] * len(self.net.layers)  # each layer's spikes of its previous step

    def layer(self, k: int, src: np.ndarray) -> np.ndarray:
        layer = self.net.layers[k]
        acc = self.synapses[k](src)
        if self.feedback[k] is not None and self.last[k] is not None:
            acc += self.feedback[k](self.last[k])
        spikes = np.empty((self.batch,) + tuple(layer.shape), np.uint8)
        n = layer.neuron
        kernels.cuba_step(acc.reshape(-1), self.u[k], self.v[k], n.i_decay, n.v_decay, n.vth_mant,
                          spikes.reshape(-1))
        self.last[k] = spikes
        return spikes

    def readout(self, src: np.ndarray) -> np.ndarray:
        return self.readout_synapse(src)


def _exact_float_dtype(weight: np.ndarray):
    """float32 when every partial sum of binary inputs times ``weight`` rows is an integer below 2**24
    (then float32 GEMM is exact in any summation order), else float64 (exact below 2**53)."""
    import torch

    return torch.float32 if fixedpoint.weight_bound(weight) < fixedpoint.FLOAT32_EXACT else torch.float64


class _TorchEngine:
    """torch tensors: GEMMs and unfold + GEMM convolutions (exact, see ``_exact_float_dtype``), int64 neurons;
    on the CPU or a CUDA device."""

    def __init__(self, net: Network, device: str = "cpu") -> None:
        import torch

        if device == "cuda" and not torch.cuda.is_available():
            raise SpikeshipError("--device cuda: no CUDA device is available here (use --device cpu)")
        self.torch, self.device, self.net = torch, torch.device(device), net
        self.synapses = [getattr(self, "_" + _op(layer))(layer) for layer in net.layers]
        self.feedback = [None if rec is None else self._dense(rec) for rec in map(recurrent_synapse, net.layers)]
        self.readout_synapse = self._dense(net.readout)

    def _dense(self, layer: Layer):
        torch = self.torch
        dtype = _exact_float_dtype(layer.weight)
        w = torch.from_numpy(np.asarray(layer.weight, dtype=np.float64)).to(self.device, dtype).T.contiguous()

        def apply(src):
            acc = src.reshape(src.shape[0], -1).to(dtype) @ w
            return acc.to(torch.int64).reshape((src.shape[0],) + tuple(layer.shape))

        return apply

    def _conv(self, layer: Layer):
        torch = self.torch
        g = layer.groups
        out_c, in_per_group, kh, kw = layer.weight.shape
        dtype = _exact_float_dtype(layer.weight)
        # (G, out/G, in/G * kH * kW), the row order unfold produces within a group
        w = torch.from_numpy(np.asarray(layer.weight, dtype=np.float64).reshape(g, out_c // g, in_per_group * kh * kw))
        w = w.to(self.device, dtype)

        def apply(src):
            b = src.shape[0]
            cols = torch.nn.functional.unfold(src.to(dtype), (kh, kw), dilation=layer.dilation,
                                              padding=layer.padding, stride=layer.stride)  # (B, C * kH * kW, P)
            acc = torch.matmul(w, cols.reshape(b, g, -1, cols.shape[-1]))  # (B, G, out/G, P)
            return acc.reshape((b,) + tuple(layer.shape)).to(torch.int64)

        return apply

    def start(self, batch: int) -> None:
        zeros = lambda layer: self.torch.zeros((batch,) + tuple(layer.shape), dtype=self.torch.int64,  # noqa: E731
                                               device=self.device)
        self.u = [zeros(layer) for layer in self.net.layers]
        self.v = [zeros(layer) for layer in self.net.layers]
        self.last = [None] * len(self.net.layers)  # each layer's spikes of its previous step

    def _tensor(self, src):
        return src if isinstance(src, self.torch.Tensor) else self.torch.from_numpy(src).to(self.device)

    def layer(self, k: int, src):
        n = self.net.layers[k].neuron
        acc = self.synapses[k](self._tensor(src))
        if self.feedback[k] is not None and self.last[k] is not None:
            acc = acc + self.feedback[k](self.last[k])
        spikes, self.u[k], self.v[k] = fixedpoint.cuba_step(acc, self.u[k], self.v[k], n.i_decay, n.v_decay,
                                                            n.vth_mant)
        self.last[k] = spikes
        return spikes.to(self.torch.uint8).cpu().numpy()

    def readout(self, src) -> np.ndarray:
        return self.readout_synapse(self._tensor(src)).cpu().numpy()


#: engine name -> class; ``auto`` picks numba on the CPU (when installed), torch otherwise
ENGINES = {"numba": _NumbaEngine, "torch": _TorchEngine}


def _engine(engine: str, device: str) -> str:
    if engine == "auto":
        return "numba" if device == "cpu" and kernels.AVAILABLE else "torch"
    if engine not in ENGINES:
        raise SpikeshipError(f"unknown emulator engine {engine!r}; choose {', '.join(ENGINES)}")
    return engine


def emulate(net: Network, inputs, *, record_spikes: bool = True, batch_size: int = 256, device: str = "cpu",
            engine: str = "auto", progress: Callable[[int], None] | None = None) -> RunResult:
    """Run every sample of ``inputs`` ``(N, *input_shape, T)`` through the integer graph of ``net``."""
    start_time = time.perf_counter()
    x = check_inputs(net, inputs)
    run = ENGINES[_engine(engine, device)](net, device)
    n, T, L = x.shape[0], net.time_steps, net.num_layers
    shapes = net.layer_shapes
    windows = [np.zeros((n,) + s + (T,), np.uint8) for s in shapes] if record_spikes else None
    counts = np.zeros((n, L), np.int64)
    readout_steps = np.zeros((n, net.num_classes, T), np.int64)
    for lo in range(0, n, batch_size):
        hi = min(n, lo + batch_size)
        b = hi - lo
        xb = np.ascontiguousarray(np.moveaxis(x[lo:hi], -1, 0))  # (T, B, *feed) uint8
        run.start(b)
        prev: list = [None] * L
        record = [np.empty((T, b) + s, np.uint8) for s in shapes] if windows is not None else None
        for tau in range(T + L - 1):
            # layer k's window: tau in [k, k + T); deepest first, so prev[k - 1] is still s_{k-1}[tau - 1]
            for k in reversed(range(max(0, tau - T + 1), min(L, tau + 1))):
                s = run.layer(k, xb[tau] if k == 0 else prev[k - 1])
                prev[k] = s
                counts[lo:hi, k] += s.reshape(b, -1).sum(1, dtype=np.int64)
                if record is not None:
                    record[k][tau - k] = s  # time-major while running (contiguous writes)
                if k == L - 1 and tau + 1 < T:  # readout input r_t = W_r s_{L-1}[t - 1] for t = tau + 1
                    readout_steps[lo:hi, :, tau + 1] = run.readout(s)
        if record is not None:
            for k in range(L):
                windows[k][lo:hi] = np.moveaxis(record[k], 0, -1)
        if progress is not None:
            progress(b)
    readout = (readout_steps * np.asarray(net.two_weights, dtype=np.int64).reshape(1, 1, -1)).sum(-1)
    return RunResult(backend="emulator", windows=None if windows is None else tuple(windows), counts=counts,
                     readout=readout, readout_steps=readout_steps, simulated_steps=n * L * T,
                     wall_s=time.perf_counter() - start_time)


def run(net: Network, x: np.ndarray, options: RunOptions) -> RunResult:
    """The ``emulator`` backend (see :mod:`spikeship.backends`)."""
    return emulate(net, x, record_spikes=options.record_spikes, device=options.device, progress=options.progress)
