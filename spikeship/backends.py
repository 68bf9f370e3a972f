"""The backend seam: one registry of runtimes, one ``run`` signature, one result record.

    result = backends.run("lava", net, inputs, RunOptions(record_spikes=True))

``run``, ``report``, ``parity`` and the demo all go through here. A backend is a function
``run(net, x, options) -> RunResult`` named in :data:`BACKENDS` by module path, imported only when used (so the
emulator runs where Lava is not installed). Adding a backend or an engine is one entry here (or one entry in
the emulator's engine table).

Results are in one frame, each spiking layer's *window* (``sim/layout.py``): for layer k and a sample, the
canonical per-sample steps ``tau`` in ``[k, k + T)``, which is what Lava emits for that sample and what every
count of the report is taken over.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import SpikeshipError
from .network import Network


@dataclass(frozen=True)
class RunOptions:
    """How to run: ``record_spikes`` keeps every layer's spike windows; ``workers``: Lava processes, each with
    its own network on a contiguous shard of the samples (the emulator uses threads instead, see its
    docstring); ``device``: ``cpu`` or ``cuda`` (emulator only); ``progress`` is called with the number of
    samples finished since the last call."""

    record_spikes: bool = False
    workers: int = 1
    device: str = "cpu"
    chunk_samples: int = 32
    progress: Callable[[int], None] | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise SpikeshipError(f"--workers must be at least 1, not {self.workers}")
        if self.chunk_samples < 1:
            raise SpikeshipError("chunk size must be positive")


@dataclass(frozen=True, eq=False)
class RunResult:
    """What every backend returns. ``windows[k]``: ``(N, *shape_k, T)`` uint8, layer k's window (None unless
    recorded). ``counts``: ``(N, L)`` spikes of each layer in its window. ``readout``: ``(N, classes)`` int64
    TWO accumulators. ``readout_steps``: ``(N, classes, T)`` integer readout input ``r_t``, when the backend
    can see it (the emulator), else None. ``simulated_steps``: steps the backend computed; ``wall_s``: seconds,
    set-up included."""

    backend: str
    windows: tuple | None
    counts: np.ndarray
    readout: np.ndarray
    readout_steps: np.ndarray | None
    simulated_steps: int
    wall_s: float

    @property
    def predictions(self) -> np.ndarray:
        return self.readout.argmax(1)

    @property
    def samples(self) -> int:
        return int(self.readout.shape[0])

    @staticmethod
    def concat(parts: list["RunResult"]) -> "RunResult":
        """Results of consecutive shards of the samples as one (steps summed; wall time of the slowest shard,
        as the shards run at once)."""
        first = parts[0]
        cat = lambda arrays: None if any(a is None for a in arrays) else np.concatenate(arrays)  # noqa: E731
        windows = None if first.windows is None else \
            tuple(np.concatenate([p.windows[k] for p in parts]) for k in range(len(first.windows)))
        return RunResult(backend=first.backend, windows=windows, counts=cat([p.counts for p in parts]),
                         readout=cat([p.readout for p in parts]), readout_steps=cat([p.readout_steps for p in parts]),
                         simulated_steps=sum(p.simulated_steps for p in parts), wall_s=max(p.wall_s for p in parts))

    def subset(self, indices) -> "RunResult":
        """The result restricted to the samples ``indices`` (times and step counts kept as they were)."""
        idx = np.asarray(indices)
        return RunResult(backend=self.backend,
                         windows=None if self.windows is None else tuple(w[idx] for w in self.windows),
                         counts=self.counts[idx], readout=self.readout[idx],
                         readout_steps=None if self.readout_steps is None else self.readout_steps[idx],
                         simulated_steps=self.simulated_steps, wall_s=self.wall_s)


@dataclass(frozen=True)
class Backend:
    """One runtime: ``target`` is ``"module:function"``; ``needs`` names what must be installed for it."""

    target: str
    help: str
    needs: str = ""

    def load(self, name: str) -> Callable:
        module, function = self.target.split(":")
        try:
            return getattr(importlib.import_module(module), function)
        except ImportError as e:
            raise SpikeshipError(f"the {name} backend needs {self.needs or e.name} ({e}); "
                                 f"choose another --backend") from None


BACKENDS: dict[str, Backend] = {
    "emulator": Backend("spikeship.sim.emulator:run", "the bit-exact batched integer emulator (--device cpu or cuda)"),
    "lava": Backend("spikeship.deploy.lava_run:run", "Lava's fixed-point CPU simulator (Loihi2SimCfg fixed_pt)",
                    needs="lava-nc and lava-dl"),
}


def add_run_arguments(parser, *, default_backend: str, backend_help: str) -> None:
    """The flags of the stages that run a .net file on a data split (``run``, ``report``): the file, the data,
    the split, how many samples, the backend and the emulator's device."""
    from .train.data import add_data_arguments

    parser.add_argument("net", metavar="model.net", help="an exported spikeship .net file (it holds T)")
    add_data_arguments(parser, default=None, default_help="the one the .net's model card names")
    parser.add_argument("--split", choices=("train", "test"), default="test")
    parser.add_argument("--samples", type=int, default=None, metavar="N",
                        help="number of samples (a fixed subset; default: the whole split)")
    parser.add_argument("--backend", choices=tuple(BACKENDS), default=default_backend,
                        help=f"{backend_help} (default: {default_backend})")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where the emulator runs (default: cpu; Lava runs on the CPU)")


