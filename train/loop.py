"""The training loop: MSG surrogate gradients + TWO decoding on slayer CUBA networks, checkpoint per epoch.

    metrics = train(TrainConfig(arch="dense", epochs=8, out="runs/demo"))

Writes DIR/model.pt (checkpoint, atomically, after every epoch), DIR/metrics.json, DIR/history.csv,
DIR/curves.png and DIR/two_weights.png, holding DIR/.lock meanwhile (one training process per folder,
train/runlock.py); a folder that already holds a run is refused unless resumed. ``resume=True`` continues
the run in DIR (identified by its checkpoint, not by how DIR is spelled) with the stored optimizer,
scheduler, RNG and TWO state, so an interrupted run ends exactly where an uninterrupted one would (CPU;
data order comes from a generator seeded by (seed, epoch)). A resumed run may be given more epochs than it
was started with: see :func:`replan_schedule` for what the learning rate then does.

Under torchrun (``torchrun --nproc_per_node N -m spikeship train ...``) every process runs :func:`train`
data-parallel: train/parallel.py says how N processes train what one would.

Loss: cross-entropy on the TWO-decoded output y = (1/T) sum_t a_t o_t (as the authors do: the loss sees
the weighted output, so a_t scales each step's gradient), with a_t as the chip applies them
(``two.deployed_weights``: rounded to 1/64, zero during the L steps of pipeline fill), so the float decode
and the deployed integer decode make the same predictions. AdamW with a per-epoch cosine schedule.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import distributed
from ..distributed import World
from ..errors import SpikeshipError
from . import parallel, two
from .checkpoint import load_checkpoint, save_checkpoint
from .model import ModelSpec, NeuronSpec, SpikeNet, conv_spec, decode_integer, dense_spec, readout_integers, \
    read_model_config, recurrent_spec, spec_from_toml
from .msg import SURROGATES, SurrogateConfig
from .outputs import plot_curves, plot_two_weights, write_history, write_metrics
from .runlock import run_lock

METHODS = ("msg", "sg")
DEVICES = ("cpu", "cuda")
#: fields that may differ between a run and its resumption: the run folder is found by ``out`` and identified
#: by the checkpoint in it, however its path is spelled; ``epochs`` may grow (never below those done)
_RESUME_FREE = ("resume", "device", "progress", "out", "epochs")
#: fields naming files: compared as the files they name, stored as absolute paths
_PATH_FIELDS = ("data_dir", "model_config", "init")
#: a folder holding any of these holds a training run
RUN_FILES = ("model.pt", "metrics.json", "history.csv")
#: everything a run writes into its folder
RUN_OUTPUTS = RUN_FILES + ("curves.png", "two_weights.png")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``method="sg"`` means mask probability 0 whatever ``mask_prob`` says;
    ``model_config`` (a TOML file, see ``spec_from_toml``) replaces the ``arch`` preset; ``init`` (a checkpoint,
    e.g. from ``spikeship import``) replaces both: its network, weights and TWO weights are where training
    starts."""

    dataset: str = "event-digits"
    data_dir: str | None = None
    arch: str = "dense"
    model_config: str | None = None
    time_steps: int = 16
    epochs: int = 10
    batch_size: int = 32
    lr: float = 0.01
    weight_decay: float = 0.0
    method: str = "msg"
    mask_prob: float = 0.5
    surrogate: str = "arctan"
    alpha: float = 2.0
    rescale: bool = False
    decode: str = "two"
    warmup: int = 0
    beta: float = 0.3
    seed: int = 0
    device: str = "cpu"
    out: str = "runs/train"
    resume: bool = False
    augment: bool = False
    max_samples: int | None = None
    sensor_downsample: int = 1
    progress: bool = True
    init: str | None = None

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise SpikeshipError(msg)

        if self.arch not in ARCHS:
            bad(f"unknown architecture {self.arch!r}; known: {', '.join(ARCHS)} (or --config FILE)")
        if self.method not in METHODS:
            bad(f"unknown method {self.method!r}; known: {', '.join(METHODS)}")
        if self.surrogate not in SURROGATES:
            bad(f"unknown surrogate {self.surrogate!r}; known: {', '.join(SURROGATES)}")
        if self.decode not in two.DECODES:
            bad(f"unknown decode {self.decode!r}; known: {', '.join(two.DECODES)}")
        if self.device not in DEVICES:
            bad(f"unknown device {self.device!r}; known: {', '.join(DEVICES)}")
        if not 0.0 <= self.mask_prob < 1.0:
            bad(f"mask probability must be in [0, 1), got {self.mask_prob}")
        for name in ("time_steps", "epochs", "batch_size"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                bad(f"{name.replace('_', ' ')} must be a positive integer, got {getattr(self, name)!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            bad(f"learning rate must be positive, got {self.lr}")
        if not (self.alpha > 0 and self.weight_decay >= 0 and 0 <= self.beta <= 1 and self.warmup >= 0):
            bad("alpha must be positive, weight decay >= 0, beta in [0, 1], warm-up >= 0")
        if self.max_samples is not None and self.max_samples < 1:
            bad(f"max samples must be at least 1, got {self.max_samples}")
        if self.init is not None and self.model_config is not None:
            bad("--init takes the network from its checkpoint; it does not go with --config")

    @property
    def mask_probability(self) -> float:
        return 0.0 if self.method == "sg" else self.mask_prob

    def surrogate_config(self) -> SurrogateConfig:
        return SurrogateConfig(self.surrogate, self.alpha, self.mask_probability, self.rescale)

    def two_config(self) -> two.TWOConfig:
        return two.TWOConfig(self.time_steps, self.decode, self.beta, self.warmup)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def build_spec(config: TrainConfig, input_shape: tuple[int, int, int], num_classes: int, init=None) -> ModelSpec:
    """The network for ``config`` (arch preset, TOML file, or the ``init`` checkpoint's); T must exceed the
    pipeline depth."""
    if init is not None:
        spec = init.spec
        if tuple(spec.input_shape) != tuple(input_shape) or spec.num_classes != num_classes:
            raise SpikeshipError(f"--init {config.init}: its network takes {tuple(spec.input_shape)} with "
                                 f"{spec.num_classes} classes, {config.dataset} gives {tuple(input_shape)} with "
                                 f"{num_classes}")
    elif config.model_config is not None:
        spec = spec_from_toml(config.model_config, input_shape, num_classes)
    else:
        try:
            spec = ARCHS[config.arch](input_shape, num_classes)
        except ValueError as e:
            raise SpikeshipError(f"{config.arch} network does not fit input {input_shape}: {e}") from None
    if config.time_steps <= spec.num_spiking_layers:
        raise SpikeshipError(f"time steps T={config.time_steps} must be larger than the number of spiking layers "
                             f"({spec.num_spiking_layers}): the readout sees nothing in the first "
                             f"{spec.num_spiking_layers} steps")
    return spec


# Presets tuned on event-digits (docs/BENCHMARKS.md "Training ablation").
DEFAULT_NEURON = NeuronSpec(threshold=1.25, current_decay=0.25, voltage_decay=0.03)
DEFAULT_WEIGHT_SCALE = 1.0
DENSE_HIDDEN = (128,)
CONV_CHANNELS = (8, 16)
CONV_HIDDEN = 64
# The speech preset, tuned on event-speech (docs/BENCHMARKS.md "Speech"): threshold and initial weights 6.4x and
# 6x the event-digits preset's, so the 8-bit weight step is finer relative to the threshold and AdamW's steps
# smaller relative to the weights; the decays stay (longer memory did not help).
SPEECH_NEURON = NeuronSpec(threshold=8.0, current_decay=0.25, voltage_decay=0.03)
SPEECH_WEIGHT_SCALE = 6.0
SPEECH_HIDDEN = (128,)

#: --arch preset -> network for (input shape, classes); ``speech``: recurrent layers for audio (SHD, spoken digits)
ARCHS = {
    "dense": lambda shape, classes: replace(dense_spec(shape, classes, DENSE_HIDDEN, DEFAULT_NEURON),
                                            weight_scale=DEFAULT_WEIGHT_SCALE),
    "conv": lambda shape, classes: replace(conv_spec(shape, classes, CONV_CHANNELS, CONV_HIDDEN, DEFAULT_NEURON),
                                           weight_scale=DEFAULT_WEIGHT_SCALE),
    "speech": lambda shape, classes: replace(recurrent_spec(shape, classes, SPEECH_HIDDEN, SPEECH_NEURON),
                                             weight_scale=SPEECH_WEIGHT_SCALE),
}


def prepare_device(device: str, w: World = World()) -> torch.device:
    """CPU, or this process's GPU (``cuda:LOCAL_RANK`` under torchrun: one GPU per process) with slayer's JIT
    arch list set to that GPU's own capability.

    slayer's ``jitconfig`` forces arch 8.0 on any GPU of capability >= 8, which has no kernel image for
    Hopper; its documented knob ``jitconfig.TORCH_CUDA_ARCH_LIST`` is set before the first kernel build.
    """
    if device == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise SpikeshipError("--device cuda: no CUDA device is available here (use --device cpu)")
    count = torch.cuda.device_count()
    if w.local_size > count:  # every process of this machine fails alike
        raise SpikeshipError(f"--device cuda: {w.local_size} processes on this machine need one GPU each; it has "
                             f"{count} (torchrun --nproc_per_node {count})")
    from lava.lib.dl.slayer import jitconfig

    index = w.local_rank
    torch.cuda.set_device(index)
    major, minor = torch.cuda.get_device_capability(index)
    arch = f"{major}.{minor}"
    jitconfig.TORCH_CUDA_ARCH_LIST = arch
    os.environ["TORCH_CUDA_ARCH_LIST"] = arch
    return torch.device("cuda", index)


@contextmanager
def _deterministic(device: torch.device):
    previous = torch.are_deterministic_algorithms_enabled()
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(1_000_003 * seed + epoch))


@torch.no_grad()
def evaluate(model: SpikeNet, spikes: torch.Tensor, labels: torch.Tensor, two_weights, batch_size: int,
             device: torch.device, w: World = World()) -> dict:
    """Float-decode accuracy, integer deploy-decode accuracy, per-step accuracy and spike rates per layer.
    Under torchrun each rank evaluates a contiguous shard and the counts are summed: the figures are over the
    whole split on every rank, each sample counted once (every rank must call it)."""
    model.eval()
    a = torch.as_tensor(two_weights, dtype=torch.float64)
    a_int = torch.from_numpy(two.quantize_two_weights(a, model.spec.num_spiking_layers))
    a_dec = two.deployed_weights(a, model.spec.num_spiking_layers)
    n_all = len(labels)
    mine = distributed.shard(n_all, w)
    spikes, labels = spikes[mine], labels[mine]
    n = len(labels)
    correct = correct_int = 0
    step_correct = torch.zeros(a.shape[0], dtype=torch.int64)
    rates = torch.zeros(model.spec.num_spiking_layers, dtype=torch.float64)
    for start in range(0, n, batch_size):
        x = spikes[start:start + batch_size].to(device=device, dtype=torch.float32)
        y = labels[start:start + batch_size].to(device)
        readout, layer_spikes = model(x)
        correct += int((two.decode(readout.double(), a_dec).argmax(1) == y).sum())
        correct_int += int((decode_integer(readout_integers(readout).cpu(), a_int).argmax(1) == y.cpu()).sum())
        step_correct += two.step_correct(readout, y)
        rates += torch.tensor([float(s.sum()) / s[0].numel() for s in layer_spikes], dtype=torch.float64)
    counts = distributed.all_sum(torch.cat([torch.tensor([correct, correct_int]), step_correct]), w)
    rates = distributed.all_sum(rates, w)
    correct, correct_int, step_correct, n = int(counts[0]), int(counts[1]), counts[2:], n_all
    return {
        "accuracy": correct / n,
        "accuracy_int": correct_int / n,
        "step_accuracy": (step_correct.double() / n).tolist(),
        "spike_rates": (rates / n).tolist(),
    }


def _load_data(config: TrainConfig, split: str, epoch: int = 0):
    from .data import load_dataset

    augment = config.augment and split == "train"
    # the data set itself does not follow the training seed; only its augmentation does
    return load_dataset(config.dataset, config.data_dir, config.time_steps, split, augment=augment,
                        seed=config.seed if augment else 0, epoch=epoch, max_samples=config.max_samples,
                        downsample=config.sensor_downsample)


def _same_setting(name: str, stored, given) -> bool:
    if name in _PATH_FIELDS and stored is not None and given is not None:
        return Path(stored).resolve() == Path(given).resolve()
    return stored == given


def _check_resumable(stored: dict, config: TrainConfig, done: int, ckpt_path: Path) -> None:
    stored_cfg = TrainConfig.from_dict({**stored, "progress": config.progress})
    diffs = [f"{f.name} (stored {getattr(stored_cfg, f.name)!r}, given {getattr(config, f.name)!r})"
             for f in fields(TrainConfig)
             if f.name not in _RESUME_FREE and not _same_setting(f.name, getattr(stored_cfg, f.name),
                                                                 getattr(config, f.name))]
    if diffs:
        raise SpikeshipError("--resume continues the stored run unchanged; these settings differ: " + "; ".join(diffs))
    if config.epochs < done:
        raise SpikeshipError(f"--resume --epochs {config.epochs}: {ckpt_path} has trained {done} epochs already; "
                             f"give --epochs {done} or more")


def _stored_config(config: TrainConfig) -> dict:
    """The config as the checkpoint keeps it: file paths absolute, so the run resumes from any directory."""
    d = config.to_dict()
    for name in _PATH_FIELDS:
        if d[name] is not None:
            d[name] = os.path.abspath(d[name])
    return d


def replan_schedule(optimizer, scheduler, lr: float, total: int, done: int) -> None:
    """Re-plan the cosine learning-rate schedule of a resumed run to ``total`` epochs, from epoch ``done``.

    The schedule is replayed from the start on a stand-in optimizer, so each remaining epoch's learning rate
    is, bit for bit, the one a run planned for ``total`` epochs from the start uses at that epoch; the epochs
    already done keep the rates they had. So a run of 10 epochs extended to 20 trains epochs 11-20 at the
    second half of a 20-epoch cosine (from lr/2 down to nearly 0), after the first 10 fell from lr to nearly
    0: its learning rate jumps back up once, and its weights differ from one uninterrupted 20-epoch run's."""
    stand_in = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=lr)
    replay = torch.optim.lr_scheduler.CosineAnnealingLR(stand_in, T_max=total)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()": nothing is optimized here
        for _ in range(done):
            replay.step()
    scheduler.load_state_dict(replay.state_dict())
    for group in optimizer.param_groups:
        group["lr"] = stand_in.param_groups[0]["lr"]


