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
    """What to export (``model`` -> ``out`` [+ ``onnx``] [+ ``nir``, at step ``nir_dt``]) or which file to describe
    (``inspect``)."""

    model: Path | None = None
    out: Path | None = None
    onnx: Path | None = None
    inspect: Path | None = None
    nir: Path | None = None
    nir_dt: float | None = None  # None: export.nir_export.DEFAULT_DT

    @property
    def targets(self) -> list[Path]:
        return [p for p in (self.out, self.onnx, self.nir) if p is not None]

    def __post_init__(self) -> None:
        if self.inspect is not None:
            if self.model is not None or self.targets:
                raise SpikeshipError("export --inspect takes only the .net file to describe")
            return
        if self.model is None:
            raise SpikeshipError("export needs a checkpoint (RUN/model.pt) or --inspect model.net")
        if not self.targets:
            raise SpikeshipError("export needs --out model.net (and/or --onnx model.onnx, --nir model.nir)")
        if len({Path(p).resolve() for p in self.targets}) != len(self.targets):
            raise SpikeshipError("--out, --onnx and --nir must name different files")
        if self.nir_dt is not None and self.nir is None:
            raise SpikeshipError("--nir-dt is the time step of the --nir graph; give --nir model.nir")


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


def network_from_checkpoint(path: Path, ckpt=None) -> Network:
    """Load a checkpoint (unless given) and quantize it (no checks yet)."""
    from ..train.checkpoint import load_checkpoint

    ckpt = ckpt or load_checkpoint(path)
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
    from ..train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(config.model)
    net = network_from_checkpoint(config.model, ckpt)
    resources = check(net)
    writers = {}
    if config.out is not None:
        writers[config.out] = lambda tmp: write_net_file(net, tmp)
    if config.onnx is not None:
        from .onnx_export import build_onnx

        onnx_bytes = build_onnx(net).SerializeToString()
        writers[config.onnx] = lambda tmp: tmp.write_bytes(onnx_bytes)
    if config.nir is not None:
        import nir

        from .nir_export import DEFAULT_DT, network_graph

        graph = network_graph(net, two_weights=ckpt.two_weights, dataset=ckpt.dataset,
                              dt=DEFAULT_DT if config.nir_dt is None else config.nir_dt)
        writers[config.nir] = lambda tmp: nir.write(tmp, graph)
    with atomic_outputs(*writers) as temps:
        for write, tmp in zip(writers.values(), temps):
            write(tmp)
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
        imported = (card.get("config") or {}).get("import") if isinstance(card.get("config"), dict) else None
        if isinstance(imported, dict):
            lines.append(f"imported from {imported.get('format', '?')} {imported.get('source', '?')} at dt = "
                         f"{imported.get('dt', '?')} s; readout: {imported.get('readout', '?')}")
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
