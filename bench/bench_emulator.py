"""Emulator engines against Lava and against the machine's arithmetic limit (prints figures; not a test).

    .venv/bin/python bench/bench_emulator.py [--nets dense,conv,dvs128] [--rounds 3] [--lava-samples 16,8,1]

For each network it prints samples/s of every engine of the emulator (``numba``: the engine before this
one, event-driven at every step, one thread; ``cpu`` with one thread and with all threads; ``cpu-scatter``
and ``cpu-product``, the two methods ``cpu`` chooses between, forced; ``torch`` on the CPU with one thread:
with more, its OpenMP threads spin-wait for each other, which on a shared machine costs 10-100x), after checking
that every engine gave the same spike counts and TWO accumulators; Lava's samples/s on the first samples,
after checking that every spike and accumulator is identical to the emulator's; and the arithmetic limit:
the network's multiply-accumulates per sample over T + L steps (dense-equivalent: every synapse of every
step, as a GEMM-based engine would compute them) divided by the throughput of a large square float32 GEMM on
all cores (torch, measured in the same run, last: Lava forks after the emulator, never after torch's pool).

Networks: ``dense`` 2312-128-64-10 and ``conv`` 8c3-pool2-16c3p1-pool2-64-10 on real event-digits test
frames (2x34x34, T = 16; seeded random weights scaled as in bench_lava.py), and ``dvs128``: 16c3p1-pool2-
32c3p1-pool2-64c3p1-pool2-256-11 on 2x128x128 (DVS Gesture's sensor), T = 16, with random binary inputs at
``--input-rate`` and random weights (normal, mean 0.2, sd 1; pooling: ones) scaled layer by layer (bisection,
on two samples, each layer fed what the ones before it fire) until each layer fires at the rate
given by ``--rates`` (default: what the trained event-digits conv network fires, see docs/BENCHMARKS.md);
``--net FILE`` adds an exported network on event-digits (e.g. a trained one). Then the per-step choice: the conv network on sparse and on dense random inputs with ``cpu`` and its two
forced methods, and which method ``cpu`` chose for how many steps of each layer.

Wall-clock figures are the best of ``--rounds`` rounds, the engines taking turns in each round; beside them
the CPU time per sample (all threads), which other processes on a shared machine do not inflate. Ratios
within a run are the robust figures; the load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))  # the tests' seeded nets

ENGINES = (("numba", 1), ("cpu", 1), ("cpu", None), ("cpu-scatter", None), ("cpu-product", None), ("torch", 1))
DVS_LAYERS = (("conv", 16, 3, 1), ("pool", 2), ("conv", 32, 3, 1), ("pool", 2), ("conv", 64, 3, 1), ("pool", 2),
              ("dense", 256))
#: per-layer firing rates of the trained event-digits conv network (docs/BENCHMARKS.md: `spikeship train --arch
#: conv`, 92.2% test accuracy; conv 3.8% and 4.6%, pool 14.2% and 13.7%, dense 33.7% of the neurons per step)
DEFAULT_RATES = "conv=0.04,pool=0.14,dense=0.34"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", default="dense,conv,dvs128")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lava-samples", default="16,8,1", help="samples Lava runs, per network in --nets order "
                                                             "(0: no Lava)")
    ap.add_argument("--dvs-samples", type=int, default=16, help="samples of the dvs128 network")
    ap.add_argument("--input-rate", type=float, default=0.05, help="dvs128 input: fraction of pixels spiking")
    ap.add_argument("--rates", default=DEFAULT_RATES, help="dvs128 target firing rate per layer kind")
    ap.add_argument("--net", default=None, help="also an exported .net file, on event-digits test frames")
    ap.add_argument("--no-choice", action="store_true", help="skip the sparse/dense per-step choice section")
    args = ap.parse_args()

    from spikeship.sim.emulator import available_threads

    threads = available_threads()
    print(f"threads: {threads} (cores this process may use, at most OMP_NUM_THREADS); torch {torch.__version__}; "
          f"load average {os.getloadavg()[0]:.1f}")
    names = args.nets.split(",") + (["file"] if args.net else [])
    lava_samples = [int(v) for v in args.lava_samples.split(",")] + [0] * len(names)
    rows = []
    for name, n_lava in zip(names, lava_samples):
        net, x, note = build(name, args)
        print(f"\n== {name}: {note}")
        rows.append((name, net, bench_network(net, x, n_lava, args.rounds)))
    if not args.no_choice and "conv" in names:
        bench_choice(args.rounds)
    gflops, per_core = gemm_gflops(threads)
    print(f"\nlarge square float32 GEMM (torch, 2048^2): {gflops:.0f} GFLOP/s on {threads} threads (wall), "
          f"{per_core:.0f} GFLOP/s per CPU-second on one thread; load average {os.getloadavg()[0]:.1f}")
    print("\nsummary: MACs per sample over T + L steps; the arithmetic limit (GEMM FLOP/s / 2 MACs) in samples/s on "
          "all threads (wall) and per CPU-second; each engine: samples/s, x numba, and how far below the limit "
          "(wall; CPU time)")
    for name, net, (result, cpu) in rows:
        macs = macs_per_sample(net)
        limit, limit_cpu = gflops * 1e9 / (2 * macs), per_core * 1e9 / (2 * macs)
        cells = "; ".join(f"{k} {v:,.1f} ({v / result['numba']:.1f}x, {limit / v:.1f}x; {limit_cpu * cpu[k]:.1f}x)"
                          for k, v in result.items() if k != "lava")
        lava = f"; lava {result['lava']:.2f}" if "lava" in result else ""
        print(f"  {name}: {macs / 1e6:.1f} M MACs; limit {limit:,.0f} samples/s ({limit_cpu:,.0f} per CPU-second); "
              f"{cells}{lava}")


# ------------------------------------------------------------------------------------------------ networks


def build(name: str, args):
    """``(net, inputs, description)``."""
    import nets as testnets

    from spikeship.export.netx import read_net
    from spikeship.train.data import load_samples

    T = 16
    if name == "file":
        net = read_net(args.net)
        x = load_samples("event-digits", None, "test", net.time_steps, None).inputs
        return net, x, f"{args.net} on the event-digits test split, {len(x)} samples, T = {net.time_steps}"
    if name in ("dense", "conv"):
        x = load_samples("event-digits", None, "test", T, None).inputs
        layers = ((("dense", 128), ("dense", 64)) if name == "dense"
                  else (("conv", 8, 3, 0), ("pool", 2), ("conv", 16, 3, 1), ("pool", 2), ("dense", 64)))
        model = testnets.random_model(tuple(x.shape[1:4]), 10, layers, seed=0, weight_scale=3.0)
        folder = tempfile.mkdtemp()
        net = read_net(testnets.write_net(model, testnets.random_two_weights(T, len(layers), seed=1),
                                          Path(folder) / f"{name}.net"))
        return net, x, f"event-digits test split, {len(x)} samples, input {tuple(x.shape[1:4])}, T = {T}"
    if name == "dvs128":
        rates = {k: float(v) for k, v in (item.split("=") for item in args.rates.split(","))}
        net, x, measured = dvs_network(args.dvs_samples, args.input_rate, rates, T)
        return net, x, (f"{len(x)} random samples 2x128x128 at {args.input_rate:.0%} input spikes, T = {T}; "
                        f"firing rate per layer {', '.join(f'{r:.2f}' for r in measured)} "
                        f"(targets {args.rates})")
    raise SystemExit(f"unknown network {name!r}")


def _scaled(layer, base: np.ndarray, factor: float):
    """``layer`` with the even 8-bit integer weights nearest ``base * factor``."""
    w = np.clip(2 * np.round(base * factor / 2), -256, 254).astype(np.int64)
    return dataclasses.replace(layer, weight=w)


def _alone(net, layer, input_shape):
    """``layer`` as a network of its own (a zero readout), fed ``input_shape``: to measure its firing rate."""
    readout = dataclasses.replace(net.readout, input_shape=(layer.num_neurons,),
                                  weight=np.zeros((net.num_classes, layer.num_neurons), np.int64))
    return dataclasses.replace(net, input_shape=input_shape, layers=(layer,), readout=readout)


def dvs_network(samples: int, input_rate: float, rates: dict, T: int):
    """The 128x128 network: standard normal weights (pooling: ones), each layer's scaled by bisection until it
    fires at its target rate on two of the samples, fed what the layers before it fire."""
    import nets as testnets

    from spikeship.export.quantize import quantize_model
    from spikeship.sim.emulator import emulate

    model = testnets.random_model((2, 128, 128), 11, DVS_LAYERS, seed=0, weight_scale=1.0)
    net = quantize_model(model, testnets.random_two_weights(T, len(DVS_LAYERS), seed=1))
    x = (np.random.default_rng(3).random((samples, 2, 128, 128, T)) < input_rate).astype(np.uint8)
    src = x[:2]  # what feeds the layer being scaled: the input, then the window of the layer before
    rng = np.random.default_rng(4)
    layers, measured = [], []
    for layer in net.layers:
        # a little excitation on average, so that the denser targets are reachable before the weights saturate
        base = np.ones(layer.weight.shape) if layer.kind == "pool" else rng.normal(0.2, 1.0, layer.weight.shape)
        alone = lambda factor: _alone(net, _scaled(layer, base, factor), tuple(src.shape[1:-1]))  # noqa: E731

        def rate(factor: float) -> float:
            return float(emulate(alone(factor), src, record_spikes=False).counts.mean()) / (layer.num_neurons * T)

        target, lo, hi = rates[layer.kind], 0.0, 1.0
        while rate(hi) < target and hi < 1e4:
            lo, hi = hi, hi * 4
        for _ in range(10):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if rate(mid) < target else (lo, mid)
        measured.append(rate(hi))
        layers.append(_scaled(layer, base, hi))
        src = emulate(alone(hi), src).windows[0]
    return dataclasses.replace(net, layers=tuple(layers)), x, measured


def macs_per_sample(net) -> int:
    """Dense-equivalent multiply-accumulates of one sample over T + L steps (every layer every step)."""
    from spikeship.energy import ann_macs

    per_step = sum(ann_macs(layer) for layer in net.layers) + ann_macs(net.readout)
    return per_step * (net.time_steps + net.num_layers)


# ------------------------------------------------------------------------------------------------ measuring


def _timed(f):
    """``(wall seconds, CPU seconds of the process, all threads, result)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = f()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def bench_network(net, x, n_lava: int, rounds: int) -> tuple[dict, dict]:
    from spikeship.sim.emulator import emulate
    from spikeship.sim.engines import torch_single_threaded

    n = len(x)
    best: dict[str, float] = {}
    cpu: dict[str, float] = {}
    reference = None
    for _ in range(rounds):
        for engine, threads in ENGINES:
            key = f"{engine}/{threads or 'all'}"
            with torch_single_threaded() if engine == "torch" else contextlib.nullcontext():  # torch: one thread
                wall, used, res = _timed(lambda: emulate(net, x, record_spikes=False, engine=engine, threads=threads))
            if reference is None:
                reference = res
            assert np.array_equal(res.counts, reference.counts) and np.array_equal(res.readout, reference.readout), key
            best[key] = min(best.get(key, float("inf")), wall)
            cpu[key] = min(cpu.get(key, float("inf")), used)
    result = {("numba" if k == "numba/1" else k): n / v for k, v in best.items()}
    per_sample = {("numba" if k == "numba/1" else k): v / n for k, v in cpu.items()}
    print(f"emulator, {n} samples, spikes counted (not recorded), best of {rounds} (every engine: the same counts "
          f"and TWO accumulators):")
    for (k, v), key in zip(result.items(), best):
        print(f"  {k:<18} {v:10,.1f} samples/s   {v / result['numba']:6.1f}x numba   "
              f"CPU {1e3 * cpu[key] / n:8.2f} ms per sample ({cpu['numba/1'] / cpu[key]:5.1f}x less than numba)")
    if n_lava:
        from spikeship.deploy.lava_run import run_lava

        xl = x[:n_lava]
        lava = run_lava(net, xl, record_spikes=True)
        emu = emulate(net, xl)
        for k in range(net.num_layers):
            assert np.array_equal(lava.windows[k], emu.windows[k]), f"layer {k}"
        assert np.array_equal(lava.readout, emu.readout)
        result["lava"] = n_lava / lava.wall_s
        print(f"  lava (streaming, compile included, {n_lava} samples; every spike and accumulator equal to the "
              f"emulator's): {result['lava']:.2f} samples/s -> cpu/all is "
              f"{result['cpu/all'] / result['lava']:,.0f}x Lava")
    return result, per_sample