def train(config: TrainConfig, *, stop_after: int | None = None, data=None, replace: bool = False) -> dict:
    """Train (or resume) the run that ``config`` describes; returns the metrics written to metrics.json.

    The run folder is locked for the whole run (a folder in use by another process is refused), and a
    folder that already holds a run (any of ``RUN_FILES``) is refused before any work unless resumed.
    ``stop_after``: stop after that many completed epochs (simulates an interruption; tests use it).
    ``data``: (train, test) data sets already loaded for this config (objects with ``spikes`` uint8
    (N, C, H, W, T), ``labels``, ``input_shape``, ``num_classes``, ``class_names``), e.g. shared by the
    runs of a benchmark; not with ``augment``.
    ``replace``: start a new run even if the folder holds one, removing that run's files first (the demo
    re-runs into its own folder).

    Under torchrun (train/parallel.py) every rank runs this: each one checks the input and loads the data
    before the process group starts (bad input ends every rank alike), rank 0 alone locks the folder and
    writes, and every rank returns the same metrics.
    """
    w = distributed.world()
    device = prepare_device(config.device, w)
    parallel.check_world(config.batch_size, w)
    if config.model_config is not None:
        read_model_config(config.model_config)  # a bad config fails before the data is loaded
    if not w.distributed:
        with run_lock(config.out):
            resumed = _claim(config, replace)
            return _train_run(config, device, w, resumed, _load_sets(config, data, resumed), stop_after)
    resumed = _open_run(config, replace)
    sets = _load_sets(config, data, resumed)
    distributed.join(config.device)
    # rank 0 checks the folder again under its lock (another run may have come and gone meanwhile)
    with parallel.main_lock(config.out, w, lambda: _same_run(_claim(config, replace), resumed, config.out)):
        return _train_run(config, device, w, resumed, sets, stop_after)


