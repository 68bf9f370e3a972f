"""event-speech: generation time, spike statistics and two speaker-disjoint linear baselines.

    .venv/bin/python bench/speech_baselines.py                 # the default set
    .venv/bin/python bench/speech_baselines.py --train-speakers 8 --test-speakers 4 --channels 32

Generation is timed cold (an empty cache folder, so: synthesis + front end + the atomic write)
and warm (the same call again: the cache read). Then every sample becomes spike counts per
(channel, time bin) over the fixed 1 s window, and two logistic regressions are trained on the
train speakers and scored on the (disjoint) test speakers:

    binned     log(1 + counts) per channel and time bin   (channels x T features)
    collapsed  log(1 + counts) per channel, summed over the window   (channels features)

The regularisation C is chosen per feature set by 3-fold cross-validation grouped by training
speaker (never by the test split). "Time matters" when binned clearly beats collapsed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from spikeship.errors import run_script


def counts(arrays: dict, split: str, channels: int, bins: int, window_us: int) -> np.ndarray:
    """Spike counts (samples, channels, bins) of one split from the cached arrays."""
    offsets = arrays[f"{split}_offsets"]
    n = len(offsets) - 1
    sample = np.repeat(np.arange(n), np.diff(offsets))
    b = arrays[f"{split}_t"].astype(np.int64) * bins // window_us
    out = np.zeros((n, channels, bins), dtype=np.float32)
    np.add.at(out, (sample, arrays[f"{split}_x"].astype(np.int64), b), 1.0)
    return out


def fit_score(x_train, y_train, groups, x_test, y_test, grid=(0.001, 0.01, 0.1, 1.0, 10.0)) -> tuple[float, float]:
    """(test accuracy, chosen C) of a standardised logistic regression on log(1 + x)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def model(c):
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500))

    x_train = np.log1p(x_train.reshape(len(x_train), -1))
    x_test = np.log1p(x_test.reshape(len(x_test), -1))
    cv = GroupKFold(n_splits=3)
    scores = [cross_val_score(model(c), x_train, y_train, groups=groups, cv=cv).mean() for c in grid]
    best = grid[int(np.argmax(scores))]
    return model(best).fit(x_train, y_train).score(x_test, y_test), best


def main(argv=None) -> None:
    from spikeship.train import event_speech as es

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = es.EventSpeechConfig()
    parser.add_argument("--train-speakers", type=int, default=defaults.train_speakers)
    parser.add_argument("--test-speakers", type=int, default=defaults.test_speakers)
    parser.add_argument("--repetitions", type=int, default=defaults.repetitions)
    parser.add_argument("--channels", type=int, default=defaults.channels)
    parser.add_argument("--max-onset-ms", type=float, default=defaults.max_onset_ms)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bins", default="10,20,50", help="time bins for the binned baseline")
    parser.add_argument("--timing-only", action="store_true",
                        help="stop after generation time and spike statistics (no regressions)")
    parser.add_argument("--use-cache", action="store_true",
                        help="use the normal cache folder instead of timing a cold build in a temporary one")
    args = parser.parse_args(argv)
    cfg = es.EventSpeechConfig(train_speakers=args.train_speakers, test_speakers=args.test_speakers,
                               repetitions=args.repetitions, channels=args.channels,
                               max_onset_ms=args.max_onset_ms)
    with tempfile.TemporaryDirectory() as tmp:
        if not args.use_cache:
            os.environ["SPIKESHIP_CACHE"] = tmp
        t0 = time.perf_counter()
        es.load_set(cfg, args.seed)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        arrays = es.load_set(cfg, args.seed)
        warm = time.perf_counter() - t0
        size = os.path.getsize(es.cache_path(cfg, args.seed)) / 2 ** 20
    n_train, n_test = es.split_size("train", cfg), es.split_size("test", cfg)
    print(f"event-speech: {n_train} train ({cfg.train_speakers} speakers), {n_test} test "
          f"({cfg.test_speakers} speakers), {cfg.channels} channels, seed {args.seed}, "
          f"{es.default_workers()} workers")
    print(f"generation {'(cache in use)' if args.use_cache else 'cold'} {cold:.1f} s, "
          f"cache load {warm:.2f} s, cache file {size:.1f} MB")

    spikes = np.diff(np.concatenate([arrays["train_offsets"], arrays["test_offsets"][1:]
                                     + arrays["train_offsets"][-1]]))
    rate = spikes / cfg.channels / (cfg.window_us / 1e6)
    print(f"spikes per sample: mean {spikes.mean():.0f}, median {np.median(spikes):.0f}, "
          f"5-95% {np.percentile(spikes, 5):.0f}-{np.percentile(spikes, 95):.0f}, "
          f"max {spikes.max()}; mean rate per channel {rate.mean():.1f} Hz")
    c100 = counts(arrays, "train", cfg.channels, 100, cfg.window_us)
    per_channel = c100.sum(axis=(0, 2)) / len(c100) / (cfg.window_us / 1e6)
    print(f"per channel (Hz, train mean): lowest channel {per_channel[0]:.1f}, "
          f"median {np.median(per_channel):.1f}, highest channel {per_channel[-1]:.1f}")
    for bins, c in ((50, counts(arrays, "train", cfg.channels, 50, cfg.window_us)), (100, c100)):
        print(f"T = {bins}: {100 * (c > 0).mean():.1f}% of (channel, bin) entries hold a spike, "
              f"{100 * (c > 1).sum() / max((c > 0).sum(), 1):.1f}% of those more than one")

    if args.timing_only:
        return
    y_train, y_test = arrays["train_labels"].astype(int), arrays["test_labels"].astype(int)
    groups = arrays["train_speakers"]
    print("speaker-disjoint logistic regression (test accuracy; chance 5%):")
    full = {b: (counts(arrays, "train", cfg.channels, b, cfg.window_us),
                counts(arrays, "test", cfg.channels, b, cfg.window_us))
            for b in (int(s) for s in args.bins.split(","))}
    first = next(iter(full.values()))
    t0 = time.perf_counter()
    acc, c = fit_score(first[0].sum(2), y_train, groups, first[1].sum(2), y_test)
    print(f"  collapsed   {cfg.channels:5d} features: {100 * acc:5.1f}%  (C {c}, "
          f"{time.perf_counter() - t0:.0f} s)")
    for bins, (tr, te) in full.items():
        t0 = time.perf_counter()
        acc, c = fit_score(tr, y_train, groups, te, y_test)
        print(f"  binned T={bins:<3d} {cfg.channels * bins:5d} features: {100 * acc:5.1f}%  (C {c}, "
              f"{time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    run_script(main)  # bad input or the speech extra missing: one line, exit 2
