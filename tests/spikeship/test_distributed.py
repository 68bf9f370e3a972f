"""Sharded evaluation under the real launcher: torchrun with 2 processes (Gloo on the CPU), no mocks.

Each rank runs a contiguous shard; rank 0 writes the one output, which must equal a single-process run's
except for times, work counters and the world size."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from nets import make_checkpoint_case

from spikeship import distributed

TORCHRUN = str(Path(sys.executable).with_name("torchrun"))
VARIES = {"wall_s", "samples_per_s", "steps_per_s", "simulated_steps", "world_size"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return make_checkpoint_case(tmp_path_factory.mktemp("ckpt"))


def torchrun(*args, cwd, nproc: int = 2) -> subprocess.CompletedProcess:
    return subprocess.run([TORCHRUN, "--standalone", "--nproc_per_node", str(nproc), "-m", "spikeship",
                           *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd)


def single(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).with_name("spikeship")), *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def test_shards_are_contiguous_in_rank_order_and_cover_everything():
    for n in (0, 1, 5, 359):
        for size in (1, 2, 3):
            parts = [distributed.shard(n, distributed.World(rank=r, size=size)) for r in range(size)]
            assert parts[0].start == 0 and parts[-1].stop == n
            assert all(a.stop == b.start for a, b in zip(parts, parts[1:]))
            assert max(p.stop - p.start for p in parts) - min(p.stop - p.start for p in parts) <= 1


def test_a_sharded_lava_run_writes_what_one_process_writes(exported, tmp_path):
    _, net = exported
    args = ("run", net, "--samples", "13", "--backend", "lava", "--no-progress")
    two = torchrun(*args, "--out", tmp_path / "two.json", cwd=tmp_path)
    assert two.returncode == 0, two.stderr
    one = single(*args, "--out", tmp_path / "one.json", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert (a["world_size"], b["world_size"]) == (1, 2)
    assert {k: v for k, v in a.items() if k not in VARIES} == {k: v for k, v in b.items() if k not in VARIES}
    assert sum(map(sum, b["spike_counts"]["per_sample"])) > 0
    assert two.stdout.count("wrote ") == 1  # rank 0 alone reports


def test_sharded_report_and_parity_equal_one_process(exported, tmp_path):
    ckpt, net = exported
    two = torchrun("report", net, "--samples", "7", "--out", tmp_path / "two", cwd=tmp_path)
    assert two.returncode == 0, two.stderr
    one = single("report", net, "--samples", "7", "--out", tmp_path / "one", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    a, b = (json.loads((tmp_path / n / "report.json").read_text()) for n in ("one", "two"))
    assert b["meta"].pop("world_size") == 2 and a["meta"].pop("world_size") == 1
    assert a == b
    par = torchrun("parity", ckpt, net, "--samples", "9", "--out", tmp_path / "parity.json", "--no-progress",
                   cwd=tmp_path)
    assert par.returncode == 0, par.stderr
    d = json.loads((tmp_path / "parity.json").read_text())
    assert d["ok"] and d["samples"] == 9 and d["world_size"] == 2
    assert par.stdout.count("parity: all equal over 9 samples") == 1


def test_bad_input_under_torchrun_is_one_line_from_rank_0(exported, tmp_path):
    _, net = exported
    done = torchrun("run", net, "--samples", "100000", "--backend", "emulator", cwd=tmp_path)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.startswith("spikeship: ")]
    assert lines == ["spikeship: asked for 100000 samples; the test split of event-digits has 359"]
    assert "spikeship FAILED" in done.stderr  # torchrun's own summary follows (it exits 1)