def _open_run(config: TrainConfig, replace: bool):
    """The checkpoint a resumed run continues (None for a new run), checked; a new run into a folder that
    holds one is refused unless ``replace``. Reads only."""
    out = Path(config.out)
    ckpt_path = out / "model.pt"
    if config.resume:
        if not ckpt_path.is_file():
            raise SpikeshipError(f"--resume: no checkpoint to resume at {ckpt_path}")
        resumed = load_checkpoint(ckpt_path)
        if resumed.optimizer_state is None or resumed.scheduler_state is None or not resumed.rng_state:
            raise SpikeshipError(f"--resume: {ckpt_path} holds a model but no training state to resume from")
        _check_resumable(resumed.config, config, resumed.epoch, ckpt_path)
        return resumed
    if any((out / name).exists() for name in RUN_FILES) and not replace:
        raise SpikeshipError(f"{out} already holds a training run; use --resume to continue it or another --out")
    return None


def _claim(config: TrainConfig, replace: bool):
    """:func:`_open_run` under the folder's lock, then (``replace``) the old run's files removed."""
    resumed = _open_run(config, replace)
    if resumed is None and replace:
        for name in RUN_OUTPUTS:
            (Path(config.out) / name).unlink(missing_ok=True)
    return resumed


def _same_run(now, before, out) -> None:
    if (now and now.epoch) != (before and before.epoch):
        raise SpikeshipError(f"{out} changed while this run started (another training wrote into it); start again")


