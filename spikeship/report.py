"""The report stage: spike counts, synaptic operations, energy and resources of a deployed network.

    spikeship report model.net --samples N --backend lava|emulator --out DIR
      -> DIR/report.json, DIR/report.md, DIR/energy.png (per-layer bars), DIR/raster.png (one sample)

Counts come from the run: the spikes each layer emits in its Lava window for every sample (sim/layout.py),
from the emulator or from Lava, which must agree spike by spike; the arithmetic is :mod:`spikeship.energy`,
every constant comes from :mod:`spikeship.hardware` and is printed with its source.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from . import hardware
from .energy import (
    CoreLimits,
    LayerCounts,
    LoihiOpEnergy,
    SynapseGeometry,
    ac_energy_pj,
    ann_macs,
    concat_counts,
    cores_needed,
    count_layer,
    loihi_energy_pj,
    loihi_energy_terms_pj,
    mac_energy_pj,
    mean_std,
    synapse_count,
)
from .errors import SpikeshipError
from .report_files import render_markdown, summary_lines, write_report

BACKENDS = ("emulator", "lava")
REPORT_VERSION = 1
#: hardware-table entries a report uses (all printed with their sources)
CONSTANTS = (
    "loihi_synop_energy", "loihi_neuron_update_active_energy", "loihi_neuron_update_inactive_energy",
    "loihi_spike_in_tile_energy", "fp32_mac_energy", "fp32_ac_energy", "int8_mac_energy", "int8_ac_energy",
    "neurons_per_core", "synaptic_memory_per_core", "fan_in_axons_per_core", "cores_per_chip", "weight_bits",
)
ASSUMPTIONS = (
    "Spike traffic is a floor: one within-tile message (1.7 pJ) per presynaptic spike, input events included; "
    "tile hops (3.0/4.0 pJ) depend on placement and are not counted.",
    "SynOps count the structural fan-out of each spike (zero-valued synapses included); a convolution is "
    "stored as a full connection list, as on Loihi 1.",
    "A neuron update is active when the neuron received a synaptic event or spiked in that step, idle "
    "otherwise (decaying state alone counts as idle).",
    "The readout (classes x last layer, non-spiking, TWO-weighted accumulation) is counted as one more "
    "layer of compartments.",
    "Cores: max(compartments / neurons per core, synapse bytes / synaptic memory per core); a lower bound "
    "(no routing or list overhead). Fan-in is checked per neuron against the axons per core; output-axon "
    "(fan-out) limits depend on placement and are not checked.",
    "ANN reference: the same layers run once as a non-spiking ANN (conv MACs include padded taps).",
    hardware.LOIHI2_ENERGY_NOTE + " The Loihi figures are Loihi 1's.",
)


@dataclass(frozen=True)
class ReportConfig:
    net: str
    out: str
    backend: str = "emulator"
    dataset: str = "event-digits"
    data_dir: str | None = None
    split: str = "test"
    samples: int | None = None
    downsample: int = 1
    time_steps: int | None = None  # must match the file's when given
    batch_size: int = 64
    workers: int = 1  # Lava processes (samples sharded)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise SpikeshipError(f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.samples is not None and self.samples < 1:
            raise SpikeshipError(f"--samples must be at least 1, not {self.samples}")
        if self.batch_size < 1:
            raise SpikeshipError("batch size must be at least 1")
        if self.workers < 1:
            raise SpikeshipError(f"--workers must be at least 1, not {self.workers}")


# ------------------------------------------------------------------------------------------------ network

def network_geometry(net) -> list[tuple[str, SynapseGeometry]]:
    """(name, synapse geometry) of every layer of a :class:`spikeship.sim.netfile.NetSpec`, readout last."""
    from .sim.netfile import ConvLayer

    out = []
    shape = tuple(net.feed_shape)  # dense first layer: the flattened input
    for k, layer in enumerate(net.layers):
        if isinstance(layer, ConvLayer):
            kind = "pool" if layer.groups == layer.shape[0] == shape[0] and layer.groups > 1 else "conv"
            g = SynapseGeometry("conv", shape, layer.shape, kernel=tuple(layer.weight.shape[2:]),
                                stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                                groups=layer.groups)
        else:
            kind = "dense"
            g = SynapseGeometry("dense", shape, layer.shape)
        out.append((f"{k}:{kind}", g))
        shape = layer.shape
    out.append(("readout", SynapseGeometry("dense", shape, (net.num_classes,))))
    return out


def layer_windows(canonical: list[np.ndarray], time_steps: int) -> list[np.ndarray]:
    """Each layer's Lava window ``s_k[k : k+T]`` from the canonical per-sample spikes ``(N, *shape, T+L)``."""
    from .sim import layout

    return [s[..., layout.window_taus(k, time_steps)] for k, s in enumerate(canonical)]


