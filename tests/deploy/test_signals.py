"""SIGTERM and SIGKILL of a real `spikeship run --backend lava`, driven through the CLI in a subprocess.

Each test starts the run in a session of its own, waits until its Lava network is simulating, sends the
signal, and then (bounded waits) checks that no process of that session survives, that none of the run's
shared-memory segments is left in /dev/shm and that its temporary folder is gone. The run's segments are
found independently of spikeship's own record: every /dev/shm file its processes have mapped. (Other
programs on the machine may create and remove /dev/shm files meanwhile, so the check is on this run's
names, not on a count.) Whatever is left is killed by PID in the teardown.

Ctrl-C: tests/deploy/test_lava_run.py (the parent's KeyboardInterrupt stops the network, also sharded) and
tests/deploy/test_lifecycle.py (Lava's processes ignore SIGINT, which a terminal sends the whole group).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; PR_SET_PDEATHSIG")

T = 64  # long windows: about 25 s of simulation for the whole file, so every signal lands mid-run
SAMPLES = 120
CLASSES = 20


@pytest.fixture(scope="module")
def shd_case(tmp_path_factory):
    """A tiny SHD file in tonic's real layout (fast to load) and a dense 700-32 network for it."""
    import h5py

    from nets import random_model, random_two_weights, write_net

    folder = tmp_path_factory.mktemp("shd")
    rng = np.random.default_rng(0)
    path = folder / "SHD" / "shd_test.h5"
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (SAMPLES,), dtype=h5py.vlen_dtype(np.float32))
        units = f.create_dataset("spikes/units", (SAMPLES,), dtype=h5py.vlen_dtype(np.uint16))
        for i in range(SAMPLES):
            times[i] = np.sort(rng.uniform(0, 0.8, 300)).astype(np.float32)
            units[i] = rng.integers(0, 700, 300).astype(np.uint16)
        f.create_dataset("labels", data=(np.arange(SAMPLES) % CLASSES).astype(np.uint8))
        f.create_dataset("extra/keys", data=np.array([f"word-{i}".encode() for i in range(CLASSES)]))
        f.create_dataset("extra/speaker", data=np.zeros(SAMPLES, dtype=np.uint8))
    model = random_model((700, 1, 1), CLASSES, (("dense", 32),), weight_scale=3.0)
    net = write_net(model, random_two_weights(T, 1), folder / "shd.net")
    return folder, net


def _session(sid: int) -> dict[int, str]:
    """Live processes of session ``sid``: pid -> start time (so a recycled pid is never taken for one)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state is fields[0]; session fields[3]; start fields[19]
        if int(fields[3]) == sid and fields[0] not in "ZX":
            found[int(entry)] = fields[19]
    return found


def _mapped_segments(pids) -> set[str]:
    """The /dev/shm files these processes have mapped (Lava's channels)."""
    names = set()
    for pid in pids:
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        for line in maps.splitlines():
            if "/dev/shm/" in line and not line.endswith("(deleted)"):
                names.add(line.split("/dev/shm/", 1)[1].strip())
    return names


def _wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s:.0f} s: {what}")


class Run:
    """`spikeship run` in a new session, its temporary folders under ``tmp``."""

    def __init__(self, tmp_path: Path, shd_case, *extra: str):
        data_dir, net = shd_case
        self.tmp = tmp_path / "tmp"
        self.tmp.mkdir()
        self.stderr_path = tmp_path / "stderr.txt"
        env = {**os.environ, "TMPDIR": str(self.tmp), "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "spikeship", "run", str(net), "--dataset", "shd", "--data-dir", str(data_dir),
               "--backend", "lava", "--no-progress", *extra]
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                         start_new_session=True)
        self.sid = self.proc.pid
        self.seen: dict[int, str] = {}

    def folders(self) -> list[Path]:
        return sorted(self.tmp.glob("spikeship-lava-*"))

    def wait_until_simulating(self, networks: int) -> set[str]:
        """Wait until every network records its segments and has simulated a step with a spike; returns the
        segments the run's processes have mapped."""

        def simulating():
            if self.proc.poll() is not None:
                raise AssertionError(f"the run ended early ({self.proc.returncode}): {self.stderr()}")
            folders = [f for f in self.folders() if (f / "shm-segments").is_file()]
            if len(folders) < networks:
                return False
            for f in folders:
                try:
                    if not np.load(f / "counts0.npy", mmap_mode="r").any():
                        return False
                except (OSError, ValueError):
                    return False
            return True

        _wait_for(simulating, 120, "the Lava network(s) simulating")
        self.seen = _session(self.sid)
        segments = _mapped_segments(self.seen)
        recorded = {n for f in self.folders() for n in (f / "shm-segments").read_text().split()}
        assert segments and recorded <= segments, (recorded, segments)
        return segments

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def left(self) -> dict[int, str]:
        return _session(self.sid)

    def kill_leftovers(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        for pid, start in self.left().items():
            if self.seen.get(pid, start) == start:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.proc.wait(timeout=10)


@pytest.fixture
def start_run(tmp_path, shd_case):
    runs = []

    def start(*extra: str) -> Run:
        runs.append(Run(tmp_path, shd_case, *extra))
        return runs[-1]

    yield start
    for run in runs:
        run.kill_leftovers()


def _check_clean(run: Run, segments: set[str]) -> None:
    _wait_for(lambda: run.proc.poll() is not None and not run.left(), 30,
              f"every process of the run gone (left: {run.left()})")
    assert not segments & set(os.listdir("/dev/shm")), "shared memory of the run left in /dev/shm"
    assert run.folders() == [], "the run's temporary folder is left"


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_stops_the_run_like_ctrl_c(start_run, workers):
    run = start_run("--workers", str(workers))
    segments = run.wait_until_simulating(networks=workers)
    run.proc.send_signal(signal.SIGTERM)
    _check_clean(run, segments)
    assert run.proc.returncode == 143
    assert run.stderr().strip().splitlines()[-1] == "spikeship: terminated"


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_lava_processes_notice_and_clean_up(start_run, workers):
    run = start_run("--workers", str(workers))
    segments = run.wait_until_simulating(networks=workers)
    run.proc.kill()
    _check_clean(run, segments)
    assert run.proc.returncode == -signal.SIGKILL


def test_sigterm_to_the_whole_process_group_as_timeout_sends(start_run):
    run = start_run()
    segments = run.wait_until_simulating(networks=1)
    os.killpg(run.sid, signal.SIGTERM)
    _check_clean(run, segments)
    assert run.proc.returncode == 143
