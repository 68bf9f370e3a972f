"""Run by tests/train/test_parallel.py under torchrun (2 processes, Gloo): every rank trains the tiny runs of
toy_training in-process through the real ``train`` and records what the test compares in ROOT/rank<r>.json
(the runs' files are rank 0's, as always).

    torchrun --standalone --nproc_per_node 2 tests/support/ddp_ranks.py ROOT

ROOT/held is locked by the test while this runs (a folder in use by another training)."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist
from toy_training import _cfg, _data

from spikeship import distributed
from spikeship.errors import SpikeshipError
from spikeship.train import parallel
from spikeship.train.loop import train
from spikeship.train.msg import bernoulli_keep_mask

#: MSG off, mean decode; 41 training samples end in a batch of 9 (4 + 5), 33 in a batch of 1 (rank 0: none)
SG_SIZES = (41, 33)


def sg_config(root: Path, n: int):
    return _cfg(root, method="sg", decode="mean", epochs=2, out=str(root / f"sg{n}"))


def two_config(root: Path, name: str):
    return _cfg(root, epochs=2, out=str(root / name))  # MSG + TWO, T = 6


def two_data():
    return _data(n_test=25)  # an odd test split: 13 + 12 samples on two ranks


def _refusal(config, data) -> str | None:
    try:
        train(config, data=data)
    except SpikeshipError as e:
        return str(e)
    return None


def main(root: Path) -> None:
    w = distributed.world()
    record: dict = {"rank": w.rank, "size": w.size}
    for n in SG_SIZES:
        record[f"sg{n}"] = train(sg_config(root, n), data=_data(n_train=n))

    data = two_data()
    record["straight"] = train(two_config(root, "straight"), data=data)
    train(two_config(root, "two"), data=data, stop_after=1)
    dist.barrier()
    if w.is_main:
        shutil.copy(root / "two" / "model.pt", root / "two-epoch1.pt")
    dist.barrier()
    record["resumed"] = train(replace(two_config(root, "two"), resume=True), data=data)

    masks = []
    for seed in (5, 5, 6):
        parallel.seed_rank(seed, w)
        masks.append(bernoulli_keep_mask(torch.zeros(64), 0.5).int().tolist())
    record["masks"] = masks

    record["refused_run"] = _refusal(sg_config(root, SG_SIZES[0]), _data(n_train=SG_SIZES[0]))
    record["refused_held"] = _refusal(two_config(root, "held"), data)
    (root / f"rank{w.rank}.json").write_text(json.dumps(record))
    dist.barrier()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