def bench_choice(rounds: int) -> None:
    """The conv network on sparse (1%) and dense (30%) random input: cpu against its two forced methods, and
    the methods cpu chose per layer."""
    from spikeship.sim import engines
    from spikeship.sim.emulator import emulate

    net, x, _ = build("conv", None)
    rng = np.random.default_rng(5)
    print("\n== per-step choice: conv network, 359 random samples")
    for label, rate in (("sparse", 0.01), ("dense", 0.30)):
        xs = (rng.random(x.shape) < rate).astype(np.uint8)
        best: dict[str, float] = {}
        for _ in range(rounds):
            for engine in ("cpu", "cpu-scatter", "cpu-product"):
                wall, used, _res = _timed(lambda: emulate(net, xs, record_spikes=False, engine=engine))
                best[engine] = min(best.get(engine, float("inf")), wall)
                best[engine + " (CPU s)"] = min(best.get(engine + " (CPU s)", float("inf")), used)
        engine = engines.CpuEngine(net)
        src = engine.feed(xs[:8])
        chosen = []
        for k in range(net.num_layers):
            b = src[0].shape[1]
            plan = engine._plan(engine.synapses[k], src[1], b)
            chosen.append(f"{net.layers[k].kind} {int(plan.sum())}/{len(plan)}")
            src, _ = engine.layer(k, src)
        print(f"  {label} input ({rate:.0%}): samples/s " + ", ".join(f"{k} {len(xs) / v:,.0f}" for k, v in best.items()
                                                                     if "CPU" not in k)
              + "; samples per CPU-second " + ", ".join(f"{k.split()[0]} {len(xs) / v:,.0f}" for k, v in best.items()
                                                        if "CPU" in k)
              + f"; steps multiplied (of 16) per layer: {', '.join(chosen)}")


def gemm_gflops(threads: int) -> tuple[float, float]:
    """GFLOP/s of a 2048^2 float32 GEMM: on ``threads`` threads (wall), and per CPU-second on one thread."""
    a, b = torch.rand(2048, 2048), torch.rand(2048, 2048)
    flop = 2 * 2048 ** 3
    figures = []
    for n, clock in ((threads, time.perf_counter), (1, time.thread_time)):
        torch.set_num_threads(n)
        a @ b
        best = float("inf")
        for _ in range(10):
            start = clock()
            a @ b
            best = min(best, clock() - start)
        figures.append(flop / best / 1e9)
    return figures[0], figures[1]


if __name__ == "__main__":
    main()
