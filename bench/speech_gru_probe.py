"""A recurrent probe on event-speech: does integrating over time pay beyond the linear baselines?

    .venv/bin/python bench/speech_gru_probe.py --time-steps 50 --epochs 30

Not the SNN: a plain (non-spiking) PyTorch GRU, 128 units, reading the same binary frames the data
layer would give a spiking network (``frame_events``: 0/1 per channel and bin over the fixed 1 s
window), trained on the train speakers and scored on the disjoint test speakers after every epoch.
It bounds from below what a recurrent network can get out of the set in a few CPU minutes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from spikeship.errors import run_script


def frames(ds, time_steps: int) -> np.ndarray:
    """Binary frames (N, T, channels) float32 of an EventSpeech split, as the data layer frames them."""
    from spikeship.train.data import frame_events

    window = ds.duration_us // time_steps
    return np.stack([frame_events(ds[i][0], ds.sensor_size, time_steps, window)[:, 0, 0].T
                     for i in range(len(ds))]).astype(np.float32)


def main(argv=None) -> None:
    import torch

    from spikeship.train import event_speech as es

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-steps", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    train, test = es.EventSpeech("train"), es.EventSpeech("test")
    x_train, x_test = (torch.from_numpy(frames(d, args.time_steps)) for d in (train, test))
    y_train, y_test = torch.from_numpy(train.targets), torch.from_numpy(test.targets)
    print(f"frames {tuple(x_train.shape)} / {tuple(x_test.shape)} in {time.perf_counter() - t0:.1f} s, "
          f"{100 * x_train.mean():.1f}% ones; torch {torch.get_num_threads()} threads")

    gru = torch.nn.GRU(x_train.shape[2], args.hidden, batch_first=True)
    head = torch.nn.Linear(args.hidden, len(es.CLASS_NAMES))
    params = list(gru.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=3e-3, weight_decay=1e-2)

    def logits(x):
        out, _ = gru(x)
        return head(out.mean(dim=1))  # mean over time: every step contributes

    t0 = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        gru.train()
        for idx in torch.randperm(len(x_train)).split(64):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(logits(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
        gru.eval()
        with torch.no_grad():
            acc = (logits(x_test).argmax(1) == y_test).float().mean().item()
            train_acc = (logits(x_train).argmax(1) == y_train).float().mean().item()
        print(f"epoch {epoch:2d}: loss {loss.item():.3f}, train {100 * train_acc:.1f}%, "
              f"test (unseen speakers) {100 * acc:.1f}%, {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    run_script(main)  # bad input or the speech extra missing: one line, exit 2
