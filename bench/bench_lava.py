"""Lava and emulator throughput on event-digits samples (prints figures; not a test).

    .venv/bin/python bench/bench_lava.py [--arch dense|conv] [--samples 32] [--per-sample 6] [--time-steps 16]

1. Lava streaming (one compiled network, samples back to back) vs one build/compile/stop per sample.
2. Emulator vs Lava on the same samples, after checking that every spike and readout integer is identical;
   plus the emulator over the whole test split (its batched throughput).
3. ``--workers 1`` vs ``2`` for Lava.

The network has seeded random weights (throughput does not depend on training); the data are real
event-digits test frames. The emulator runs its default engine (`cpu`, all threads; bench/bench_emulator.py
compares the engines and the arithmetic limit). Lava times
include building, compiling and stopping the network.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))  # the tests' seeded nets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=("dense", "conv"), default="dense")
    ap.add_argument("--samples", type=int, default=128, help="samples for the Lava runs")
    ap.add_argument("--per-sample", type=int, default=6, help="samples for the compile-per-sample loop")
    ap.add_argument("--time-steps", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(1)

    import nets as testnets

    from spikeship.export.netx import read_net
    from spikeship.train.data import load_samples

    T = args.time_steps
    x_all = load_samples("event-digits", None, "test", T, None).inputs
    shape = tuple(x_all.shape[1:4])
    layers = ((("dense", 128), ("dense", 64)) if args.arch == "dense"
              else (("conv", 8, 3, 0), ("pool", 2), ("conv", 16, 3, 1), ("pool", 2), ("dense", 64)))
    model = testnets.random_model(shape, 10, layers, seed=0, weight_scale=3.0)
    with tempfile.TemporaryDirectory() as folder:
        path = testnets.write_net(model, testnets.random_two_weights(T, len(layers), seed=1),
                                  Path(folder) / "bench.net")
        net = read_net(path)
        _bench(net, x_all, args, T)


def _bench(net, x_all, args, T) -> None:
    from spikeship.deploy.lava_run import run_lava, run_lava_sharded
    from spikeship.sim import layout
    from spikeship.sim.emulator import emulate

    shape = tuple(x_all.shape[1:4])
    x = x_all[: args.samples]
    n, L = len(x), net.num_layers
    print(f"network {args.arch}: input {shape}, layers {net.layer_shapes}, T = {T}; {n} event-digits test samples")

    # 1. streaming vs compile per sample
    lava = run_lava(net, x, record_spikes=True)
    print(f"lava streaming: {lava.wall_s:.2f} s for {n} samples ({lava.simulated_steps} steps, compile included): "
          f"{lava.simulated_steps / lava.wall_s:.0f} steps/s, {n / lava.wall_s:.2f} samples/s")
    m = min(args.per_sample, n)
    start = time.perf_counter()
    for j in range(m):
        one = run_lava(net, x[j:j + 1])
        assert np.array_equal(one.readout[0], lava.readout[j])
    per = (time.perf_counter() - start) / m
    steps_one = layout.lava_steps(1, T, L)
    print(f"lava one compile per sample: {per:.2f} s per sample ({steps_one} steps): {steps_one / per:.0f} steps/s, "
          f"{1 / per:.2f} samples/s  -> streaming is {per / (lava.wall_s / n):.1f}x faster per sample")

    # 2. emulator vs Lava on the same samples, identical spikes first
    emu_wall = float("inf")
    for _ in range(3):  # best of three (the first call also warms up torch)
        start = time.perf_counter()
        emu = emulate(net, x)
        emu_wall = min(emu_wall, time.perf_counter() - start)
    for k in range(L):
        assert np.array_equal(lava.windows[k], emu.windows[k]), f"layer {k}"
    assert np.array_equal(lava.readout, emu.readout)
    print(f"identical: every spike of {L} layers x {n} samples x {T} steps, and every TWO accumulator")
    print(f"emulator (same {n} samples, spikes recorded, best of 3): {emu_wall:.3f} s, {n / emu_wall:.0f} samples/s "
          f"-> {lava.wall_s / emu_wall:.0f}x Lava")
    full_wall = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        full = emulate(net, x_all, record_spikes=False)
        full_wall = min(full_wall, time.perf_counter() - start)
    print(f"emulator (whole test split, {len(x_all)} samples, counts only): {full_wall:.2f} s, "
          f"{len(x_all) / full_wall:.0f} samples/s -> {(len(x_all) / full_wall) / (n / lava.wall_s):.0f}x Lava")
    assert np.array_equal(full.readout[:n], emu.readout)

    # 3. workers
    for workers in (1, 2):
        start = time.perf_counter()
        res = run_lava_sharded(net, x, workers=workers)
        wall = time.perf_counter() - start
        assert np.array_equal(res.readout, lava.readout)
        print(f"lava --workers {workers}: {wall:.2f} s, {n / wall:.2f} samples/s, {n * T / wall:.0f} sample-steps/s")


if __name__ == "__main__":
    main()
