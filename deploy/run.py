"""`spikeship run`: a network over a data split, on any backend (Lava, the emulator), to ``run.json``.

The result holds accuracy, every prediction and TWO accumulator, the spikes of every layer per sample
(counted in that layer's window, which every backend produces identically), wall time and throughput.
Errors a user can cause end in a one-line :class:`SpikeshipError`, before any backend starts where they can be
detected up front (the file, the data, shapes, the output path).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import backends
from ..backends import RunOptions
from ..errors import SpikeshipError
from ..files import check_writable, write_json


@dataclass(frozen=True)
class RunConfig:
    net: str
    dataset: str | None = None  # None: the data set the .net's model card names
    data_dir: str | None = None
    split: str = "test"
    samples: int | None = None
    backend: str = "lava"
    out: str | None = None
    workers: int = 1
    device: str = "cpu"
    downsample: int | None = None  # None: as trained (the model card's), else 1
    chunk_samples: int = 32
    progress: bool = True

    def __post_init__(self) -> None:
        if self.backend not in backends.BACKENDS:
            raise SpikeshipError(f"unknown backend {self.backend!r}; choose {' or '.join(backends.BACKENDS)}")
        if self.samples is not None and self.samples <= 0:
            raise SpikeshipError(f"--samples must be positive, got {self.samples}")
        if self.workers <= 0:
            raise SpikeshipError(f"--workers must be positive, got {self.workers}")
        if self.chunk_samples <= 0:
            raise SpikeshipError("chunk size must be positive")
        backends.check_device(self.device, self.backend)


def run_stage(cfg: RunConfig) -> dict | None:
    """The whole stage: read the file, load the samples, run, write ``cfg.out`` (atomically). Under torchrun
    each rank runs a shard and rank 0 writes the one result (the other ranks return None)."""
    from .. import distributed
    from ..export.netx import read_net
    from ..progress import progress_bar
    from ..train.data import load_samples, run_data

    net = read_net(cfg.net)
    dataset, data_dir, downsample = run_data(net, cfg.dataset, cfg.data_dir, cfg.downsample)
    if cfg.out:
        check_writable(cfg.out)  # before anything runs
    samples = load_samples(dataset, data_dir, cfg.split, net.time_steps, cfg.samples, downsample)
    backends.check_inputs(net, samples.inputs)  # a shape mismatch fails here, before a backend starts
    w = distributed.world()
    warn_oversubscribed(cfg.backend, cfg.workers, w)
    with progress_bar(len(samples.inputs), cfg.backend, cfg.progress and w.is_main) as bar:
        r = backends.run_sharded(cfg.backend, net, samples.inputs,
                                 RunOptions(workers=cfg.workers, device=cfg.device, chunk_samples=cfg.chunk_samples,
                                            progress=bar.update))
    if r is None:
        return None
    n, T = r.samples, net.time_steps
    predictions = r.predictions
    correct = int((predictions == samples.labels).sum())
    result = {
        "net": str(cfg.net), "backend": cfg.backend, "workers": cfg.workers if cfg.backend == "lava" else 1,
        "device": cfg.device, "world_size": w.size, "dataset": dataset, "split": cfg.split, "samples": n, "time_steps": T,
        "accuracy": correct / n if n else 0.0, "correct": correct,
        "predictions": predictions.tolist(), "labels": samples.labels.tolist(),
        "sample_indices": samples.indices.tolist(),
        "readout": r.readout.tolist(),
        "two_weights": net.two_weights.tolist(),
        "spike_counts": {
            "layers": [f"layer {k} ({layer.kind} {'x'.join(map(str, layer.shape))})"
                       for k, layer in enumerate(net.layers)],
            "window": "each layer's Lava window for the sample (sim/layout.py)",
            "per_sample": r.counts.tolist(),
            "mean_per_layer": r.counts.mean(0).tolist() if n else [],
        },
        "wall_s": r.wall_s,
        "samples_per_s": n / r.wall_s if r.wall_s > 0 else None,
        "steps_per_s": n * T / r.wall_s if r.wall_s > 0 else None,  # sample time steps per second
        "simulated_steps": r.simulated_steps,  # Lava: N * T + L streamed; emulator: N * L * T layer steps
    }
    if cfg.out:
        write_json(cfg.out, result)
    return result


def warn_oversubscribed(backend: str, workers: int, w) -> None:
    """One warning line when Lava processes of every rank on this machine would outnumber its cores."""
    import os
    import sys

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if backend == "lava" and w.distributed and w.is_main and workers * w.local_size > cores:
        print(f"spikeship: warning: {w.local_size} ranks x --workers {workers} Lava processes on {cores} cores "
              "oversubscribe this machine", file=sys.stderr)
