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

import numpy as np

from . import backends, hardware
from .backends import RunOptions
from .energy import (
    CoreLimits,
    LayerCounts,
    LoihiOpEnergy,
    ac_energy_pj,
    ann_macs,
    concat_counts,
    cores_needed,
    count_layer,
    geometry,
    loihi_energy_pj,
    loihi_energy_terms_pj,
    mac_energy_pj,
    mean_std,
    synapse_count,
)
from .errors import SpikeshipError
from .files import new_output_folder
from .network import Network
from .report_files import render_markdown, summary_lines, write_report

REPORT_VERSION = 1
#: hardware-table entries a report uses (all printed with their sources)
CONSTANTS = (
    "loihi_synop_energy", "loihi_neuron_update_active_energy", "loihi_neuron_update_inactive_energy",
    "loihi_spike_in_tile_energy", "fp32_mac_energy", "fp32_ac_energy", "int8_mac_energy", "int8_ac_energy",
    "neurons_per_core", "synaptic_memory_per_core", "fan_in_axons_per_core", "cores_per_chip", "weight_bits",
)
ASSUMPTIONS = (
    "Spike traffic is a floor: one within-tile message (1.7 pJ) per presynaptic spike, input events included "
    "(a recurrent layer's own spikes once more, to its recurrent synapses); tile hops (3.0/4.0 pJ) depend on "
    "placement and are not counted.",
    "SynOps count the structural fan-out of each spike (zero-valued synapses included), a recurrent layer's "
    "own spikes times its recurrent fan-out included; a convolution is stored as a full connection list, as "
    "on Loihi 1.",
    "A neuron update is active when the neuron received a synaptic event or spiked in that step, idle "
    "otherwise (decaying state alone counts as idle).",
    "The readout (classes x last layer, non-spiking, TWO-weighted accumulation) is counted as one more "
    "layer of compartments.",
    "Cores: max(compartments / neurons per core, synapse bytes / synaptic memory per core); a lower bound "
    "(no routing or list overhead). Fan-in is checked per neuron against the axons per core; output-axon "
    "(fan-out) limits depend on placement and are not checked.",
    "ANN reference: the same layers run once as a non-spiking ANN (conv MACs include padded taps); a network "
    "with a recurrent layer is compared with the same layers as a non-spiking RNN stepped over the T input "
    "frames (MACs x T), since one step of an RNN does not classify a sequence.",
    hardware.LOIHI2_ENERGY_NOTE + " The Loihi figures are Loihi 1's.",
)


@dataclass(frozen=True)
class ReportConfig:
    net: str
    out: str
    backend: str = "emulator"
    dataset: str | None = None  # None: the data set the .net's model card names
    data_dir: str | None = None
    split: str = "test"
    samples: int | None = None
    downsample: int | None = None  # None: as trained
    batch_size: int = 64  # samples counted at once (bounds the memory of the per-step receptive-field sums)
    workers: int = 1  # Lava processes (samples sharded)
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.backend not in backends.BACKENDS:
            raise SpikeshipError(f"backend must be one of {', '.join(backends.BACKENDS)}, not {self.backend!r}")
        if self.samples is not None and self.samples < 1:
            raise SpikeshipError(f"--samples must be at least 1, not {self.samples}")
        if self.batch_size < 1:
            raise SpikeshipError("batch size must be at least 1")
        if self.workers < 1:
            raise SpikeshipError(f"--workers must be at least 1, not {self.workers}")
        backends.check_device(self.device, self.backend)


# ------------------------------------------------------------------------------------------------ network

def counted_layers(net: Network) -> list[tuple[str, object]]:
    """(name, layer) of every synapse layer the report counts, the readout last."""
    return [(f"{k}:{layer.kind}", layer) for k, layer in enumerate(net.layers)] + [("readout", net.readout)]


def count_network(net: Network, inputs: np.ndarray, windows: list[np.ndarray]) -> list[LayerCounts]:
    """Counts of every layer for one batch: layer 0 is fed by the input events, layer k by layer k-1's
    window (aligned, sim/layout.py), the readout by the last layer's window."""
    layers = counted_layers(net)
    if len(windows) != len(layers) - 1:
        raise ValueError(f"{len(windows)} spike windows for {len(layers) - 1} spiking layers")
    counts = []
    for k, (name, layer) in enumerate(layers):
        spikes_in = inputs if k == 0 else windows[k - 1]
        spikes_out = windows[k] if k < len(windows) else None
        counts.append(count_layer(name, layer, spikes_in, spikes_out))
    return counts


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


def ann_steps(counts: list[LayerCounts], time_steps: int) -> int:
    """How many times the ANN reference runs per inference: once for a feed-forward network; T times (an RNN
    over the input frames) when a layer is recurrent."""
    return time_steps if any(geometry(c.layer).recurrent for c in counts) else 1