def run(backend: str, net: Network, inputs, options: RunOptions = RunOptions()) -> RunResult:
    """Run binary ``inputs`` ``(N, *input_shape, T)`` (or ``(N, *feed_shape, T)``) through ``backend``."""
    if backend not in BACKENDS:
        raise SpikeshipError(f"unknown backend {backend!r}; choose {' or '.join(BACKENDS)}")
    x = check_inputs(net, inputs)
    if x.shape[0] == 0:
        raise SpikeshipError("no samples to run")
    return BACKENDS[backend].load(backend)(net, x, options)


def run_sharded(backend: str, net: Network, inputs, options: RunOptions = RunOptions()) -> RunResult | None:
    """:func:`run` under a launcher (torchrun): this rank runs its contiguous shard of the samples and rank 0
    gets the whole result in sample order (the other ranks get None). One process: :func:`run` itself."""
    from . import distributed

    x = check_inputs(net, inputs)
    return distributed.on_shards(lambda part: run(backend, net, part, options), x, RunResult.concat,
                                 distributed.join(options.device))


def check_inputs(net: Network, inputs) -> np.ndarray:
    """Inputs as an ``(N, *feed_shape, T)`` uint8 array of binary spikes, or a one-line error.

    ``(N, C, H, W, T)`` input for a network whose first layer flattens is flattened in C, H, W order."""
    x = inputs.detach().cpu().numpy() if hasattr(inputs, "detach") else np.asarray(inputs)
    feed = net.feed_shape
    expected = tuple(feed) + (net.time_steps,)
    if x.ndim >= 3 and len(feed) == 1 and x.shape[-1] == net.time_steps \
            and tuple(x.shape[1:-1]) in (tuple(net.input_shape), feed):
        x = x.reshape(x.shape[0], -1, x.shape[-1])
    if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
        raise SpikeshipError(f"input shape {tuple(x.shape[1:])} does not match the network input {expected} "
                             f"(input {tuple(net.input_shape)}, T={net.time_steps})")
    if x.size and not np.all((x == 0) | (x == 1)):
        raise SpikeshipError("input must be binary spikes (0/1); got other values")
    return x.astype(np.uint8, copy=False)


def model_inputs(net: Network, inputs: np.ndarray) -> np.ndarray:
    """Inputs as the PyTorch model takes them, ``(N, C, H, W, T)``."""
    x = check_inputs(net, inputs)
    return x.reshape((x.shape[0],) + tuple(net.input_shape) + (x.shape[-1],))
