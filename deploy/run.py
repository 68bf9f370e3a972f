"""`spikeship run`: a ``.net`` file over a data split, in Lava or in the emulator, to ``run.json``.

The result holds accuracy, every prediction and TWO accumulator, the spikes of every layer per sample
(counted in Lava's window of that layer, which both backends produce identically), wall time and
throughput. Errors a user can cause end in a one-line :class:`SpikeshipError`, before any Lava process
starts where they can be detected up front.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import files
from ..errors import SpikeshipError

BACKENDS = ("lava", "emulator")


@dataclass(frozen=True)
class RunConfig:
    net: str
    dataset: str = "event-digits"
    data_dir: str | None = None
    split: str = "test"
    samples: int | None = None
    backend: str = "lava"
    out: str | None = None
    workers: int = 1
    downsample: int = 1
    time_steps: int | None = None  # must equal the file's T when given
    chunk_samples: int = 32
    progress: bool = True

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise SpikeshipError(f"unknown backend {self.backend!r}; choose {' or '.join(BACKENDS)}")
        if self.samples is not None and self.samples <= 0:
            raise SpikeshipError(f"--samples must be positive, got {self.samples}")
        if self.workers <= 0:
            raise SpikeshipError(f"--workers must be positive, got {self.workers}")
        if self.chunk_samples <= 0:
            raise SpikeshipError("chunk size must be positive")


def load_samples(dataset: str, data_dir, split: str, time_steps: int, samples: int | None,
                 downsample: int = 1):
    """``(inputs (N, C, H, W, T) uint8, labels (N,), indices)``; more samples than the split has is an error."""
    from ..train.data import load_dataset

    ds = load_dataset(dataset, data_dir, time_steps, split, downsample=downsample, max_samples=samples)
    if samples is not None and samples > len(ds):
        raise SpikeshipError(f"asked for {samples} samples; the {split} split of {dataset} has {len(ds)}")
    return ds.spikes.numpy(), ds.labels.numpy(), np.asarray(ds.indices)


def progress_bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="sample", file=sys.stderr, disable=not enabled, leave=False)


def run_backend(net, inputs: np.ndarray, backend: str, *, workers: int = 1, chunk_samples: int = 32,
                progress: bool = False) -> dict:
    """Run ``inputs`` on ``backend``; returns counts, readout, predictions and timings as arrays/numbers."""
    from ..sim.emulator import check_inputs, emulate

    x = check_inputs(net, inputs)
    n, T = x.shape[0], net.time_steps
    start = time.perf_counter()
    with progress_bar(n, backend, progress) as bar:
        if backend == "emulator":
            res = emulate(net, x, record_spikes=False, progress=bar.update)
            simulated = n * (T + net.num_layers)
        else:
            from .lava_run import run_lava_sharded

            res = run_lava_sharded(net, x, workers=workers, chunk_samples=chunk_samples, progress=bar.update)
            simulated = res.steps
    wall = time.perf_counter() - start
    return dict(counts=res.counts, readout=res.readout, predictions=res.predictions, wall_s=wall,
                simulated_steps=int(simulated), samples=n)


def run_stage(cfg: RunConfig) -> dict:
    """The whole stage: read the file, load the samples, run, write ``cfg.out`` (atomically)."""
    from ..sim.emulator import check_inputs
    from ..sim.netfile import read_net

    net = read_net(cfg.net)
    if cfg.time_steps is not None and cfg.time_steps != net.time_steps:
        raise SpikeshipError(f"{cfg.net} runs {net.time_steps} time steps; --time-steps {cfg.time_steps} differs")
    inputs, labels, indices = load_samples(cfg.dataset, cfg.data_dir, cfg.split, net.time_steps, cfg.samples,
                                           cfg.downsample)
    check_inputs(net, inputs)  # a shape mismatch fails here, before Lava starts
    r = run_backend(net, inputs, cfg.backend, workers=cfg.workers, chunk_samples=cfg.chunk_samples,
                    progress=cfg.progress)
    n, T = r["samples"], net.time_steps
    correct = int((r["predictions"] == labels).sum())
    result = {
        "net": str(cfg.net), "backend": cfg.backend, "workers": cfg.workers if cfg.backend == "lava" else 1,
        "dataset": cfg.dataset, "split": cfg.split, "samples": n, "time_steps": T,
        "accuracy": correct / n if n else 0.0, "correct": correct,
        "predictions": r["predictions"].tolist(), "labels": labels.tolist(),
        "sample_indices": indices.tolist(),
        "readout": r["readout"].tolist(),
        "two_weights": net.two_weights.tolist(),
        "spike_counts": {
            "layers": [f"layer {k} ({'dense' if len(s) == 1 else 'conv'} {'x'.join(map(str, s))})"
                       for k, s in enumerate(net.layer_shapes)],
            "window": "each layer's Lava window for the sample (sim/layout.py)",
            "per_sample": r["counts"].tolist(),
            "mean_per_layer": r["counts"].mean(0).tolist() if n else [],
        },
        "wall_s": r["wall_s"],
        "samples_per_s": n / r["wall_s"] if r["wall_s"] > 0 else None,
        "steps_per_s": n * T / r["wall_s"] if r["wall_s"] > 0 else None,  # sample time steps per second
        "simulated_steps": r["simulated_steps"],  # Lava: N * T + L streamed; emulator: N * (T + L) isolated
    }
    if cfg.out:
        write_json(result, cfg.out)
    return result


def write_json(obj: dict, path) -> Path:
    return files.write_json(path, obj)
