"""The emulator's engines: each computes, layer by layer over whole windows, the integers Lava computes.

An engine runs a chunk of samples through the network one layer at a time (the network is feed-forward, so
layer k's whole window can be computed once layer k - 1's is known: step ``j`` of layer k's window integrates
step ``j`` of layer k - 1's, see :mod:`spikeship.sim.layout`). Its methods: ``feed(x)`` (the chunk's input
spikes), ``layer(k, src) -> (spikes, counts)``, ``window(k, spikes)`` (the recorded window, canonical layout),
``readout(spikes, steps)``, and one method per operation of :data:`OPS` that builds a layer's synapse. Engines hold
no per-run state, so the emulator may run several chunks at once in threads (``threaded``).

* ``cpu`` (the CPU default): per layer and per step the cheaper of two exact methods (:class:`CpuEngine`):
  event-driven scatter (numba) when few inputs spiked, a dense product (float32 GEMM, oneDNN direct
  convolution) otherwise; the CUBA neuron in one numba pass over the window.
* ``numba``: the engine before that (event-driven scatter at every step, int64, one step at a time), kept as
  the reference the others are measured against.
* ``torch``: dense products in torch on the CPU or a CUDA device (:mod:`spikeship.sim.torch_engine`).

Exactness: every synaptic input is an integer sum of integer weights over binary inputs. Computed in float32
it is exact when every partial sum, in any order, stays below 2**24, which holds when a neuron's sum of
|weights| does (:func:`exact_float`); otherwise float64 (below 2**53). Only products and sums of the original
values are formed: GEMMs and oneDNN's ``convolution_direct`` (never Winograd or FFT convolutions, which
transform the operands and were measured inexact). Validation keeps each step's sum within int16, so float32
always applies to networks that export accepts.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .. import fixedpoint
from ..errors import SpikeshipError
from ..network import Layer, Network, by_kind, recurrent_synapse
from . import kernels

#: layer kind -> the integer operation its (input) synapse computes; every engine implements every operation.
#: A recurrent synapse is always ``dense`` (from the layer's own neurons), whatever the kind.
OPS = {"dense": "dense", "recurrent": "dense", "conv": "conv", "pool": "conv"}

@functools.lru_cache(maxsize=None)
def _torch_runtime():
    """torch's CPU library as ctypes (its OpenMP runtime and MKL are reachable through it), or None."""
    import torch

    path = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:
        lib = ctypes.CDLL(str(path))
        lib.omp_set_num_threads, lib.omp_get_max_threads, lib.mkl_set_num_threads_local_  # noqa: B018
    except (OSError, AttributeError):
        return None
    return lib


def torch_one_thread() -> tuple[int, int] | None:
    """From now on, torch's operations in *this* thread run on one thread: OpenMP (oneDNN, torch's own loops)
    and MKL both keep a thread count per thread, set here. Nothing process-wide changes: ``torch.set_num_threads``
    would, and above one it starts a thread pool that a process forked later inherits (Lava forks after the
    emulator: that broke deploy/lifecycle.py's parent-death watch in a forked child). Returns what to restore."""
    import torch

    torch.get_num_threads()  # torch's own per-thread set-up first, so that it cannot undo the lines below
    lib = _torch_runtime()
    if lib is None:
        return None
    before = lib.omp_get_max_threads()
    lib.omp_set_num_threads(1)
    return before, _mkl_local_threads(lib, 1)


def _mkl_local_threads(lib, n: int) -> int:
    """MKL's thread count for this thread (0: back to MKL's global one); returns the previous. The exported
    symbol is MKL's Fortran interface, which takes its argument by reference."""
    return lib.mkl_set_num_threads_local_(ctypes.byref(ctypes.c_int(n)))


@contextlib.contextmanager
def torch_single_threaded():
    """:func:`torch_one_thread` for this thread during the block, restored afterwards."""
    before = torch_one_thread()
    try:
        yield
    finally:
        if before is not None:
            _torch_runtime().omp_set_num_threads(before[0])
            _mkl_local_threads(_torch_runtime(), before[1])


