"""The export stage: checkpoint -> validated :class:`~spikeship.network.Network` -> ``.net`` (and ONNX), and the
description ``export --inspect`` prints.

Every check runs before anything is written, and the outputs are written together: both files or neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import SpikeshipError
from ..files import atomic_outputs
from ..network import Network
from .netx import WRITERS, check, write_net_file
from .quantize import quantize_model
from .validate import LOIHI1, LayerResources, estimate_resources


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
        if self.out is not None and self.onnx is not None and Path(self.out).resolve() == Path(self.onnx).resolve():
            raise SpikeshipError("--out and --onnx name the same file")


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


def network_from_checkpoint(path: Path) -> Network:
    """Load a checkpoint and quantize it (no checks yet)."""
    from ..train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    try:
        model = ckpt.build_model()
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        raise SpikeshipError(f"{path}: weights do not fit the stored model spec "
                             f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    return quantize_model(model, np.asarray(ckpt.two_weights, dtype=np.float64), class_names=ckpt.class_names,
                          model_card=model_card(ckpt, path))


def export_checkpoint(config: ExportConfig) -> tuple[Network, tuple[LayerResources, ...]]:
    """Load, quantize, validate and write. Nothing is written when any check fails, and either every
    requested file is written or none."""
    net = network_from_checkpoint(config.model)
    resources = check(net)
    onnx_bytes = None
    if config.onnx is not None:
        from .onnx_export import build_onnx

        onnx_bytes = build_onnx(net).SerializeToString()
    targets = [p for p in (config.out, config.onnx) if p is not None]
    with atomic_outputs(*targets) as temps:
        for target, tmp in zip(targets, temps):
            if target == config.out:
                write_net_file(net, tmp)
            else:
                tmp.write_bytes(onnx_bytes)
    return net, resources


def _range(w: np.ndarray) -> str:
    return f"[{int(w.min())}, {int(w.max())}]" if np.asarray(w).dtype.kind in "iu" else "not integer"


def describe(net: Network, path: str = "") -> tuple[str, str | None]:
    """Human-readable summary of a ``.net`` file (what ``--inspect`` prints) and the first failed check
    (None when every Loihi limit holds)."""
    card = net.model_card
    lines = [f"{path}: spikeship .net",
             f"input (C, H, W) {tuple(net.input_shape)}, T = {net.time_steps}, {net.num_classes} classes: "
             f"{', '.join(net.class_names)}"]
    if card:
        acc = {k: round(v, 4) for k, v in card.get("metrics", {}).items()
               if "acc" in k and isinstance(v, (int, float)) and not isinstance(v, bool)}
        lines.append(f"model card: dataset {card.get('dataset', '?')}, epoch {card.get('epoch', '?')}"
                     + (", " + ", ".join(f"{k} {v}" for k, v in sorted(acc.items())) if acc else ""))
    try:
        resources = estimate_resources(net)
    except (ValueError, SpikeshipError) as e:  # geometry a hand-made file got wrong
        return "\n".join(lines), str(e)
    header = f"{'#':>2} {'layer':14} {'in':>12} -> {'out':12} {'geometry':22} {'weights':12} " \
             f"{'iDecay':>6} {'vDecay':>6} {'vThMant':>7} {'fan-in':>6} {'input/step':>14} {'cores':>5}"
    lines.append(header)
    for layer, r in zip(net.layers, resources):
        geo = "" if len(layer.input_shape) != 3 else \
            f"k{layer.kernel[0]}x{layer.kernel[1]} s{layer.stride[0]} p{layer.padding[0]} g{layer.groups}"
        if layer.recurrent_weight is not None:
            geo = f"recurrent {_range(layer.recurrent_weight)}"
        n = layer.neuron
        netx_type = WRITERS[layer.kind].netx_type if layer.kind in WRITERS else "?"  # checks name it below
        lines.append(f"{layer.index:>2} {layer.kind + '->' + netx_type:14} {str(tuple(layer.input_shape)):>12} -> "
                     f"{str(tuple(layer.shape)):12} {geo:22} {_range(layer.weight):12} {n.i_decay:>6} {n.v_decay:>6} "
                     f"{n.vth_mant:>7} {r.max_fan_in:>6} {f'[{r.input_min}, {r.input_max}]':>14} {r.cores:>5}")
    lines.append(f"readout: {tuple(net.readout.weight.shape)} weights {_range(net.readout.weight)}")
    lines.append(f"TWO weights (x64): {' '.join(str(int(a)) for a in net.two_weights)}")
    total = sum(r.cores for r in resources)
    lines.append(f"resources: {sum(r.neurons for r in resources)} neurons, "
                 f"{sum(r.synapse_bytes for r in resources)} synapse bytes, about {total} of "
                 f"{LOIHI1.cores_per_chip} Loihi 1 cores")
    try:
        check(net)
    except SpikeshipError as e:
        return "\n".join(lines), str(e)
    lines.append("checks: all Loihi limits hold")
    return "\n".join(lines), None
