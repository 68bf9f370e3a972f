"""The ``lava`` backend: a network in Lava's fixed-point CPU simulator, many samples per compiled network.

The network record is written to a ``.net`` file in the run's temporary folder (``export.netx``), which netx
builds. The graph: a :class:`StreamSource` sending all samples back to back -> ``netx.hdf5.Network`` (reset
every ``T`` steps, offsets from :mod:`spikeship.sim.layout`) -> a Lava ``Dense`` with the readout weights
-> :class:`TwoReadout`; one :class:`SpikeRecorder` per spiking layer. It is compiled once for all samples.
A recurrent layer's recurrent synapse buffer is zeroed between samples (the run pauses at each of
:func:`spikeship.sim.layout.recurrent_clear_steps`), which netx's reset does not do.
Inputs, spikes and readouts pass through memory-mapped ``.npy`` files in a temporary folder, not Lava
Vars (``Var.get``/``set`` cost about 27 us per element). The network is always stopped, also on errors,
Ctrl-C and SIGTERM (``Terminated``), and no Lava process outlives it: if this process is killed outright
(SIGKILL), each of Lava's processes notices by itself, removes this run's shared memory and temporary
folder, and exits (:mod:`.lifecycle`).

``--workers K`` shards the samples over K processes (fork, non-daemonic: Lava forks its own processes),
each with its own network; results are merged in sample order.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..backends import RunOptions, RunResult, check_inputs
from ..errors import SpikeshipError, Terminated
from ..export.netx import write_net_file
from ..network import Network
from ..sim import layout
from . import lifecycle
from .lava_compat import import_lava

import_lava()  # before anything else touches multiprocessing (Lava sets the start method at import)


def _lava_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(reversed(shape)) if len(shape) == 3 else tuple(shape)


def _write_stream(path: Path, x: np.ndarray, feed_shape: tuple[int, ...]) -> None:
    """The input stream ``(N * T, *lava_shape)`` uint8: sample j at steps ``[jT, jT + T)``."""
    n, T = x.shape[0], x.shape[-1]
    stream = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n * T,) + _lava_shape(feed_shape))
    for j in range(n):
        stream[j * T:(j + 1) * T] = np.moveaxis(layout.to_lava_layout(feed_shape, x[j]), -1, 0)
    stream.flush()
    del stream


def _lava_dense_params(weight: np.ndarray) -> tuple[np.ndarray, int, int]:
    """What netx hands to Lava's Dense for a dense weight: ``(weights, num_weight_bits, weight_exp)``."""
    from lava.lib.dl.netx.utils import optimize_weight_bits

    w, num_bits, exponent, _ = optimize_weight_bits(np.asarray(weight).astype(int))
    return np.asarray(w), int(num_bits), int(exponent)


