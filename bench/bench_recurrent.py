"""Throughput of the recurrent (speech) network: training, the emulator and Lava (prints figures; not a test).

    .venv/bin/python bench/bench_recurrent.py [--time-steps 100] [--batch-size 32] [--lava-samples 16]

The network is ``--arch speech`` (700 -> recurrent 128 -> readout 20, SHD's shape) next to the same network
with a dense layer instead (``--arch dense``'s 128 neurons), so each figure has its feed-forward reference
measured in the same run. Input: Bernoulli spikes at ``--density`` (SHD binned to T = 100 is a few percent; no
SHD is on this machine); seeded random weights scaled so that the hidden layer spikes at a moderate rate
(printed), since the event-driven emulator's cost follows the spikes.

1. Training: one step = forward, cross-entropy on the mean readout, backward, AdamW step, MSG (p = 0.5);
   the two networks' steps interleaved (ABAB...), median per step.
2. Emulator (numba, cpu and torch engines, CPU) over ``--emulator-samples`` samples.
3. Lava (streaming, one compiled network) over ``--lava-samples`` samples, checked equal to the emulator on
   every spike and readout integer; for the recurrent network also with the per-sample clearing of the
   recurrent buffer turned off (wrong spikes, but it times what the clearing's pauses cost), the two settings
   interleaved, ``--lava-repeats`` runs each, median.

torch runs with one thread so the figures are per core. Lava times include building, compiling, stopping.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))  # the tests' seeded nets

CHANNELS, CLASSES, HIDDEN = 700, 20, 128


def _model(kind: str, T: int, scale: float):
    import nets as testnets

    from spikeship.train.model import LayerSpec, ModelSpec, NeuronSpec, SpikeNet
    from spikeship.train.msg import SurrogateConfig

    spec = ModelSpec((CHANNELS, 1, 1), CLASSES, (LayerSpec(kind, HIDDEN),), NeuronSpec(), weight_scale=scale)
    torch.manual_seed(0)
    model = SpikeNet(spec, SurrogateConfig("piecewise", 2.0, 0.5))
    return model, testnets.random_two_weights(T, 1, seed=1)


def _train_steps(models: dict, x: torch.Tensor, y: torch.Tensor, steps: int) -> dict:
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-3) for k, m in models.items()}
    times = {k: [] for k in models}
    for i in range(steps + 1):
        for k, m in models.items():
            t0 = time.perf_counter()
            readout, _ = m(x)
            loss = torch.nn.functional.cross_entropy(readout.mean(-1), y)
            opts[k].zero_grad()
            loss.backward()
            opts[k].step()
            if i:  # the first step of each warms up
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--time-steps", type=int, default=100)
    ap.add_argument("--density", type=float, default=0.03)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--train-steps", type=int, default=5)
    ap.add_argument("--emulator-samples", type=int, default=256)
    ap.add_argument("--lava-samples", type=int, default=16)
    ap.add_argument("--lava-repeats", type=int, default=2, help="Lava runs per setting (interleaved; median)")
    ap.add_argument("--weight-scale", type=float, default=2.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    T = args.time_steps
    rng = np.random.default_rng(0)
    n = max(args.emulator_samples, args.lava_samples, args.batch_size)
    x = (rng.random((n, CHANNELS, 1, 1, T)) < args.density).astype(np.uint8)
    models = {kind: _model(kind, T, args.weight_scale) for kind in ("recurrent", "dense")}
    print(f"700 -> {{recurrent|dense}} {HIDDEN} -> readout {CLASSES}, T = {T}, input density {args.density}, "
          f"torch threads 1")

    xb = torch.from_numpy(x[:args.batch_size]).float()
    yb = torch.from_numpy(rng.integers(0, CLASSES, args.batch_size))
    step = _train_steps({k: m for k, (m, _) in models.items()}, xb, yb, args.train_steps)
    print(f"\ntraining, batch {args.batch_size}, MSG p = 0.5 (median of {args.train_steps} interleaved steps):")
    for kind, s in step.items():
        print(f"  {kind:9s} {s * 1000:8.1f} ms/step  {args.batch_size / s:8.1f} samples/s")
    print(f"  recurrent / dense time per step: {step['recurrent'] / step['dense']:.2f}")

    for kind, (model, two) in models.items():
        _inference(kind, model.eval(), two, x, args)


def _inference(kind: str, model, two, x: np.ndarray, args) -> None:
    import nets as testnets

    from spikeship.deploy.lava_run import run_lava
    from spikeship.export.netx import read_net
    from spikeship.sim import layout
    from spikeship.sim.emulator import emulate

    with tempfile.TemporaryDirectory() as folder:
        net = read_net(testnets.write_net(model, two, Path(folder) / f"{kind}.net"))
    T = net.time_steps
    print(f"\n{kind} network: inference")
    xe = x[:args.emulator_samples]
    for engine in ("numba", "cpu", "torch"):
        emulate(net, xe[:4], engine=engine)  # compile / warm up
        t0 = time.perf_counter()
        emu = emulate(net, xe, engine=engine)
        s = time.perf_counter() - t0
        print(f"  emulator {engine:5s} {len(xe)} samples: {s:6.2f} s  {len(xe) / s:8.1f} samples/s")
    rate = emu.counts[:, 0].mean() / (HIDDEN * T)
    print(f"  hidden spike rate {rate:.3f} per neuron and step")
    xl = x[:args.lava_samples]
    ref = emulate(net, xl)
    run_lava(net, xl[:1])  # warm up: Lava's first network in a process pays one-time costs
    recurrent = net.layers[0].recurrent_weight is not None
    timings: dict = {True: [], False: []}
    for _ in range(args.lava_repeats):
        for clear in (True, False) if recurrent else (True,):
            t0 = time.perf_counter()
            if clear:
                lava = run_lava(net, xl, record_spikes=True)
            else:
                lava_off = _without_clearing(run_lava, net, xl)
            timings[clear].append(time.perf_counter() - t0)
    assert np.array_equal(lava.windows[0], ref.windows[0]) and np.array_equal(lava.readout, ref.readout)
    s = statistics.median(timings[True])
    print(f"  lava {len(xl)} samples: {s:6.2f} s  {len(xl) / s:6.2f} samples/s  "
          f"{layout.lava_steps(len(xl), T, 1) / s:6.1f} steps/s  (every spike = emulator; median of "
          f"{len(timings[True])} runs)")
    if recurrent:
        s_off = statistics.median(timings[False])
        same = np.array_equal(lava_off.windows[0], ref.windows[0])
        print(f"  lava without clearing the recurrent buffer: {s_off:6.2f} s, so the {len(xl) - 1} pauses cost "
              f"{(s - s_off) / max(len(xl) - 1, 1) * 1000:+.1f} ms each; spikes equal the emulator: {same}")


def _without_clearing(run_lava, net, x):
    """Lava with the recurrent buffer left as netx leaves it (the time of the run without the pauses)."""
    from spikeship.sim import layout

    original = layout.recurrent_clear_steps
    layout.recurrent_clear_steps = lambda *a: []
    try:
        return run_lava(net, x, record_spikes=True)
    finally:
        layout.recurrent_clear_steps = original

if __name__ == "__main__":
    main()
