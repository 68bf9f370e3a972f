"""Parity: PyTorch (the deploy-equivalent forward) and every backend, spike by spike.

Every spiking layer, every sample, every step; then the integer readout per step, the TWO accumulators and
the predictions. The first backend (the emulator) is the reference: PyTorch is compared with it over
PyTorch's ``T`` steps (slayer's delay-shifted view of each layer's window, ``sim.layout.slayer_view``), every
other backend over each layer's window. Steps are reported in the canonical per-sample frame of
:mod:`spikeship.sim.layout` (``tau`` of ``s_k``; ``-1`` is slayer's fill step ``y_k[0]``), readout steps as
``t`` in ``[0, T)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .. import backends
from ..backends import RunOptions, RunResult
from ..errors import SpikeshipError
from ..network import Network
from . import layout

PYTORCH = "pytorch"
REFERENCE = "emulator"


@dataclass(frozen=True)
class Mismatch:
    """The first difference: ``layer`` is a spiking layer index or ``"readout"`` / ``"accumulator"`` /
    ``"prediction"``; ``step`` is ``tau`` (layers), ``t`` (readout) or None."""

    pair: str
    layer: int | str
    sample: int
    step: int | None
    detail: str = ""

    def line(self) -> str:
        where = f"layer {self.layer}" if isinstance(self.layer, int) else str(self.layer)
        step = "" if self.step is None else f", step {self.step}"
        return f"parity: {self.pair} differ first at {where}, sample {self.sample}{step}" + \
            (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class LayerParity:
    """Per pair (``<runtime>-emulator``): entries compared and entries equal (neurons x steps x samples), and
    the spikes each side has in the compared entries ``[runtime, emulator]`` (equal when the pair agrees)."""

    layer: int
    kind: str
    compared: dict
    equal: dict
    spikes: dict


@dataclass(frozen=True)
class ParityResult:
    ok: bool
    samples: int
    time_steps: int
    layers: tuple[LayerParity, ...]
    first_mismatch: Mismatch | None
    readout_equal: dict
    predictions_equal: dict
    accuracy: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["first_mismatch_line"] = self.first_mismatch.line() if self.first_mismatch else None
        return d

    @property
    def compared(self) -> int:
        """Spike entries compared over all layers and pairs."""
        return sum(sum(layer.compared.values()) for layer in self.layers)


def first_difference(a: np.ndarray, b: np.ndarray) -> tuple[int, int] | None:
    """First ``(sample, step)`` (sample-major) where ``a`` and ``b`` (``(N, ..., T)``) differ, or None."""
    diff = np.asarray(a) != np.asarray(b)
    if not diff.any():
        return None
    per = diff.reshape(diff.shape[0], -1, diff.shape[-1]).any(1)  # (N, T)
    sample = int(np.argmax(per.any(1)))
    return sample, int(np.argmax(per[sample]))


@dataclass(frozen=True, eq=False)
class PytorchRun:
    """The deploy-equivalent PyTorch forward: ``spikes[k]`` slayer's ``y_k`` ``(N, *shape, T)`` uint8,
    ``readout_steps`` ``(N, classes, T)`` integers ``r_t``, ``readout`` ``(N, classes)`` accumulators."""

    spikes: list
    readout_steps: np.ndarray
    readout: np.ndarray

    @staticmethod
    def concat(parts: list["PytorchRun"]) -> "PytorchRun":
        """Runs of consecutive shards of the samples as one."""
        return PytorchRun(spikes=[np.concatenate([p.spikes[k] for p in parts]) for k in range(len(parts[0].spikes))],
                          readout_steps=np.concatenate([p.readout_steps for p in parts]),
                          readout=np.concatenate([p.readout for p in parts]))


def pytorch_run(model, net: Network, inputs: np.ndarray, batch_size: int = 256) -> PytorchRun:
    """``SpikeNet.forward`` on the samples (T steps), in integers, with the file's TWO weights."""
    import torch

    from ..train.model import decode_integer, readout_integers

    x_all = backends.model_inputs(net, inputs)
    chunks, steps = [], []
    two = torch.as_tensor(np.asarray(net.two_weights, dtype=np.int64))
    with torch.no_grad():
        for lo in range(0, len(x_all), batch_size):
            readout, ys = model(torch.as_tensor(x_all[lo:lo + batch_size], dtype=torch.float32))
            chunks.append([y.to(torch.uint8).numpy() for y in ys])
            steps.append(readout_integers(readout))
    r = torch.cat(steps)
    return PytorchRun(spikes=[np.concatenate(layer) for layer in zip(*chunks)], readout_steps=r.numpy(),
                      readout=decode_integer(r, two).numpy())


