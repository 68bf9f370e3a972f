"""Data-parallel training with 2 real processes under torchrun (Gloo on the CPU), no mocks.

One launch of tests/support/ddp_ranks.py trains the tiny runs of toy_training on every rank through the real
``train``; the tests compare them with the same runs in one process (here, in-process). The command line
under torchrun (`torchrun -m spikeship train`) runs on a small SHD: a rank killed mid-run, --resume, bad
input. Every process started here is killed at teardown (its own session, by process group)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from ddp_ranks import SG_SIZES, sg_config, two_config, two_data
from tonic_files import write_small_shd
from toy_training import _data

from spikeship.distributed import World
from spikeship.errors import SpikeshipError
from spikeship.train import parallel, two
from spikeship.train.checkpoint import load_checkpoint
from spikeship.train.loop import _epoch_order, build_spec, evaluate, train
from spikeship.train.model import SpikeNet
from spikeship.train.msg import bernoulli_keep_mask
from spikeship.train.runlock import run_lock

TORCHRUN = str(Path(sys.executable).with_name("torchrun"))
SCRIPT = Path(__file__).parents[1] / "support" / "ddp_ranks.py"


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """(root, [rank 0's record, rank 1's record]) of one 2-process launch."""
    root = tmp_path_factory.mktemp("ddp")
    with run_lock(root / "held"):  # another training's folder while the ranks run
        done = subprocess.run([TORCHRUN, "--standalone", "--nproc_per_node", "2", str(SCRIPT), str(root)],
                              capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return root, [json.loads((root / f"rank{r}.json").read_text()) for r in (0, 1)]


def _two_ranks_in_one_process(config, data) -> dict:
    """What DDP computes with 2 ranks, done in one process: each rank's share of every global batch run apart
    (``parallel.share``), its mean loss scaled by the share's weight, the two gradients averaged."""
    train_set, _ = data
    torch.manual_seed(config.seed)
    model = SpikeNet(build_spec(config, train_set.input_shape, train_set.num_classes), config.surrogate_config())
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    params = [p for p in model.parameters() if p.requires_grad]  # slayer's neuron decays are fixed
    a = two.deployed_weights(two.initial_weights(config.time_steps), model.spec.num_spiking_layers)
    n = len(train_set.labels)
    for epoch in range(config.epochs):
        order = _epoch_order(n, config.seed, epoch)
        for start in range(0, n, config.batch_size):
            grads = []
            for rank in (0, 1):
                mine = parallel.share(order[start:start + config.batch_size], World(rank=rank, size=2))
                model.zero_grad(set_to_none=True)
                readout, _ = model(train_set.spikes[mine.samples].float())
                (F.cross_entropy(two.decode(readout, a), train_set.labels[mine.samples]) * mine.weight).backward()
                grads.append([p.grad for p in params])
            for p, g0, g1 in zip(params, *grads):
                p.grad = g0 / 2 + g1 / 2  # DDP: each rank's gradient divided by the world size, then summed
            optimizer.step()
        scheduler.step()
    return model.state_dict()


def test_two_ranks_with_half_batches_train_the_weights_one_process_trains(ranks, tmp_path):
    """MSG off, mean decode: 2 ranks x B/2 = 1 process x B on the same sample order, up to float summation
    order. DDP's weights are, bit for bit, those of one process that runs the two half-batches apart and
    averages their gradients; from one process's batch-at-once sums they differ by rounding, which AdamW's
    normalisation (g / (sqrt(v) + 1e-8)) enlarges where a gradient is as small as its rounding: tolerance
    1% of one step (0.01 lr) for every weight, 1e-7 for 99% of them."""
    root, (r0, r1) = ranks
    for n in SG_SIZES:
        config, data = sg_config(tmp_path, n), _data(n_train=n)
        single = train(config, data=data)
        many, one = load_checkpoint(root / f"sg{n}" / "model.pt"), load_checkpoint(tmp_path / f"sg{n}" / "model.pt")
        assert many.config["batch_size"] == one.config["batch_size"] == 16
        split = _two_ranks_in_one_process(config, data)
        for name, w1 in one.state_dict.items():
            assert torch.equal(many.state_dict[name], split[name]), (n, name)
            diff = (many.state_dict[name] - w1).abs()
            assert float(diff.max()) <= 0.01 * config.lr, (n, name, float(diff.max()))
            assert float((diff > 1e-7).double().mean()) < 0.01, (n, name)
        # statistics over the whole split, each sample once: loss, train and test accuracy as one process's
        for key in ("train_accuracy", "test_accuracy", "test_step_accuracy", "train_samples"):
            assert r0[f"sg{n}"][key] == r1[f"sg{n}"][key] == single[key], (n, key)
        assert r0[f"sg{n}"]["final_loss"] == pytest.approx(single["final_loss"], rel=1e-6)
        assert (r0[f"sg{n}"]["world_size"], single["world_size"]) == (2, 1)