def op_name(layer: Layer) -> str:
    return by_kind(OPS, layer.kind, layer.name, "emulator synapse")


def exact_float(weight) -> type:
    """float32 when every partial sum of binary inputs times ``weight`` rows is an integer below 2**24 (then
    float32 products and sums are exact in any order), else float64 (exact below 2**53)."""
    return np.float32 if fixedpoint.weight_bound(weight) < fixedpoint.FLOAT32_EXACT else np.float64


def _is_map(shape) -> bool:
    return len(shape) == 3


def _hwc(shape) -> tuple[int, ...]:
    """The physical shape of a ``(C, H, W)`` map in the CPU engines (channels last); flat shapes stay."""
    return (shape[1], shape[2], shape[0]) if _is_map(shape) else tuple(shape)


def _steps(spikes) -> int:
    return spikes.shape[0]


# --------------------------------------------------------------------------------------------------------------
# cpu: per layer and step, scatter or a dense product


@dataclass
class Synapse:
    """One layer's synapse in the CPU engine, two exact ways over a window ``s`` ``(T, B, *in)`` uint8 (maps
    channels last) into ``out`` ``(T, B, *out)``: ``scatter(s, steps, out)`` event-driven, overwriting the
    steps where ``steps`` is true; ``product(rows, out_rows)`` by a dense product over rows ``(R, *in)``,
    overwriting ``out_rows``, or None where there is none for ``dtype``. ``scatter_s`` (seconds per input
    spike) and ``product_s`` (seconds per row) are measured once (:func:`calibrate`)."""

    key: tuple
    out_shape: tuple[int, ...]
    dtype: type
    scatter: Callable
    product: Callable | None
    scatter_s: float = 0.0
    product_s: float = 0.0


#: measured costs by synapse (its ``key``): what :func:`calibrate` found, for every later engine in the process
_COSTS: dict[tuple, tuple[float, float]] = {}
#: calibration: random inputs, this fraction spiking, over enough rows for about this many multiply-accumulates
#: (at least a window's worth: a product's cost per row falls with the rows it is given)
CALIBRATION_ACTIVITY, CALIBRATION_MACS, CALIBRATION_ROWS = 0.2, 32_000_000, (16, 64)


def calibrate(syn: Synapse, in_shape: tuple[int, ...], macs_per_row: int) -> None:
    """Measure ``syn``'s two methods on random spikes (best of three, in CPU time of this thread: what other
    processes take does not count): seconds per input spike scattered and per row multiplied. Measured once per
    synapse shape in a process. Only the choice of method depends on it, never a result."""
    if syn.key in _COSTS:
        syn.scatter_s, syn.product_s = _COSTS[syn.key]
        return
    with torch_single_threaded():  # as the engine runs it (else other threads spinning inflate the time)
        _measure(syn, in_shape, macs_per_row)
    _COSTS[syn.key] = (syn.scatter_s, syn.product_s)


