"""Batched integer emulator of the deployed graph, bit-exact with Lava's fixed-point CPU models.

It runs a :class:`~spikeship.network.Network` (read from a ``.net`` file or straight from export) and
reproduces, operation by operation, what ``Loihi2SimCfg(select_tag='fixed_pt')`` runs for a netx network plus
the TWO readout:

* synapses (per kind, :data:`OPS`): the exact integer sum of the weights of the inputs that spiked. netx's
  dense layers go through Lava's ``Dense`` with netx's weight exponent, which gives the very same sum for
  every weight matrix validation accepts (``export.validate.check_lava_dense`` refuses the few it would
  alter); Lava's ``Conv`` applies the weights as they are. Validation also keeps each step's sum within
  int16, so no intermediate wrap of Lava's ever applies.
* recurrent synapses (any layer with ``recurrent_weight``; netx's ``dense_rec``): a dense synapse from the
  layer's own spikes of the step before, ``a_tau = W x_tau + R s_{tau - 1}``, the one-step delay of Lava's
  ``Dense`` in ``RecurrentDense``'s loop. Such a layer is computed step by step within its window.
* CUBA neurons: :func:`spikeship.fixedpoint.cuba_step`, Lava's ``PyLifResetModelBitAcc`` (24-bit current wrap
  and voltage clamp included).

Every sample is simulated in isolation; layer k is computed for the steps of its window, ``tau`` in
``[k, k + T)`` (:mod:`spikeship.sim.layout`; before that it has received nothing), which is what Lava emits.
The engines (:data:`ENGINES`, :mod:`spikeship.sim.engines`) compute the same integers in different ways; the
tests check them against each other, slayer and Lava. ``auto`` is ``cpu`` on the CPU and ``torch`` on CUDA.

Threads: CPU engines run chunks of samples in parallel threads (their kernels release the GIL), as many as
:func:`available_threads` allows (the cores this process may use, at most ``OMP_NUM_THREADS``). The threads
live only while :func:`emulate` runs, and torch runs single-threaded inside them and in the calling thread (per
thread: :func:`~spikeship.sim.engines.torch_one_thread`), so the emulator leaves no thread pool behind and
changes no process-wide setting: Lava forks its processes later in the same process (``spikeship demo``,
``parity``), and a forked child that inherits a started thread pool can deadlock.
The module imports neither Lava nor numba beyond :mod:`spikeship.sim.kernels`.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Callable

import numpy as np

from ..backends import RunOptions, RunResult, check_inputs
from ..errors import SpikeshipError
from ..network import Network
from . import kernels
from .engines import OPS, CpuEngine, NumbaEngine, ProductEngine, ScatterEngine, torch_one_thread, torch_single_threaded
from .torch_engine import TorchEngine

__all__ = ["OPS", "ENGINES", "emulate", "run", "available_threads"]

#: engine name -> class (see :mod:`spikeship.sim.engines`); ``auto`` picks ``cpu`` on the CPU (when numba is
#: installed) and ``torch`` otherwise
ENGINES = {"cpu": CpuEngine, "numba": NumbaEngine, "torch": TorchEngine,
           "cpu-scatter": ScatterEngine, "cpu-product": ProductEngine}


def _engine(engine: str, device: str) -> str:
    if engine == "auto":
        return "cpu" if device == "cpu" and kernels.AVAILABLE else "torch"
    if engine not in ENGINES:
        raise SpikeshipError(f"unknown emulator engine {engine!r}; choose auto or {', '.join(ENGINES)}")
    return engine


def available_threads() -> int:
    """The cores this process may run on, at most ``OMP_NUM_THREADS`` when it is set (torchrun sets it)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        n = min(n, int(os.environ.get("OMP_NUM_THREADS", "").split(",")[0]))
    except ValueError:
        pass
    return max(1, n)


