"""Why MSG / TWO help or not: gradient sparsity and agreement, per-step accuracies (reads ablation runs).

    .venv/bin/python bench/msg_diagnostics.py --runs runs/ablation/dense --data-cache runs/ablation/ed16.pt

1. Gradients at fixed weights (the SG model of seed 0, one batch of test samples): for p = 0 (SG) and
   p = --mask-prob (MSG, --draws fresh masks), per spiking layer the fraction of non-zero entries of
   dL/dV (neurons x steps x samples) and of dL/dW, and for MSG the cosine similarity and norm ratio of its
   weight gradient to SG's.
2. Per-step test accuracy (argmax o_t == label) and the learned TWO weights, mean over seeds, per setting.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from ablation import SETTINGS, load_frames  # noqa: E402


def gradients(model, x, y, surrogate: str, alpha: float, mask_prob: float, seed: int):
    """dL/dW per weight tensor and dL/dV per spiking layer for one batch with the given mask probability."""
    from spikeship.train.msg import SurrogateConfig

    model.set_surrogate(SurrogateConfig(surrogate, alpha, mask_prob))
    model.train()
    voltage_grads = []
    handles = []
    for block in model.blocks:
        original = block.neuron.spike

        def spike(v, original=original):
            v.register_hook(lambda g: voltage_grads.append(g.detach().clone()))
            return original(v)

        block.neuron.spike = spike
        handles.append((block.neuron, original))
    torch.manual_seed(seed)
    model.zero_grad(set_to_none=True)
    readout, _ = model(x)
    F.cross_entropy(readout.mean(-1), y).backward()
    for neuron, original in handles:
        neuron.spike = original
    weights = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return weights, voltage_grads[::-1]  # hooks fire last layer first


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", required=True, help="ablation output folder of one network (OUT/dense)")
    p.add_argument("--data-cache", required=True)
    p.add_argument("--time-steps", type=int, default=16)
    p.add_argument("--mask-prob", type=float, default=0.5)
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--batch", type=int, default=128)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from spikeship.train.checkpoint import load_checkpoint

    runs = Path(args.runs)
    _, test = load_frames("event-digits", args.time_steps, Path(args.data_cache))
    x, y = test.spikes[: args.batch].float(), test.labels[: args.batch]
    ck = load_checkpoint(runs / "SG" / "seed0" / "model.pt")
    model = ck.build_model()
    kind, alpha = ck.config["surrogate"], ck.config["alpha"]
    sg_w, sg_v = gradients(model, x, y, kind, alpha, 0.0, 0)
    print(f"1. gradients at the trained SG weights (seed 0, {kind} surrogate), {args.batch} test samples")
    print("| gradient | SG non-zero | MSG non-zero | MSG/SG cosine | MSG/SG norm |")
    print("|---|---|---|---|---|")
    msg = [gradients(model, x, y, kind, alpha, args.mask_prob, d + 1) for d in range(args.draws)]
    for i, g in enumerate(sg_v):
        nz = [float((m[1][i] != 0).double().mean()) for m in msg]
        print(f"| dL/dV layer {i} | {float((g != 0).double().mean()):.3f} | {statistics.fmean(nz):.3f} | | |")
    for name, g in sg_w.items():
        cos = [float(F.cosine_similarity(g.flatten(), m[0][name].flatten(), dim=0)) for m in msg]
        ratio = [float(m[0][name].norm() / g.norm()) for m in msg]
        nz = [float((m[0][name] != 0).double().mean()) for m in msg]
        print(f"| dL/d{name} | {float((g != 0).double().mean()):.3f} | {statistics.fmean(nz):.3f} | "
              f"{statistics.fmean(cos):.3f} | {statistics.fmean(ratio):.3f} |")

    print("\n2. per-step test accuracy % (mean over seeds) and TWO weights a_t")
    rows = {}
    for name in SETTINGS:
        files = sorted((runs / name.replace("+", "_")).glob("seed*/metrics.json"))
        if not files:
            continue
        ms = [json.loads(f.read_text()) for f in files]
        steps = len(ms[0]["test_step_accuracy"])
        rows[name] = ([statistics.fmean(m["test_step_accuracy"][t] for m in ms) for t in range(steps)],
                      [statistics.fmean(m["two_weights"][t] for m in ms) for t in range(steps)])
    if rows:
        steps = len(next(iter(rows.values()))[0])
        print("| setting | " + " | ".join(f"t={t}" for t in range(steps)) + " |")
        print("|---|" + "---|" * steps)
        for name, (acc, a) in rows.items():
            print(f"| {name} acc | " + " | ".join(f"{100 * v:.0f}" for v in acc) + " |")
            if name in ("TWO", "MSG+TWO"):
                print(f"| {name} a_t | " + " | ".join(f"{v:.2f}" for v in a) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