def count_network(geometry: list[tuple[str, SynapseGeometry]], inputs: np.ndarray,
                  windows: list[np.ndarray]) -> list[LayerCounts]:
    """Counts of every layer for one batch: layer 0 is fed by the input events, layer k by layer k-1's
    window (aligned, sim/layout.py), the readout by the last layer's window."""
    if len(windows) != len(geometry) - 1:
        raise ValueError(f"{len(windows)} spike windows for {len(geometry) - 1} spiking layers")
    counts = []
    for k, (name, g) in enumerate(geometry):
        spikes_in = inputs if k == 0 else windows[k - 1]
        spikes_out = windows[k] if k < len(windows) else None
        counts.append(count_layer(name, g, spikes_in, spikes_out))
    return counts


# ------------------------------------------------------------------------------------------------ backends

@dataclass(frozen=True, eq=False)
class BatchRun:
    """One batch from a backend: per-layer windows (N, *shape, T) and the predicted classes."""

    windows: list[np.ndarray]
    predictions: np.ndarray


def emulator_batches(net, inputs: np.ndarray, batch_size: int, workers: int = 1) -> Iterator[BatchRun]:
    from .sim.emulator import emulate

    for lo in range(0, len(inputs), batch_size):
        res = emulate(net, inputs[lo:lo + batch_size], record_spikes=True, batch_size=batch_size)
        yield BatchRun(layer_windows(res.spikes, net.time_steps), np.asarray(res.predictions))


def lava_batches(net, inputs: np.ndarray, batch_size: int, workers: int = 1) -> Iterator[BatchRun]:
    """One Lava run over all samples (one compiled network); its windows are already per layer."""
    try:
        from .deploy.lava_run import run_lava_sharded
    except ImportError:
        raise SpikeshipError("the Lava backend (spikeship.deploy.lava_run) is not available; "
                             "use --backend emulator") from None
    res = run_lava_sharded(net, inputs, workers=workers, record_spikes=True)
    yield BatchRun(list(res.spikes), np.asarray(res.predictions))


BATCH_RUNNERS: dict[str, Callable[..., Iterator[BatchRun]]] = {"emulator": emulator_batches, "lava": lava_batches}


# ------------------------------------------------------------------------------------------------ report

def _const(name: str) -> float:
    return hardware.value(name)


def op_energy() -> LoihiOpEnergy:
    return LoihiOpEnergy(synop_pj=_const("loihi_synop_energy"),
                         update_active_pj=_const("loihi_neuron_update_active_energy"),
                         update_idle_pj=_const("loihi_neuron_update_inactive_energy"),
                         spike_pj=_const("loihi_spike_in_tile_energy"))


def core_limits() -> CoreLimits:
    return CoreLimits(neurons_per_core=int(_const("neurons_per_core")),
                      synapse_bytes_per_core=int(_const("synaptic_memory_per_core")),
                      fan_in_axons_per_core=int(_const("fan_in_axons_per_core")),
                      cores_per_chip=int(_const("cores_per_chip")), weight_bits=int(_const("weight_bits")))


