"""`spikeship train`: flags -> TrainConfig -> train(). No logic beyond turning flags into a config.

Flags left out take the TrainConfig defaults; with ``--resume`` they take the values stored in
DIR/model.pt instead, and a flag given with a different value is an error (a resumed run is the same run),
except ``--epochs``, which may extend it, and ``--device``. Under torchrun every rank parses the same flags
(train/parallel.py).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

from ..errors import SpikeshipError
from .loop import ARCHS, DEVICES, METHODS, TrainConfig
from .msg import SURROGATES
from .two import DECODES

# flag dest -> TrainConfig field (same name unless listed)
_RENAMED = {"config": "model_config"}


EPILOG = ("Several processes (data-parallel, DistributedDataParallel; Gloo on CPUs, NCCL with --device cuda): "
          "torchrun --nproc_per_node N -m spikeship train ... on one machine, and with --nnodes M "
          "--rdzv-backend c10d --rdzv-endpoint HOST:PORT on each of M machines (data and --out on a file "
          "system they share). --batch-size is the global batch and --lr goes with it unchanged. Rank 0 alone "
          "writes the run folder. On bad input every process stops before training, rank 0 prints the one "
          "'spikeship: ...' line, and torchrun then exits 1 after its own failure summary.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .data import dataset_help

    parser.epilog = EPILOG
    d = {f.name: f.default for f in fields(TrainConfig)}
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default=None, metavar="NAME",
                      help=f"data set (default {d['dataset']}). {dataset_help()}")
    data.add_argument("--data-dir", default=None, metavar="DIR", help="folder holding a tonic data set")
    data.add_argument("--time-steps", type=int, default=None, metavar="T",
                      help=f"time bins per sample; must exceed the number of spiking layers (default {d['time_steps']})")
    data.add_argument("--sensor-downsample", type=int, default=None, metavar="K",
                      help="divide the sensor's x and y by K (e.g. 4 for dvsgesture; default 1)")
    data.add_argument("--augment", action="store_const", const=True, default=None,
                      help="fresh random saccades / shifts for every training epoch")
    data.add_argument("--max-samples", type=int, default=None, metavar="N",
                      help="use a fixed subset of N samples per split (quick runs)")
    model = parser.add_argument_group("model").add_mutually_exclusive_group()
    model.add_argument("--arch", choices=ARCHS, default=None, help=f"network preset (default {d['arch']})")
    model.add_argument("--config", default=None, metavar="FILE",
                       help="network from a TOML file ([[layer]] kind/features/kernel/stride/padding, [neuron])")
    model.add_argument("--init", default=None, metavar="model.pt",
                       help="start from a checkpoint's network, weights and TWO weights (e.g. one `spikeship import` "
                            "wrote) and fine-tune it; data set, folder and T default to the checkpoint's")
    opt = parser.add_argument_group("training")
    opt.add_argument("--epochs", type=int, default=None,
                     help=f"default {d['epochs']}; with --resume: the run's new total, at least the epochs done "
                          f"(the remaining epochs then take the learning rates of a cosine schedule planned "
                          f"for the new total: a finished 10-epoch run extended to 20 trains epochs 11-20 at "
                          f"lr/2 down to nearly 0)")
    opt.add_argument("--batch-size", type=int, default=None,
                     help=f"the global batch (default {d['batch_size']}): under torchrun each of the N processes "
                          f"takes its contiguous 1/N of every batch, so it must be a multiple of N")
    opt.add_argument("--lr", type=float, default=None,
                     help=f"AdamW learning rate, cosine schedule (default {d['lr']}); per global batch, not scaled "
                          f"with the number of processes: the gradient is the mean over the global batch, so "
                          f"the same --batch-size and --lr train alike on 1 or N processes")
    opt.add_argument("--method", choices=METHODS, default=None,
                     help="msg: masked surrogate gradients; sg: plain surrogate gradients (mask probability 0)")
    opt.add_argument("--mask-prob", type=float, default=None, metavar="P",
                     help=f"MSG drop probability (default {d['mask_prob']})")
    opt.add_argument("--surrogate", choices=SURROGATES, default=None, help=f"default {d['surrogate']}")
    opt.add_argument("--alpha", type=float, default=None, help=f"surrogate sharpness (default {d['alpha']})")
    opt.add_argument("--decode", choices=DECODES, default=None,
                     help="two: temporally weighted output; mean: plain mean over time (default two)")
    opt.add_argument("--warmup", type=int, default=None, metavar="E",
                     help="first epoch whose start updates the TWO weights (default 0: from epoch 1 on)")
    opt.add_argument("--seed", type=int, default=None,
                     help=f"default {d['seed']}; under torchrun each process's generator (MSG masks) is seeded "
                          f"from (seed, rank)")
    opt.add_argument("--device", choices=DEVICES, default=None,
                     help="default cpu; cuda under torchrun: one GPU per process (cuda:LOCAL_RANK, NCCL)")
    run = parser.add_argument_group("output")
    run.add_argument("--out", default=None, metavar="DIR",
                     help=f"run folder: model.pt, metrics.json, history.csv, curves.png, two_weights.png "
                          f"(default {d['out']}); one training process at a time (DIR/.lock), and a folder "
                          f"that already holds a run is refused without --resume")
    run.add_argument("--resume", action="store_true",
                     help="continue the run in --out from its last checkpoint (the folder may have been moved "
                          "or copied); with --epochs N, extend it to N epochs. On as many processes as it was "
                          "written by it continues bit-exactly; on any other number (one included) each "
                          "process's random generator is seeded afresh from (seed, rank, epoch), with a note")
    run.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    names = {f.name for f in fields(TrainConfig)}
    given = {}
    for dest, value in vars(args).items():
        key = _RENAMED.get(dest, dest)
        if key in names and value is not None and key not in ("resume",):
            given[key] = value
    if given.get("model_config") is not None:
        given.pop("arch", None)
    progress = not getattr(args, "quiet", False)
    if given.get("init") is not None and not args.resume:
        from .checkpoint import load_checkpoint

        init = load_checkpoint(given["init"])
        given.pop("arch", None)
        defaults = {"dataset": init.dataset, "time_steps": init.time_steps}
        if given.get("dataset", init.dataset) == init.dataset:  # its folder and framing go with its data set
            defaults.update(data_dir=init.data_dir,
                            sensor_downsample=int(init.config.get("sensor_downsample", 1) or 1))
        given = {**{k: v for k, v in defaults.items() if v is not None}, **given}
    if not args.resume:
        return TrainConfig(**given, progress=progress)
    from .checkpoint import load_checkpoint

    out = Path(given.get("out", TrainConfig.out))
    stored = dict(load_checkpoint(out / "model.pt").config) if (out / "model.pt").is_file() else None
    if stored is None:
        raise SpikeshipError(f"--resume: no checkpoint to resume at {out / 'model.pt'}")
    # the run is the one in this folder, whatever folder its checkpoint was written from
    return TrainConfig.from_dict({**stored, **given, "out": str(out), "resume": True, "progress": progress})


def run(args: argparse.Namespace) -> int:
    from ..distributed import world
    from .loop import train

    config = config_from_args(args)
    metrics = train(config)
    if not world().is_main:  # under torchrun rank 0 reports
        return 0
    out = Path(config.out)
    summary = {k: metrics[k] for k in ("test_accuracy", "test_accuracy_quantized_deploy", "train_accuracy", "epochs")}
    print(f"wrote {out / 'model.pt'}, metrics.json, history.csv, curves.png, two_weights.png: {json.dumps(summary)}")
    return 0
