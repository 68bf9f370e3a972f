"""Data-parallel training under torchrun: PyTorch's DistributedDataParallel on torch.distributed (Gloo on
CPUs, NCCL on GPUs), arranged so that W processes train what one process would.

    torchrun --standalone --nproc_per_node 2 -m spikeship train --batch-size 64 --out runs/a

- **Sampler.** Every rank draws the same global permutation per epoch (seeded by (seed, epoch), so it is
  reshuffled every epoch) and cuts it into the same global batches of ``--batch-size`` samples as one
  process; each rank takes its contiguous share of every batch (:func:`share`). No sample is padded or
  repeated: a last batch of 9 samples is 4 + 5 on two ranks.
- **Gradient.** DDP averages the ranks' gradients; each rank's mean loss is scaled by
  ``len(share) * W / len(batch)``, so the average is the mean over the global batch, also for a smaller last
  batch. A rank with no sample in a last batch smaller than W still takes part in the all-reduce with the
  batch's first sample and weight 0. ``--lr`` is therefore per global batch: the same ``--batch-size`` and
  ``--lr`` train alike on any number of processes (nothing is scaled with W).
- **Randomness.** The model starts from ``--seed`` on every rank (DDP also broadcasts rank 0's weights); then
  each rank's generator is seeded from (seed, rank) (:func:`seed_rank`), so MSG masks are independent across
  ranks and the same for the same seed. One process is not re-seeded: it stays bit-identical to a run
  without torchrun.
- **Statistics.** TWO's per-step correct counts, the loss, the correct and the seen counts are summed over
  the ranks (``distributed.all_sum``), so every rank holds the same a_t and the metrics cover the whole split;
  the test split is evaluated in contiguous shards whose counts are summed.
- **Files.** Rank 0 alone holds the run folder's lock (:func:`main_lock`) and writes; a checkpoint keeps every
  rank's random state (:func:`gather_states`), restored on the same number of ranks (bit-exact resume) and
  re-seeded from (seed, rank, epoch) on any other (:func:`restore_rng`).
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Callable, Iterator, NamedTuple

import numpy as np
import torch

from .. import distributed
from ..distributed import World
from ..errors import SpikeshipError
from .runlock import run_lock


def check_world(batch_size: int, w: World) -> None:
    """``--batch-size`` is the global batch: it must split evenly over the processes."""
    if batch_size % w.size:
        lower = batch_size - batch_size % w.size
        raise SpikeshipError(f"--batch-size {batch_size} is the global batch, split evenly over the {w.size} "
                             f"processes: give a multiple of {w.size} (e.g. {lower or w.size})")


class Share(NamedTuple):
    """This rank's part of a global batch: the sample positions it runs, the factor on its mean loss, and how
    many samples it counts in the statistics (0 for the stand-in sample of a rank that has none)."""

    samples: torch.Tensor
    weight: float
    counted: int


def share(batch: torch.Tensor, w: World) -> Share:
    """This rank's contiguous share of a global batch (sample positions); see the module's "Gradient"."""
    mine = batch[distributed.shard(len(batch), w)]
    if len(mine) == 0:
        return Share(batch[:1], 0.0, 0)
    return Share(mine, len(mine) * w.size / len(batch), len(mine))


def wrap(model: torch.nn.Module, device: torch.device, w: World) -> torch.nn.Module:
    """The model in DistributedDataParallel when there are several processes; the model itself otherwise.
    ``broadcast_buffers`` is off: the network's buffers are neuron states of the current batch, not
    statistics to keep alike."""
    if not w.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)


def rank_seed(seed: int, rank: int, epoch: int = 0) -> int:
    """A 63-bit seed for rank ``rank`` of a run seeded ``seed``, from epoch ``epoch`` on (numpy's SeedSequence:
    well-mixed, independent streams for different ranks)."""
    state = np.random.SeedSequence([seed % 2**64, rank, epoch]).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def seed_rank(seed: int, w: World) -> None:
    """Seed this rank's generators (CPU and its GPU) for a fresh run of several processes; one process keeps
    the generator as ``torch.manual_seed(seed)`` and building the model left it."""
    if w.distributed:
        torch.manual_seed(rank_seed(seed, w.rank))


def _rng(device: torch.device) -> dict:
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def gather_states(device: torch.device, w: World, two_counts: dict) -> tuple[dict, dict] | None:
    """(rng_state, two_state) for the checkpoint, on rank 0 (None on the others; every rank must call it).
    One process: its random state, and nothing to add to the TWO state. Several: rank 0's random state at the
    top level (as one process stores it) and every rank's under ``ranks``; each rank's own TWO counts
    ``two_counts`` under ``ranks`` of the TWO state (whose totals the caller adds)."""
    mine = {"rng": _rng(device), "two": two_counts}
    if not w.distributed:
        return mine["rng"], {}
    parts = distributed.gather(mine, w)
    if not w.is_main:
        return None
    return {**parts[0]["rng"], "ranks": [p["rng"] for p in parts]}, {"ranks": [p["two"] for p in parts]}


def restore_rng(rng_state: dict, w: World, seed: int, epoch: int, device: torch.device) -> str | None:
    """Restore this rank's random state from a checkpoint's ``rng_state``. Written by as many processes as run
    now: each rank takes its own (bit-exact resume). Otherwise each rank is seeded from (seed, rank, epoch) and
    a note saying so is returned."""
    ranks = rng_state.get("ranks") or [{"torch": rng_state["torch"], "cuda": rng_state.get("cuda")}]
    if len(ranks) != w.size:
        torch.manual_seed(rank_seed(seed, w.rank, epoch))
        return (f"written by {len(ranks)} process{'es' if len(ranks) > 1 else ''}, resumed on {w.size}: each "
                f"process's random generator is seeded afresh from (seed, rank, epoch) (the data order is the "
                f"same; MSG masks differ from an uninterrupted run's)")
    mine = ranks[w.rank]
    torch.set_rng_state(mine["torch"])
    if device.type == "cuda" and mine.get("cuda") is not None:
        torch.cuda.set_rng_state(mine["cuda"], device)
    return None


@contextmanager
def main_lock(folder, w: World, check: Callable[[], object]) -> Iterator[object]:
    """Rank 0 holds ``folder``'s run lock (train/runlock.py) for the block and runs ``check`` under it; the
    block gets its result on rank 0 (None elsewhere). Every rank learns whether the lock or the check failed
    and then raises the same one-line :class:`SpikeshipError` (exit 2 on every rank, rank 0 prints it), so no
    rank is left waiting in a collective for a rank 0 that refused."""
    with ExitStack() as stack:
        refused, result = None, None
        if w.is_main:
            try:
                stack.enter_context(run_lock(folder))
                result = check()
            except SpikeshipError as e:
                refused = e
        message = distributed.broadcast(None if refused is None else str(refused), w)
        if refused is not None:
            raise refused
        if message is not None:
            raise SpikeshipError(message)
        yield result
