"""Parity: PyTorch (the deploy-equivalent forward), the emulator and Lava, spike by spike.

Every spiking layer, every sample, every step; then the integer readout per step, the TWO accumulators and
the predictions. The emulator is the hub: PyTorch is compared with it over PyTorch's ``T`` steps (slayer's
delay-shifted view, ``sim.layout.slayer_view``), Lava over each layer's window (``sim.layout.window_taus``).
Steps are reported in the canonical per-sample frame of :mod:`spikeship.sim.layout` (``tau`` of ``s_k``;
``-1`` is slayer's fill step ``y_k[0]``), readout steps as ``t`` in ``[0, T)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from . import layout

PAIRS = ("pytorch-emulator", "lava-emulator")


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
    """Per pair: entries compared and entries equal (neurons x steps x samples); spike totals of the
    emulator and Lava over Lava's windows and of PyTorch over its own T steps (slayer's shifted view)."""

    layer: int
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


def first_difference(a: np.ndarray, b: np.ndarray) -> tuple[int, int] | None:
    """First ``(sample, step)`` (sample-major) where ``a`` and ``b`` (``(N, ..., T)``) differ, or None."""
    diff = np.asarray(a) != np.asarray(b)
    if not diff.any():
        return None
    per = diff.reshape(diff.shape[0], -1, diff.shape[-1]).any(1)  # (N, T)
    sample = int(np.argmax(per.any(1)))
    return sample, int(np.argmax(per[sample]))


@dataclass(frozen=True, eq=False)
class Views:
    """One runtime's results in parity's terms (any may be None when that runtime did not run).

    ``pytorch_spikes[k]``: slayer's ``y_k`` ``(N, *shape, T)``; ``emulator_spikes[k]``: canonical ``s_k``
    ``(N, *shape, T + L)``; ``lava_spikes[k]``: Lava's window ``(N, *shape, T)``. ``*_readout_steps``:
    ``(N, classes, T)`` integers ``r_t``; ``*_readout``: ``(N, classes)`` accumulators; ``*_predictions``."""

    time_steps: int
    emulator_spikes: list
    emulator_readout_steps: np.ndarray
    emulator_readout: np.ndarray
    pytorch_spikes: list | None = None
    pytorch_readout_steps: np.ndarray | None = None
    pytorch_readout: np.ndarray | None = None
    lava_spikes: list | None = None
    lava_readout: np.ndarray | None = None


def compare(v: Views, labels: np.ndarray | None = None) -> ParityResult:
    """Compare the views; the first mismatch is the lowest layer, then sample, then step (readout last)."""
    T = v.time_steps
    n = v.emulator_readout.shape[0]
    layers, candidates = [], []
    for k, emu in enumerate(v.emulator_spikes):
        compared, equal, spikes = {}, {}, {"emulator_window": int(emu[..., layout.window_taus(k, T)].sum())}
        others = {}
        if v.pytorch_spikes is not None:
            others[PAIRS[0]] = (np.asarray(v.pytorch_spikes[k]), layout.slayer_view(emu, T), -1)
            spikes["pytorch_view"] = int(np.asarray(v.pytorch_spikes[k]).sum())
        if v.lava_spikes is not None:
            others[PAIRS[1]] = (np.asarray(v.lava_spikes[k]), emu[..., layout.window_taus(k, T)], k)
            spikes["lava_window"] = int(np.asarray(v.lava_spikes[k]).sum())
        for pair, (got, ref, tau0) in others.items():
            got = got.astype(np.uint8)
            if got.shape != ref.shape:
                candidates.append(Mismatch(pair, k, 0, None, f"shapes {got.shape} and {ref.shape}"))
                compared[pair], equal[pair] = int(ref.size), 0
                continue
            compared[pair] = int(ref.size)
            equal[pair] = int((got == ref).sum())
            hit = first_difference(got, ref)
            if hit is not None:
                sample, i = hit
                candidates.append(Mismatch(pair, k, sample, tau0 + i,
                                           f"{int(got[sample, ..., i].sum())} vs {int(ref[sample, ..., i].sum())} "
                                           "spikes at that step"))
        layers.append(LayerParity(k, compared, equal, spikes))
    readout_equal, predictions_equal = {}, {}
    emu_pred = v.emulator_readout.argmax(1)
    tail = []
    if v.pytorch_readout_steps is not None:
        hit = first_difference(v.pytorch_readout_steps, v.emulator_readout_steps)
        readout_equal["pytorch-emulator-steps"] = hit is None
        if hit is not None:
            tail.append(Mismatch(PAIRS[0], "readout", hit[0], hit[1], "integer readout input r_t"))
    for pair, acc in ((PAIRS[0], v.pytorch_readout), (PAIRS[1], v.lava_readout)):
        if acc is None:
            continue
        acc = np.asarray(acc)
        same = acc.shape == v.emulator_readout.shape and bool(np.array_equal(acc, v.emulator_readout))
        readout_equal[pair] = same
        if not same:
            bad = int(np.argmax((acc != v.emulator_readout).any(1))) if acc.shape == v.emulator_readout.shape else 0
            tail.append(Mismatch(pair, "accumulator", bad, None, "TWO accumulators"))
        pred = acc.argmax(1)
        predictions_equal[pair] = bool(np.array_equal(pred, emu_pred))
        if not predictions_equal[pair]:
            tail.append(Mismatch(pair, "prediction", int(np.argmax(pred != emu_pred)), None))
    candidates.sort(key=lambda m: (m.layer, m.sample, m.step if m.step is not None else -2))
    first = candidates[0] if candidates else (tail[0] if tail else None)
    accuracy = {}
    if labels is not None:
        labels = np.asarray(labels)
        accuracy["emulator"] = float((emu_pred == labels).mean()) if n else 0.0
        if v.pytorch_readout is not None:
            accuracy["pytorch"] = float((np.asarray(v.pytorch_readout).argmax(1) == labels).mean()) if n else 0.0
        if v.lava_readout is not None:
            accuracy["lava"] = float((np.asarray(v.lava_readout).argmax(1) == labels).mean()) if n else 0.0
    return ParityResult(ok=first is None, samples=n, time_steps=T, layers=tuple(layers), first_mismatch=first,
                        readout_equal=readout_equal, predictions_equal=predictions_equal, accuracy=accuracy)


def pytorch_views(model, inputs: np.ndarray, two_weights: np.ndarray, batch_size: int = 256):
    """The deploy-equivalent forward: ``SpikeNet.forward`` on the samples (T steps), in integers.

    Returns ``(spikes y_k per layer (N, *shape, T) uint8, readout steps (N, classes, T), accumulators)``."""
    import torch

    from ..train.model import decode_integer, readout_integers

    chunks, steps = [], []
    two = torch.as_tensor(np.asarray(two_weights, dtype=np.int64))
    with torch.no_grad():
        for lo in range(0, len(inputs), batch_size):
            x = torch.as_tensor(np.asarray(inputs[lo:lo + batch_size]), dtype=torch.float32)
            readout, ys = model(x)
            chunks.append([y.to(torch.uint8).numpy() for y in ys])
            steps.append(readout_integers(readout))
    spikes = [np.concatenate(layer) for layer in zip(*chunks)]
    r = torch.cat(steps)
    return spikes, r.numpy(), decode_integer(r, two).numpy()


def check_parity(net, model, inputs: np.ndarray, labels: np.ndarray | None = None, *, lava: bool = True,
                 workers: int = 1, progress=None) -> tuple[ParityResult, Views]:
    """Run all three on ``inputs`` ``(N, C, H, W, T)`` and compare. ``net``: a NetSpec or a path."""
    from .emulator import check_inputs, emulate
    from .netfile import NetSpec, read_net

    if not isinstance(net, NetSpec):
        net = read_net(net)
    x = check_inputs(net, inputs)
    emu = emulate(net, x, record_spikes=True)
    model_in = np.asarray(inputs)
    if model_in.ndim == x.ndim and model_in.shape[1:-1] != tuple(net.input_shape):
        model_in = x.reshape((x.shape[0],) + tuple(net.input_shape) + (x.shape[-1],))
    py_spikes, py_steps, py_acc = pytorch_views(model, model_in, net.two_weights)
    lava_spikes = lava_readout = None
    if lava:
        from ..deploy.lava_run import run_lava_sharded

        res = run_lava_sharded(net, x, workers=workers, record_spikes=True, progress=progress)
        lava_spikes, lava_readout = res.spikes, res.readout
    views = Views(time_steps=net.time_steps, emulator_spikes=emu.spikes, emulator_readout_steps=emu.readout_steps,
                  emulator_readout=emu.readout, pytorch_spikes=py_spikes, pytorch_readout_steps=py_steps,
                  pytorch_readout=py_acc, lava_spikes=lava_spikes, lava_readout=lava_readout)
    return compare(views, labels), views


def plot_rasters(views: Views, path, sample: int = 0, title: str = "") -> None:
    """Rasters of one sample, PyTorch (left) and Lava (right), one row per layer, on the canonical step axis;
    spikes where the two differ from the emulator are drawn in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    T = views.time_steps
    L = len(views.emulator_spikes)
    fig, axes = plt.subplots(L, 2, figsize=(11, 2.2 * L + 0.8), squeeze=False, sharex=True)
    columns = (("PyTorch (slayer, delay-shifted view)", views.pytorch_spikes, -1, "slayer"),
               ("Lava (fixed_pt, layer windows)", views.lava_spikes, None, "lava"))
    for k in range(L):
        emu = views.emulator_spikes[k][sample]
        for c, (name, spikes, _, kind) in enumerate(columns):
            ax = axes[k][c]
            if spikes is None:
                ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes)
                continue
            got = np.asarray(spikes[k][sample]).reshape(-1, T)
            if kind == "slayer":
                ref = layout.slayer_view(emu, T).reshape(-1, T)
                taus = np.arange(T) - 1
            else:
                ref = emu[..., layout.window_taus(k, T)].reshape(-1, T)
                taus = np.arange(T) + k
            neuron, step = np.nonzero(got)
            ax.scatter(taus[step], neuron, s=2, c="k", marker="|")
            bad_n, bad_s = np.nonzero(got != ref)
            if len(bad_n):
                ax.scatter(taus[bad_s], bad_n, s=12, c="r", marker="x")
            ax.set_ylabel(f"layer {k}\nneuron")
            if k == 0:
                ax.set_title(name, fontsize=10)
    for ax in axes[-1]:
        ax.set_xlabel("step tau (canonical per-sample frame, sim/layout.py)")
    fig.suptitle(title or f"sample {sample}: black = spike, red = differs from the emulator", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ stage

@dataclass(frozen=True)
class ParityConfig:
    model: str  # RUN/model.pt (holds the data set, its folder and T)
    net: str
    samples: int = 20
    out: str | None = None
    plot: str | None = None
    split: str = "test"
    data_dir: str | None = None  # overrides the checkpoint's
    workers: int = 1
    lava: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        from ..errors import SpikeshipError

        if self.samples <= 0:
            raise SpikeshipError(f"--samples must be positive, got {self.samples}")
        if self.workers <= 0:
            raise SpikeshipError(f"--workers must be positive, got {self.workers}")


def parity_stage(cfg: ParityConfig) -> ParityResult:
    """Load the checkpoint, the file and the samples; compare; write JSON and the raster plot."""
    from ..deploy.run import progress_bar, load_samples, write_json
    from ..errors import SpikeshipError
    from ..train.checkpoint import load_checkpoint
    from .emulator import check_inputs
    from .netfile import read_net

    ckpt = load_checkpoint(cfg.model)
    net = read_net(cfg.net)
    if ckpt.time_steps != net.time_steps:
        raise SpikeshipError(f"{cfg.model} was trained with T = {ckpt.time_steps}, {cfg.net} runs {net.time_steps}")
    if tuple(ckpt.spec.input_shape) != tuple(net.input_shape):
        raise SpikeshipError(f"{cfg.model} takes input {tuple(ckpt.spec.input_shape)}, {cfg.net} takes "
                             f"{tuple(net.input_shape)}")
    inputs, labels, indices = load_samples(ckpt.dataset, cfg.data_dir or ckpt.data_dir, cfg.split,
                                           net.time_steps, cfg.samples,
                                           int(ckpt.config.get("sensor_downsample", 1) or 1))
    check_inputs(net, inputs)
    model = ckpt.build_model()
    with progress_bar(len(inputs), "lava", cfg.progress and cfg.lava) as bar:
        result, views = check_parity(net, model, inputs, labels, lava=cfg.lava, workers=cfg.workers,
                                     progress=bar.update)
    if cfg.out:
        d = result.to_dict()
        d.update(model=str(cfg.model), net=str(cfg.net), dataset=ckpt.dataset, split=cfg.split,
                 sample_indices=[int(i) for i in indices],
                 frames="layer steps: canonical per-sample tau (sim/layout.py); readout steps: t")
        write_json(d, cfg.out)
    if cfg.plot:
        sample = result.first_mismatch.sample if result.first_mismatch else 0
        plot_rasters(views, cfg.plot, sample=sample)
    return result