def _compare_layer(k: int, pair: str, got: np.ndarray, ref: np.ndarray, tau0: int, candidates: list,
                   compared: dict, equal: dict, spikes: dict) -> None:
    got = np.asarray(got).astype(np.uint8)
    if got.shape != ref.shape:
        candidates.append(Mismatch(pair, k, 0, None, f"shapes {got.shape} and {ref.shape}"))
        compared[pair], equal[pair], spikes[pair] = int(ref.size), 0, [int(got.sum()), int(ref.sum())]
        return
    compared[pair], equal[pair] = int(ref.size), int((got == ref).sum())
    spikes[pair] = [int(got.sum()), int(ref.sum())]
    hit = first_difference(got, ref)
    if hit is not None:
        sample, i = hit
        candidates.append(Mismatch(pair, k, sample, tau0 + i,
                                   f"{int(got[sample, ..., i].sum())} vs {int(ref[sample, ..., i].sum())} spikes at "
                                   "that step"))


def compare(net: Network, reference: RunResult, others: dict[str, RunResult], pytorch: PytorchRun | None = None,
            labels: np.ndarray | None = None) -> ParityResult:
    """Compare every runtime with the reference (windows recorded); the first mismatch is the lowest layer, then
    sample, then step (readout, accumulators and predictions last)."""
    T, n = net.time_steps, reference.samples
    layers, candidates = [], []
    for k, ref in enumerate(reference.windows):
        compared, equal, spikes = {}, {}, {}
        if pytorch is not None:
            _compare_layer(k, f"{PYTORCH}-{REFERENCE}", pytorch.spikes[k], layout.slayer_view(ref, k), -1,
                           candidates, compared, equal, spikes)
        for name, other in others.items():
            _compare_layer(k, f"{name}-{REFERENCE}", other.windows[k], ref, k, candidates, compared, equal, spikes)
        layers.append(LayerParity(k, net.layers[k].kind, compared, equal, spikes))
    readout_equal, predictions_equal, tail = {}, {}, []
    if pytorch is not None:
        hit = first_difference(pytorch.readout_steps, reference.readout_steps)
        readout_equal[f"{PYTORCH}-{REFERENCE}-steps"] = hit is None
        if hit is not None:
            tail.append(Mismatch(f"{PYTORCH}-{REFERENCE}", "readout", hit[0], hit[1], "integer readout input r_t"))
    accumulators = {name: other.readout for name, other in others.items()}
    if pytorch is not None:
        accumulators = {PYTORCH: pytorch.readout, **accumulators}
    ref_pred = reference.predictions
    for name, acc in accumulators.items():
        pair = f"{name}-{REFERENCE}"
        acc = np.asarray(acc)
        same = acc.shape == reference.readout.shape and bool(np.array_equal(acc, reference.readout))
        readout_equal[pair] = same
        if not same:
            bad = int(np.argmax((acc != reference.readout).any(1))) if acc.shape == reference.readout.shape else 0
            tail.append(Mismatch(pair, "accumulator", bad, None, "TWO accumulators"))
        pred = acc.argmax(1)
        predictions_equal[pair] = bool(np.array_equal(pred, ref_pred))
        if not predictions_equal[pair]:
            tail.append(Mismatch(pair, "prediction", int(np.argmax(pred != ref_pred)), None))
    candidates.sort(key=lambda m: (m.layer, m.sample, m.step if m.step is not None else -2))
    first = candidates[0] if candidates else (tail[0] if tail else None)
    accuracy = {}
    if labels is not None and n:
        labels = np.asarray(labels)
        accuracy = {name: float((np.asarray(acc).argmax(1) == labels).mean())
                    for name, acc in {REFERENCE: reference.readout, **accumulators}.items()}
    return ParityResult(ok=first is None, samples=n, time_steps=T, layers=tuple(layers), first_mismatch=first,
                        readout_equal=readout_equal, predictions_equal=predictions_equal, accuracy=accuracy)


