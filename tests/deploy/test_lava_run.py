import multiprocessing
import os

import numpy as np
import pytest

from spikeship import backends, fixedpoint
from spikeship.deploy.lava_run import run_lava, run_lava_sharded
from spikeship.errors import SpikeshipError
from spikeship.export.netx import read_net
from spikeship.network import Layer, Network, Neuron
from spikeship.sim import layout
from spikeship.sim.emulator import ENGINES, emulate


def child_pids() -> list[int]:
    """Every live process whose parent is this one (Lava's runtime processes included), except
    multiprocessing's resource tracker (one per program, started by the first shared memory)."""
    me, kids = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me and fields[0] != "Z":
            try:
                with open(f"/proc/{entry}/cmdline") as f:
                    if "resource_tracker" in f.read():
                        continue
            except OSError:
                continue
            kids.append(int(entry))
    return kids


@pytest.fixture(autouse=True)
def no_process_left_behind():
    before = set(child_pids())
    yield
    multiprocessing.active_children()  # reap finished children
    assert set(child_pids()) - before == set()


@pytest.mark.parametrize("case", ["dense_case", "conv_case", "recurrent_case", "mixed_case"])
def test_lava_equals_the_emulator_on_every_step(case, request):
    path, _, inputs, _, _ = request.getfixturevalue(case)
    net = read_net(path)
    x = inputs[:9]
    # chunks of 4 samples: windows of deeper layers and readouts straddle the chunk boundaries
    lava = run_lava(net, x, record_spikes=True, chunk_samples=4)
    emu = emulate(net, x)
    T = net.time_steps
    assert lava.simulated_steps == layout.lava_steps(9, T, net.num_layers)
    for k in range(net.num_layers):
        assert lava.windows[k].shape == (9,) + net.layer_shapes[k] + (T,)
        assert np.array_equal(lava.windows[k], emu.windows[k]), f"layer {k}"
    assert np.array_equal(lava.counts, emu.counts)
    assert np.array_equal(lava.readout, emu.readout)
    assert np.array_equal(lava.predictions, emu.predictions)
    assert np.abs(lava.readout).sum() > 0


def test_two_workers_give_what_one_gives(dense_case):
    path, _, inputs, _, _ = dense_case
    x = inputs[:10]
    net = read_net(path)
    one = backends.run("lava", net, x, backends.RunOptions(workers=1, record_spikes=True))
    two = backends.run("lava", net, x, backends.RunOptions(workers=2, record_spikes=True))
    assert np.array_equal(one.readout, two.readout) and np.array_equal(one.counts, two.counts)
    for a, b in zip(one.windows, two.windows):
        assert np.array_equal(a, b)


def test_not_a_net_file_fails_before_lava_starts(tmp_path):
    p = tmp_path / "model.net"
    p.write_bytes(b"\x89HDF\r\n" + b"\0" * 100)
    with pytest.raises(SpikeshipError, match="not HDF5"):
        read_net(p)


def test_truncated_file(dense_case, tmp_path):
    data = dense_case[0].read_bytes()
    p = tmp_path / "cut.net"
    p.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(SpikeshipError):
        read_net(p)


def test_input_shape_mismatch(conv_case):
    with pytest.raises(SpikeshipError, match="does not match the network input"):
        backends.run("lava", read_net(conv_case[0]), np.zeros((4, 2, 10, 9, 8), np.uint8),
                     backends.RunOptions(workers=2))


def test_the_emulator_device_is_not_for_lava(dense_case):
    path, _, inputs, _, _ = dense_case
    with pytest.raises(SpikeshipError, match="the lava backend runs on cpu, not --device cuda"):
        backends.run("lava", read_net(path), inputs[:2], backends.RunOptions(device="cuda"))


