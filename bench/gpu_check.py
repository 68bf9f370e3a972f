"""The GPU engine against CPU results carried over as files (for a machine with a GPU and without Lava).

    .venv/bin/python bench/gpu_check.py prepare OUT          # here: networks, inputs, CPU results -> OUT/
    python bench/gpu_check.py check OUT [--device cuda]      # there: run them on the GPU, compare, time

``prepare`` builds the tests' dense, conv, recurrent, dense-recurrent-dense and conv-recurrent networks, a conv
network with padding and pooling, the
current-range edge cases of tests/spikeship/test_24bit_state.py, the benchmark's conv network and its 128x128
network, runs each with the ``cpu`` engine, and pickles per case the :class:`~spikeship.network.Network`, the
inputs and the results (gzip): spike counts, TWO readout inputs and accumulators, and a SHA-256 of every layer's
spike windows (so the files stay small). ``check`` needs only numpy, torch and spikeship (no Lava, no numba,
no slayer): it runs every case with ``engine="torch"`` on ``--device``, compares every integer, prints
samples/s (best of three, after a warm-up) and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def window_digests(result) -> list[str]:
    return [hashlib.sha256(np.ascontiguousarray(w).tobytes()).hexdigest() for w in result.windows]


def _cases(folder: Path) -> dict:
    """name -> (net, inputs); built with slayer and the exporter (the CPU side only)."""
    import nets as testnets

    from spikeship.export.netx import read_net
    from spikeship.export.quantize import quantize_model

    cases = {}
    for name in ("dense", "conv", "recurrent", "mixed", "conv_recurrent"):
        path, _, inputs, _, _ = testnets.make_case(name, folder, samples=40)
        cases[name] = (read_net(path), inputs)
    strided = (("conv", 6, 3, 1), ("pool", 2), ("conv", 8, 3, 0), ("dense", 24))
    model = testnets.random_model((2, 12, 12), 5, strided, seed=3)
    cases["conv-pool"] = (quantize_model(model, testnets.random_two_weights(8, 4, seed=4)),
                          testnets.random_spikes(40, (2, 12, 12), 8, seed=5))
    from test_24bit_state import CASES, _inputs, single_layer_net

    for case, (weights, i_decay, v_decay, vth, steps) in CASES.items():
        net = single_layer_net(weights.astype(np.int64), i_decay, v_decay, vth)
        cases["24-bit " + case] = (quantize_model(net, np.r_[0, np.full(steps - 1, 64)]),
                                   _inputs(weights.shape[1], steps))
    import bench_emulator

    class Args:
        rates, input_rate, dvs_samples, net = bench_emulator.DEFAULT_RATES, 0.05, 32, None

    cases["bench conv"] = bench_emulator.build("conv", Args)[:2]
    cases["bench dvs128"] = bench_emulator.build("dvs128", Args)[:2]
    return cases


def prepare(out: Path) -> None:
    from spikeship.sim.emulator import emulate

    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "spikeship"))
    for name, (net, inputs) in _cases(out).items():
        res = emulate(net, inputs)
        record = dict(name=name, net=net, inputs=np.asarray(inputs, np.uint8), counts=res.counts,
                      readout=res.readout, readout_steps=res.readout_steps, windows=window_digests(res),
                      cpu_samples_per_s=len(inputs) / res.wall_s)
        path = out / (name.replace(" ", "_") + ".pkl.gz")
        with gzip.open(path, "wb") as f:
            pickle.dump(record, f, protocol=4)
        print(f"{name}: {len(inputs)} samples, {net.num_layers} layers -> {path} "
              f"({path.stat().st_size / 1e6:.1f} MB; cpu engine {record['cpu_samples_per_s']:,.0f} samples/s here)")


def check(folder: Path, device: str) -> int:
    from spikeship.sim.emulator import emulate

    failures = 0
    for path in sorted(folder.glob("*.pkl.gz")):
        with gzip.open(path, "rb") as f:
            ref = pickle.load(f)
        net, x = ref["net"], ref["inputs"]
        res = emulate(net, x, device=device, engine="torch")  # warm-up and the compared run
        same = (np.array_equal(res.counts, ref["counts"]) and np.array_equal(res.readout, ref["readout"])
                and np.array_equal(res.readout_steps, ref["readout_steps"]) and window_digests(res) == ref["windows"])
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            emulate(net, x, device=device, engine="torch", record_spikes=False)
            best = min(best, time.perf_counter() - start)
        failures += not same
        print(f"{ref['name']}: {'identical' if same else 'DIFFERENT'} ({len(x)} samples, every spike window, "
              f"count and TWO accumulator); {len(x) / best:,.1f} samples/s on {device} "
              f"(cpu engine where prepared: {ref['cpu_samples_per_s']:,.0f})")
    print("all identical" if not failures else f"{failures} case(s) differ")
    return 1 if failures else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare").add_argument("out", type=Path)
    c = sub.add_parser("check")
    c.add_argument("folder", type=Path)
    c.add_argument("--device", default="cuda")
    args = ap.parse_args()
    if args.command == "prepare":
        prepare(args.out)
        return 0
    return check(args.folder, args.device)


if __name__ == "__main__":
    sys.exit(main())
