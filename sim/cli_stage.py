"""`spikeship parity`: flags and dispatch only; the stage is :func:`spikeship.sim.parity.parity_stage`.

Exit 0 only when PyTorch, the emulator and Lava agree on every spike, readout integer and prediction;
otherwise one line names the first layer, sample and step that differ, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys

from .parity import ParityConfig, parity_stage


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="RUN/model.pt", help="the training checkpoint (data set, T, weights)")
    parser.add_argument("net", metavar="model.net", help="the .net file exported from it")
    parser.add_argument("--samples", type=int, default=20, metavar="N", help="samples of the split (default 20)")
    parser.add_argument("--split", choices=("train", "test"), default="test")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="data folder (default: the checkpoint's)")
    parser.add_argument("--out", metavar="parity.json", default=None)
    parser.add_argument("--plot", metavar="raster.png", default=None,
                        help="rasters of one sample, PyTorch and Lava side by side")
    parser.add_argument("--workers", type=int, default=1, metavar="K", help="Lava processes")
    parser.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    cfg = ParityConfig(model=args.model, net=args.net, samples=args.samples, out=args.out, plot=args.plot,
                       split=args.split, data_dir=args.data_dir, workers=args.workers,
                       progress=not args.no_progress)
    r = parity_stage(cfg)
    for layer in r.layers:
        pairs = ", ".join(f"{p} {layer.equal[p]}/{layer.compared[p]}" for p in layer.compared)
        print(f"layer {layer.layer}: equal {pairs}; spikes {layer.spikes}")
    print(f"readout equal: {r.readout_equal}; predictions equal: {r.predictions_equal}; accuracy {r.accuracy}")
    if not r.ok:
        print(r.first_mismatch.line(), file=sys.stderr)
        return 1
    print(f"parity: all equal over {r.samples} samples x {r.time_steps} steps x {len(r.layers)} layers")
    return 0
