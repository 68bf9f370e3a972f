"""`spikeship report`: flags and dispatch only; the stage is :mod:`spikeship.report`."""

from __future__ import annotations

import argparse

from .report import ReportConfig, run_report, summary_lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .backends import BACKENDS, add_run_arguments

    add_run_arguments(parser, default_backend="emulator",
                      backend_help=f"where the spikes come from: {', '.join(BACKENDS)}; every backend gives the "
                                   "same counts")
    parser.add_argument("--out", metavar="DIR", default="report",
                        help="folder for report.json, report.md, energy.png, raster.png (default: report)")
    parser.add_argument("--workers", type=int, default=1, metavar="K",
                        help="Lava: shard the samples over K processes (default: 1)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="B", help=argparse.SUPPRESS)


def config_from_args(args) -> ReportConfig:
    return ReportConfig(net=args.net, out=args.out, backend=args.backend, dataset=args.dataset,
                        data_dir=args.data_dir, split=args.split, samples=args.samples,
                        downsample=args.sensor_downsample, batch_size=args.batch_size, workers=args.workers,
                        device=args.device)


def run(args) -> int:
    result = run_report(config_from_args(args))
    if result is None:  # a rank other than 0 under torchrun: rank 0 reports
        return 0
    for line in summary_lines(result.report):
        print(line)
    for kind, path in result.paths.items():
        print(f"{kind:>7}: {path}")
    print(f"report took {result.seconds:.1f} s")
    return 0