def check_compatible(model, net: Network, where: str = "") -> None:
    """One line when the model and the network cannot be the same network (before anything runs)."""
    spec = model.spec
    problems = []
    if tuple(spec.input_shape) != tuple(net.input_shape):
        problems.append(f"input {tuple(spec.input_shape)} vs {tuple(net.input_shape)}")
    kinds = [layer.kind for layer in spec.layers]
    if kinds != [layer.kind for layer in net.layers]:
        problems.append(f"layers {kinds} vs {[layer.kind for layer in net.layers]}")
    else:
        shapes = [tuple(s) for s in spec.layer_shapes()]
        if shapes != net.layer_shapes:
            problems.append(f"layer shapes {shapes} vs {net.layer_shapes}")
    if spec.num_classes != net.num_classes:
        problems.append(f"{spec.num_classes} vs {net.num_classes} classes")
    if problems:
        raise SpikeshipError(f"{where}the checkpoint and the .net file are different networks: "
                             + "; ".join(problems))


@dataclass(frozen=True, eq=False)
class ParityRun:
    """Everything a parity check ran: the comparison, PyTorch's view and each backend's result."""

    result: ParityResult
    pytorch: PytorchRun
    runs: dict


def check_parity(net: Network, model, inputs: np.ndarray, labels: np.ndarray | None = None, *,
                 against: tuple[str, ...] = ("lava",), options: RunOptions = RunOptions(),
                 reference: RunResult | None = None) -> ParityRun | None:
    """Run PyTorch, the emulator (unless its ``reference`` result is given, with windows; on
    ``options.device``) and each other backend named in ``against`` (on the CPU) on ``inputs`` ``(N, C, H, W,
    T)``, and compare. Under torchrun each rank runs its shard and rank 0 compares the whole (the other ranks
    get None)."""
    from dataclasses import replace

    from .. import distributed

    check_compatible(model, net)
    x = backends.check_inputs(net, inputs)
    recording = replace(options, record_spikes=True)
    w = distributed.join(options.device)
    if reference is None or reference.windows is None:
        reference = backends.run_sharded(REFERENCE, net, x, replace(recording, progress=None))
    py = distributed.on_shards(lambda part: pytorch_run(model, net, part), x, PytorchRun.concat, w)
    others = replace(recording, device="cpu")  # ``options.device`` is where the emulator runs
    runs = {name: backends.run_sharded(name, net, x, others) for name in against if name != REFERENCE}
    if not w.is_main:
        return None
    return ParityRun(result=compare(net, reference, runs, py, labels), pytorch=py, runs={REFERENCE: reference, **runs})


