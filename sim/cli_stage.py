"""`spikeship parity`: flags and dispatch only; the stage is :func:`spikeship.sim.parity.parity_stage`."""

from __future__ import annotations

import argparse
import sys

from .parity import ParityConfig, parity_stage

EPILOG = """exit status: 0 when PyTorch, the emulator and every backend agree on every spike, readout integer and
prediction; 1 when they differ (one line names the first layer, sample and step); 2 for bad input (one line
'spikeship: ...'); 130 when interrupted."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..backends import BACKENDS

    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("model", metavar="RUN/model.pt", help="the training checkpoint (data set, T, weights)")
    parser.add_argument("net", metavar="model.net", help="the .net file exported from it")
    parser.add_argument("--samples", type=int, default=20, metavar="N",
                        help="samples of the split (a fixed subset; default 20)")
    parser.add_argument("--split", choices=("train", "test"), default="test")
    parser.add_argument("--dataset", default=None, metavar="NAME",
                        help="data set (default: the checkpoint's)")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="data folder (default: the checkpoint's)")
    parser.add_argument("--backend", dest="backends", action="append", default=None,
                        choices=tuple(BACKENDS),
                        help="runtime compared with PyTorch and the emulator (repeatable; default: lava; "
                             "emulator: PyTorch and the emulator only, e.g. with --device cuda where Lava is not "
                             "installed)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where the emulator runs (default: cpu)")
    parser.add_argument("--out", metavar="parity.json", default=None, help="write the comparison as JSON")
    parser.add_argument("--plot", metavar="raster.png", default=None,
                        help="rasters of one sample (the first mismatch, else sample 0), every runtime side by side")
    parser.add_argument("--workers", type=int, default=1, metavar="K",
                        help="Lava processes, each with its own network on a shard of the samples (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    cfg = ParityConfig(model=args.model, net=args.net, samples=args.samples, out=args.out, plot=args.plot,
                       split=args.split, dataset=args.dataset, data_dir=args.data_dir,
                       backends=tuple(args.backends or ("lava",)), workers=args.workers, device=args.device,
                       progress=not args.no_progress)
    run_ = parity_stage(cfg)
    if run_ is None:  # a rank other than 0 under torchrun: rank 0 reports
        return 0
    r = run_.result
    for layer in r.layers:
        pairs = "; ".join(f"{pair}: {layer.equal[pair]:,}/{layer.compared[pair]:,} equal, spikes "
                          f"{layer.spikes[pair][0]:,} vs {layer.spikes[pair][1]:,}" for pair in layer.compared)
        print(f"layer {layer.layer} ({layer.kind}): {pairs}")
    same = lambda d: "all equal" if all(d.values()) else ", ".join(k for k, v in d.items() if not v) + " differ"  # noqa: E731
    print(f"readout integers: {same(r.readout_equal)}; predictions: {same(r.predictions_equal)}; accuracy "
          + ", ".join(f"{k} {100 * v:.2f}%" for k, v in r.accuracy.items()))
    if not r.ok:
        print(r.first_mismatch.line(), file=sys.stderr)
        return 1
    print(f"parity: all equal over {r.samples} samples x {r.time_steps} steps x {len(r.layers)} layers")
    return 0
