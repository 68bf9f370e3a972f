"""Past one process: the launcher's world (torchrun), shards of samples, and gathering results on rank 0.

``torchrun --nproc_per_node N -m spikeship run|report|parity ...`` starts N copies; torchrun sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``. Each rank validates its
input first (every rank fails alike on bad input, before any process group exists), then joins the group
(Gloo on CPU, NCCL on GPU: torch.distributed, not a home-made protocol), takes a contiguous shard of the
samples, runs it, and rank 0 gathers the shards in sample order and writes the one output. Without a
launcher the world is one process and nothing here does anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class World:
    """Where this process stands: ``rank`` of ``size`` processes; ``local_rank`` of ``local_size`` on this
    machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world() -> World:
    """The world torchrun (or any launcher setting the same variables) describes; one process otherwise."""
    env = os.environ
    size = int(env.get("WORLD_SIZE", "1") or 1)
    rank = int(env.get("RANK", "0") or 0)
    local_rank = int(env.get("LOCAL_RANK", str(rank)) or rank)
    local_size = int(env.get("LOCAL_WORLD_SIZE", str(size)) or size)
    return World(rank=rank, size=size, local_rank=local_rank, local_size=local_size)


def shard(n: int, w: World) -> slice:
    """This rank's contiguous part of ``n`` samples (sizes differ by at most one; rank order is sample order)."""
    bounds = np.linspace(0, n, w.size + 1).astype(int)
    return slice(int(bounds[w.rank]), int(bounds[w.rank + 1]))


def join(device: str = "cpu") -> World:
    """Join the process group of the launcher's world (idempotent); Gloo on CPU, NCCL for CUDA (each rank on
    GPU ``LOCAL_RANK`` of its machine)."""
    w = world()
    if w.distributed:
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            if device == "cuda":
                torch.cuda.set_device(w.local_rank)
            dist.init_process_group("nccl" if device == "cuda" else "gloo")
    return w


def all_sum(t, w: World):
    """The element-wise sum of ``t`` (a torch tensor) over every rank, on every rank, on ``t``'s device;
    ``t`` itself in one process. (NCCL reduces on the GPU: the tensor travels there and back.)"""
    if not w.distributed:
        return t
    import torch
    import torch.distributed as dist

    on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else t.device
    total = t.detach().to(on, copy=True)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total.to(t.device)


def broadcast(obj, w: World):
    """Rank 0's ``obj`` on every rank (picklable); ``obj`` in one process."""
    if not w.distributed:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj, w: World) -> list | None:
    """Every rank's ``obj`` on rank 0, in rank order (None on the other ranks); ``[obj]`` in one process."""
    if not w.distributed:
        return [obj]
    import torch.distributed as dist

    parts = [None] * w.size if w.is_main else None
    dist.gather_object(obj, parts, dst=0)
    return parts


def on_shards(fn, x, concat, w: World):
    """``fn`` over this rank's shard of ``x`` (first axis); rank 0 gets ``concat`` of every rank's result in
    sample order, the other ranks None. One process: ``fn(x)``. A rank with no sample contributes nothing."""
    if not w.distributed:
        return fn(x)
    part = x[shard(len(x), w)]
    parts = gather(fn(part) if len(part) else None, w)
    return concat([p for p in parts if p is not None]) if w.is_main else None


def leave() -> None:
    """Leave the process group, if one was joined: a barrier, then destroy it.

    Left to interpreter shutdown, Gloo's worker threads were torn down unjoined now and then ("terminate
    called without an active exception", SIGABRT of a rank whose work was done: 1 sharded Lava run in 6).
    Destroyed at once after the last collective, the group's destructor (which holds the GIL) joined a worker
    thread that was still releasing that collective's tensors and needed the GIL: a deadlock (seen once in 6).
    The barrier lets every worker finish and release its previous work first; its own work holds no Python
    object. Not after a failure (another rank may be gone): then the process just exits."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch is a dependency
        return
    if dist.is_available() and dist.is_initialized():
        import gc

        dist.barrier()
        gc.collect()
        dist.destroy_process_group()
