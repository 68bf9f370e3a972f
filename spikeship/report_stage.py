"""`spikeship report`: flags and dispatch only; the stage is :mod:`spikeship.report`."""

from __future__ import annotations

import argparse

from .report import ReportConfig, run_report, summary_lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .backends import BACKENDS
    from .train.data import add_data_arguments

    parser.add_argument("net", metavar="model.net", help="an exported spikeship .net file (it holds T)")
    add_data_arguments(parser, default=None, default_help="the one the .net's model card names")
    parser.add_argument("--split", choices=("train", "test"), default="test")
    parser.add_argument("--samples", type=int, default=None, metavar="N",
                        help="number of samples (a fixed subset; default: the whole split)")
    parser.add_argument("--backend", choices=tuple(BACKENDS), default="emulator",
                        help="where the spikes come from (default: emulator; every backend gives the same counts)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where the emulator runs (default: cpu)")
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
