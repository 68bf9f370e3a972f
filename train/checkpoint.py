"""Checkpoints: everything needed to rebuild a trained model, and to resume its training exactly.

A checkpoint is one ``torch.save`` of a dict of plain types and tensors (no pickled classes), so it loads
with ``torch.load(..., weights_only=True)``. It is written to a temporary name in the same folder and
renamed, so a crash never leaves half a file under the real name.
"""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import SpikeshipError
from ..files import atomic_output
from .model import ModelSpec, SpikeNet

FORMAT = "spikeship-checkpoint"
FORMAT_VERSION = 1

_REQUIRED = ("spec", "state_dict", "two_weights", "dataset", "time_steps", "class_names", "epoch")


@dataclass(frozen=True)
class Checkpoint:
    """A trained model and its provenance; the ``*_state`` fields are only needed to resume training.

    ``two_weights``: the float TWO weights a_t (length ``time_steps``, sum T). ``epoch``: the number of
    completed epochs. ``config``: the training config as a plain dict. ``metrics``: the latest metrics.
    ``two_state``: the TWO per-step correct counts and sample count of the last epoch (``correct``, ``count``),
    from which the next epoch's a_t are updated; a run of several processes adds each one's own under ``ranks``.
    ``rng_state``: the torch generator's state (``torch``, and ``cuda`` on a GPU); a run of several processes
    adds every process's under ``ranks``, in rank order (train/parallel.py).
    """

    spec: ModelSpec
    state_dict: dict
    two_weights: tuple[float, ...]
    dataset: str
    data_dir: str | None
    time_steps: int
    class_names: tuple[str, ...]
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    epoch: int = 0
    optimizer_state: dict | None = None
    scheduler_state: dict | None = None
    rng_state: dict | None = None
    two_state: dict = field(default_factory=dict)
    history: tuple[dict, ...] = ()

    def __post_init__(self) -> None:
        if len(self.two_weights) != self.time_steps:
            raise ValueError(f"two_weights has {len(self.two_weights)} entries, time_steps is {self.time_steps}")

    def build_model(self, device: str | torch.device = "cpu") -> SpikeNet:
        """The ``SpikeNet`` with the stored weights, in eval mode."""
        model = SpikeNet(self.spec)
        model.load_state_dict(self.state_dict)
        return model.to(device).eval()


def save_checkpoint(
    path: str | Path,
    *,
    spec: ModelSpec,
    state_dict: dict,
    two_weights: Any,
    dataset: str,
    data_dir: str | None,
    time_steps: int,
    class_names: Any,
    config: dict | None = None,
    metrics: dict | None = None,
    epoch: int = 0,
    optimizer_state: dict | None = None,
    scheduler_state: dict | None = None,
    rng_state: dict | None = None,
    two_state: dict | None = None,
    history: Any = (),
) -> Path:
    """Write a checkpoint atomically (temporary file in the same folder, then rename). Returns the path."""
    path = Path(path)
    two = [float(a) for a in (two_weights.tolist() if hasattr(two_weights, "tolist") else two_weights)]
    if len(two) != int(time_steps):
        raise ValueError(f"two_weights has {len(two)} entries, time_steps is {time_steps}")
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "spec": spec.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in state_dict.items()},
        "two_weights": two,
        "dataset": str(dataset),
        "data_dir": None if data_dir is None else str(data_dir),
        "time_steps": int(time_steps),
        "class_names": [str(c) for c in class_names],
        "config": dict(config or {}),
        "metrics": dict(metrics or {}),
        "epoch": int(epoch),
        "optimizer_state": optimizer_state,
        "scheduler_state": scheduler_state,
        "rng_state": rng_state,
        "two_state": dict(two_state or {}),
        "history": [dict(row) for row in history],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint``; anything else raises ``SpikeshipError`` (one line)."""
    path = Path(path)
    if not path.is_file():
        raise SpikeshipError(f"checkpoint not found: {path}")
    try:
        d = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, OSError,
            AttributeError, KeyError, TypeError) as e:
        if not zipfile.is_zipfile(path):
            reason = "not a torch zip archive"
        elif isinstance(e, pickle.UnpicklingError):
            reason = "holds objects other than tensors and plain types, or is damaged"
        else:
            reason = f"damaged: {type(e).__name__}"
        raise SpikeshipError(f"not a spikeship checkpoint: {path} ({reason})") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise SpikeshipError(f"not a spikeship checkpoint: {path} (no '{FORMAT}' marker)")
    if d.get("format_version") != FORMAT_VERSION:
        raise SpikeshipError(f"not a spikeship checkpoint: {path} (format version {d.get('format_version')!r}, "
                             f"this spikeship reads {FORMAT_VERSION})")
    missing = [k for k in _REQUIRED if k not in d]
    if missing:
        raise SpikeshipError(f"not a spikeship checkpoint: {path} (missing {', '.join(missing)})")
    try:
        return Checkpoint(
            spec=ModelSpec.from_dict(d["spec"]),
            state_dict=d["state_dict"],
            two_weights=tuple(float(a) for a in d["two_weights"]),
            dataset=d["dataset"],
            data_dir=d.get("data_dir"),
            time_steps=int(d["time_steps"]),
            class_names=tuple(d["class_names"]),
            config=d.get("config") or {},
            metrics=d.get("metrics") or {},
            epoch=int(d["epoch"]),
            optimizer_state=d.get("optimizer_state"),
            scheduler_state=d.get("scheduler_state"),
            rng_state=d.get("rng_state"),
            two_state=d.get("two_state") or {},
            history=tuple(d.get("history") or ()),
        )
    except (TypeError, ValueError, KeyError) as e:
        raise SpikeshipError(f"not a spikeship checkpoint: {path} (bad field: {e})") from None