def run_lava(net: Network, inputs, *, record_spikes: bool = False, chunk_samples: int = 32,
             progress: Callable[[int], None] | None = None) -> RunResult:
    """Run ``inputs`` ``(N, *input_shape, T)`` (binary) through Lava, one compiled network for all.

    The network file, the input stream, the recorded spikes and the readout live in a temporary folder
    (memory-mapped ``.npy`` files, see ``procs/array_io.py``); ``chunk_samples`` only sets how often ``run``
    returns to report progress (and to notice Ctrl-C)."""
    x = check_inputs(net, inputs)
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense

    from .procs.array_io import SpikeRecorder, StreamSource
    from .procs.two_readout import TwoReadout

    t0 = time.perf_counter()
    n, T, L = x.shape[0], net.time_steps, net.num_layers
    if n == 0:
        raise SpikeshipError("no samples to run")
    total = layout.lava_steps(n, T, L)
    feed, shapes = tuple(net.feed_shape), net.layer_shapes
    w_r, bits_r, exp_r = _lava_dense_params(net.readout.weight)
    with tempfile.TemporaryDirectory(prefix="spikeship-lava-") as tmp:
        folder = Path(tmp)
        write_net_file(net, folder / "model.net")
        _write_stream(folder / "input.npy", x, feed)
        for k, shape in enumerate(shapes):
            np.save(folder / f"counts{k}.npy", np.zeros(total, np.int64))
            if record_spikes:
                np.lib.format.open_memmap(folder / f"spikes{k}.npy", mode="w+", dtype=np.uint8,
                                          shape=(total,) + _lava_shape(shape)).flush()
        np.save(folder / "readout.npy", np.zeros((n, net.num_classes), np.int64))
        network = None
        try:
            network = netx.hdf5.Network(net_config=str(folder / "model.net"), reset_interval=T,
                                        reset_offset=layout.RESET_OFFSET,
                                        input_shape=_lava_shape(feed) if len(feed) == 3 else None)
            source = StreamSource(shape=_lava_shape(feed), path=str(folder / "input.npy"))
            source.s_out.connect(network.inp)
            for k, lyr in enumerate(network.layers):
                rec = SpikeRecorder(shape=lyr.out.shape, counts_path=str(folder / f"counts{k}.npy"),
                                    spikes_path=str(folder / f"spikes{k}.npy") if record_spikes else None)
                lyr.out.connect(rec.a_in)
            dense = Dense(weights=w_r, weight_exp=exp_r, num_weight_bits=bits_r)
            last_out = network.out
            if len(shapes[-1]) == 3:  # WHC -> CHW flatten, as netx does before a dense layer
                last_out = last_out.transpose([2, 1, 0]).flatten()
            last_out.connect(dense.s_in)
            two = TwoReadout(num_classes=net.num_classes, two_weights=net.two_weights,
                             results_path=str(folder / "readout.npy"), offset=layout.SYNAPSE_DELAY)
            dense.a_out.connect(two.a_in)
            cfg = Loihi2SimCfg(select_tag="fixed_pt")
            _start_runtime(network, cfg, folder)
            clear: dict[int, list] = {}  # steps completed -> recurrent synapses to zero then
            for k, layer in enumerate(net.layers):
                if layer.recurrent_weight is not None:
                    for step in layout.recurrent_clear_steps(n, T, k):
                        clear.setdefault(step, []).append(network.layers[k].synapse_rec)
            piece = max(1, chunk_samples) * T
            stops = sorted(set(range(piece, total, piece)) | set(clear) | {total})
            ran = done = 0
            for stop in stops:
                network.run(condition=RunSteps(num_steps=stop - ran), run_cfg=cfg)
                ran = stop
                for synapse in clear.get(stop, ()):
                    synapse.a_buff.set(np.zeros(synapse.a_buff.shape, np.int32))
                finished = sum(1 for j in range(done, n) if layout.readout_done_step(j, T) <= stop - 1)
                if finished and progress is not None:
                    progress(finished)
                done += finished
        except RuntimeError as e:
            detail = _actor_errors(network) if network is not None else ""
            raise RuntimeError(f"Lava run failed: {detail or e}") from None
        finally:
            if network is not None:
                _stop(network)
        per_step = [np.load(folder / f"counts{k}.npy") for k in range(L)]
        readout = np.load(folder / "readout.npy")
        counts = np.zeros((n, L), np.int64)
        spikes = None
        if record_spikes:
            spikes = [np.zeros((n,) + s + (T,), np.uint8) for s in shapes]
        for k in range(L):
            raw = np.load(folder / f"spikes{k}.npy", mmap_mode="r") if record_spikes else None
            for j in range(n):
                lo, hi = layout.layer_window(j, k, T)
                counts[j, k] = per_step[k][lo:hi].sum()
                if raw is not None:
                    spikes[k][j] = layout.from_lava_layout(shapes[k], np.moveaxis(np.asarray(raw[lo:hi]), 0, -1))
            del raw
    return RunResult(backend="lava", windows=None if spikes is None else tuple(spikes), counts=counts,
                     readout=readout, readout_steps=None, simulated_steps=total, wall_s=time.perf_counter() - t0)