def _load_sets(config: TrainConfig, data, resumed):
    """(train set, test set, network spec, the ``--init`` checkpoint or None), checked against each other and
    a resumed checkpoint."""
    if data is not None:
        if config.augment:
            raise ValueError("pre-loaded data cannot be augmented per epoch")
        train_set, test_set = data
        if train_set.spikes.shape[-1] != config.time_steps:
            raise ValueError(f"pre-loaded data has T={train_set.spikes.shape[-1]}, config T={config.time_steps}")
    else:
        train_set = _load_data(config, "train")
        test_set = _load_data(config, "test")
    if resumed is None:
        init = load_checkpoint(config.init) if config.init is not None else None
        return train_set, test_set, build_spec(config, train_set.input_shape, train_set.num_classes, init), init
    spec = resumed.spec  # the run's network is the one in its checkpoint
    if (tuple(spec.input_shape), spec.num_classes) != (tuple(train_set.input_shape), train_set.num_classes):
        raise SpikeshipError(f"--resume: the network in {Path(config.out) / 'model.pt'} takes input "
                             f"{tuple(spec.input_shape)} and {spec.num_classes} classes; the data has "
                             f"{tuple(train_set.input_shape)} and {train_set.num_classes}")
    return train_set, test_set, spec, None


def _train_run(config: TrainConfig, device: torch.device, w: World, resumed, sets, stop_after) -> dict:
    train_set, test_set, spec, init = sets
    out = Path(config.out)
    ckpt_path = out / "model.pt"
    two_cfg = config.two_config()

    torch.manual_seed(config.seed)
    model = SpikeNet(spec, config.surrogate_config()).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    a = two.initial_weights(config.time_steps)
    last_correct = torch.zeros(config.time_steps, dtype=torch.int64)
    last_count = 0
    history: list[dict] = []
    start_epoch = 0
    if init is not None:
        model.load_state_dict(init.state_dict)
        if len(init.two_weights) == config.time_steps:
            a = torch.tensor(init.two_weights, dtype=torch.float64)
    if resumed is not None:
        model.load_state_dict(resumed.state_dict)
        optimizer.load_state_dict(resumed.optimizer_state)
        scheduler.load_state_dict(resumed.scheduler_state)
        if config.epochs != int(resumed.config.get("epochs", config.epochs)):  # --resume --epochs N: extended
            replan_schedule(optimizer, scheduler, config.lr, config.epochs, resumed.epoch)
        a = torch.tensor(resumed.two_weights, dtype=torch.float64)
        last_correct = torch.tensor(resumed.two_state.get("correct", [0] * config.time_steps), dtype=torch.int64)
        last_count = int(resumed.two_state.get("count", 0))
        history = [dict(row) for row in resumed.history]
        start_epoch = resumed.epoch
        note = parallel.restore_rng(resumed.rng_state, w, config.seed, resumed.epoch, device)
        if note and w.is_main:
            print(f"spikeship: note: {ckpt_path} was {note}", file=sys.stderr)
    else:
        parallel.seed_rank(config.seed, w)
    net = parallel.wrap(model, device, w)

    stored = _stored_config(config)
    origin = init if init is not None else resumed
    if origin is not None and "import" in origin.config:  # what an imported network was mapped from, kept
        stored["import"] = origin.config["import"]
    train_spikes, train_labels = train_set.spikes, train_set.labels
    metrics: dict = {}
    with _deterministic(device):
        for epoch in range(start_epoch, config.epochs):
            if stop_after is not None and epoch >= stop_after:
                break
            if two.should_update(epoch, two_cfg) and last_count > 0:
                a = two.update_weights(a, last_correct.double() / last_count, two_cfg.beta)
            if config.augment and epoch > 0:
                aug = _load_data(config, "train", epoch)
                train_spikes, train_labels = aug.spikes, aug.labels
            row, last_correct, last_count, own = _train_epoch(net, optimizer, train_spikes, train_labels, a, config,
                                                              epoch, device, w)
            lr = optimizer.param_groups[0]["lr"]
            scheduler.step()
            ev = evaluate(model, test_set.spikes, test_set.labels, a, max(config.batch_size, 128), device, w)
            row.update(epoch=epoch + 1, test_accuracy=ev["accuracy"], test_accuracy_quantized_deploy=ev["accuracy_int"],
                       lr=lr, two_weights=a.tolist())
            history.append(row)
            metrics = _metrics(config, spec, a, history, ev, train_set, w)
            states = parallel.gather_states(device, w, own)
            if not w.is_main:
                continue
            if config.progress:
                print(f"epoch {epoch + 1}/{config.epochs}: loss {row['loss']:.4f}, train "
                      f"{100 * row['train_accuracy']:.1f}%, test {100 * ev['accuracy']:.2f}% "
                      f"(integer TWO decode {100 * ev['accuracy_int']:.2f}%), {row['seconds']:.1f} s", flush=True)
            rng, two_ranks = states
            save_checkpoint(ckpt_path, spec=spec, state_dict=model.state_dict(), two_weights=a,
                            dataset=config.dataset, data_dir=stored["data_dir"], time_steps=config.time_steps,
                            class_names=train_set.class_names, config=stored, metrics=metrics,
                            epoch=epoch + 1, optimizer_state=optimizer.state_dict(),
                            scheduler_state=scheduler.state_dict(), rng_state=rng,
                            two_state={**two_ranks, "correct": last_correct.tolist(), "count": last_count},
                            history=history)
            write_history(out / "history.csv", history)
    if not metrics:  # nothing left to train (resumed a finished run): evaluate what is there
        ev = evaluate(model, test_set.spikes, test_set.labels, a, max(config.batch_size, 128), device, w)
        metrics = _metrics(config, spec, a, history, ev, train_set, w)
    if not w.is_main:
        return metrics
    write_metrics(out / "metrics.json", metrics)
    if history:
        title = (f"{config.dataset} {config.arch} T={config.time_steps} {config.method} p={config.mask_probability} "
                 f"decode={config.decode} seed={config.seed}")
        plot_curves(out / "curves.png", history, title)
        plot_two_weights(out / "two_weights.png", a.tolist(), metrics["two_weights_int"],
                         metrics["test_step_accuracy"], title)
    return metrics


