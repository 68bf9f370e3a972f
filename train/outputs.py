"""The files a training run leaves next to its checkpoint: metrics.json, history.csv, curves.png,
two_weights.png. Each is written to a temporary name and renamed."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Sequence

from ..files import write_bytes
from .two import TWO_SCALE

HISTORY_FIELDS = ("epoch", "loss", "train_accuracy", "test_accuracy", "test_accuracy_quantized_deploy",
                  "lr", "seconds", "two_weights")


def write_metrics(path: Path, metrics: dict) -> None:
    write_bytes(path, (json.dumps(metrics, indent=2, sort_keys=True) + "\n").encode())


def write_history(path: Path, history: Sequence[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        out = {k: row.get(k, "") for k in HISTORY_FIELDS}
        out["two_weights"] = " ".join(f"{a:.4f}" for a in row.get("two_weights", ()))
        writer.writerow(out)
    write_bytes(path, buf.getvalue().encode())


def _save_figure(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    write_bytes(path, buf.getvalue())


def plot_curves(path: Path, history: Sequence[dict], title: str) -> None:
    """Loss and accuracies per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(9, 3.6))
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, [row["loss"] for row in history], marker="o")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss")
    # the float and the integer test decode coincide by construction (train.two.deployed_weights): a dashed
    # line with other markers keeps both visible where they overlap
    for key, label, style in (("train_accuracy", "train", dict(marker="o")),
                              ("test_accuracy", "test (float decode)", dict(marker="o", markersize=7)),
                              ("test_accuracy_quantized_deploy", "test (integer TWO decode, deployed)",
                               dict(marker="x", linestyle="--", markersize=7))):
        ax_acc.plot(epochs, [100 * row[key] for row in history], label=label, **style)
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save_figure(fig, path)


def plot_two_weights(path: Path, two_weights: Sequence[float], two_int: Sequence[int],
                     step_accuracy: Sequence[float] | None, title: str) -> None:
    """TWO weights a_t (float and deployed integers / TWO_SCALE) and the per-step test accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    steps = list(range(len(two_weights)))
    fig = Figure(figsize=(6.5, 3.6))
    ax = fig.subplots()
    width = 0.4
    ax.bar([t - width / 2 for t in steps], two_weights, width, label="a_t (float)")
    ax.bar([t + width / 2 for t in steps], [q / TWO_SCALE for q in two_int], width,
           label=f"a_int / {TWO_SCALE} (deployed)")
    ax.set_xlabel("time step t")
    ax.set_ylabel("TWO weight")
    if step_accuracy is not None:
        ax2 = ax.twinx()
        ax2.plot(steps, [100 * a for a in step_accuracy], color="k", marker=".", label="per-step test accuracy")
        ax2.set_ylabel("per-step test accuracy (%)")
        ax2.set_ylim(0, 100)
        ax2.legend(loc="lower right", fontsize=8)
    ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save_figure(fig, path)