def _stats(values) -> dict:
    mean, std = mean_std(values)
    return {"mean": mean, "std": std, "total": int(np.sum(values))}


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def layer_entry(c: LayerCounts, e: LoihiOpEnergy, limits: CoreLimits) -> dict:
    """Everything the report says about one layer; energies in pJ per inference (mean over samples)."""
    g = c.geometry
    loihi = loihi_energy_pj(c.synops, c.active, c.idle, c.spikes_in, e)
    terms = {k: float(np.mean(v)) for k, v in loihi_energy_terms_pj(c.synops, c.active, c.idle, c.spikes_in,
                                                                         e).items()}
    macs = ann_macs(g)
    synops_mean = float(np.mean(c.synops))
    cores = cores_needed(g, limits)
    entry = {
        "name": c.name, "kind": g.kind, "in_shape": list(g.in_shape), "shape": list(g.out_shape),
        "kernel": list(g.kernel), "stride": list(g.stride), "padding": list(g.padding), "groups": g.groups,
        "neurons": c.neurons, "spiking": c.spiking, "synapses": synapse_count(g),
        "spikes_in": _stats(c.spikes_in), "spikes": _stats(c.spikes_out),
        "firing_rate": float(np.mean(c.spikes_out)) / (c.neurons * c.steps),
        "synops": _stats(c.synops), "neuron_updates": c.updates, "active_updates": _stats(c.active),
        "ann_macs": macs,
        "energy_pj": {
            "loihi": float(np.mean(loihi)), "loihi_std": float(np.std(loihi)), "loihi_terms": terms,
            "snn_ac_fp32": float(ac_energy_pj(synops_mean, _const("fp32_ac_energy"))),
            "snn_ac_int8": float(ac_energy_pj(synops_mean, _const("int8_ac_energy"))),
            "ann_fp32": float(mac_energy_pj(macs, _const("fp32_mac_energy"))),
            "ann_int8": float(mac_energy_pj(macs, _const("int8_mac_energy"))),
        },
        "cores": cores.cores, "cores_by_neurons": cores.by_neurons, "cores_by_memory": cores.by_synapse_memory,
        "max_fan_in": cores.max_fan_in, "synapse_bytes": cores.synapse_bytes, "exceeded": list(cores.exceeded),
    }
    entry["ratios"] = _ratios(entry["energy_pj"], synops_mean, macs)
    return entry


def _ratios(en: dict, synops: float, macs: int) -> dict:
    return {"synops_per_mac": _ratio(synops, macs),
            "paper_fp32": _ratio(en["snn_ac_fp32"], en["ann_fp32"]),
            "paper_int8": _ratio(en["snn_ac_int8"], en["ann_int8"]),
            "loihi_vs_ann_fp32": _ratio(en["loihi"], en["ann_fp32"]),
            "loihi_vs_ann_int8": _ratio(en["loihi"], en["ann_int8"])}


def build_report(counts: list[LayerCounts], *, time_steps: int, meta: dict,
                 predictions: np.ndarray | None = None, labels: np.ndarray | None = None) -> dict:
    """The report as a JSON-ready dict (no timings in it: two backends on the same samples give equal dicts
    except for ``meta``)."""
    e, limits = op_energy(), core_limits()
    layers = [layer_entry(c, e, limits) for c in counts]
    n = len(counts[0].synops)
    total_loihi = np.sum([loihi_energy_pj(c.synops, c.active, c.idle, c.spikes_in, e) for c in counts], axis=0)
    energy = {k: float(sum(layer["energy_pj"][k] for layer in layers))
              for k in ("loihi", "snn_ac_fp32", "snn_ac_int8", "ann_fp32", "ann_int8")}
    energy["loihi_std"] = float(np.std(total_loihi))
    synops = np.sum([c.synops for c in counts], axis=0)
    macs = sum(layer["ann_macs"] for layer in layers)
    cores = sum(layer["cores"] for layer in layers)
    exceeded = [f"{layer['name']}: {x}" for layer in layers for x in layer["exceeded"]]
    if cores > limits.cores_per_chip:
        exceeded.append(f"network: {cores} cores > {limits.cores_per_chip} per chip")
    spiking = len(counts) - 1
    totals = {
        "samples": n, "input_events": _stats(counts[0].spikes_in),
        "spikes": _stats(np.sum([c.spikes_out for c in counts], axis=0)),
        "synops": _stats(synops), "neuron_updates": sum(c.updates for c in counts),
        "active_updates": _stats(np.sum([c.active for c in counts], axis=0)),
        "ann_macs": macs, "energy_pj": energy, "ratios": _ratios(energy, float(np.mean(synops)), macs),
        "cores": cores, "exceeded": exceeded,
        "latency_steps": time_steps, "pipeline_depth_steps": spiking + 1,
    }
    if predictions is not None and labels is not None:
        totals["accuracy"] = float(np.mean(np.asarray(predictions) == np.asarray(labels)))
        totals["correct"] = int(np.sum(np.asarray(predictions) == np.asarray(labels)))
    return {"version": REPORT_VERSION, "meta": meta, "time_steps": time_steps, "layers": layers,
            "totals": totals, "constants": [constant_entry(name) for name in CONSTANTS],
            "assumptions": list(ASSUMPTIONS)}


