"""Every engine of the emulator gives the same integers: kernels against conv2d, engines against each other
(slayer and Lava: tests/sim/test_emulator.py, tests/deploy, tests/spikeship/test_24bit_state.py), the per-step
choice of method, threads, and the GPU engine where a GPU is present."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

from spikeship.errors import SpikeshipError
from spikeship.export.netx import read_net
from spikeship.sim import engines, kernels
from spikeship.sim.emulator import ENGINES, available_threads, emulate
from spikeship.sim.torch_engine import significant_bits

CPU_ENGINES = [name for name in ENGINES if name != "torch"]
GEOMETRIES = (  # stride, padding, dilation, groups
    ((1, 1), (0, 0), (1, 1), 1),
    ((2, 1), (1, 2), (1, 2), 2),
    ((2, 2), (1, 0), (2, 1), 1),
    ((2, 2), (0, 0), (1, 1), 4),  # depthwise: 4 channels in, 4 out, 4 groups (pooling)
)


def _conv_case(geometry, rng):
    stride, pad, dil, groups = geometry
    c_in, c_out = (4, 4) if groups == 4 else (4, 6)
    x = (rng.random((3, c_in, 9, 11)) < 0.3).astype(np.uint8)
    w = 2 * rng.integers(-128, 128, size=(c_out, c_in // groups, 3, 2))
    ref = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double(), stride=stride,
                                     padding=pad, dilation=dil, groups=groups).long().numpy()
    return x, w, ref


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_conv_kernels_match_conv2d(geometry):
    stride, pad, dil, groups = geometry
    x, w, ref = _conv_case(geometry, np.random.default_rng(0))
    (c_out, c_in_g, kh, kw), (_, c, h, wd), (oh, ow) = w.shape, x.shape, ref.shape[2:]
    x_hwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    w_hwio = np.ascontiguousarray(w.transpose(2, 3, 1, 0)).astype(np.float32)
    y, xx, ch = (a.reshape(-1) for a in np.meshgrid(np.arange(h), np.arange(wd), np.arange(c), indexing="ij"))
    where = np.stack([y, xx, ch % c_in_g, ch // c_in_g * (c_out // groups)], 1).astype(np.int64)
    out = np.full((1, 3, oh, ow * c_out), 7.0, np.float32)  # overwritten, whatever it held
    kernels.scatter_conv(x_hwc.reshape(1, 3, -1), np.ones(1, bool), w_hwio, c_out // groups, where,
                         kernels.tap_lists(h, oh, kh, stride[0], pad[0], dil[0]),
                         kernels.tap_lists(wd, ow, kw, stride[1], pad[1], dil[1]), out)
    assert np.array_equal(out.reshape(3, oh, ow, c_out).transpose(0, 3, 1, 2), ref)
    if groups == c == c_out:
        dw = np.full((3, oh, ow, c), 7.0, np.float32)
        kernels.depthwise_conv(x_hwc, np.ascontiguousarray(w_hwio[:, :, 0, :]), *stride, *pad, *dil, dw)
        assert np.array_equal(dw.transpose(0, 3, 1, 2), ref)
    legacy = np.zeros(ref.shape, np.int64)
    kernels.conv_accumulate(x, w.astype(np.int64), *stride, *pad, *dil, groups, legacy)
    assert np.array_equal(legacy, ref)


def test_scatter_dense_writes_only_the_steps_it_is_given():
    rng = np.random.default_rng(1)
    s = (rng.random((3, 2, 40)) < 0.4).astype(np.uint8)
    w_t = (2 * rng.integers(-128, 128, size=(40, 5))).astype(np.float32)
    out = np.full((3, 2, 5), 7.0, np.float32)
    kernels.scatter_dense(s, np.array([True, False, True]), w_t, out)
    assert np.array_equal(out[[0, 2]], s[[0, 2]].astype(np.float32) @ w_t)
    assert (out[1] == 7).all()


@pytest.mark.parametrize("case", ["dense_case", "conv_case", "recurrent_case", "mixed_case", "conv_recurrent_case"])
def test_every_engine_gives_the_same_integers(case, request):
    path, _, inputs, _, _ = request.getfixturevalue(case)
    net = read_net(path)
    ref = emulate(net, inputs, engine="numba", threads=1)
    assert all(w.any() for w in ref.windows)
    for name in ENGINES:
        for threads in (1, 2):
            res = emulate(net, inputs, engine=name, threads=threads, batch_size=3)
            for k in range(net.num_layers):
                assert np.array_equal(res.windows[k], ref.windows[k]), (name, threads, k)
            assert np.array_equal(res.counts, ref.counts), name
            assert np.array_equal(res.readout_steps, ref.readout_steps), name
            assert np.array_equal(res.readout, ref.readout), name


def test_the_method_is_chosen_per_layer_and_step(conv_case, monkeypatch):
    """Sparse steps scattered, dense ones multiplied, in one layer of one chunk; the same integers."""
    path, _, inputs, _, _ = conv_case
    net = read_net(path)
    x = inputs.copy()
    x[..., 0::2] &= (np.random.default_rng(2).random(x[..., 0::2].shape) < 0.05)  # even steps: sparse
    plans = []
    original = engines.CpuEngine._plan

    def plan(self, syn, active, rows):
        syn.scatter_s, syn.product_s = 1.0, 0.1 * float(np.max(active)) / rows  # crossover: 10% of the busiest
        chosen = original(self, syn, active, rows)
        plans.append(chosen.copy())
        return chosen

    monkeypatch.setattr(engines.CpuEngine, "_plan", plan)
    res = emulate(net, x, engine="cpu", threads=1)
    ref = emulate(net, x, engine="numba", threads=1)
    assert any(p.any() and not p.all() for p in plans)  # a layer with both methods in one window
    for k in range(net.num_layers):
        assert np.array_equal(res.windows[k], ref.windows[k])
    assert np.array_equal(res.readout, ref.readout)


def test_scatter_is_chosen_when_it_is_cheaper():
    engine = engines.CpuEngine.__new__(engines.CpuEngine)
    engine.method = "auto"
    syn = engines.Synapse((), (4,), np.float32, None, lambda s, o: None, scatter_s=1e-9, product_s=1e-6)
    active = np.array([0, 10, 999, 1001, 5000])  # 1000 spikes on one row cost what one product costs
    assert engine._plan(syn, active, rows=1).tolist() == [False, False, False, True, True]
    engine.method = "scatter"
    assert not engine._plan(syn, active, rows=1).any()


def test_threads_are_gone_and_torch_threads_restored_after_a_run(conv_case):
    net = read_net(conv_case[0])
    before_threads, before_torch = threading.active_count(), torch.get_num_threads()
    emulate(net, conv_case[2], threads=2, batch_size=2)
    assert threading.active_count() == before_threads
    assert torch.get_num_threads() == before_torch


def test_available_threads_respects_omp_num_threads(monkeypatch):
    cores = len(os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert available_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "999")
    assert available_threads() == cores
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert available_threads() == cores


def test_engine_errors(dense_case):
    net = read_net(dense_case[0])
    with pytest.raises(SpikeshipError, match="unknown emulator engine"):
        emulate(net, dense_case[2], engine="fast")
    with pytest.raises(SpikeshipError, match="threads must be at least 1"):
        emulate(net, dense_case[2], threads=0)
    with pytest.raises(SpikeshipError, match="runs on the CPU"):
        emulate(net, dense_case[2], engine="cpu", device="cuda")


def test_significant_bits():
    assert significant_bits(np.array([0, 254, -256, 2, 96])) == 7  # 254 = 127 * 2
    assert significant_bits(np.array([255])) == 8 and significant_bits(np.zeros(3)) == 0


def test_the_emulator_imports_and_runs_without_lava(dense_case):
    """The GPU machine has no Lava: the emulator and the .net reader must not need it."""
    code = (
        "import sys\n"
        "sys.modules['lava'] = None  # any import of lava or lava.* now fails\n"
        "import numpy as np\n"
        "from spikeship.export.netx import read_net\n"
        "from spikeship.sim.emulator import emulate\n"
        f"net = read_net({str(dense_case[0])!r})\n"
        "x = np.load(sys.argv[1])\n"
        "for engine in ('cpu', 'torch'):\n"
        "    print(engine, emulate(net, x, engine=engine).readout.sum())\n"
        "assert not [m for m in sys.modules if m.startswith('lava.')], 'lava was imported'\n"
    )
    inputs = dense_case[2][:4]
    path = dense_case[0].parent / "inputs.npy"
    np.save(path, inputs)
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    total = int(emulate(read_net(dense_case[0]), inputs).readout.sum())
    assert out.stdout.split() == ["cpu", str(total), "torch", str(total)]


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


@cuda
@pytest.mark.parametrize("case", ["dense_case", "conv_case"])
def test_the_cuda_engine_equals_the_cpu_engines(case, request):
    path, _, inputs, _, _ = request.getfixturevalue(case)
    net = read_net(path)
    ref = emulate(net, inputs, engine="numba", threads=1)
    res = emulate(net, inputs, device="cuda", batch_size=7)
    for k in range(net.num_layers):
        assert np.array_equal(res.windows[k], ref.windows[k]), k
    assert np.array_equal(res.readout, ref.readout)


def test_the_emulator_never_sets_torchs_process_wide_thread_count(conv_case, monkeypatch):
    """torch.set_num_threads above one starts a thread pool that processes forked later inherit (it broke
    deploy/lifecycle.py's parent-death watch); the emulator sets its threads' counts one by one instead."""
    def refuse(n):
        raise AssertionError(f"torch.set_num_threads({n}) called")

    threads_before = torch.get_num_threads()
    monkeypatch.setattr(torch, "set_num_threads", refuse)
    net = read_net(conv_case[0])
    ref = emulate(net, conv_case[2], engine="numba", threads=1)
    for engine in ("cpu", "cpu-product"):
        res = emulate(net, conv_case[2], engine=engine, threads=2, batch_size=4)
        assert np.array_equal(res.readout, ref.readout) and np.array_equal(res.counts, ref.counts), engine
        assert torch.get_num_threads() == threads_before, engine


def test_an_interrupted_run_stops_its_threads(conv_case):
    net = read_net(conv_case[0])
    before = threading.active_count()
    calls = []

    def interrupt(done):
        calls.append(done)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        emulate(net, conv_case[2], threads=2, batch_size=1, progress=interrupt)
    assert len(calls) == 1 and threading.active_count() == before
