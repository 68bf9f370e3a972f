"""``spikeship export``: flags and dispatch only; the stage is :mod:`spikeship.export.stage`.

    spikeship export RUN/model.pt --out model.net [--onnx model.onnx] [--nir model.nir [--nir-dt SECONDS]]
    spikeship export --inspect model.net
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import SpikeshipError
from .netx import read_net
from .stage import ExportConfig, describe, export_checkpoint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", metavar="RUN/model.pt", help="checkpoint written by spikeship train")
    parser.add_argument("--out", metavar="model.net",
                        help="netx HDF5 file to write (required unless --onnx or --nir is given)")
    parser.add_argument("--onnx", metavar="model.onnx", help="also (or only) write the per-step integer ONNX model")
    parser.add_argument("--nir", metavar="model.nir",
                        help="also (or only) write the network as a NIR graph (readout as an Affine node, TWO weights, "
                             "dt, data set and class names in its metadata) for snnTorch, Norse, Sinabs, ...")
    parser.add_argument("--nir-dt", type=float, default=None, metavar="SECONDS",
                        help="time step the NIR graph's time constants are written for (default 1e-4, what "
                             "snnTorch's import_from_nir assumes)")
    parser.add_argument("--inspect", metavar="model.net",
                        help="describe an exported file: layers, parameter ranges, TWO weights, resources "
                             "(exit 2 when a check fails)")


def config_from_args(args: argparse.Namespace) -> ExportConfig:
    def path(v):
        return None if v is None else Path(v)

    return ExportConfig(model=path(args.model), out=path(args.out), onnx=path(args.onnx), inspect=path(args.inspect),
                        nir=path(args.nir), nir_dt=args.nir_dt)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if config.inspect is not None:
        text, failure = describe(read_net(config.inspect, check_limits=False), str(config.inspect))
        print(text)
        if failure is not None:
            raise SpikeshipError(f"{config.inspect}: fails the checks: {failure}")
        return 0
    net, resources = export_checkpoint(config)
    written = [str(p) for p in config.targets]
    print(f"exported {len(net.layers)} spiking layers, T = {net.time_steps}, about "
          f"{sum(r.cores for r in resources)} Loihi 1 cores -> {', '.join(written)}")
    return 0
