"""Training throughput: slayer CUBA + SG vs slayer CUBA + MSG vs a plain PyTorch LIF loop; peak memory vs T.

    .venv/bin/python bench/train_throughput.py                    # CPU, 1 thread, dense 2312-128-10, T=16
    .venv/bin/python bench/train_throughput.py --arch conv --batch-size 32 --steps 5
    python3 bench/train_throughput.py --device cuda               # a GPU machine
    .venv/bin/torchrun --standalone --nproc_per_node 2 bench/train_throughput.py --ddp   # data-parallel, 2 processes

One training step = forward, cross-entropy on the mean readout, backward, AdamW step, on binary input
of event-digits' density (9.6 % of entries). SG and MSG run the same network and weights; their timed
steps are interleaved (ABAB...) so drifting machine load hits both alike; the median step is reported.
The plain PyTorch LIF loop is the same dense network written out by hand (float CUBA dynamics, a
Python loop over T, the piecewise surrogate; no quantization, no delay shift).
--ddp: the MSG training step as `spikeship train` runs it data-parallel (train/parallel.py: DistributedDataParallel,
each of the N processes its 1/N share of the global --batch-size, loss scaled to the global mean); run it
under torchrun with N = 1, 2, ... (without torchrun it is one process); the global samples/s is reported.
Peak memory: each T runs in its own subprocess (3 MSG training steps); after building the model the
kernel's peak-RSS mark is reset (/proc/self/clear_refs), so "peak RSS" is the training's own peak and
"added" the part above the RSS at the reset; CUDA also reports torch.cuda.max_memory_allocated.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

DENSITY = 0.096  # event-digits: mean fraction of 1s in its frames at T=16
INPUT = (2, 34, 34)


def build_slayer(arch: str, mask_prob: float):
    from spikeship.train.loop import build_spec, TrainConfig
    from spikeship.train.model import SpikeNet
    from spikeship.train.msg import SurrogateConfig

    spec = build_spec(TrainConfig(arch=arch, time_steps=16, progress=False), INPUT, 10)
    return SpikeNet(spec, SurrogateConfig("piecewise", 2.0, mask_prob))


class PlainLIF(torch.nn.Module):
    """The dense network as a plain PyTorch loop: CUBA current/voltage decay, hard reset, float weights."""

    def __init__(self, hidden: int = 128, threshold: float = 1.25, current_decay: float = 0.25,
                 voltage_decay: float = 0.03):
        super().__init__()
        self.fc = torch.nn.Linear(INPUT[0] * INPUT[1] * INPUT[2], hidden, bias=False)
        self.readout = torch.nn.Linear(hidden, 10, bias=False)
        self.th, self.cd, self.vd = threshold, current_decay, voltage_decay

    def forward(self, x):  # x (N, C, H, W, T)
        n, t_steps = x.shape[0], x.shape[-1]
        z = self.fc(x.reshape(n, -1, t_steps).transpose(1, 2))  # (N, T, hidden)
        i = torch.zeros_like(z[:, 0])
        v = torch.zeros_like(z[:, 0])
        out = []
        for t in range(t_steps):
            i = (1 - self.cd) * i + z[:, t]
            v = (1 - self.vd) * v + i
            s = _PiecewiseSpike.apply(v, self.th)
            v = v * (1 - s)
            out.append(self.readout(s))
        return torch.stack(out, -1), None


class _PiecewiseSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, th):
        ctx.save_for_backward(v)
        ctx.th = th
        return (v >= th).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        x = (v - ctx.th) / ctx.th
        return grad * (torch.clamp(2.0 - 4.0 * x.abs(), min=0.0) / ctx.th), None


def _step_fn(model, x, y, device, weight: float = 1.0):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step():
        readout, _ = model(x)
        loss = F.cross_entropy(readout.mean(-1), y) * weight
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step


def _batch(batch_size: int, time_steps: int, device):
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(batch_size, *INPUT, time_steps, generator=gen) < DENSITY).float().to(device)
    y = torch.randint(0, 10, (batch_size,), generator=gen).to(device)
    return x, y


def throughput(args) -> dict:
    device = torch.device(args.device)
    if device.type == "cuda":
        from spikeship.train.loop import prepare_device

        prepare_device("cuda")
    x, y = _batch(args.batch_size, args.time_steps, device)
    torch.manual_seed(0)
    sg = build_slayer(args.arch, 0.0).to(device)
    msg = build_slayer(args.arch, args.mask_prob).to(device)
    msg.load_state_dict(sg.state_dict())
    steps = {"slayer CUBA + SG": _step_fn(sg, x, y, device), "slayer CUBA + MSG": _step_fn(msg, x, y, device)}
    if args.arch == "dense":
        steps["plain PyTorch LIF loop"] = _step_fn(PlainLIF().to(device), x, y, device)
    times = {name: [] for name in steps}
    for fn in steps.values():  # warm-up (CUDA: kernel builds and caches)
        for _ in range(args.warmup):
            fn()
    for _ in range(args.steps):
        for name, fn in steps.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    return {name: {"median_step_s": m, "samples_per_s": args.batch_size / m} for name, m in med.items()}


def _median_step(step, args) -> float:
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ddp_throughput(args) -> dict | None:
    """The MSG step data-parallel (see the module's --ddp); rank 0 gets the figures, the others None."""
    from spikeship import distributed
    from spikeship.train import parallel
    from spikeship.train.loop import prepare_device

    w = distributed.world()
    parallel.check_world(args.batch_size, w)
    device = prepare_device(args.device, w)
    distributed.join(args.device)
    x, y = _batch(args.batch_size, args.time_steps, device)  # the global batch, the same on every rank
    torch.manual_seed(0)
    model = build_slayer(args.arch, args.mask_prob).to(device)
    parallel.seed_rank(0, w)
    mine = parallel.share(torch.arange(args.batch_size), w)
    step = _step_fn(parallel.wrap(model, device, w), x[mine.samples], y[mine.samples], device, mine.weight)
    median = max(distributed.gather(_median_step(step, args), w) or [0.0])  # the slowest rank sets the pace
    if not w.is_main:
        return None
    return {"processes": w.size, "threads": torch.get_num_threads(), "median_step_s": median,
            "samples_per_s": args.batch_size / median}


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux: clear_refs 5); return it in kB.
    Imports (Lava, torch) leave a high peak behind that would otherwise hide the training's own."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kb("VmRSS")


