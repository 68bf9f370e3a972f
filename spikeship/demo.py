"""`spikeship demo --out DIR` (what `make demo` runs): the whole chain on event-digits, end to end.

train (MSG + TWO, a few epochs, CPU) -> export (.net + ONNX) -> emulator on the whole test split -> Lava on a
subset -> parity PyTorch = emulator = Lava, spike by spike -> energy report; then one summary table.
``--task speech`` does the same on event-speech (spoken digits, the speech extra) with the recurrent
``--arch speech`` network; what differs between the tasks is one entry of :data:`TASKS`.

Each step calls the stage's own functions (no subprocess, no re-parsing of printed output) and prints where
its artifacts are. A stage that is missing or fails is reported as such and the table says so; nothing is
filled in for it. The Lava subset is the one ``spikeship report --samples N`` (and ``run``/``parity``) picks,
so every figure can be reproduced with the stage commands printed at the end.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import SpikeshipError
from .files import output_folder, write_json

@dataclass(frozen=True)
class Task:
    """One `--task`: the data set (and how the data line describes it and its input axes), the network
    presets it offers (the first is its default), T and epochs. Lava runs the whole test split unless
    ``--lava-samples`` says otherwise."""

    dataset: str
    description: str
    axes: str
    archs: tuple[str, ...]
    time_steps: int
    epochs: int


TASKS = {
    "digits": Task("event-digits", "built in: sklearn's 1,797 digits seen by a simulated DVS", "polarity, y, x",
                   ("dense", "conv"), time_steps=16, epochs=6),
    "speech": Task("event-speech", "built in: spoken digits 0-9 in English and German by synthetic speakers, "
                   "a cochlea model's spikes; the test speakers are unseen in training", "channel, 1, 1",
                   ("speech",), time_steps=50, epochs=20),
}
NETWORKS = {"speech": "recurrent"}  # how the summary names a preset's network, where not by its own name


@dataclass(frozen=True)
class DemoConfig:
    """``arch``, ``epochs``, ``time_steps``: None takes the task's (``TASKS``); ``lava_samples`` None is the
    whole test split."""

    out: str = "demo-out"
    task: str = "digits"
    arch: str | None = None
    epochs: int | None = None
    time_steps: int | None = None
    lava_samples: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise SpikeshipError(f"--task must be one of {', '.join(TASKS)}, not {self.task!r}")
        task = TASKS[self.task]
        for name, value in (("arch", task.archs[0]), ("epochs", task.epochs), ("time_steps", task.time_steps)):
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.epochs < 1:
            raise SpikeshipError(f"--epochs must be at least 1, not {self.epochs}")
        if self.lava_samples is not None and self.lava_samples < 0:
            raise SpikeshipError(f"--lava-samples must be >= 0, not {self.lava_samples}")
        if self.arch not in task.archs:
            raise SpikeshipError(f"--arch must be {' or '.join(task.archs)} for --task {self.task}, "
                                 f"not {self.arch!r}")

    @property
    def dataset(self) -> str:
        return TASKS[self.task].dataset


class Step:
    """Times one step, prints its header and its outcome; a missing or failed stage is recorded, not hidden."""

    def __init__(self, log: dict, name: str, title: str):
        self.log, self.name, self.title = log, name, title

    def __enter__(self):
        print(f"\n== {self.title}", flush=True)
        self.start = time.perf_counter()
        return self

    def __exit__(self, kind, err, tb):
        seconds = time.perf_counter() - self.start
        if err is None:
            self.log[self.name] = {"status": "ok", "seconds": seconds}
            print(f"   ({seconds:.1f} s)", flush=True)
            return False
        if isinstance(err, ImportError):
            status = f"not built (missing module: {err.name or err})"
        elif isinstance(err, (SpikeshipError, RuntimeError, ValueError, OSError)):
            status = f"failed: {' '.join(str(err).split())}"
        else:
            return False  # a bug or Ctrl-C: let it surface
        self.log[self.name] = {"status": status, "seconds": seconds}
        print(f"   {self.name}: {status}", flush=True)
        return True


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def run_demo(cfg: DemoConfig) -> dict:
    """Run every step; returns the summary (also written to OUT/summary.json)."""
    import torch

    from .train.data import load_dataset

    task = TASKS[cfg.task]
    if task.dataset == "event-speech":  # the speech extra, before any work: one line, exit 2
        from .train.speech_synth import espeak_version

        espeak_version()
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    out = Path(cfg.out)
    output_folder(out, "the demo")
    wall0 = time.perf_counter()
    log: dict = {}
    s: dict = {"dataset": cfg.dataset, "arch": cfg.arch, "time_steps": cfg.time_steps, "epochs": cfg.epochs}
    run_dir, net_path, onnx_path = out / "train", out / "model.net", out / "model.onnx"

    with Step(log, "imports", "imports: torch, lava-nc, lava-dl"):
        _quiet_imports()
    with Step(log, "data", f"data: {cfg.dataset} ({task.description})"):
        _note_generation(cfg.dataset)
        train_set = load_dataset(cfg.dataset, None, cfg.time_steps, "train")
        test_set = load_dataset(cfg.dataset, None, cfg.time_steps, "test")
        s["test_samples"] = len(test_set)
        print(f"   train {len(train_set)}, test {len(test_set)} samples, input {train_set.input_shape} "
              f"({task.axes}), T = {cfg.time_steps} bins of {train_set.window_us / 1000:.2f} ms, "
              f"{float(test_set.spikes.float().sum((1, 2, 3, 4)).mean()):.0f} input spikes per test sample")
    if "data" not in log or log["data"]["status"] != "ok":
        return _finish(out, s, log, wall0)

    epochs = f"{cfg.epochs} epoch{'s' if cfg.epochs > 1 else ''}"
    with Step(log, "train", f"train: {_network(cfg.arch)} network, MSG + TWO, {epochs}, CPU"):
        from .train.loop import TrainConfig, train

        tcfg = TrainConfig(dataset=cfg.dataset, arch=cfg.arch, time_steps=cfg.time_steps, epochs=cfg.epochs,
                           method="msg", decode="two", seed=cfg.seed, out=str(run_dir),
                           progress=sys.stderr.isatty())
        print(f"   MSG mask probability {tcfg.mask_probability}, {tcfg.surrogate} surrogate, TWO beta {tcfg.beta}, "
              f"AdamW lr {tcfg.lr}, batch {tcfg.batch_size}, seed {tcfg.seed}", flush=True)
        metrics = train(tcfg, data=(train_set, test_set), replace=True)  # the demo owns its folder
        if not tcfg.progress:
            for row in _history(run_dir):
                print(f"   epoch {row['epoch']}: loss {float(row['loss']):.4f}, "
                      f"train {_pct(float(row['train_accuracy']))}"
                      f", test {_pct(float(row['test_accuracy']))}, {float(row['seconds']):.1f} s")
        s["pytorch_float"] = metrics["test_accuracy"]
        s["quantized_deploy"] = metrics["test_accuracy_quantized_deploy"]
        print(f"   checkpoint {run_dir / 'model.pt'}; curves {run_dir / 'curves.png'}, TWO weights "
              f"{run_dir / 'two_weights.png'}")

    if log.get("train", {}).get("status") == "ok":
        with Step(log, "export", "export: quantize, check Loihi limits, write netx .net and ONNX"):
            from .export.stage import ExportConfig, export_checkpoint

            net, resources = export_checkpoint(ExportConfig(model=run_dir / "model.pt", out=net_path, onnx=onnx_path))
            print(f"   {len(net.layers)} spiking layers, about {sum(r.cores for r in resources)} Loihi 1 cores; "
                  f"{net_path}, {onnx_path}")

    emu = None
    x_all, labels_all = test_set.spikes.numpy(), test_set.labels.numpy()
    if net_path.is_file() and log.get("export", {}).get("status") == "ok":
        with Step(log, "emulator", f"emulator: the whole test split ({len(test_set)} samples), energy report"):
            from . import backends
            from .export.netx import read_net
            from .report import report_from_windows, summary_lines, write_report

            net = read_net(net_path)  # what every later stage reads: the file
            emu = backends.run("emulator", net, x_all, backends.RunOptions(record_spikes=True))
            meta = {"net": str(net_path), "backend": "emulator", "dataset": cfg.dataset, "split": "test",
                    "sample_indices": [int(i) for i in test_set.indices]}
            report, raster = report_from_windows(net, x_all, list(emu.windows), emu.predictions, labels_all, meta)
            paths = write_report(report, out / "report", raster)
            s["emulator"] = report["totals"]["accuracy"]
            s["report"] = report["totals"]
            for line in summary_lines(report):
                print(f"   {line}")
            print(f"   report {paths['md']}, {paths['json']}, {paths['energy']}, {paths['raster']}")

    n_lava = len(test_set) if cfg.lava_samples is None else min(cfg.lava_samples, len(test_set))
    if emu is not None and n_lava > 0:
        of = "" if n_lava == len(test_set) else f" of the {len(test_set)}"
        with Step(log, "lava", f"Lava (fixed_pt CPU simulator) on {n_lava}{of} test samples; parity PyTorch = "
                               "emulator = Lava; energy report from Lava's spikes"):
            s.update(_lava_and_parity(out, net, net_path, run_dir, test_set, emu, n_lava))
    elif emu is not None:
        log["lava"] = {"status": "skipped (--lava-samples 0)", "seconds": 0.0}
    return _finish(out, s, log, wall0)


def _network(arch: str) -> str:
    return NETWORKS.get(arch, arch)


def _note_generation(dataset: str) -> None:
    """event-speech is synthesized once and cached: say so when this run is the one that makes it."""
    if dataset != "event-speech":
        return
    from .train import event_speech

    path = event_speech.cache_path(event_speech.DEFAULT_CONFIG)
    if not path.is_file():
        print(f"   first use: synthesizing the set (1-2 minutes on 2 cores), cached in {path}", flush=True)


def _quiet_imports() -> None:
    """Import the heavy dependencies once, up front, and say what their import-time notices were instead of
    letting them interleave with the demo's output (torch's "No CUDA runtime is found", lava-dl's optional
    Prophesee toolbox warning)."""
    import contextlib
    import io
    from importlib.metadata import version

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        import torch
        from lava.lib.dl import netx, slayer  # noqa: F401
    notes = [line.strip() for line in buf.getvalue().splitlines() if line.strip()]
    print(f"   torch {torch.__version__} (CPU, {torch.get_num_threads()} threads), lava-nc {version('lava-nc')}, "
          f"lava-dl {version('lava-dl')}" + (f"; {len(notes)} import-time notice lines hidden, the first: "
                                             f"{notes[0]!r}" if notes else ""))


def _lava_and_parity(out: Path, net, net_path: Path, run_dir: Path, test_set, emu, n: int) -> dict:
    """Lava and PyTorch's deploy-equivalent forward on the samples ``--samples n`` picks, compared spike by
    spike with the emulator's run (the parity stage's ``check_parity``); then the report from Lava's spikes,
    which must equal the report from the emulator's in every count."""
    from .report import counts_only, report_from_windows, write_report
    from .sim.parity import check_parity
    from .train.checkpoint import load_checkpoint
    from .train.datasets import subset_indices

    pick = subset_indices(len(test_set), n)  # the samples `--samples N` picks in every stage
    x, labels = test_set.spikes.numpy()[pick], test_set.labels.numpy()[pick]
    model = load_checkpoint(run_dir / "model.pt").build_model()
    t0 = time.perf_counter()
    run = check_parity(net, model, x, labels, against=("lava",), reference=emu.subset(pick))
    seconds = time.perf_counter() - t0
    result, lava, reference = run.result, run.runs["lava"], run.runs["emulator"]
    meta = {"net": str(net_path), "dataset": test_set.name, "split": "test",
            "sample_indices": [int(test_set.indices[i]) for i in pick]}
    lava_report, lava_raster = report_from_windows(net, x, list(lava.windows), lava.predictions, labels,
                                                   {**meta, "backend": "lava"})
    emu_report, _ = report_from_windows(net, x, list(reference.windows), reference.predictions, labels,
                                        {**meta, "backend": "emulator"})
    identical = counts_only(lava_report) == counts_only(emu_report)
    paths = write_report(lava_report, out / "report-lava", lava_raster)
    d = result.to_dict()
    d.update(net=str(net_path), split="test", sample_indices=meta["sample_indices"])
    write_json(out / "parity.json", d)
    first = result.first_mismatch.line() if result.first_mismatch else None
    print(f"   Lava and PyTorch on {n} samples, compared with the emulator: {seconds:.1f} s")
    print(f"   parity: {'OK' if result.ok else 'FAILED'}: {result.compared:,} spike entries compared (neuron x step "
          f"x sample, PyTorch-emulator and Lava-emulator), readout accumulators, predictions"
          + ("" if result.ok else f"; {first}"))
    print(f"   energy report from Lava's spikes == from the emulator's, every count: {identical}")
    print(f"   {out / 'parity.json'}; Lava report {paths['md']}")
    return {"lava": result.accuracy.get("lava"), "lava_samples": n, "lava_seconds": seconds,
            "emulator_on_lava_samples": result.accuracy.get("emulator"), "parity_ok": bool(result.ok),
            "parity_first_mismatch": first, "parity_compared": result.compared, "reports_identical": identical}


