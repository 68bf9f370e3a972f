"""Training ablation: SG / TWO / MSG / MSG+TWO on the same network, data, epochs and seeds.

    .venv/bin/python bench/ablation.py --arch dense --seeds 0 1 2 3 4 --epochs 15
    .venv/bin/python bench/ablation.py --arch conv --seeds 0 1 2 --epochs 15 --device cuda

Prints a markdown table (test accuracy mean and std over seeds, float decode and the deployed integer
TWO decode) and writes every run's metrics to --json. The data set is framed once and shared by all runs
(--data-cache keeps it in a file, so a machine without the data dependencies can run the bench).
Settings: SG = method sg, decode mean; TWO = sg + two; MSG = msg (p = --mask-prob) + mean; MSG+TWO = msg + two.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

SETTINGS = {"SG": ("sg", "mean"), "TWO": ("sg", "two"), "MSG": ("msg", "mean"), "MSG+TWO": ("msg", "two")}


@dataclass
class Frames:
    """What train() needs from a data set."""

    spikes: torch.Tensor
    labels: torch.Tensor
    input_shape: tuple
    class_names: tuple

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def load_frames(dataset: str, time_steps: int, cache: Path | None) -> tuple[Frames, Frames]:
    if cache is not None and cache.is_file():
        d = torch.load(cache, weights_only=True)
        if d["time_steps"] != time_steps or d["dataset"] != dataset:
            raise SystemExit(f"{cache} holds {d['dataset']} T={d['time_steps']}, not {dataset} T={time_steps}")
        for split in ("train", "test"):
            bits = np.unpackbits(d[f"{split}_packed"].numpy(), count=int(np.prod(d[f"{split}_shape"])))
            d[f"{split}_spikes"] = torch.from_numpy(bits.reshape(d[f"{split}_shape"]))
    else:
        from spikeship.train.data import load_dataset

        tr, te = (load_dataset(dataset, None, time_steps, split) for split in ("train", "test"))
        d = {"dataset": dataset, "time_steps": time_steps, "class_names": list(tr.class_names),
             "input_shape": list(tr.input_shape), "train_spikes": tr.spikes, "train_labels": tr.labels,
             "test_spikes": te.spikes, "test_labels": te.labels}
        if cache is not None:  # spikes as packed bits: 8x smaller
            cache.parent.mkdir(parents=True, exist_ok=True)
            packed = {k: v for k, v in d.items() if not k.endswith("_spikes")}
            for split in ("train", "test"):
                spikes = d[f"{split}_spikes"].numpy()
                packed[f"{split}_shape"] = list(spikes.shape)
                packed[f"{split}_packed"] = torch.from_numpy(np.packbits(spikes.reshape(-1)))
            tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")  # shards may write it side by side
            torch.save(packed, tmp)
            os.replace(tmp, cache)
    shape, names = tuple(d["input_shape"]), tuple(d["class_names"])
    return (Frames(d["train_spikes"], d["train_labels"], shape, names),
            Frames(d["test_spikes"], d["test_labels"], shape, names))


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def format_table(results: list[dict], archs: list[str], seeds: list[int]) -> str:
    lines = ["| network | setting | test accuracy % (mean ± std) | deployed integer decode % | per seed |",
             "|---|---|---|---|---|"]
    for arch in archs:
        for name in SETTINGS:
            runs = [r for r in results if r["arch"] == arch and r["setting"] == name]
            if not runs:
                continue
            acc = [100 * r["test_accuracy"] for r in runs]
            acc_int = [100 * r["test_accuracy_quantized_deploy"] for r in runs]
            m, s = mean_std(acc)
            mi, si = mean_std(acc_int)
            per_seed = " ".join(f"{a:.2f}" for a in acc)
            lines.append(f"| {arch} | {name} | {m:.2f} ± {s:.2f} | {mi:.2f} ± {si:.2f} | {per_seed} |")
    return "\n".join(lines)


def add_training_arguments(p: argparse.ArgumentParser, epochs: int, time_steps: int | None, settings) -> None:
    """The flags every training study shares (this script's and speech_studies.py's)."""
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--settings", nargs="+", default=settings, choices=list(SETTINGS),
                   help="default: " + ("the study's" if settings is None else " ".join(settings)))
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--time-steps", type=int, default=time_steps,
                   help="default: " + (str(time_steps) if time_steps is not None else "50 on event-speech, 16 otherwise"))
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=None, help="default: TrainConfig's")
    p.add_argument("--mask-prob", type=float, default=0.5)
    p.add_argument("--surrogate", default="arctan", choices=["piecewise", "arctan", "slayer"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", nargs="+", default=["dense"], choices=["dense", "conv", "speech"])
    p.add_argument("--config", default=None, metavar="FILE", help="network from a TOML file instead of --arch")
    add_training_arguments(p, epochs=15, time_steps=16, settings=list(SETTINGS))
    p.add_argument("--alpha", type=float, default=2.0)
    p.add_argument("--rescale", action="store_true", help="MSG: divide kept surrogate entries by 1 - p")
    p.add_argument("--dataset", default="event-digits")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--json", default=None, help="write all runs' metrics here (default OUT/results-<arch>.json)")
    p.add_argument("--data-cache", default=None, help="framed data set file (made if missing)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from spikeship.train.loop import TrainConfig, train

    out = Path(args.out)
    train_set, test_set = load_frames(args.dataset, args.time_steps, Path(args.data_cache) if args.data_cache else None)
    results = []
    json_path = Path(args.json) if args.json else out / f"results-{'-'.join(args.arch)}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    extra = {} if args.lr is None else {"lr": args.lr}
    for arch in args.arch:
        for seed in args.seeds:
            for name in args.settings:
                method, decode = SETTINGS[name]
                cfg = TrainConfig(dataset=args.dataset, arch=arch, time_steps=args.time_steps, epochs=args.epochs,
                                  batch_size=args.batch_size, method=method, mask_prob=args.mask_prob,
                                  surrogate=args.surrogate, alpha=args.alpha, rescale=args.rescale, decode=decode, seed=seed, device=args.device,
                                  model_config=args.config,
                                  out=str(out / arch / name.replace("+", "_") / f"seed{seed}"), progress=False,
                                  **extra)
                started = time.perf_counter()
                m = train(cfg, data=(train_set, test_set), replace=True)  # the bench owns its run folders
                m.update(setting=name, arch=arch, wall_seconds=time.perf_counter() - started)
                results.append(m)
                print(f"{arch:5s} {name:8s} seed {seed}: test {100 * m['test_accuracy']:.2f}% "
                      f"(deployed {100 * m['test_accuracy_quantized_deploy']:.2f}%), train "
                      f"{100 * m['train_accuracy']:.2f}%, {m['wall_seconds']:.0f} s", flush=True)
                json_path.write_text(json.dumps({"args": vars(args), "runs": results}, indent=1))
    print()
    print(format_table(results, args.arch, args.seeds))
    print(f"\ncommand: {' '.join([Path(sys.argv[0]).as_posix()] + (argv if argv is not None else sys.argv[1:]))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