def peak_memory_child(args) -> dict:
    """One T, in this (fresh) process: build, then train ``--steps`` steps of MSG."""
    device = torch.device(args.device)
    if device.type == "cuda":
        from spikeship.train.loop import prepare_device

        prepare_device("cuda")
    x, y = _batch(args.batch_size, args.time_steps, device)
    torch.manual_seed(0)
    model = build_slayer(args.arch, args.mask_prob).to(device)
    base = _reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step = _step_fn(model, x, y, device)
    for _ in range(args.steps):
        step()
    peak = _status_kb("VmHWM")
    out = {"T": args.time_steps, "peak_rss_mb": peak / 1024, "training_rss_mb": (peak - base) / 1024,
           "process_max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        out["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="dense", choices=["dense", "conv"])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--time-steps", type=int, default=16)
    p.add_argument("--mask-prob", type=float, default=0.5)
    p.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--memory-T", type=int, nargs="*", default=[8, 16, 32])
    p.add_argument("--ddp", action="store_true", help="the MSG step data-parallel (run under torchrun)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(peak_memory_child(args)))
        return 0
    if args.ddp:
        r = ddp_throughput(args)
        if r is not None:
            print(f"{args.arch}, T={args.time_steps}, global batch {args.batch_size}, device {args.device}: slayer CUBA "
                  f"+ MSG data-parallel over {r['processes']} process(es) x {r['threads']} thread(s): "
                  f"{r['samples_per_s']:.0f} samples/s (median step {1000 * r['median_step_s']:.1f} ms, "
                  f"{args.steps} steps)")
            if args.json:
                with open(args.json, "w") as f:
                    json.dump({"args": vars(args), "ddp": r}, f, indent=1)
        return 0

    print(f"{args.arch}, T={args.time_steps}, batch {args.batch_size}, device {args.device}, "
          f"threads {torch.get_num_threads()}, {args.steps} interleaved steps per variant (median)")
    tp = throughput(args)
    sg = tp["slayer CUBA + SG"]["samples_per_s"]
    print("| training step | samples/s | median step (ms) | vs slayer + SG |")
    print("|---|---|---|---|")
    for name, r in tp.items():
        print(f"| {name} | {r['samples_per_s']:.0f} | {1000 * r['median_step_s']:.1f} | "
              f"{100 * (r['samples_per_s'] / sg - 1):+.1f}% |")
    mem = []
    for t in args.memory_T:
        cmd = [sys.executable, __file__, "--child", "--arch", args.arch, "--device", args.device,
               "--threads", str(args.threads), "--batch-size", str(args.batch_size), "--time-steps", str(t),
               "--mask-prob", str(args.mask_prob), "--steps", "3"]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        mem.append(json.loads(res.stdout.strip().splitlines()[-1]))
    print()
    print("| T | peak RSS (MB) | RSS added by training (MB) |" + (" CUDA max allocated (MB) |" if args.device == "cuda" else ""))
    print("|---|---|---|" + ("---|" if args.device == "cuda" else ""))
    for m in mem:
        cuda = f" {m['cuda_max_allocated_mb']:.0f} |" if "cuda_max_allocated_mb" in m else ""
        print(f"| {m['T']} | {m['peak_rss_mb']:.0f} | {m['training_rss_mb']:.0f} |{cuda}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "throughput": tp, "memory": mem}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