def _history(run_dir: Path) -> list[dict]:
    import csv

    path = run_dir / "history.csv"
    if not path.is_file():
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def _finish(out: Path, s: dict, log: dict, wall0: float) -> dict:
    s["steps"] = log
    s["wall_s"] = time.perf_counter() - wall0
    print_summary(s)
    write_json(out / "summary.json", s, default=float)
    print(f"\nall artifacts under {out}/ (summary.json, report/, report-lava/, model.net, model.onnx, train/)")
    return s


def print_summary(s: dict) -> None:
    steps = s.get("steps", {})

    def status(name):
        st = steps.get(name, {}).get("status")
        return None if st == "ok" else (st or "not run")

    n_test, n_lava = s.get("test_samples"), s.get("lava_samples")
    rows = [
        ("PyTorch, float TWO decode", _pct(s.get("pytorch_float")), n_test, status("train")),
        ("quantized, integer deploy decode", _pct(s.get("quantized_deploy")), n_test, status("train")),
        ("emulator (bit-exact integer)", _pct(s.get("emulator")), n_test, status("emulator")),
        ("Lava (fixed_pt CPU simulator)", _pct(s.get("lava")), n_lava, status("lava")),
    ]
    print("\n" + "=" * 78)
    epochs = f"{s['epochs']} epoch{'s' if s['epochs'] > 1 else ''}"
    print(f"spikeship demo: {s['dataset']}, {_network(s['arch'])} network, T = {s['time_steps']}, {epochs} "
          f"MSG + TWO")
    print(f"{'':36}{'accuracy':>10}{'samples':>9}")
    for name, acc, n, st in rows:
        n = None if st else n
        print(f"  {name:34}{acc:>10}{'-' if n is None else n:>9}" + (f"   {st}" if st else ""))
    if s.get("emulator_on_lava_samples") is not None and n_lava != n_test:
        print(f"  {'emulator on the Lava samples':34}{_pct(s['emulator_on_lava_samples']):>10}{n_lava:>9}")
    if "parity_ok" in s:
        verdict = "OK: identical spikes, readouts and predictions" if s["parity_ok"] else \
            f"FAILED: {s['parity_first_mismatch']}"
        print(f"parity PyTorch = emulator = Lava on {n_lava} samples: {verdict}")
        print(f"energy report from Lava == from emulator (every count): {s['reports_identical']}")
    else:
        print(f"parity: {status('lava')}")
    t = s.get("report")
    if t:
        from .report_files import ann_label

        en, r = t["energy_pj"], t["ratios"]
        print(f"per inference ({t['samples']} test samples): {t['spikes']['mean']:.0f} spikes, "
              f"{t['synops']['mean']:,.0f} SynOps, latency {t['latency_steps']} steps, {t['cores']} Loihi 1 cores "
              "with the readout")
        print(f"energy per inference: Loihi table {en['loihi'] / 1000:,.1f} nJ | paper-style SNN "
              f"{en['snn_ac_fp32'] / 1000:,.2f} nJ vs {ann_label(t)} {en['ann_fp32'] / 1000:,.2f} nJ (FP32), "
              f"SNN/ANN = {r['paper_fp32']:.3f}")
        print(f"  Loihi table / ANN: {r['loihi_vs_ann_fp32']:.2f}x FP32, {r['loihi_vs_ann_int8']:.1f}x INT8 "
              "(Loihi 1 figures; none are published for Loihi 2)")
    else:
        print(f"energy report: {status('emulator')}")
    print(f"wall time {s['wall_s']:.0f} s (" + ", ".join(f"{k} {v['seconds']:.0f} s" for k, v in steps.items()) + ")")
    print("=" * 78)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d, speech = DemoConfig(), TASKS["speech"]
    parser.add_argument("--out", metavar="DIR", default=d.out, help=f"output folder (default: {d.out})")
    parser.add_argument("--task", choices=tuple(TASKS), default=d.task,
                        help=f"digits (default): event-digits, the dense or conv network; speech: event-speech "
                             f"(spoken digits; needs the speech extra) with the recurrent --arch speech network, "
                             f"T = {speech.time_steps}, {speech.epochs} epochs (3-4 minutes on 2 idle cores)")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"training epochs (default: {d.epochs}; --task speech: {speech.epochs})")
    parser.add_argument("--arch", choices=tuple(a for t in TASKS.values() for a in t.archs), default=None,
                        help="network preset (--task digits: dense, the default, about 0.6 s per epoch on 2 idle "
                             "cores, or conv, about 24 s per epoch; --task speech: speech)")
    parser.add_argument("--lava-samples", type=int, default=None, metavar="N",
                        help="test samples run in Lava and checked for parity (default: the whole test split, "
                             "about 4 s for the dense preset on 2 idle cores, 30-50 s for --task speech; 0 skips Lava)")
    parser.add_argument("--seed", type=int, default=d.seed)


def run(args) -> int:
    cfg = DemoConfig(out=args.out, task=args.task, arch=args.arch, epochs=args.epochs,
                     lava_samples=args.lava_samples, seed=args.seed)
    s = run_demo(cfg)
    failed = [k for k, v in s["steps"].items() if not (v["status"] == "ok" or v["status"].startswith("skipped"))]
    if failed or s.get("parity_ok") is False or s.get("reports_identical") is False:
        return 1
    return 0