def constant_entry(name: str) -> dict:
    c = hardware.lookup(name)
    return {"name": c.name, "value": c.value, "unit": c.unit, "source": c.source, "note": c.note}


def counts_only(report: dict) -> dict:
    """The part of a report that must be identical between backends run on the same samples."""
    return {k: v for k, v in report.items() if k != "meta"}


# ------------------------------------------------------------------------------------------------ stage

@dataclass(frozen=True, eq=False)
class ReportResult:
    report: dict
    paths: dict
    seconds: float


def report_on_inputs(net, inputs: np.ndarray, labels: np.ndarray | None, backend: str, meta: dict,
                     batch_size: int = 64, workers: int = 1) -> tuple[dict, tuple[np.ndarray, list[np.ndarray]]]:
    """Run ``inputs`` through ``backend`` in batches and count; returns the report and sample 0's spikes."""
    from .sim.emulator import check_inputs

    x = check_inputs(net, inputs)
    geometry = network_geometry(net)
    parts: list[list[LayerCounts]] = []
    predictions = []
    raster = None
    lo = 0
    for run in BATCH_RUNNERS[backend](net, x, batch_size, workers):
        batch = x[lo:lo + len(run.predictions)]
        lo += len(batch)
        parts.append(count_network(geometry, batch, run.windows))
        predictions.append(run.predictions)
        if raster is None:
            raster = (batch[0], [w[0] for w in run.windows])
    counts = [concat_counts([p[k] for p in parts]) for k in range(len(geometry))]
    report = build_report(counts, time_steps=net.time_steps, meta=meta, predictions=np.concatenate(predictions),
                          labels=labels)
    return report, raster


def report_from_windows(net, inputs: np.ndarray, windows: list[np.ndarray], predictions: np.ndarray | None,
                        labels: np.ndarray | None, meta: dict,
                        batch_size: int = 64) -> tuple[dict, tuple[np.ndarray, list[np.ndarray]]]:
    """The report of spikes a backend already produced: ``windows[k]`` is layer k's window (N, *shape, T)."""
    from .sim.emulator import check_inputs

    x = check_inputs(net, inputs)
    geometry = network_geometry(net)
    parts = [count_network(geometry, x[lo:lo + batch_size], [np.asarray(w[lo:lo + batch_size]) for w in windows])
             for lo in range(0, len(x), batch_size)]  # bounded memory for the per-step receptive-field sums
    counts = [concat_counts([p[k] for p in parts]) for k in range(len(geometry))]
    report = build_report(counts, time_steps=net.time_steps, meta=meta, predictions=predictions, labels=labels)
    return report, (x[0], [np.asarray(w[0]) for w in windows])


def run_report(cfg: ReportConfig) -> ReportResult:
    """The whole stage: read the file, load the samples, run the backend, count, write."""
    from .deploy.run import load_samples  # the same samples `spikeship run/parity --samples N` take
    from .sim.emulator import check_inputs
    from .sim.netfile import read_net

    start = time.perf_counter()
    net = read_net(cfg.net)
    if cfg.time_steps is not None and cfg.time_steps != net.time_steps:
        raise SpikeshipError(f"{cfg.net} runs {net.time_steps} time steps; --time-steps {cfg.time_steps} differs")
    inputs, labels, indices = load_samples(cfg.dataset, cfg.data_dir, cfg.split, net.time_steps, cfg.samples,
                                           cfg.downsample)
    check_inputs(net, inputs)  # a shape mismatch fails here, before any backend starts
    meta = {"net": str(cfg.net), "backend": cfg.backend, "dataset": cfg.dataset, "split": cfg.split,
            "sample_indices": [int(i) for i in indices]}
    report, raster = report_on_inputs(net, inputs, labels, cfg.backend, meta, cfg.batch_size, cfg.workers)
    paths = write_report(report, Path(cfg.out), raster)
    return ReportResult(report, paths, time.perf_counter() - start)


__all__ = ["ReportConfig", "run_report", "report_on_inputs", "report_from_windows", "build_report", "count_network",
           "network_geometry", "layer_windows", "render_markdown", "write_report", "counts_only", "summary_lines"]