def _measure(syn: Synapse, in_shape: tuple[int, ...], macs_per_row: int) -> None:
    import time

    rows = int(np.clip(CALIBRATION_MACS // max(1, macs_per_row), *CALIBRATION_ROWS))
    size = rows * int(np.prod(in_shape))
    random_bytes = np.frombuffer(np.random.default_rng(0).bytes(size), np.uint8)
    s = (random_bytes < 256 * CALIBRATION_ACTIVITY).astype(np.uint8).reshape((1, rows) + in_shape)
    spikes = max(1, int(s.sum()))
    out = np.empty((1, rows) + syn.out_shape, syn.dtype)
    steps = np.ones(1, bool)

    def best(f) -> float:
        times = []
        for _ in range(3):
            t0 = time.thread_time()
            f()
            times.append(time.thread_time() - t0)
        return min(times)

    syn.scatter_s = best(lambda: syn.scatter(s, steps, out)) / spikes
    syn.product_s = best(lambda: syn.product(s[0], out[0])) / rows if syn.product is not None else 0.0


class CpuEngine:
    """numba + torch on the CPU: per layer and step, event-driven scatter or a dense product, whichever is
    cheaper for the step's measured input spikes by the costs measured for that synapse (:func:`calibrate`);
    maps are channels last inside. ``method`` forces ``scatter`` or ``product`` (tests and benchmarks)."""

    threaded = True
    #: bytes of working arrays per chunk of samples (a share of the caches per thread)
    chunk_bytes = 16 << 20

    def __init__(self, net: Network, device: str = "cpu", method: str = "auto") -> None:
        if not kernels.AVAILABLE:
            raise SpikeshipError("the cpu engine needs numba; use engine='torch'")
        if device != "cpu":
            raise SpikeshipError("the cpu engine runs on the CPU; use --device cuda with engine='torch'")
        if method not in ("auto", "scatter", "product"):
            raise SpikeshipError(f"unknown method {method!r}")
        import torch

        self.torch, self.net, self.method = torch, net, method
        self._local = threading.local()
        self.synapses = []
        for k, layer in enumerate(net.layers):
            self.synapses.append(getattr(self, "_" + op_name(layer))(layer, self._source(k)))
        self.readout_synapse = self._dense(net.readout, self._source(net.num_layers))
        # recurrent synapses: (from, to) int64, applied step by step inside the neuron pass
        self.feedback = [None if rec is None else np.ascontiguousarray(np.asarray(rec.weight, np.int64).T)
                         for rec in map(recurrent_synapse, net.layers)]

    def _buffer(self, key, shape: tuple[int, ...], dtype) -> np.ndarray:
        """A working array of this thread, kept from chunk to chunk (fresh arrays cost a page fault per 4 KiB
        page each time). Its content is whatever the last chunk left."""
        buffers = self._local.__dict__.setdefault("buffers", {})
        if key not in buffers or buffers[key].shape != shape or buffers[key].dtype != dtype:
            buffers[key] = np.empty(shape, dtype)
        return buffers[key]

    def _source(self, k: int) -> tuple[int, ...]:
        """The logical shape of what feeds layer ``k`` (the readout for ``k = L``)."""
        return tuple(self.net.feed_shape) if k == 0 else tuple(self.net.layers[k - 1].shape)

    def _dense(self, layer: Layer, source: tuple[int, ...]) -> Synapse:
        torch = self.torch
        w = np.asarray(layer.weight)
        if _is_map(source):  # the input arrives channels last: permute the columns from C, H, W order
            w = w.reshape((w.shape[0],) + source).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
        dtype = exact_float(w)
        w_t = np.ascontiguousarray(w.T, dtype=dtype)  # (F, O)
        w_torch = torch.from_numpy(w_t)

        def scatter(s, steps, out):
            kernels.scatter_dense(s.reshape(s.shape[:2] + (-1,)), steps, w_t, out.reshape(out.shape[:2] + (-1,)))

        def product(s, out):  # one GEMM (MKL through torch), written in place
            x = torch.from_numpy(s.reshape(s.shape[0], -1)).to(w_torch.dtype)
            torch.mm(x, w_torch, out=torch.from_numpy(out.reshape(out.shape[0], -1)))

        syn = Synapse(("dense", w_t.shape, dtype), tuple(layer.shape), dtype, scatter, product)
        return self._calibrated(syn, source, w_t.size)

    def _conv(self, layer: Layer, source: tuple[int, ...]) -> Synapse:
        torch = self.torch
        w = np.asarray(layer.weight)
        dtype = exact_float(w)
        out_c, c_in_g, kh, kw = w.shape
        w_hwio = np.ascontiguousarray(w.transpose(2, 3, 1, 0), dtype=dtype)
        (c, h, wd), (_, oh, ow) = layer.input_shape, layer.shape
        g = layer.groups
        rows = kernels.tap_lists(h, oh, kh, layer.stride[0], layer.padding[0], layer.dilation[0])
        cols = kernels.tap_lists(wd, ow, kw, layer.stride[1], layer.padding[1], layer.dilation[1])
        y, x, ch = (a.reshape(-1) for a in np.meshgrid(np.arange(h), np.arange(wd), np.arange(c), indexing="ij"))
        where = np.stack([y, x, ch % c_in_g, ch // c_in_g * (out_c // g)], 1).astype(np.int64)
        out_shape = _hwc(layer.shape)

        def scatter(s, steps, out):
            kernels.scatter_conv(s.reshape(s.shape[:2] + (-1,)), steps, w_hwio, out_c // g, where, rows, cols,
                                 out.reshape(out.shape[:2] + (oh, ow * out_c)))

        product = None
        geometry = (layer.stride, layer.padding, layer.dilation)
        if g == c == out_c:  # depthwise (pooling): a direct numba kernel, vectorised over the channels
            w_hwc = np.ascontiguousarray(w_hwio[:, :, 0, :])

            def product(s, out):
                kernels.depthwise_conv(s, w_hwc, *layer.stride, *layer.padding, *layer.dilation, out)

        elif dtype == np.float32 and torch.backends.mkldnn.is_available():
            w_torch = torch.from_numpy(np.asarray(w, dtype=np.float32)).contiguous(memory_format=torch.channels_last)
            args = (list(layer.padding), list(layer.stride), list(layer.dilation), g)

            def product(s, out):  # oneDNN's direct convolution (alg:convolution_direct), channels last
                x = torch.from_numpy(s).to(torch.float32).permute(0, 3, 1, 2)
                out[...] = torch.mkldnn_convolution(x, w_torch, None, *args).permute(0, 2, 3, 1).numpy()

        syn = Synapse(("conv", w_hwio.shape, geometry, g, layer.input_shape, dtype), out_shape,
                      dtype, scatter, product)
        return self._calibrated(syn, source, int(oh * ow * out_c * c_in_g * kh * kw))

    def _calibrated(self, syn: Synapse, source: tuple[int, ...], macs_per_row: int) -> Synapse:
        if self.method == "auto" and syn.product is not None:
            calibrate(syn, _hwc(source), macs_per_row)
        return syn

    def _plan(self, syn: Synapse, active: np.ndarray, rows: int) -> np.ndarray:
        """Per step: True for a dense product, False for scatter (never changes a result, only the time)."""
        if syn.product is None or self.method == "scatter":
            return np.zeros(len(active), bool)
        if self.method == "product":
            return active > 0
        return active * syn.scatter_s > rows * syn.product_s

    def _synaptic_input(self, syn: Synapse, spikes: np.ndarray, active: np.ndarray) -> np.ndarray:
        """``(T, B, *out)``: the synaptic input of every step; ``active[t]``: input spikes at step t."""
        n_t, b = spikes.shape[:2]
        a = self._buffer(("a", id(syn)), (n_t, b) + syn.out_shape, syn.dtype)
        dense = self._plan(syn, active, b)
        if not dense.all():  # the steps without a product, also those without input spikes (zeros)
            syn.scatter(spikes, ~dense, a)
        t = 0
        while t < n_t:  # consecutive dense steps in one product
            if not dense[t]:
                t += 1
                continue
            stop = t + 1
            while stop < n_t and dense[stop]:
                stop += 1
            rows = (stop - t) * b
            syn.product(spikes[t:stop].reshape((rows,) + spikes.shape[2:]), a[t:stop].reshape((rows,) + syn.out_shape))
            t = stop
        return a

    def feed(self, x: np.ndarray):
        """``x`` ``(B, *feed, T)`` -> ``(spikes (T, B, *feed) channels last, input spikes per step)``."""
        b, n_t = x.shape[0], x.shape[-1]
        shape = tuple(x.shape[1:-1])
        channels = shape[0] if _is_map(shape) else 1
        s = np.empty((n_t, b) + _hwc(shape), np.uint8)
        active = np.empty(n_t, np.int64)
        kernels.time_major(x.reshape(b, channels, -1, n_t), s.reshape(n_t, b, -1, channels), active)
        return s, active

    def layer(self, k: int, src):
        spikes, active = src
        layer = self.net.layers[k]
        a = self._synaptic_input(self.synapses[k], spikes, active)
        n_t, b = a.shape[:2]
        out = self._buffer(("spikes", k), (n_t, b) + _hwc(layer.shape), np.uint8)
        counts = self._buffer(("counts", k), (n_t, b), np.int64)
        n = layer.neuron
        if self.feedback[k] is None:
            kernels.cuba_window(a.reshape(n_t, b, -1), n.i_decay, n.v_decay, n.vth_mant, out.reshape(n_t, b, -1),
                                counts)
        else:
            kernels.cuba_recurrent_window(a.reshape(n_t, b, -1), self.feedback[k], n.i_decay, n.v_decay, n.vth_mant,
                                          out.reshape(n_t, b, -1), counts)
        return (out, counts.sum(1)), counts.sum(0)

    def window(self, k: int, src) -> np.ndarray:
        spikes = src[0]
        return spikes.transpose((1, 4, 2, 3, 0) if spikes.ndim == 5 else (1, 2, 0))

    def readout(self, src, steps: int) -> np.ndarray:
        """``(B, classes, steps)`` int64: the readout input of the last layer's first ``steps`` window steps."""
        spikes, active = src
        a = self._synaptic_input(self.readout_synapse, spikes[:steps], active[:steps])
        return a.astype(np.int64).transpose(1, 2, 0)


class ScatterEngine(CpuEngine):
    """``cpu`` with event-driven scatter at every step (for tests and benchmarks)."""

    def __init__(self, net: Network, device: str = "cpu") -> None:
        super().__init__(net, device, method="scatter")


class ProductEngine(CpuEngine):
    """``cpu`` with dense products at every step that has an input spike (for tests and benchmarks)."""

    def __init__(self, net: Network, device: str = "cpu") -> None:
        super().__init__(net, device, method="product")


# --------------------------------------------------------------------------------------------------------------
# numba: the engine before per-step method choice (event-driven, int64, step by step), kept as the reference


class NumbaEngine:
    """int64 numba kernels one step at a time: event-driven synapses, one fused CUBA pass per step."""

    threaded = True
    chunk_bytes = 64 << 20

    def __init__(self, net: Network, device: str = "cpu") -> None:
        if not kernels.AVAILABLE:
            raise SpikeshipError("the numba engine needs numba; use engine='torch'")
        if device != "cpu":
            raise SpikeshipError("the numba engine runs on the CPU; use engine='torch' for CUDA")
        self.net = net
        self.synapses = [getattr(self, "_" + op_name(layer))(layer) for layer in net.layers]
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

    def feed(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(x, -1, 0))  # (T, B, *feed)

    def layer(self, k: int, src: np.ndarray):
        layer, n = self.net.layers[k], self.net.layers[k].neuron
        b = src.shape[1]
        u, v = np.zeros(b * layer.num_neurons, np.int64), np.zeros(b * layer.num_neurons, np.int64)
        out = np.empty((_steps(src), b) + tuple(layer.shape), np.uint8)
        for t in range(_steps(src)):
            acc = self.synapses[k](src[t])
            if self.feedback[k] is not None and t > 0:  # the layer's own spikes of the step before
                acc += self.feedback[k](out[t - 1])
            kernels.cuba_step(acc.reshape(-1), u, v, n.i_decay, n.v_decay, n.vth_mant, out[t].reshape(-1))
        return out, out.reshape(_steps(src), b, -1).sum((0, 2), dtype=np.int64)

    def window(self, k: int, spikes: np.ndarray) -> np.ndarray:
        return np.moveaxis(spikes, 0, -1)

    def readout(self, spikes: np.ndarray, steps: int) -> np.ndarray:
        return np.stack([self.readout_synapse(spikes[t]) for t in range(steps)], -1) if steps else \
            np.zeros((spikes.shape[1], self.net.num_classes, 0), np.int64)