def layer_entry(c: LayerCounts, e: LoihiOpEnergy, limits: CoreLimits, steps: int = 1) -> dict:
    """Everything the report says about one layer; energies in pJ per inference (mean over samples);
    ``steps``: :func:`ann_steps`."""
    g = c.layer
    loihi = loihi_energy_pj(c.synops, c.active, c.idle, c.messages, e)
    terms = {k: float(np.mean(v)) for k, v in loihi_energy_terms_pj(c.synops, c.active, c.idle, c.messages,
                                                                         e).items()}
    macs = ann_macs(g) * steps
    synops_mean = float(np.mean(c.synops))
    cores = cores_needed(g, limits)
    entry = {
        "name": c.name, "kind": g.kind, "in_shape": list(g.input_shape), "shape": list(g.shape),
        "kernel": list(g.kernel), "stride": list(g.stride), "padding": list(g.padding), "groups": g.groups,
        "neurons": c.neurons, "spiking": c.spiking, "synapses": synapse_count(g),
        "spikes_in": _stats(c.spikes_in), "spikes": _stats(c.spikes_out),
        "spikes_in_recurrent": None if c.spikes_recurrent is None else _stats(c.spikes_recurrent),
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
    steps = ann_steps(counts, time_steps)
    layers = [layer_entry(c, e, limits, steps) for c in counts]
    n = len(counts[0].synops)
    total_loihi = np.sum([loihi_energy_pj(c.synops, c.active, c.idle, c.messages, e) for c in counts], axis=0)
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
        "ann_macs": macs, "ann_steps": steps, "energy_pj": energy,
        "ratios": _ratios(energy, float(np.mean(synops)), macs),
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


def report_on_inputs(net: Network, inputs: np.ndarray, labels: np.ndarray | None, backend: str, meta: dict,
                     options: RunOptions = RunOptions(), batch_size: int = 64
                     ) -> tuple[dict, tuple[np.ndarray, list[np.ndarray]]] | None:
    """Run ``inputs`` through ``backend`` (spikes recorded) and count; returns the report and sample 0's spikes
    (under torchrun: on rank 0, whose result holds every rank's shard; None on the others)."""
    from dataclasses import replace

    result = backends.run_sharded(backend, net, inputs, replace(options, record_spikes=True))
    if result is None:
        return None
    return report_from_windows(net, inputs, list(result.windows), result.predictions, labels, meta, batch_size)


def report_from_windows(net: Network, inputs: np.ndarray, windows: list[np.ndarray], predictions: np.ndarray | None,
                        labels: np.ndarray | None, meta: dict,
                        batch_size: int = 64) -> tuple[dict, tuple[np.ndarray, list[np.ndarray]]]:
    """The report of spikes a backend already produced: ``windows[k]`` is layer k's window (N, *shape, T)."""
    x = backends.check_inputs(net, inputs)
    parts = [count_network(net, x[lo:lo + batch_size], [np.asarray(w[lo:lo + batch_size]) for w in windows])
             for lo in range(0, len(x), batch_size)]  # bounded memory for the per-step receptive-field sums
    counts = [concat_counts([p[k] for p in parts]) for k in range(len(parts[0]))]
    report = build_report(counts, time_steps=net.time_steps, meta=meta, predictions=predictions, labels=labels)
    return report, (x[0], [np.asarray(w[0]) for w in windows])


def run_report(cfg: ReportConfig) -> ReportResult | None:
    """The whole stage: read the file, load the samples, run the backend, count, write."""
    from .export.netx import read_net
    from .train.data import load_samples, run_data

    start = time.perf_counter()
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise SpikeshipError(f"--out {out} is a file; the report needs a folder")
    net = read_net(cfg.net)
    with new_output_folder(out, "the report"):  # writable before anything runs; removed again if it fails
        dataset, data_dir, downsample = run_data(net, cfg.dataset, cfg.data_dir, cfg.downsample)
        samples = load_samples(dataset, data_dir, cfg.split, net.time_steps, cfg.samples, downsample)
        backends.check_inputs(net, samples.inputs)  # a shape mismatch fails here, before any backend starts
        meta = {"net": str(cfg.net), "backend": cfg.backend, "dataset": dataset, "split": cfg.split,
                "sample_indices": [int(i) for i in samples.indices]}
        from . import distributed

        done = report_on_inputs(net, samples.inputs, samples.labels, cfg.backend, meta,
                                RunOptions(workers=cfg.workers, device=cfg.device), cfg.batch_size)
        if done is None:  # a rank other than 0 under torchrun
            return None
        report, raster = done
        report["meta"]["world_size"] = distributed.world().size
        paths = write_report(report, out, raster)
    return ReportResult(report, paths, time.perf_counter() - start)


__all__ = ["ReportConfig", "run_report", "report_on_inputs", "report_from_windows", "build_report", "count_network",
           "counted_layers", "render_markdown", "write_report", "counts_only", "summary_lines"]