def _chunk_samples(engine, net: Network, n: int, threads: int, batch_size: int | None) -> int:
    """Samples per chunk: what fits the engine's working-memory budget, at most ``batch_size``, and small
    enough that every thread gets some."""
    per_sample = net.time_steps * max(layer.num_inputs + layer.num_neurons for layer in net.layers) * 12
    chunk = max(1, engine.chunk_bytes // per_sample)
    if batch_size is not None:
        chunk = min(chunk, batch_size)
    return max(1, min(chunk, math.ceil(n / threads)))


def emulate(net: Network, inputs, *, record_spikes: bool = True, batch_size: int | None = None,
            device: str = "cpu", engine: str = "auto", threads: int | None = None,
            progress: Callable[[int], None] | None = None) -> RunResult:
    """Run every sample of ``inputs`` ``(N, *input_shape, T)`` through the integer graph of ``net``.

    ``batch_size``: at most this many samples per chunk (else the engine's memory budget decides);
    ``threads``: for the CPU engines, default :func:`available_threads`."""
    start_time = time.perf_counter()
    x = check_inputs(net, inputs)
    if threads is not None and threads < 1:
        raise SpikeshipError(f"threads must be at least 1, not {threads}")
    engine_class = ENGINES[_engine(engine, device)]
    # CPU engines run torch single-threaded (their own threads do the parallel work), set-up included
    with torch_single_threaded() if engine_class.threaded else contextlib.nullcontext():
        return _emulate(net, x, engine_class(net, device), record_spikes, batch_size, threads, progress, start_time)


def _emulate(net: Network, x: np.ndarray, run, record_spikes: bool, batch_size: int | None, threads: int | None,
             progress: Callable[[int], None] | None, start_time: float) -> RunResult:
    threads = (threads or available_threads()) if run.threaded else 1
    n, T, L = x.shape[0], net.time_steps, net.num_layers
    windows = [np.zeros((n,) + s + (T,), np.uint8) for s in net.layer_shapes] if record_spikes else None
    counts = np.zeros((n, L), np.int64)
    readout_steps = np.zeros((n, net.num_classes, T), np.int64)
    chunk = _chunk_samples(run, net, n, threads, batch_size)

    def work(lo: int, hi: int) -> int:
        src = run.feed(x[lo:hi])
        for k in range(L):
            src, counts[lo:hi, k] = run.layer(k, src)
            if windows is not None:
                windows[k][lo:hi] = run.window(k, src)
        # readout input r_t = W_r s_{L-1}[t - 1] for t in [L, T): the last layer's window steps [0, T - L)
        if T > L:
            readout_steps[lo:hi, :, L:] = run.readout(src, T - L)
        return hi - lo

    bounds = [(lo, min(n, lo + chunk)) for lo in range(0, n, chunk)]
    if threads == 1 or len(bounds) == 1:
        for lo, hi in bounds:
            done = work(lo, hi)
            if progress is not None:
                progress(done)
    else:
        pool = ThreadPoolExecutor(max_workers=min(threads, len(bounds)), thread_name_prefix="emulator",
                                  initializer=torch_one_thread)
        try:
            for future in as_completed([pool.submit(work, lo, hi) for lo, hi in bounds]):
                done = future.result()
                if progress is not None:
                    progress(done)
        finally:  # on an error or Ctrl-C the chunks not started are dropped; the threads end either way
            pool.shutdown(wait=True, cancel_futures=True)
    readout = (readout_steps * np.asarray(net.two_weights, dtype=np.int64).reshape(1, 1, -1)).sum(-1)
    return RunResult(backend="emulator", windows=None if windows is None else tuple(windows), counts=counts,
                     readout=readout, readout_steps=readout_steps, simulated_steps=n * L * T,
                     wall_s=time.perf_counter() - start_time)


def run(net: Network, x: np.ndarray, options: RunOptions) -> RunResult:
    """The ``emulator`` backend (see :mod:`spikeship.backends`)."""
    return emulate(net, x, record_spikes=options.record_spikes, device=options.device, progress=options.progress)
