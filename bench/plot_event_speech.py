"""Plot event-speech samples: the sound each came from and its spikes (docs/event-speech.png).

    .venv/bin/python bench/plot_event_speech.py --out docs/event-speech.png

A few test samples (different words, languages and speakers): above, the spectrogram of the
1 s window the cochlea heard (speech after speed change, onset, noise and gain); below, the spike
raster (channel against time). The sounds are made again for the plot, each speaker in a fresh
process as for the data set, and the script checks that their spikes equal the cached ones.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from spikeship.errors import run_script  # noqa: E402
from spikeship.files import atomic_output  # noqa: E402
from spikeship.train import event_speech as es  # noqa: E402

# (test speaker, class name): both languages, different speakers and voice variants
PICKS = ((0, "en-seven"), (0, "de-sieben"), (1, "en-three"), (2, "de-null"), (3, "en-six"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/event-speech.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    cfg = es.EventSpeechConfig()
    test = es.EventSpeech("test", seed=args.seed, config=cfg)
    people = sorted({s for s, _ in PICKS})
    made = dict(zip(people, es.speak_speakers(cfg, args.seed, [test.speaker_info[s] for s in people],
                                              keep_sound=True)))
    per_speaker = len(es.CLASS_NAMES) * cfg.repetitions
    fig, axes = plt.subplots(2, len(PICKS), figsize=(3.1 * len(PICKS), 5.6),
                             gridspec_kw=dict(height_ratios=[1, 1.25]))
    for col, (s, name) in enumerate(PICKS):
        c = es.CLASS_NAMES.index(name)
        events, label = test[s * per_speaker + c]  # repetition 0
        assert label == c
        offsets = np.concatenate([[0], np.cumsum(made[s]["counts"])])
        again = made[s]["t"][offsets[c]:offsets[c + 1]]
        if not np.array_equal(again, events["t"]):
            raise SystemExit("the regenerated spikes differ from the cached ones")
        sound = made[s]["sounds"][c]
        spk = test.speaker_info[s]
        ax = axes[0, col]
        ax.specgram(sound, NFFT=512, Fs=cfg.sample_rate, noverlap=384, cmap="magma",
                    vmin=-110, scale="dB")
        ax.set_ylim(0, cfg.high_hz)
        ax.set_title(f"{name}\ntest speaker {s}: +{spk.variant}, {spk.rate_wpm} wpm, pitch {spk.pitch}",
                     fontsize=8)
        ax.set_xticks([])
        ax.set_ylabel("Hz" if col == 0 else "", fontsize=8)
        ax = axes[1, col]
        ax.scatter(events["t"] / 1000, events["x"], s=0.6, c="k", marker="|", linewidths=0.5)
        ax.set_xlim(0, cfg.window_us / 1000), ax.set_ylim(-0.5, cfg.channels - 0.5)
        ax.set_xlabel(f"ms ({len(events)} spikes)", fontsize=8)
        ax.set_ylabel("channel (low to high frequency)" if col == 0 else "", fontsize=8)
        for a in axes[:, col]:
            a.tick_params(labelsize=7)
    fig.suptitle(f"event-speech: eSpeak NG digits through a {cfg.channels}-channel ERB gammatone "
                 f"cochlea (seed {args.seed}); above: the 1 s window heard (speech with noise), "
                 "below: its spikes", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as tmp:
        fig.savefig(tmp, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    run_script(main)  # bad input or the speech extra missing: one line, exit 2