def test_two_weights_are_the_same_on_every_rank_and_come_from_the_summed_counts(ranks):
    root, (r0, r1) = ranks
    first = load_checkpoint(root / "two-epoch1.pt")
    last = load_checkpoint(root / "two" / "model.pt")
    counts = first.two_state
    assert [c["count"] for c in counts["ranks"]] == [24, 24]  # 48 samples, 3 batches of 8 + 8
    summed = [sum(c) for c in zip(*(r["correct"] for r in counts["ranks"]))]
    assert summed == counts["correct"] and counts["count"] == 48
    assert 0 < sum(summed) and counts["ranks"][0]["correct"] != counts["ranks"][1]["correct"]
    # what one process computes from the same per-step counts, bit for bit, and what every rank holds
    expected = two.update_weights(torch.tensor(first.two_weights), torch.tensor(summed).double() / 48, 0.3).tolist()
    assert list(last.two_weights) == expected
    assert r0["resumed"]["two_weights"] == r1["resumed"]["two_weights"] == expected
    assert expected != [1.0] * len(expected)


def test_resume_on_the_same_ranks_is_bit_exact(ranks):
    root, (r0, _) = ranks
    straight, resumed = (load_checkpoint(root / name / "model.pt") for name in ("straight", "two"))
    for name, w in straight.state_dict.items():
        assert torch.equal(resumed.state_dict[name], w), name
    assert r0["straight"] == {**r0["resumed"], "train_seconds": r0["straight"]["train_seconds"]}
    states = straight.rng_state["ranks"]
    assert len(states) == 2 and not torch.equal(states[0]["torch"], states[1]["torch"])
    for mine, theirs in zip(states, resumed.rng_state["ranks"]):
        assert torch.equal(mine["torch"], theirs["torch"])


def test_msg_masks_differ_between_ranks_and_repeat_for_a_seed(ranks):
    _, (r0, r1) = ranks
    assert r0["masks"][0] == r0["masks"][1] and r1["masks"][0] == r1["masks"][1]  # same seed, same masks
    assert r0["masks"][0] != r1["masks"][0]  # independent across ranks
    assert r0["masks"][0] != r0["masks"][2]  # and across seeds
    # the streams are the ones rank_seed names, so any process can reproduce a rank's masks
    with torch.random.fork_rng():
        torch.manual_seed(parallel.rank_seed(5, 1))
        assert bernoulli_keep_mask(torch.zeros(64), 0.5).int().tolist() == r1["masks"][0]


def test_test_accuracy_is_a_single_process_evaluation_of_the_checkpoint(ranks):
    root, (r0, r1) = ranks
    ckpt = load_checkpoint(root / "two" / "model.pt")
    _, test_set = two_data()
    assert len(test_set.labels) == 25  # 13 + 12 on two ranks, none counted twice
    ev = evaluate(ckpt.build_model(), test_set.spikes, test_set.labels, ckpt.two_weights, 128, torch.device("cpu"))
    assert r0["resumed"]["test_accuracy"] == r1["resumed"]["test_accuracy"] == ev["accuracy"]
    assert r0["resumed"]["test_step_accuracy"] == ev["step_accuracy"]
    assert ckpt.metrics["test_accuracy"] == ev["accuracy"]


