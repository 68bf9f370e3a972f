"""``spikeship export``: checkpoint -> validated ``.net`` (and ONNX); ``--inspect`` describes a ``.net`` file.

    spikeship export RUN/model.pt --out model.net [--onnx model.onnx]
    spikeship export --inspect model.net
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import SpikeshipError
from .netx import LAYER_WRITERS, NetFile, read_net, write_net
from .quantize import QuantizedNet, quantize_model
from .validate import LOIHI1, LayerResources, check_net, estimate_resources

SUPPORTED = tuple(LAYER_WRITERS)


@dataclass(frozen=True)
class ExportConfig:
    """What to export (``model`` -> ``out`` [+ ``onnx``]) or which file to describe (``inspect``)."""

    model: Path | None = None
    out: Path | None = None
    onnx: Path | None = None
    inspect: Path | None = None

    def __post_init__(self) -> None:
        if self.inspect is not None:
            if self.model is not None or self.out is not None or self.onnx is not None:
                raise SpikeshipError("export --inspect takes only the .net file to describe")
            return
        if self.model is None:
            raise SpikeshipError("export needs a checkpoint (RUN/model.pt) or --inspect model.net")
        if self.out is None and self.onnx is None:
            raise SpikeshipError("export needs --out model.net (and/or --onnx model.onnx)")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ExportConfig":
        def path(v):
            return None if v is None else Path(v)

        return cls(model=path(args.model), out=path(args.out), onnx=path(args.onnx), inspect=path(args.inspect))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", metavar="RUN/model.pt", help="checkpoint written by spikeship train")
    parser.add_argument("--out", metavar="model.net", help="netx HDF5 file to write")
    parser.add_argument("--onnx", metavar="model.onnx", help="also write the per-step integer ONNX model")
    parser.add_argument("--inspect", metavar="model.net",
                        help="describe an exported file: layers, parameter ranges, TWO weights, resources")


def model_card(ckpt, source: Path) -> dict:
    """Provenance stored in the file: data set, training config, accuracy at export."""
    return {
        "dataset": ckpt.dataset,
        "time_steps": int(ckpt.time_steps),
        "class_names": list(ckpt.class_names),
        "spec": ckpt.spec.to_dict(),
        "config": dict(ckpt.config),
        "metrics": dict(ckpt.metrics),
        "epoch": int(ckpt.epoch),
        "checkpoint": str(source),
        "spikeship_version": __version__,
    }


def export_checkpoint(config: ExportConfig) -> tuple[QuantizedNet, tuple[LayerResources, ...]]:
    """Load, quantize, validate and write. Nothing is written when any check fails."""
    from ..train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(config.model)
    try:
        net = ckpt.build_model()
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        raise SpikeshipError(f"{config.model}: weights do not fit the stored model spec "
                             f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    qnet = quantize_model(net, np.asarray(ckpt.two_weights, dtype=np.float64))
    resources = check_net(qnet, SUPPORTED)  # refuse before writing either file
    if config.out is not None:
        write_net(qnet, config.out, class_names=ckpt.class_names, model_card=model_card(ckpt, config.model))
    if config.onnx is not None:
        from .onnx_export import export_onnx

        export_onnx(qnet, config.onnx)
    return qnet, resources


def _range(w: np.ndarray) -> str:
    return f"[{int(w.min())}, {int(w.max())}]" if np.asarray(w).dtype.kind in "iu" else "not integer"


def describe(nf: NetFile, path: str = "") -> str:
    """Human-readable summary of a ``.net`` file (what ``--inspect`` prints)."""
    q = nf.net
    card = nf.model_card
    lines = [f"{path}: spikeship .net format {nf.format_version}",
             f"input (C, H, W) {tuple(q.input_shape)}, T = {q.time_steps}, {q.num_classes} classes: "
             f"{', '.join(nf.class_names)}"]
    if card:
        acc = {k: round(v, 4) for k, v in card.get("metrics", {}).items()
               if "acc" in k and isinstance(v, (int, float)) and not isinstance(v, bool)}
        lines.append(f"model card: dataset {card.get('dataset', '?')}, epoch {card.get('epoch', '?')}"
                     + (", " + ", ".join(f"{k} {v}" for k, v in sorted(acc.items())) if acc else ""))
    try:
        resources = estimate_resources(q)
    except (ValueError, SpikeshipError) as e:  # geometry a hand-made file got wrong
        return "\n".join(lines + [f"checks: FAILS: {e}"])
    header = f"{'#':>2} {'layer':14} {'in':>12} -> {'out':12} {'geometry':22} {'weights':12} " \
             f"{'iDecay':>6} {'vDecay':>6} {'vThMant':>7} {'fan-in':>6} {'input/step':>14} {'cores':>5}"
    lines.append(header)
    for layer, r in zip(q.layers, resources):
        geo = "" if layer.kind == "dense" else \
            f"k{layer.kernel[0]}x{layer.kernel[1]} s{layer.stride[0]} p{layer.padding[0]} g{layer.groups}"
        n = layer.neuron
        lines.append(f"{layer.index:>2} {layer.source + '->' + layer.kind:14} {str(tuple(layer.input_shape)):>12} -> "
                     f"{str(tuple(layer.shape)):12} {geo:22} {_range(layer.weight):12} {n.i_decay:>6} {n.v_decay:>6} "
                     f"{n.vth_mant:>7} {r.max_fan_in:>6} {f'[{r.input_min}, {r.input_max}]':>14} {r.cores:>5}")
    lines.append(f"readout: {tuple(q.readout_weight.shape)} weights {_range(q.readout_weight)}")
    lines.append(f"TWO weights (x64): {' '.join(str(int(a)) for a in q.two_weights)}")
    total = sum(r.cores for r in resources)
    lines.append(f"resources: {sum(r.neurons for r in resources)} neurons, "
                 f"{sum(r.synapse_bytes for r in resources)} synapse bytes, about {total} of "
                 f"{LOIHI1.cores_per_chip} Loihi 1 cores")
    try:
        check_net(q, SUPPORTED)
        lines.append("checks: all Loihi limits hold")
    except SpikeshipError as e:
        lines.append(f"checks: FAILS: {e}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    config = ExportConfig.from_args(args)
    if config.inspect is not None:
        print(describe(read_net(config.inspect), str(config.inspect)))
        return 0
    qnet, resources = export_checkpoint(config)
    written = [str(p) for p in (config.out, config.onnx) if p is not None]
    print(f"exported {len(qnet.layers)} spiking layers, T = {qnet.time_steps}, about "
          f"{sum(r.cores for r in resources)} Loihi 1 cores -> {', '.join(written)}")
    return 0