def plot_rasters(run: ParityRun, net: Network, path, sample: int = 0, title: str = "") -> None:
    """Rasters of one sample, one row per layer: PyTorch's steps and each backend's window on the canonical
    step axis (``tau``); spikes where a runtime differs from the emulator are drawn in red."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    T, L = net.time_steps, net.num_layers
    reference = run.runs[REFERENCE]
    columns = [(f"PyTorch (slayer, steps 0..{T - 2})", PYTORCH)] + \
              [(f"{name} (layer windows)", name) for name in run.runs if name != REFERENCE]
    fig = Figure(figsize=(5.5 * len(columns), 2.2 * L + 0.8))
    axes = fig.subplots(L, len(columns), squeeze=False, sharex=True)
    for k in range(L):
        ref = reference.windows[k][sample]
        for c, (name, key) in enumerate(columns):
            ax = axes[k][c]
            if key == PYTORCH:
                got = layout.window_from_slayer(np.asarray(run.pytorch.spikes[k][sample]), k)
                valid = max(0, T - 1 - k)  # PyTorch computes s_k up to tau = T - 2
                got, want = got[..., :valid], ref[..., :valid]
            else:
                got, want = np.asarray(run.runs[key].windows[k][sample]), ref
            taus = np.arange(got.shape[-1]) + k
            neuron, step = np.nonzero(got.reshape(-1, got.shape[-1]))
            ax.scatter(taus[step], neuron, s=2, c="k", marker="|")
            bad_n, bad_s = np.nonzero((got != want).reshape(-1, got.shape[-1]))
            if len(bad_n):
                ax.scatter(taus[bad_s], bad_n, s=12, c="r", marker="x")
            ax.set_xlim(-1.5, T + L - 0.5)
            ax.set_ylabel(f"layer {k} ({net.layers[k].kind})\nneuron")
            if k == 0:
                ax.set_title(name, fontsize=10)
    for ax in axes[-1]:
        ax.set_xlabel("step of the sample (tau); layer k starts at tau = k")
    fig.suptitle(title or f"sample {sample}: black = spike, red = differs from the emulator", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")


# ------------------------------------------------------------------------------------------------ stage

@dataclass(frozen=True)
class ParityConfig:
    model: str  # RUN/model.pt (holds the data set, its folder and T)
    net: str
    samples: int = 20
    out: str | None = None
    plot: str | None = None
    split: str = "test"
    dataset: str | None = None  # overrides the checkpoint's
    data_dir: str | None = None  # overrides the checkpoint's
    backends: tuple[str, ...] = ("lava",)
    workers: int = 1
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.samples <= 0:
            raise SpikeshipError(f"--samples must be positive, got {self.samples}")
        if self.workers <= 0:
            raise SpikeshipError(f"--workers must be positive, got {self.workers}")
        backends.check_device(self.device, REFERENCE)  # the device is the emulator's; the others run on the CPU
        for path, suffix, flag in ((self.out, ".json", "--out"), (self.plot, ".png", "--plot")):
            if path is not None and not str(path).endswith(suffix):
                raise SpikeshipError(f"{flag} {path}: expected a {suffix} file name")


def parity_stage(cfg: ParityConfig) -> ParityRun | None:
    """Load the checkpoint, the file and the samples; compare; write JSON and the raster plot (together).
    Under torchrun each rank compares its shard's runs and rank 0 writes (the other ranks return None)."""
    from ..export.netx import read_net
    from ..files import atomic_outputs, check_writable
    from ..progress import progress_bar
    from ..train.checkpoint import load_checkpoint
    from ..train.data import load_samples

    ckpt = load_checkpoint(cfg.model)
    net = read_net(cfg.net)
    if ckpt.time_steps != net.time_steps:
        raise SpikeshipError(f"{cfg.model} was trained with T = {ckpt.time_steps}, {cfg.net} runs {net.time_steps}")
    model = ckpt.build_model()
    check_compatible(model, net, f"{cfg.model} and {cfg.net}: ")
    targets = [p for p in (cfg.out, cfg.plot) if p is not None]
    check_writable(*targets)  # before anything runs
    samples = load_samples(cfg.dataset or ckpt.dataset, cfg.data_dir or ckpt.data_dir, cfg.split, net.time_steps,
                           cfg.samples, int(ckpt.config.get("sensor_downsample", 1) or 1))
    backends.check_inputs(net, samples.inputs)
    from .. import distributed

    with progress_bar(len(samples.inputs), ",".join(cfg.backends), cfg.progress and distributed.world().is_main) as bar:
        options = RunOptions(workers=cfg.workers, device=cfg.device, progress=bar.update)
        run = check_parity(net, model, samples.inputs, samples.labels, against=cfg.backends, options=options)
    if run is None:
        return None
    result = run.result
    with atomic_outputs(*targets) as temps:
        for target, tmp in zip(targets, temps):
            if target == cfg.out:
                import json

                d = result.to_dict()
                d.update(model=str(cfg.model), net=str(cfg.net), dataset=samples.dataset, split=cfg.split,
                         world_size=distributed.world().size,
                         sample_indices=[int(i) for i in samples.indices],
                         frames="layer steps: canonical per-sample tau (sim/layout.py); readout steps: t")
                tmp.write_text(json.dumps(d, indent=1) + "\n")
            else:
                sample = result.first_mismatch.sample if result.first_mismatch else 0
                plot_rasters(run, net, tmp, sample=sample)
    return run
