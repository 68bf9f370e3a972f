"""`spikeship import`: a NIR graph (snnTorch, Norse, Sinabs, ... or spikeship's own export) -> a spikeship checkpoint
that export, run, parity, report and ``train --init`` take unchanged.

    spikeship import model.nir --out model.pt [--dt SECONDS] [--dataset NAME] [--time-steps T] [--samples N]

Steps: read the file (one line when it is damaged), walk the graph (``train.nir_graph``: refusals name the node
and the reason), put it on Loihi's integers (``train.nir_import``: rounding reported per layer), check the result
against Loihi's limits as export will (``export.netx.check``), then, on ``--samples`` samples of the data set,
compare the imported network (the bit-exact emulator, which PyTorch and Lava equal) with the float reference of
the graph (``train.nir_reference``): accuracy and per-layer spike agreement. The checkpoint is written last,
atomically; on any refusal nothing is written.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import SpikeshipError

#: T when neither --time-steps nor the graph's metadata gives one (spikeship's training default)
DEFAULT_TIME_STEPS = 16


@dataclass(frozen=True)
class ImportConfig:
    """``nir`` -> ``out``. ``dt``/``dataset``: None takes the graph's metadata (an error when it has none);
    ``time_steps``: None takes the number of TWO weights in the metadata, else 16. ``samples``: how many samples
    of ``split`` the imported network is checked on (0: none)."""

    nir: Path
    out: Path
    dt: float | None = None
    dataset: str | None = None
    data_dir: str | None = None
    time_steps: int | None = None
    samples: int = 100
    split: str = "test"
    downsample: int = 1

    def __post_init__(self) -> None:
        if self.dt is not None and not (self.dt > 0 and np.isfinite(self.dt)):
            raise SpikeshipError(f"--dt must be a positive number of seconds, got {self.dt}")
        if self.time_steps is not None and self.time_steps < 2:
            raise SpikeshipError(f"--time-steps must be at least 2, got {self.time_steps}")
        if self.downsample < 1:
            raise SpikeshipError(f"--sensor-downsample must be at least 1, got {self.downsample}")
        if self.samples < 0:
            raise SpikeshipError(f"--samples must be 0 or more, got {self.samples}")
        if Path(self.nir).resolve() == Path(self.out).resolve():
            raise SpikeshipError("--out names the NIR file itself")


@dataclass(frozen=True, eq=False)
class ImportResult:
    """What the import did: the mapping, where it went, and the check on samples (None when skipped)."""

    source: Path
    nodes: tuple[str, ...]  # the node types along the chain
    imported: object  # train.nir_import.Imported
    out: Path
    dt: float
    dt_from: str
    time_steps: int
    dataset: str
    class_names: tuple[str, ...]
    check: dict | None

    def lines(self) -> list[str]:
        imp = self.imported
        out = [f"read {self.source}: {' -> '.join(self.nodes)}; dt = {self.dt:g} s ({self.dt_from}), T = {self.time_steps}, "
               f"data set {self.dataset} ({len(self.class_names)} classes)"]
        out += [m.line() for m in imp.layers]
        out.append(imp.readout.line(len(imp.layers)))
        if self.check is not None:
            c = self.check
            out.append(f"check on {c['samples']} {c['split']} samples of {self.dataset}:")
            out.append(f"  float reference (the graph in float64, no pipeline delay): {100 * c['reference_accuracy']:.2f}% "
                       f"over all {self.time_steps} steps, {100 * c['reference_accuracy_aligned']:.2f}% over the "
                       f"steps the deployed readout sees")
            out.append(f"  imported (Loihi integers; emulator = PyTorch = Lava): {100 * c['imported_accuracy']:.2f}%")
            out.append("  spikes vs the float reference: " + "; ".join(
                f"layer {k} {100 * a['equal']:.2f}% of entries equal, {a['spikes'][0]:,} vs {a['spikes'][1]:,} "
                f"spikes (jaccard {a['jaccard']:.3f})" for k, a in enumerate(c["layers"])))
        out.append(f"wrote {self.out} (epoch 0): next `spikeship export {self.out} --out model.net`, or fine-tune "
                   f"with `spikeship train --init {self.out}`")
        return out


def check_on_samples(walked, net, inputs: np.ndarray, labels: np.ndarray, two_weights) -> dict:
    """Accuracy of the float reference (all T steps, and the steps the deployed readout sees) and of the
    imported network on the emulator, and each layer's spike agreement (emulator window vs reference)."""
    from . import backends
    from .backends import RunOptions
    from .train.nir_reference import agreement, aligned_weights, decide, simulate

    ref_readout, ref_spikes = simulate(walked, inputs)
    run = backends.run("emulator", net, inputs, RunOptions(record_spikes=True))
    layers = len(net.layers)
    return {
        "samples": int(len(labels)),
        "reference_accuracy": float((decide(ref_readout, two_weights) == labels).mean()),
        "reference_accuracy_aligned": float((decide(ref_readout, aligned_weights(two_weights, layers)) == labels).mean()),
        "imported_accuracy": float((run.predictions == labels).mean()),
        "layers": [agreement(run.windows[k], ref_spikes[k]) for k in range(layers)],
    }