def test_refusals_reach_every_rank(ranks):
    root, (r0, r1) = ranks
    assert r0["refused_run"] == r1["refused_run"] == (f"{root / 'sg41'} already holds a training run; use --resume "
                                                      f"to continue it or another --out")
    assert r0["refused_held"] == r1["refused_held"]
    assert r0["refused_held"].startswith(f"{root / 'held'} is in use by PID ")


def test_a_two_rank_checkpoint_resumes_in_one_process(ranks, tmp_path, capsys):
    root, _ = ranks
    shutil.copytree(root / "two", tmp_path / "run")
    metrics = train(replace(two_config(tmp_path, "run"), resume=True, epochs=3), data=two_data())
    assert metrics["epochs"] == 3 and metrics["world_size"] == 1
    assert load_checkpoint(tmp_path / "run" / "model.pt").epoch == 3
    err = capsys.readouterr().err
    assert "was written by 2 processes, resumed on 1: each process's random generator is seeded afresh" in err


def test_batch_size_must_split_evenly():
    parallel.check_world(32, World(rank=0, size=2))
    with pytest.raises(SpikeshipError, match=r"^--batch-size 15 is the global batch, split evenly over the 2 "
                                             r"processes: give a multiple of 2 \(e.g. 14\)$"):
        parallel.check_world(15, World(rank=1, size=2))


@pytest.fixture(scope="module")
def shd(tmp_path_factory) -> Path:
    return write_small_shd(tmp_path_factory.mktemp("shd"))


def _torchrun_train(shd: Path, out: Path, *more: str, batch: int = 4) -> list[str]:
    return [TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "spikeship", "train", "--quiet", "--dataset",
            "shd", "--data-dir", str(shd), "--time-steps", "8", "--batch-size", str(batch), "--out", str(out), *more]


def _workers(launcher: subprocess.Popen) -> dict[int, int]:
    """RANK -> PID of the launcher's worker processes."""
    ranks = {}
    for pid in Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split():
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        ranks[int(next(v for v in env if v.startswith(b"RANK=")).split(b"=")[1])] = int(pid)
    return ranks


def test_a_killed_rank_ends_the_job_leaves_the_last_checkpoint_and_resume_continues(shd, tmp_path):
    out = tmp_path / "run"
    launcher = subprocess.Popen(_torchrun_train(shd, out, "--epochs", "100000"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not (out / "model.pt").exists():
            assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate()
            time.sleep(0.05)
        pids = _workers(launcher)
        holder = json.loads((out / ".lock").read_text())
        assert (holder["host"], holder["pid"]) == (socket.gethostname(), pids[0])  # rank 0 holds the folder
        os.kill(pids[1], signal.SIGKILL)
        _, err = launcher.communicate(timeout=240)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.communicate()
    assert launcher.returncode == 1 and "spikeship FAILED" in err
    assert f"Signal 9 (SIGKILL) received by PID {pids[1]}" in err
    assert set(os.listdir(out)) <= {"model.pt", "history.csv", ".lock"}  # no half-written file
    done = load_checkpoint(out / "model.pt").epoch
    assert done >= 1

    resumed = subprocess.run(_torchrun_train(shd, out, "--resume", "--epochs", str(done + 1)), capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert resumed.stdout.count("wrote ") == 1  # rank 0 reports
    ckpt = load_checkpoint(out / "model.pt")
    assert ckpt.epoch == len(ckpt.history) == done + 1 and len(ckpt.rng_state["ranks"]) == 2
    assert json.loads((out / "metrics.json").read_text())["world_size"] == 2
    assert not (out / ".lock").exists()


def test_bad_input_under_torchrun_is_one_line_from_rank_0(shd, tmp_path):
    done = subprocess.run(_torchrun_train(shd, tmp_path / "run", batch=5), capture_output=True, text=True,
                          timeout=300)
    lines = [line for line in done.stderr.splitlines() if line.startswith("spikeship: ")]
    assert lines == ["spikeship: --batch-size 5 is the global batch, split evenly over the 2 processes: give a "
                     "multiple of 2 (e.g. 4)"]
    assert done.returncode == 1 and "spikeship FAILED" in done.stderr  # torchrun's own summary follows
    assert not (tmp_path / "run").exists()
