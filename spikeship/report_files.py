"""The report's files and terminal lines: report.md, energy.png, raster.png, report.json (written atomically).

Pure presentation of the dict that :func:`spikeship.report.build_report` returns; no counting here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from .files import atomic_output


def _write_atomic(path: Path, write: Callable[[str], None]) -> None:
    with atomic_output(path) as tmp:
        write(str(tmp))


def _text_writer(text: str) -> Callable[[str], None]:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)
    return write


def _fmt(x: float, digits: int = 3) -> str:
    if x is None:
        return "-"
    if x == 0:
        return "0"
    if abs(x) >= 1000 or abs(x) < 0.01:
        return f"{x:.{digits}g}" if abs(x) < 1e6 else f"{x:.{digits}e}"
    return f"{x:.{digits}g}"


def _nj(pj: float) -> str:
    return f"{pj / 1000:,.2f}"


def render_markdown(report: dict) -> str:
    """The human-readable report: per-layer table, totals, constants with sources, assumptions."""
    meta, totals, T = report["meta"], report["totals"], report["time_steps"]
    lines = [f"# spikeship report: {meta.get('net', '?')}", ""]
    lines.append(f"Backend **{meta.get('backend')}**, data set {meta.get('dataset')} ({meta.get('split')} split), "
                 f"{totals['samples']} samples, T = {T} steps per inference. Counts are per inference "
                 "(mean +- std over samples); energies in nJ per inference.")
    if "accuracy" in totals:
        lines.append(f"Accuracy on these samples: {100 * totals['accuracy']:.2f}% "
                     f"({totals['correct']}/{totals['samples']}).")
    ev = totals["input_events"]
    lines += ["", f"Input events: {ev['mean']:.1f} +- {ev['std']:.1f} per inference.", "",
              "| layer | shape | neurons | spikes | rate | SynOps | updates (active) | Loihi nJ | ANN MACs | "
              "ANN FP32 nJ | ANN INT8 nJ | Loihi/ANN INT8 | AC/MAC FP32 | cores | exceeded |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for layer in report["layers"]:
        en, r = layer["energy_pj"], layer["ratios"]
        sp = layer["spikes"]
        spikes = f"{sp['mean']:.1f} +- {sp['std']:.1f}" if layer["spiking"] else "(readout)"
        lines.append(
            f"| {layer['name']} | {'x'.join(map(str, layer['shape']))} | {layer['neurons']:,} | {spikes} | "
            f"{layer['firing_rate']:.4f} | {layer['synops']['mean']:,.0f} | {layer['neuron_updates']:,} "
            f"({layer['active_updates']['mean']:,.0f}) | {_nj(en['loihi'])} | {layer['ann_macs']:,} | "
            f"{_nj(en['ann_fp32'])} | {_nj(en['ann_int8'])} | {_fmt(r['loihi_vs_ann_int8'])} | "
            f"{_fmt(r['paper_fp32'])} | {layer['cores']} | {'; '.join(layer['exceeded']) or '-'} |")
    en, r = totals["energy_pj"], totals["ratios"]
    sp = totals["spikes"]
    lines.append(
        f"| **total** | | {sum(x['neurons'] for x in report['layers']):,} | {sp['mean']:.1f} +- {sp['std']:.1f} | | "
        f"{totals['synops']['mean']:,.0f} | {totals['neuron_updates']:,} ({totals['active_updates']['mean']:,.0f}) | "
        f"{_nj(en['loihi'])} | {totals['ann_macs']:,} | {_nj(en['ann_fp32'])} | {_nj(en['ann_int8'])} | "
        f"{_fmt(r['loihi_vs_ann_int8'])} | {_fmt(r['paper_fp32'])} | {totals['cores']} | "
        f"{'; '.join(totals['exceeded']) or '-'} |")
    terms = {k: sum(layer["energy_pj"]["loihi_terms"][k] for layer in report["layers"])
             for k in ("synops", "updates", "spikes")}
    lines += [
        "", "## Energy per inference, two estimates", "",
        f"- Loihi table (SynOps x E_synop + neuron updates x E_active/E_idle + spike traffic): "
        f"**{_nj(en['loihi'])} nJ** (+- {_nj(en['loihi_std'])}); of which SynOps {_nj(terms['synops'])}, "
        f"neuron updates {_nj(terms['updates'])}, spike traffic {_nj(terms['spikes'])}.",
        f"- Common SNN-paper estimate (SynOps x E_AC vs MACs x E_MAC): SNN {_nj(en['snn_ac_fp32'])} nJ vs ANN "
        f"{_nj(en['ann_fp32'])} nJ in FP32 (ratio {_fmt(r['paper_fp32'])}); SNN {_nj(en['snn_ac_int8'])} nJ vs "
        f"ANN {_nj(en['ann_int8'])} nJ in INT8 (ratio {_fmt(r['paper_int8'])}).",
        f"- Loihi-table SNN vs ANN: {_fmt(r['loihi_vs_ann_fp32'])}x the FP32 ANN, "
        f"{_fmt(r['loihi_vs_ann_int8'])}x the INT8 ANN. SynOps per ANN MAC: {_fmt(r['synops_per_mac'])}."
        + ("" if totals["ann_steps"] == 1 else f" (The ANN is the same layers as a non-spiking RNN stepped over "
                                                 f"the {totals['ann_steps']} input frames.)"),
        f"- Latency: {T} time steps per inference (the decision is read at the end of the window); pipeline "
        f"depth {totals['pipeline_depth_steps']} steps (one per synapse layer, readout included).",
        f"- Resources: {totals['cores']} Loihi cores (lower bound); "
        f"{'limits exceeded: ' + '; '.join(totals['exceeded']) if totals['exceeded'] else 'no limit exceeded'}.",
        "", "## Constants", "", "| constant | value | unit | source | note |", "|---|---|---|---|---|"]
    for c in report["constants"]:
        lines.append(f"| {c['name']} | {c['value']:,} | {c['unit']} | {c['source']} | {c['note']} |")
    lines += ["", "## Assumptions", ""] + [f"- {a}" for a in report["assumptions"]] + [""]
    return "\n".join(lines)


def plot_energy(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = report["layers"]
    names = [layer["name"] for layer in layers]
    x = np.arange(len(layers))
    series = [("Loihi table", "loihi"), ("SNN AC FP32", "snn_ac_fp32"), ("ANN MAC FP32", "ann_fp32"),
              ("ANN MAC INT8", "ann_int8")]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    width = 0.8 / len(series)
    for i, (label, key) in enumerate(series):
        vals = [max(layer["energy_pj"][key] / 1000, 1e-6) for layer in layers]
        ax1.bar(x + (i - (len(series) - 1) / 2) * width, vals, width, label=label)
    ax1.set_yscale("log")
    ax1.set_xticks(x, names, rotation=30)
    ax1.set_ylabel("nJ per inference (log)")
    ax1.set_title("Energy per layer: Loihi table vs paper-style estimates")
    ax1.legend(fontsize=8)
    bottom = np.zeros(len(layers))
    for label, key in (("SynOps", "synops"), ("neuron updates", "updates"), ("spike traffic", "spikes")):
        vals = np.array([layer["energy_pj"]["loihi_terms"][key] / 1000 for layer in layers])
        ax2.bar(x, vals, 0.6, bottom=bottom, label=label)
        bottom += vals
    ax2.set_xticks(x, names, rotation=30)
    ax2.set_ylabel("nJ per inference")
    ax2.set_title("Loihi-table estimate by term")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    _write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def plot_raster(inputs: np.ndarray, windows: list[np.ndarray], names: list[str], path: Path,
                title: str = "") -> None:
    """One sample: input events and every layer's spikes (neuron index vs step), one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("input", inputs)] + list(zip(names, windows))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.6), squeeze=False)
    for ax, (name, s) in zip(axes[0], panels):
        flat = s.reshape(-1, s.shape[-1])
        neuron, step = np.nonzero(flat)
        ax.scatter(step, neuron, s=2, marker="|", color="k", linewidths=0.6)
        ax.set_xlim(-0.5, flat.shape[1] - 0.5)
        ax.set_ylim(-0.5, flat.shape[0] - 0.5)
        ax.set_title(f"{name}\n{len(neuron)} spikes", fontsize=9)
        ax.set_xlabel("step")
    axes[0][0].set_ylabel("neuron (flattened C, H, W)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def write_report(report: dict, out_dir: Path, raster: tuple[np.ndarray, list[np.ndarray]] | None) -> dict:
    """Write report.json, report.md, energy.png and (given one sample's spikes) raster.png; return paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md", "energy": out_dir / "energy.png"}
    _write_atomic(paths["json"], _text_writer(json.dumps(report, indent=1) + "\n"))
    _write_atomic(paths["md"], _text_writer(render_markdown(report)))
    plot_energy(report, paths["energy"])
    if raster is not None:
        paths["raster"] = out_dir / "raster.png"
        names = [layer["name"] for layer in report["layers"] if layer["spiking"]]
        plot_raster(raster[0], raster[1], names, paths["raster"],
                    title=f"one sample, {report['meta'].get('backend')} backend")
    return paths


def ann_label(totals: dict) -> str:
    """What the ANN reference is: "ANN" (run once), or "RNN over T steps" for a recurrent network."""
    return "ANN" if totals["ann_steps"] == 1 else f"RNN over {totals['ann_steps']} steps"


def summary_lines(report: dict) -> list[str]:
    """A few lines for the terminal."""
    t = report["totals"]
    en, r = t["energy_pj"], t["ratios"]
    lines = [f"{t['samples']} samples, T = {report['time_steps']}: {t['spikes']['mean']:.1f} spikes, "
             f"{t['synops']['mean']:,.0f} SynOps, {t['input_events']['mean']:.1f} input events per inference"]
    if "accuracy" in t:
        lines.append(f"accuracy {100 * t['accuracy']:.2f}% ({t['correct']}/{t['samples']})")
    lines.append(f"energy per inference: Loihi table {_nj(en['loihi'])} nJ; {ann_label(t)} {_nj(en['ann_fp32'])} nJ FP32, "
                 f"{_nj(en['ann_int8'])} nJ INT8 (Loihi/ANN INT8 {_fmt(r['loihi_vs_ann_int8'])}, "
                 f"AC/MAC FP32 {_fmt(r['paper_fp32'])})")
    exceeded = "exceeded: " + "; ".join(t["exceeded"]) if t["exceeded"] else "no limit exceeded"
    lines.append(f"cores: {t['cores']}; {exceeded}")
    return lines
