"""Plot event-digits samples as frames over time, ON and OFF separately (docs/event-digits.png).

    .venv/bin/python bench/plot_event_digits.py --out docs/event-digits.png   (or: make figures)

One test sample per class: the 8x8 scan it was made from, then one row of ON and one row of OFF
event counts per time bin (tonic's ToFrame over fixed windows, as the data interface frames them,
before the 0/1 clipping), and the saccade trajectory.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tonic.transforms import ToFrame  # noqa: E402

from spikeship.train import event_digits as ed  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/event-digits.png")
    parser.add_argument("--bins", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    images, labels = ed.load_digits()
    test = ed.split_indices(labels, "test")
    picks = [int(test[np.flatnonzero(labels[test] == c)[0]]) for c in range(10)]
    events = ed.make_events(images, picks, seed=args.seed)
    window = ed.DURATION_US // args.bins
    to_frame = ToFrame(sensor_size=ed.SENSOR_SIZE, time_window=window, start_time=0,
                       end_time=args.bins * window)
    frames = [to_frame(ev) for ev in events]  # (bins, P, H, W) counts
    vmax = max(int(np.percentile(f[f > 0], 99)) for f in frames)

    rows, cols = 10, args.bins + 1
    fig, axes = plt.subplots(2 * rows, cols, figsize=(0.95 * cols + 0.5, 0.82 * 2 * rows + 0.6))
    cmaps = {}
    for pol, name in ((1, "Reds"), (0, "Blues")):
        cmaps[pol] = plt.get_cmap(name).copy()
        cmaps[pol].set_under("white")  # no event: white
    for r, (digit, ev, fr) in enumerate(zip(picks, events, frames)):
        scan = axes[2 * r, 0]
        scan.imshow(images[digit], cmap="gray_r", vmin=0, vmax=1)
        scan.set_ylabel(f"class {labels[digit]}", fontsize=7)
        side = axes[2 * r + 1, 0]
        if r == 0:  # the saccade path, the same for every fixed sample
            verts = ed.saccade_vertices(ed.EventDigitsConfig(), None)
            side.plot(verts[:, 0], verts[:, 1], "-o", color="0.3", ms=2, lw=1)
            side.set_xlim(0, 34), side.set_ylim(34, 0), side.set_aspect("equal")
            side.set_xlabel("saccade path", fontsize=6, labelpad=1)
        else:
            side.axis("off")
        scan.set_xlabel(f"{len(ev)} events", fontsize=6, labelpad=1)
        for k in range(args.bins):
            for row, pol in ((2 * r, 1), (2 * r + 1, 0)):
                ax = axes[row, k + 1]
                ax.imshow(fr[k, pol], cmap=cmaps[pol], vmin=0.5, vmax=vmax,
                          interpolation="nearest")
                if r == 0 and pol == 1:
                    ax.set_title(f"{k * window // 1000}-{(k + 1) * window // 1000} ms", fontsize=7)
                if k == 0:
                    ax.set_ylabel("ON" if pol else "OFF", fontsize=7, rotation=0, labelpad=10)
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("event-digits: sklearn digits seen by a simulated DVS in three saccades\n"
                 f"34x34 sensor, seed {args.seed}, one test sample per class; "
                 "ON red, OFF blue, event counts per bin", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.975), h_pad=0.2, w_pad=0.2)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