def _start_runtime(network, cfg, folder: Path) -> None:
    """Compile and start Lava's processes so that they end with this process (:class:`.lifecycle.ChildGuard`:
    they ignore Ctrl-C, so that only this process gets KeyboardInterrupt and stops them instead of each
    printing its own traceback; SIGTERM ends them; if this process dies, even by SIGKILL, they remove this
    run's shared memory and ``folder`` and exit). Ctrl-C and SIGTERM are blocked meanwhile, so that the
    threads Lava starts here never take them: they reach this process's main thread at once (one that
    arrives while Lava starts is delivered right after). Then records the run's segment names in ``folder``."""
    with lifecycle.signals_blocked(), lifecycle.ChildGuard(folder, lambda: _segment_names(network)):
        network.create_runtime(run_cfg=cfg)
    lifecycle.record_segments(folder, _segment_names(network))


def _actors(network) -> list:
    runtime = getattr(network, "_runtime", None)
    infrastructure = getattr(runtime, "_messaging_infrastructure", None)
    return list(getattr(infrastructure, "actors", []) or [])


def _segment_names(network) -> list[str]:
    """The shared-memory segments (``/dev/shm`` names) Lava created for this network's channels."""
    runtime = getattr(network, "_runtime", None)
    smm = getattr(getattr(runtime, "_messaging_infrastructure", None), "smm", None)
    return [h.name for h in list(getattr(smm, "_shared_memory_handles", None) or [])]


def _actor_errors(network) -> str:
    """The last line of the first traceback a Lava process reported (Lava only logs them at INFO)."""
    for actor in _actors(network):
        exc = getattr(actor, "exception", None)
        if exc:
            lines = [line for line in str(exc[1]).strip().splitlines() if line.strip()]
            if os.environ.get("SPIKESHIP_DEBUG"):
                print(exc[1])
            return lines[-1] if lines else str(exc)
    return ""


def _alive(actor) -> bool:
    try:
        return actor.is_alive()
    except ValueError:  # a process object Lava already closed
        return False