def import_nir(cfg: ImportConfig) -> ImportResult:
    """The whole stage (module docstring); returns what it did, after writing ``cfg.out``."""
    from .export.netx import check
    from .export.quantize import quantize_model
    from .files import check_writable
    from .train.data import load_dataset
    from .train.datasets import DATASETS
    from .train.nir_graph import chain, graph_metadata, read_graph, walk_graph
    from .train.nir_import import build_model, map_to_loihi, model_card, save_imported, two_weights_for

    check_writable(cfg.out)  # before reading anything: a bad --out is reported first
    graph = read_graph(cfg.nir)
    try:
        meta = graph_metadata(graph)
    except SpikeshipError as e:
        raise SpikeshipError(f"{cfg.nir}: {e}") from None
    dt, dt_from = (cfg.dt, "--dt") if cfg.dt is not None else (meta.dt, "graph metadata")
    if dt is None:
        raise SpikeshipError(f"{cfg.nir}: the graph's metadata has no dt; give --dt SECONDS (snnTorch writes its "
                             f"graphs for dt = 1e-4)")
    dataset = cfg.dataset or meta.dataset
    if dataset is None:
        raise SpikeshipError(f"{cfg.nir}: the graph's metadata names no data set; give --dataset NAME "
                             f"({', '.join(DATASETS)})")
    steps = cfg.time_steps or (len(meta.two_weights) if meta.two_weights else DEFAULT_TIME_STEPS)
    first = load_dataset(dataset, cfg.data_dir, steps, cfg.split, max_samples=1, downsample=cfg.downsample)
    try:
        walked = walk_graph(graph, dt, first.input_shape)
        imported = map_to_loihi(walked)
        layers = len(imported.layers)
        if imported.spec.num_classes != first.num_classes:
            raise SpikeshipError(f"the readout gives {imported.spec.num_classes} outputs, {dataset} has "
                                 f"{first.num_classes} classes")
        if steps <= layers:
            raise SpikeshipError(f"T = {steps} steps must exceed the {layers} spiking layers (pipeline fill)")
        two = two_weights_for(steps, meta.two_weights)
        names = meta.class_names if meta.class_names and len(meta.class_names) == first.num_classes \
            else first.class_names
        model = build_model(imported)
        net = quantize_model(model, two, class_names=names)
        check(net)
    except SpikeshipError as e:
        raise SpikeshipError(f"{cfg.nir}: {e}") from None
    result = None
    if cfg.samples:
        data = load_dataset(dataset, cfg.data_dir, steps, cfg.split, max_samples=cfg.samples,
                            downsample=cfg.downsample)
        if cfg.samples > len(data):
            raise SpikeshipError(f"--samples {cfg.samples}: the {cfg.split} split of {dataset} has {len(data)}")
        result = check_on_samples(walked, net, data.spikes.numpy(), data.labels.numpy(), two)
        result["split"] = cfg.split
    card = model_card(imported, Path(cfg.nir), dt, dt_from,
                      "graph metadata" if meta.two_weights else "uniform (a_t = 1)")
    metrics = {} if result is None else {
        "reference_accuracy": result["reference_accuracy"], "imported_accuracy": result["imported_accuracy"],
        "import_check": result}
    save_imported(cfg.out, imported, model, two_weights=two, dataset=dataset, data_dir=cfg.data_dir,
                  class_names=names, card=card, metrics=metrics, downsample=cfg.downsample)
    nodes = tuple(type(node).__name__ for _, node in chain(graph))
    return ImportResult(Path(cfg.nir), nodes, imported, Path(cfg.out), float(dt), dt_from, steps, dataset,
                        tuple(names), result)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .train.data import dataset_help

    parser.add_argument("nir", metavar="model.nir", help="a NIR graph file (nir.write), e.g. from snnTorch or Norse")
    parser.add_argument("--out", required=True, metavar="model.pt", help="the spikeship checkpoint to write")
    parser.add_argument("--dt", type=float, default=None, metavar="SECONDS",
                        help="time step of the discretization (default: the dt in the graph's metadata; required "
                             "when it has none; snnTorch assumes 1e-4)")
    parser.add_argument("--dataset", default=None, metavar="NAME",
                        help=f"the data set the network runs on (default: the one the metadata names). {dataset_help()}")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="folder holding a tonic data set")
    parser.add_argument("--sensor-downsample", type=int, default=1, metavar="K",
                        help="divide the sensor's x and y by K, as the network was trained (default 1)")
    parser.add_argument("--time-steps", type=int, default=None, metavar="T",
                        help=f"time bins per sample (default: as many as the metadata's TWO weights, else "
                             f"{DEFAULT_TIME_STEPS})")
    parser.add_argument("--samples", type=int, default=100, metavar="N",
                        help="check the imported network against the graph's float reference on N samples "
                             "(default 100; 0: no check)")
    parser.add_argument("--split", choices=("train", "test"), default="test", help="split of the check (default test)")


def run(args: argparse.Namespace) -> int:
    cfg = ImportConfig(nir=Path(args.nir), out=Path(args.out), dt=args.dt, dataset=args.dataset,
                       data_dir=args.data_dir, time_steps=args.time_steps, samples=args.samples, split=args.split,
                       downsample=args.sensor_downsample)
    for line in import_nir(cfg).lines():
        print(line)
    return 0