def _train_epoch(net, optimizer, spikes, labels, a, config: TrainConfig, epoch: int, device, w: World = World()):
    """One epoch over the global batches (each rank its share, train/parallel.py); ``net`` is the model or
    its DistributedDataParallel wrapper (``.module``). Returns the history row,
    the TWO per-step correct counts and the number of samples (both summed over the ranks), and this rank's
    own counts."""
    from tqdm import tqdm

    net.train()
    n = len(labels)
    order = _epoch_order(n, config.seed, epoch)
    batches = [order[i:i + config.batch_size] for i in range(0, n, config.batch_size)]
    loss_sum = 0.0
    correct = 0
    seen = done = 0  # this rank's samples; every rank's
    step_correct = torch.zeros(config.time_steps, dtype=torch.int64)
    a_dec = two.deployed_weights(a, getattr(net, "module", net).spec.num_spiking_layers)
    started = time.perf_counter()
    bar = tqdm(batches, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", leave=False,
               disable=not (config.progress and w.is_main), dynamic_ncols=True)
    for b, idx in enumerate(bar):
        mine = parallel.share(idx, w)
        x = spikes[mine.samples].to(device=device, dtype=torch.float32)
        y = labels[mine.samples].to(device)
        readout, _ = net(x)
        logits = two.decode(readout, a_dec)
        loss = F.cross_entropy(logits, y)
        batch_loss = float(loss.detach()) * mine.counted
        if w.distributed:  # every rank learns the batch's loss, so every rank stops alike on a bad one
            batch_loss = float(distributed.all_sum(torch.tensor([batch_loss], dtype=torch.float64), w)[0])
        if not math.isfinite(batch_loss):
            raise SpikeshipError(f"loss became {batch_loss / len(idx)} at epoch {epoch + 1}, batch {b + 1}; "
                                 f"try a lower --lr (now {config.lr})")
        optimizer.zero_grad(set_to_none=True)
        (loss * mine.weight).backward()  # DDP's average over the ranks: the global batch's mean
        optimizer.step()
        loss_sum += batch_loss
        if mine.counted:
            correct += int((logits.detach().argmax(1) == y).sum())
            step_correct += two.step_correct(readout, y)
        seen += mine.counted
        done += len(idx)
        bar.set_postfix(loss=f"{loss_sum / done:.3f}", acc=f"{100 * correct / max(seen, 1):.1f}%")
    bar.close()
    own = {"correct": step_correct.tolist(), "count": seen}
    total = distributed.all_sum(torch.cat([torch.tensor([correct, seen]), step_correct]), w)
    correct, seen, step_correct = int(total[0]), int(total[1]), total[2:]
    row = {"loss": loss_sum / seen, "train_accuracy": correct / seen, "seconds": time.perf_counter() - started}
    return row, step_correct, seen, own


