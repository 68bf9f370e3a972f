"""`spikeship run`: flags and dispatch only; the stage is :mod:`spikeship.deploy.run`."""

from __future__ import annotations

import argparse

from .run import RunConfig, run_stage


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..backends import BACKENDS, add_run_arguments

    add_run_arguments(parser, default_backend="lava",
                      backend_help="; ".join(f"{name}: {b.help}" for name, b in BACKENDS.items()))
    parser.add_argument("--out", metavar="run.json", default=None, help="write the results as JSON")
    parser.add_argument("--workers", type=int, default=1, metavar="K",
                        help="Lava processes, each with its own network on a shard of the samples (default 1)")
    parser.add_argument("--chunk-samples", type=int, default=32, metavar="B", help=argparse.SUPPRESS)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args) -> RunConfig:
    return RunConfig(net=args.net, dataset=args.dataset, data_dir=args.data_dir, split=args.split,
                     samples=args.samples, backend=args.backend, out=args.out, workers=args.workers,
                     device=args.device, downsample=args.sensor_downsample, chunk_samples=args.chunk_samples,
                     progress=not args.no_progress)


def run(args) -> int:
    r = run_stage(config_from_args(args))
    if r is None:  # a rank other than 0 under torchrun: rank 0 reports
        return 0
    print(f"{r['backend']}: accuracy {100 * r['accuracy']:.2f}% ({r['correct']}/{r['samples']}) on "
          f"{r['dataset']} {r['split']}, T = {r['time_steps']}")
    print(f"spikes per sample by layer: {', '.join(f'{m:.1f}' for m in r['spike_counts']['mean_per_layer'])}")
    print(f"wall {r['wall_s']:.2f} s: {r['samples_per_s']:.1f} samples/s, {r['steps_per_s']:.0f} steps/s")
    if args.out:
        print(f"wrote {args.out}")
    return 0
