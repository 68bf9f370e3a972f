"""Studies on event-speech (and event-digits): dense vs recurrent, SG / TWO / MSG / MSG+TWO, MSG against depth.

    .venv/bin/python bench/speech_studies.py networks --seeds 0 1 2 --epochs 30     # event-speech, SG and MSG+TWO
    .venv/bin/python bench/speech_studies.py ablation --seeds 0 1 2 --epochs 30     # event-speech, recurrent
    .venv/bin/python bench/speech_studies.py depth --dataset event-speech --seeds 0 1 2 --epochs 30
    .venv/bin/python bench/speech_studies.py depth --dataset event-digits --seeds 0 1 2 --epochs 30
    .venv/bin/python bench/speech_studies.py report --json docs/speech-studies.json --plots docs/

Every run trains with ``spikeship.train.loop.train`` (the data set framed once per process and shared), then
scores the final network on the *training* split too (eval mode, the deployed TWO weights, no augmentation:
the honest train accuracy, not the running one of the last epoch) so the train-test gap is measured, not
guessed. Each run leaves its usual folder (model.pt, metrics.json, history.csv) plus ``study.json``: its
metrics, the history of every epoch (loss, train accuracy, test accuracy, TWO weights), the per-step test
accuracy, the spike rates per layer and the final train-split accuracy. A run whose ``study.json`` exists is
not trained again, so an interrupted grid continues where it stopped, and studies share their common runs
(the folders are OUT/<data set>/<network>/<setting>/seed<N>); ``--shard K/N`` runs every N-th run of
the grid (two processes side by side on two cores). ``report`` collects the ``study.json`` files under
``--out`` into markdown tables, one JSON file and the figures (per-step test accuracy and learned TWO weights
per setting; MSG - SG against depth).

The networks take the speech preset's neuron and weight scale (``--arch speech``) on event-speech and the
event-digits preset's on event-digits; their layers are written as a ``--config`` TOML in each run folder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from ablation import SETTINGS, add_training_arguments, load_frames, mean_std  # noqa: E402

#: network name -> spiking layers (kind, features); the readout follows
NETWORKS = {
    "recurrent-128": (("recurrent", 128),),
    "dense-128": (("dense", 128),),
    "dense-128-128": (("dense", 128), ("dense", 128)),  # the recurrent layer's parameter count: 27,136 weights
    "recurrent-128-dense-128": (("recurrent", 128), ("dense", 128)),
    "recurrent-128-dense-128x3": (("recurrent", 128), ("dense", 128), ("dense", 128), ("dense", 128)),
    "dense-128x4": (("dense", 128),) * 4,
}
#: the networks of each study; depth: per data set, 1, 2 and 4 spiking layers
STUDIES = {
    "networks": {"event-speech": ("recurrent-128", "dense-128", "dense-128-128")},
    "ablation": {"event-speech": ("recurrent-128",)},
    "depth": {"event-speech": ("recurrent-128", "recurrent-128-dense-128", "recurrent-128-dense-128x3"),
              "event-digits": ("dense-128", "dense-128-128", "dense-128x4")},
}
STUDY_SETTINGS = {"networks": ("SG", "MSG+TWO"), "ablation": tuple(SETTINGS), "depth": ("SG", "MSG")}
DEFAULT_T = {"event-speech": 50, "event-digits": 16}
PRESET = {"event-speech": "speech", "event-digits": "dense"}


@dataclass(frozen=True)
class Run:
    """One training run; studies share runs (the recurrent network's SG run is in all three)."""

    dataset: str
    network: str
    setting: str
    seed: int

    def folder(self, out: Path) -> Path:
        return out / self.dataset / self.network / self.setting.replace("+", "_") / f"seed{self.seed}"


def grid(study: str, dataset: str | None, seeds: list[int], settings: list[str] | None) -> list[Run]:
    """The runs of a study, seed by seed (the first seed's runs first)."""
    runs = []
    for ds, networks in STUDIES[study].items():
        if dataset is not None and ds != dataset:
            continue
        for seed in seeds:
            for network in networks:
                for setting in settings or STUDY_SETTINGS[study]:
                    runs.append(Run(ds, network, setting, seed))
    return runs


def in_study(result: dict, study: str) -> bool:
    return (result["network"] in STUDIES[study].get(result["dataset"], ())
            and result["setting"] in STUDY_SETTINGS[study])


def network_toml(dataset: str, network: str, input_shape: tuple, classes: int) -> str:
    """The network as a --config TOML, with the data set's preset neuron and weight scale."""
    from spikeship.train.loop import TrainConfig, build_spec

    preset = build_spec(TrainConfig(dataset=dataset, arch=PRESET[dataset]), input_shape, classes)
    n = preset.neuron
    lines = [f"weight_scale = {preset.weight_scale!r}"]
    for kind, features in NETWORKS[network]:
        lines += ["[[layer]]", f'kind = "{kind}"', f"features = {features}"]
    lines += ["[neuron]", f"threshold = {n.threshold!r}", f"current_decay = {n.current_decay!r}",
              f"voltage_decay = {n.voltage_decay!r}"]
    return "\n".join(lines) + "\n"


def train_run(run: Run, data, args, out: Path) -> dict:
    """Train one run (or read the finished one) and score it on both splits."""
    from spikeship.files import write_json
    from spikeship.train.checkpoint import load_checkpoint
    from spikeship.train.loop import TrainConfig, evaluate, train

    folder = run.folder(out)
    done = folder / "study.json"
    if done.is_file():
        return json.loads(done.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    train_set, test_set = data
    toml = folder / "network.toml"
    toml.write_text(network_toml(run.dataset, run.network, train_set.input_shape, train_set.num_classes))
    method, decode = SETTINGS[run.setting]
    extra = {} if args.lr is None else {"lr": args.lr}
    cfg = TrainConfig(dataset=run.dataset, model_config=str(toml), time_steps=train_set.spikes.shape[-1],
                      epochs=args.epochs, batch_size=args.batch_size, method=method, mask_prob=args.mask_prob,
                      surrogate=args.surrogate, decode=decode, seed=run.seed, out=str(folder), progress=False,
                      **extra)
    started = time.perf_counter()
    metrics = train(cfg, data=data, replace=True)  # an unfinished run (no study.json) starts again
    seconds = time.perf_counter() - started
    ck = load_checkpoint(folder / "model.pt")
    model = ck.build_model()
    on_train = evaluate(model, train_set.spikes, train_set.labels, ck.two_weights, 256, torch.device("cpu"))
    result = {**vars(run), **metrics, "wall_seconds": seconds,
              "parameters": sum(p.numel() for p in model.parameters()),
              "neurons": sum(int(np.prod(s)) for s in model.spec.layer_shapes()),
              "train_accuracy_eval": on_train["accuracy"], "train_accuracy_eval_deploy": on_train["accuracy_int"],
              "train_step_accuracy": on_train["step_accuracy"], "train_spike_rates": on_train["spike_rates"],
              "history": [{k: v for k, v in row.items()} for row in ck.history]}
    write_json(done, result)
    return result


def run_grid(args) -> int:
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    k, n = (int(v) for v in args.shard.split("/"))
    runs = [r for i, r in enumerate(grid(args.study, args.dataset, args.seeds, args.settings)) if i % n == k]
    frames: dict = {}
    for run in runs:
        if run.dataset not in frames:
            T = args.time_steps or DEFAULT_T[run.dataset]
            cache = Path(args.data_cache) / f"{run.dataset}-T{T}.pt" if args.data_cache else None
            frames = {run.dataset: load_frames(run.dataset, T, cache)}  # one data set in memory at a time
        r = train_run(run, frames[run.dataset], args, out)
        print(f"{args.study}: {run.dataset} {run.network} {run.setting} seed {run.seed}: test "
              f"{100 * r['test_accuracy']:.2f}% (deployed {100 * r['test_accuracy_quantized_deploy']:.2f}%), "
              f"train {100 * r['train_accuracy_eval']:.2f}%, {r['wall_seconds']:.0f} s", flush=True)
    return 0


# ------------------------------------------------------------------------------------------------ report

def collect(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("*/*/*/seed*/study.json"))]


def _pm(values: list[float]) -> str:
    m, s = mean_std([100 * v for v in values])
    return f"{m:.2f} ± {s:.2f}"


def _groups(results: list[dict], study: str):
    """((data set, network, setting), runs) in the study's order."""
    mine = [r for r in results if in_study(r, study)]
    for ds, networks in STUDIES[study].items():
        for network in networks:
            for setting in STUDY_SETTINGS[study]:
                rs = [r for r in mine if (r["dataset"], r["network"], r["setting"]) == (ds, network, setting)]
                if rs:
                    yield (ds, network, setting), sorted(rs, key=lambda r: r["seed"])


def table(results: list[dict], study: str) -> str:
    lines = ["| data set | network | setting | seeds | epochs | test % | deployed % | train % (eval) | train - test "
             "| spikes/neuron/step (test) | per seed (test) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (ds, network, setting), rs in _groups(results, study):
        gap = [r["train_accuracy_eval"] - r["test_accuracy"] for r in rs]
        rates = " / ".join(f"{statistics.fmean(r['test_spike_rates'][i] for r in rs):.3f}"
                           for i in range(len(rs[0]["test_spike_rates"])))
        lines.append(f"| {ds} | {network} | {setting} | {len(rs)} | {rs[0]['epochs']} | "
                     f"{_pm([r['test_accuracy'] for r in rs])} | {_pm([r['test_accuracy_quantized_deploy'] for r in rs])} "
                     f"| {_pm([r['train_accuracy_eval'] for r in rs])} | {_pm(gap)} | {rates} | "
                     + " ".join(f"{100 * r['test_accuracy']:.1f}" for r in sorted(rs, key=lambda r: r["seed"])) + " |")
    return "\n".join(lines)


def depth_table(results: list[dict]) -> str:
    """MSG - SG per data set and depth, paired by seed."""
    lines = ["| data set | spiking layers | SG test % | MSG test % | MSG - SG (paired) | SG train - test | "
             "MSG train - test |", "|---|---|---|---|---|---|---|"]
    by = {}
    for r in results:
        if in_study(r, "depth"):
            by.setdefault((r["dataset"], r["network"]), {}).setdefault(r["setting"], {})[r["seed"]] = r
    for (ds, network), d in by.items():
        sg, msg = d.get("SG", {}), d.get("MSG", {})
        seeds = sorted(set(sg) & set(msg))
        if not seeds:
            continue
        depth = len(NETWORKS[network])
        diff = [msg[s]["test_accuracy"] - sg[s]["test_accuracy"] for s in seeds]
        lines.append(f"| {ds} | {depth} ({network}) | {_pm([sg[s]['test_accuracy'] for s in seeds])} | "
                     f"{_pm([msg[s]['test_accuracy'] for s in seeds])} | {_pm(diff)} | "
                     f"{_pm([sg[s]['train_accuracy_eval'] - sg[s]['test_accuracy'] for s in seeds])} | "
                     f"{_pm([msg[s]['train_accuracy_eval'] - msg[s]['test_accuracy'] for s in seeds])} |")
    return "\n".join(lines)


def plot_steps(results: list[dict], study: str, path: Path) -> None:
    """Per-step test accuracy (mean over seeds) and the learned TWO weights, one line per setting/network."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(_groups(results, study))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    for (ds, network, setting), rs in groups:
        label = f"{network} {setting}" if study != "ablation" else setting
        acc = np.mean([r["test_step_accuracy"] for r in rs], axis=0)
        ax1.plot(100 * acc, label=label)
        if SETTINGS[setting][1] == "two":
            ax2.plot(np.mean([r["two_weights"] for r in rs], axis=0), label=label)
    ds = groups[0][0][0] if groups else ""
    ax1.set(xlabel="time step t", ylabel="test accuracy of o_t alone (%)",
            title=f"{ds}: per-step test accuracy (mean of {len(groups[0][1]) if groups else 0} seeds)")
    ax2.set(xlabel="time step t", ylabel="a_t", title="learned TWO weights (mean over seeds)")
    ax2.axhline(1.0, color="grey", lw=0.5)
    for ax in (ax1, ax2):
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_depth(results: list[dict], path: Path) -> None:
    """Test accuracy and train-test gap against depth, SG and MSG, per data set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({r["dataset"] for r in results if in_study(r, "depth")})
    fig, axes = plt.subplots(1, max(1, len(datasets)), figsize=(6 * max(1, len(datasets)), 4), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        for setting, color in (("SG", "C0"), ("MSG", "C1")):
            pts = {}
            for r in results:
                if in_study(r, "depth") and r["dataset"] == ds and r["setting"] == setting:
                    pts.setdefault(len(NETWORKS[r["network"]]), []).append(r)
            depths = sorted(pts)
            test = [100 * statistics.fmean(r["test_accuracy"] for r in pts[d]) for d in depths]
            train = [100 * statistics.fmean(r["train_accuracy_eval"] for r in pts[d]) for d in depths]
            ax.plot(depths, test, "o-", color=color, label=f"{setting} test")
            ax.plot(depths, train, "s--", color=color, alpha=0.6, label=f"{setting} train (eval)")
        ax.set(xlabel="spiking layers", ylabel="accuracy %", title=f"{ds}: MSG vs SG against depth", xticks=[1, 2, 4])
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(args) -> int:
    results = collect(Path(args.out))
    if not results:
        raise SystemExit(f"no study.json under {args.out}")
    for study in STUDIES:
        if any(in_study(r, study) for r in results):
            print(f"\n## {study}\n\n{table(results, study)}")
    if any(in_study(r, "depth") for r in results):
        print(f"\n## depth: MSG - SG\n\n{depth_table(results)}")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results}, indent=1, default=float))
    if args.plots:
        plots = Path(args.plots)
        for study, name in (("ablation", "speech-ablation.png"), ("networks", "speech-networks.png")):
            if any(in_study(r, study) for r in results):
                plot_steps(results, study, plots / name)
        if any(in_study(r, "depth") for r in results):
            plot_depth(results, plots / "msg-depth.png")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study", choices=list(STUDIES) + ["report"])
    p.add_argument("--dataset", default=None, choices=list(DEFAULT_T), help="only this data set's runs")
    add_training_arguments(p, epochs=30, time_steps=None, settings=None)  # T: 50 on event-speech, 16 on event-digits
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--shard", default="0/1", help="K/N: run every N-th run of the grid, starting at K")
    p.add_argument("--out", default="runs/studies")
    p.add_argument("--data-cache", default=None, metavar="DIR", help="framed data sets kept here (made if missing)")
    p.add_argument("--json", default=None, help="report: write every run's results here")
    p.add_argument("--plots", default=None, metavar="DIR", help="report: write the figures here")
    args = p.parse_args(argv)
    return report(args) if args.study == "report" else run_grid(args)


if __name__ == "__main__":
    sys.exit(main())