def test_interrupt_stops_the_network(dense_case):
    path, _, inputs, _, _ = dense_case

    def interrupt(_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_lava(read_net(path), inputs[:6], chunk_samples=2, progress=interrupt)


def test_interrupt_of_a_sharded_run_stops_every_worker(dense_case):
    path, _, inputs, _, _ = dense_case
    calls = []

    def interrupt(k):
        calls.append(k)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_lava_sharded(read_net(path), inputs[:12], workers=2, chunk_samples=2, progress=interrupt)
    assert calls  # it was interrupted while the workers were running


def test_emulator_threads_then_lava_workers_in_one_process_do_not_hang(dense_case):
    """What the demo and `parity` do: the emulator with its threads, then Lava forking its worker processes
    (which fork Lava's own), in one fresh process. A thread pool left running would be inherited half-dead
    by the forked children (it deadlocked here once); the run must finish, with the same integers."""
    import subprocess
    import sys

    path, _, inputs, _, _ = dense_case
    x_path = path.parent / "fork_inputs.npy"
    np.save(x_path, inputs[:6])
    code = (
        "import sys, numpy as np, torch\n"
        "from spikeship.export.netx import read_net\n"
        "from spikeship.sim.emulator import emulate\n"
        "from spikeship.deploy.lava_run import run_lava_sharded\n"
        "torch.set_num_threads(2)\n"
        "net, x = read_net(sys.argv[1]), np.load(sys.argv[2])\n"
        "emu = emulate(net, x, threads=2, batch_size=2)\n"
        "torch.zeros(4096, 4096).sum()  # torch's own pool, as training leaves it\n"
        "lava = run_lava_sharded(net, x, workers=2, record_spikes=True)\n"
        "assert np.array_equal(emu.readout, lava.readout)\n"
        "assert all(np.array_equal(a, b) for a, b in zip(emu.windows, lava.windows))\n"
        "print('same', int(emu.counts.sum()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path), str(x_path)], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    last = out.stdout.strip().splitlines()[-1].split()
    assert last[0] == "same" and int(last[1]) > 0


def _recurrent_record(seed: int = 0, n_in: int = 4, n: int = 6, steps: int = 10) -> Network:
    """One recurrent layer, written by hand: input weights that start it, recurrent weights that keep it going."""
    rng = np.random.default_rng(seed)
    w = 2 * rng.integers(-20, 60, size=(n, n_in))
    r = 2 * rng.integers(-60, 60, size=(n, n))
    layer = Layer(kind="recurrent", index=0, input_shape=(n_in,), shape=(n,), weight=w, recurrent_weight=r,
                  neuron=Neuron(i_decay=1024, v_decay=128, vth_mant=80))
    readout = Layer(kind="dense", index=1, input_shape=(n,), shape=(2,), weight=2 * rng.integers(-30, 30, (2, n)),
                    neuron=None)
    return Network(input_shape=(1, 1, n_in), layers=(layer,), readout=readout,
                   two_weights=np.r_[0, np.full(steps - 1, 64)], class_names=("a", "b"))


def _recurrent_reference(layer: Layer, x: np.ndarray, delay: int) -> np.ndarray:
    """Spikes of one recurrent layer, every sample alone, with its own spikes arriving ``delay`` steps late:
    ``a_t = W x_t + R s_{t - delay}`` through the fixed-point core (x: (N, F, T))."""
    n, steps = x.shape[0], x.shape[-1]
    s = np.zeros((n, layer.num_neurons, steps), np.uint8)
    u = np.zeros((n, layer.num_neurons), np.int64)
    v = np.zeros_like(u)
    for t in range(steps):
        a = x[..., t].astype(np.int64) @ layer.weight.T
        if t >= delay:
            a = a + s[..., t - delay].astype(np.int64) @ layer.recurrent_weight.T
        spike, u, v = fixedpoint.cuba_step(a, u, v, layer.neuron.i_decay, layer.neuron.v_decay, layer.neuron.vth_mant)
        s[..., t] = spike
    return s


def test_the_recurrent_delay_is_one_step_in_lava_and_the_emulator():
    """Lava's RecurrentDense (real Lava) delivers a spike of step t at t + 1: a reference with that delay equals
    it, and the same reference one step later differs (so the comparison sees an off-by-one delay)."""
    net = _recurrent_record()
    x = (np.random.default_rng(1).random((6, 4, net.time_steps)) < 0.3).astype(np.uint8)
    lava = backends.run("lava", net, x, backends.RunOptions(record_spikes=True)).windows[0]
    assert lava.sum() > 0
    one, two = (_recurrent_reference(net.layers[0], x, d) for d in (1, 2))
    assert np.array_equal(lava, one)
    assert not np.array_equal(lava, two)
    for engine in ENGINES:
        assert np.array_equal(emulate(net, x, engine=engine).windows[0], one), engine


def test_lava_leaks_the_last_step_into_the_next_sample_unless_the_buffer_is_cleared(recurrent_case, monkeypatch):
    """netx resets each layer's neurons per sample, not its recurrent synapse's buffer: the spikes of a
    window's last step arrive at the next window's first. With the clearing turned off (this module's own
    step, not Lava's), real Lava differs from the emulator exactly there."""
    path, _, inputs, _, _ = recurrent_case
    net = read_net(path)
    x = inputs[:8]
    emu = emulate(net, x)
    assert all(w[:-1, ..., -1].sum() > 0 for w in emu.windows)  # last-step spikes to leak
    monkeypatch.setattr(layout, "recurrent_clear_steps", lambda *args: [])
    leaky = run_lava(net, x, record_spikes=True)
    first = np.argmax([not np.array_equal(a, b) for a, b in zip(leaky.windows[0], emu.windows[0])])
    assert first > 0 and not np.array_equal(leaky.windows[0][first][..., 0], emu.windows[0][first][..., 0])
    assert emu.windows[0][first - 1][..., -1].any()  # the previous sample spiked at its last step