def _killed(pid: int) -> bool:
    """Whether child ``pid`` ended by a signal (a SIGTERM sent to the whole process group, as ``timeout``
    does; the OOM killer). Looks without reaping it (``WNOWAIT``), so that Lava's own ``join`` still can."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # already reaped: joined by Lava's stop()
        return False
    return info is not None and info.si_code in (os.CLD_KILLED, os.CLD_DUMPED)


def _stop(network, timeout_s: float = 30.0) -> None:
    """Stop the network and make sure none of Lava's processes outlives it.

    ``Runtime.stop()`` sends STOP to every process and waits for each answer; after a process died (an
    exception in a model, or a SIGTERM sent to the whole process group, as ``timeout`` does) it would wait
    forever (also from every process object's ``__del__``), and before the first ``run`` (interrupted while
    starting) it would wait on processes that never got a command. So: a normal ``stop()`` only on a started
    network whose processes all live (given up after a timeout, or as soon as one of them is killed by a
    signal meanwhile), then any survivor is terminated, the shared
    memory is released (also the segments of a manager process that died before it could unlink them),
    and the runtime is detached from the process objects."""
    runtime = getattr(network, "_runtime", None)
    try:
        if runtime is not None:
            segments = _segment_names(network)  # smm.shutdown() forgets them
            actors = _actors(network)
            if actors and getattr(runtime, "_is_started", False) and all(_alive(a) for a in actors):
                pids = [a.pid for a in actors]
                stopper = threading.Thread(target=network.stop, daemon=True)
                stopper.start()
                deadline = time.monotonic() + timeout_s
                while stopper.is_alive() and time.monotonic() < deadline and not any(map(_killed, pids)):
                    stopper.join(0.1)
            for actor in _actors(network):
                # mp.Process.join: Lava's SystemProcess.join() takes no timeout
                if _alive(actor):
                    actor.terminate()
                    mp.Process.join(actor, 5)
                if _alive(actor):
                    actor.kill()
                    mp.Process.join(actor, 5)
            infrastructure = getattr(runtime, "_messaging_infrastructure", None)
            smm = getattr(infrastructure, "smm", None)
            if smm is not None:
                try:
                    smm.shutdown()
                except Exception:  # noqa: BLE001 - already shut down by a clean stop()
                    pass
            lifecycle.remove_segments(segments)  # none left after a clean stop()
            runtime._is_started = False
            executable = getattr(runtime, "_executable", None)
            for proc in list(getattr(executable, "process_list", []) or []):
                proc._runtime = None
            network._runtime = None
    finally:
        try:
            network.net_config.f.close()  # netx keeps the .net file open while the network lives
        except Exception:  # noqa: BLE001 - closing a file that is already closed is fine
            pass


def _raise_terminated(signum, frame):  # noqa: ARG001 - a signal handler's signature
    """In a worker: SIGTERM (from the parent, or from its own watcher when the parent died) ->
    :class:`Terminated`, once (a second one must not cut the network's stop short)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


def _worker(index: int, parent_pid: int, net: Network, inputs: np.ndarray, kwargs: dict, out: "mp.Queue") -> None:
    signal.signal(signal.SIGTERM, _raise_terminated)  # so `finally` stops this worker's Lava network
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates us
    message = None
    try:
        # the parent killed outright: this worker stops as on SIGTERM (sent to its own main thread, which
        # is the one whose handler runs)
        main = threading.get_ident()
        lifecycle.watch_parent(parent_pid, lambda: signal.pthread_kill(main, signal.SIGTERM))
        result = run_lava(net, inputs, progress=lambda k: out.put(("progress", index, k)), **kwargs)
        message = ("result", index, result)
    except Terminated:
        out.cancel_join_thread()  # exit now, even if nobody reads what is still queued
        return
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises it
        message = ("error", index, f"{type(e).__name__}: {e}")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the network is stopped; nothing left to clean up
    out.put(message)


def run_lava_sharded(net: Network, inputs, *, workers: int = 1, record_spikes: bool = False,
                     chunk_samples: int = 32, progress: Callable[[int], None] | None = None) -> RunResult:
    """:func:`run_lava` over ``workers`` processes, each with its own network on a contiguous shard."""
    x = check_inputs(net, inputs)
    workers = max(1, min(int(workers), x.shape[0]))
    kwargs = dict(record_spikes=record_spikes, chunk_samples=chunk_samples)
    if workers == 1:
        return run_lava(net, x, progress=progress, **kwargs)
    t0 = time.perf_counter()
    bounds = np.linspace(0, x.shape[0], workers + 1).astype(int)
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(i, os.getpid(), net, x[bounds[i]:bounds[i + 1]], kwargs, out),
                         daemon=False) for i in range(workers)]
    results: dict[int, RunResult] = {}
    try:
        for p in procs:
            p.start()
        while len(results) < workers:
            try:
                kind, index, payload = out.get(timeout=1.0)
            except queue_mod.Empty:
                dead = [i for i, p in enumerate(procs) if not p.is_alive() and i not in results]
                if dead and out.empty():
                    raise SpikeshipError(f"Lava worker {dead[0]} exited without a result "
                                         f"(exit code {procs[dead[0]].exitcode})")
                continue
            if kind == "progress":
                if progress is not None:
                    progress(payload)
            elif kind == "result":
                results[index] = payload
            else:
                raise SpikeshipError(f"Lava worker {index} failed: {payload}")
    finally:
        if len(results) < workers:  # error or Ctrl-C: SIGTERM makes each worker stop its network
            for p in procs:
                if p.pid is not None and p.is_alive():
                    p.terminate()
        for p in procs:
            if p.pid is None:
                continue
            p.join(timeout=60)
            if p.is_alive():
                p.terminate()
                p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join()
        out.close()
    return dataclasses.replace(RunResult.concat([results[i] for i in range(workers)]),
                               wall_s=time.perf_counter() - t0)  # forks and joins included


def run(net: Network, x: np.ndarray, options: RunOptions) -> RunResult:
    """The ``lava`` backend (see :mod:`spikeship.backends`)."""
    if options.device != "cpu":
        raise SpikeshipError(f"Lava's simulator runs on the CPU; --device {options.device} is for the emulator")
    return run_lava_sharded(net, x, workers=options.workers, record_spikes=options.record_spikes,
                            chunk_samples=options.chunk_samples, progress=options.progress)