def _metrics(config: TrainConfig, spec: ModelSpec, a, history: list[dict], ev: dict, train_set, w: World) -> dict:
    last = history[-1] if history else {}
    return {
        "dataset": config.dataset,
        "arch": f"init:{config.init}" if config.init else
                config.arch if config.model_config is None else f"config:{config.model_config}",
        "time_steps": config.time_steps,
        "epochs": len(history),
        "method": config.method,
        "mask_prob": config.mask_probability,
        "surrogate": config.surrogate,
        "decode": config.decode,
        "seed": config.seed,
        "test_accuracy": ev["accuracy"],
        "test_accuracy_quantized_deploy": ev["accuracy_int"],
        "train_accuracy": last.get("train_accuracy"),
        "final_loss": last.get("loss"),
        "test_step_accuracy": ev["step_accuracy"],
        "test_spike_rates": ev["spike_rates"],
        "two_weights": [float(x) for x in a.tolist()],
        "two_weights_int": two.quantize_two_weights(a, spec.num_spiking_layers).tolist(),
        "train_samples": len(train_set),
        "train_seconds": sum(row.get("seconds", 0.0) for row in history),
        "world_size": w.size,
        "note": "weights are 8-bit quantized in every forward; train_accuracy is the running accuracy of each "
                "training epoch; test_accuracy uses the float TWO decode with the deployed weights "
                "(a_int / 64: a_int = round(64 a_t), zero for the first L steps), test_accuracy_quantized_deploy "
                "the integer accumulators; the two make the same predictions",
    }
