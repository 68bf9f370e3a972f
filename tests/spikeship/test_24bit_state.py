"""Lava keeps current and voltage in 24 bits; every runtime of spikeship does the same, training included.

The case found by the restructuring issue: 128 inputs of weight 254, iDecay 1, vDecay 4096, vThMant 131071.
Export accepts it (each step's input fits int16), but the accumulated current leaves 24 bits: Lava wraps it
and never spikes, while an unbounded integrator (slayer's own dynamics) spikes from step 5 on. Here PyTorch
(the MSG neuron), every emulator engine, ONNX (onnxruntime and onnx's reference evaluator) and a real Lava
run must give the very same spikes, on that case and on the edges of the current and voltage ranges.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lava.lib.dl.slayer.neuron import cuba as cuba_neuron

from spikeship import backends, fixedpoint
from spikeship.export.netx import read_net, write_net
from spikeship.export.onnx_export import build_onnx, run_onnx
from spikeship.export.quantize import quantize_model
from spikeship.train.model import LayerSpec, ModelSpec, NeuronSpec, SpikeNet


def single_layer_net(weights: np.ndarray, i_decay: int, v_decay: int, vth_mant: int) -> SpikeNet:
    """One dense spiking layer with the given integer weights (out, in) and neuron, and a readout of 2s."""
    out, n_in = weights.shape
    neuron = NeuronSpec(threshold=vth_mant / 64, current_decay=i_decay / 4096, voltage_decay=v_decay / 4096)
    net = SpikeNet(ModelSpec((1, 1, n_in), 2, (LayerSpec("dense", out),), neuron)).eval()
    with torch.no_grad():
        net.blocks[0].synapse.weight.copy_(torch.from_numpy(weights).float().reshape(out, n_in, 1, 1, 1) / 64)
        net.readout.weight.fill_(2 / 64)
    return net


CASES = {
    # the case: 128 x 254 = 32,512 per step into a near-perfect integrator; u passes 2**23 at step 4
    "overflow": (np.full((1, 128), 254), 1, 4096, 131071, 12),
    # iDecay 5 and a constant input of +-4050 reach u = +-2**23 exactly at step 32: 2**23 stays, -2**23 wraps
    "current edges": (np.array([[254] * 15 + [240], [-256] * 15 + [-210], [254] * 16, [-256] * 16]), 5, 4096,
                      131071, 40),
    # iDecay 4096, vDecay 0: v integrates 64 a per step. Inputs 0-15 spike in the first 40 steps, 16-31 in the
    # last 40: neuron 0 falls below -(2**23 - 1) and saturates there, then climbs back and spikes at step 73
    # (unbounded, it would fall to -10.5 M and not spike before step 80); neuron 1 mirrors it
    "voltage edges": (np.array([[-256] * 16 + [254] * 16, [254] * 16 + [-256] * 16]), 4096, 0, 100, 80),
}


def _inputs(n_in: int, steps: int) -> np.ndarray:
    x = np.ones((1, 1, 1, n_in, steps), np.uint8)  # every input spikes every step ...
    if n_in == 32:  # ... except in the two-phase case: inputs 0-15 first, 16-31 second
        x[..., :16, steps // 2:] = 0
        x[..., 16:, :steps // 2] = 0
    return x


def _slayer_unbounded_spikes(net: SpikeNet, x: torch.Tensor) -> np.ndarray:
    """What slayer's own dynamics give (no 24-bit state): the runtimes must NOT agree with this."""
    block = net.blocks[0]
    z = block.synapse(x.reshape(1, -1, x.shape[-1]))
    _, voltage = cuba_neuron.Neuron.dynamics(block.neuron, z)
    return (voltage >= block.neuron.threshold + block.neuron.threshold_eps).numpy().astype(np.uint8)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_runtime_keeps_lavas_24_bit_state(case, tmp_path):
    weights, i_decay, v_decay, vth, steps = CASES[case]
    net = single_layer_net(weights.astype(np.int64), i_decay, v_decay, vth)
    two = np.r_[0, np.full(steps - 1, 64)]
    q = quantize_model(net, two)
    assert np.array_equal(q.layers[0].weight, weights)  # the network is what the case says
    write_net(q, tmp_path / "edge.net")  # export accepts it: each step's input fits int16
    netfile = read_net(tmp_path / "edge.net")
    x = _inputs(weights.shape[1], steps)

    # the fixed-point core itself: the case really leaves the range an unbounded integrator would keep
    u = v = np.zeros(len(weights), np.int64)
    raw_currents, raw_voltages = [], []
    for t in range(steps):
        a = weights @ x[0, 0, 0, :, t].astype(np.int64)
        raw_currents.append(fixedpoint.decay(u, i_decay) + 64 * a)
        u, v_pre = fixedpoint.integrate(a, u, v, i_decay, v_decay)
        raw_voltages.append(fixedpoint.decay(v, v_decay) + u)
        _, v = fixedpoint.fire(v_pre, vth)
    raw_u, raw_v = np.array(raw_currents), np.array(raw_voltages)
    assert not fixedpoint.in_range(raw_u.min(), raw_u.max(), raw_v.min(), raw_v.max())
    if case == "current edges":
        assert (raw_u == 2 ** 23).any() and (raw_u == -(2 ** 23)).any()
    if case == "voltage edges":
        assert raw_v.min() < -fixedpoint.VOLTAGE_MAX

    # PyTorch: the MSG neuron with Lava's 24-bit state (slayer's y_k[t] = s_k[t - 1])
    with torch.no_grad():
        readout, (y,) = net(torch.from_numpy(x).float())
    pytorch = y.numpy().astype(np.uint8)[0]
    window = np.zeros_like(pytorch)  # s_0[tau] for tau in [0, T - 1), from slayer's shifted output
    window[:, :-1] = pytorch[:, 1:]

    unbounded = _slayer_unbounded_spikes(net, torch.from_numpy(x).float())[0]
    assert not np.array_equal(window[:, :-1], unbounded[:, :-1])  # the 24-bit state changes the spikes here
    if case == "overflow":
        assert unbounded[0, 4:].all() and not window.any()  # slayer alone spikes from step 5; Lava never
    else:
        assert window.any()

    runs = {name: backends.run(name, netfile, x, backends.RunOptions(record_spikes=True))
            for name in ("emulator", "lava")}
    from spikeship.sim.emulator import ENGINES, emulate

    for engine in ENGINES:  # every engine of the emulator, not only the default
        runs[f"emulator-{engine}"] = emulate(netfile, x, engine=engine)
    model = build_onnx(q)
    for engine in ("onnxruntime", "reference"):
        spikes, _, acc = run_onnx(model, x.astype(np.float32), q.two_weights, engine=engine)
        onnx_window = np.zeros_like(pytorch)
        onnx_window[:, :-1] = spikes[0][0, :, 1:]
        assert np.array_equal(onnx_window, window), engine
        assert np.array_equal(acc, runs["emulator"].readout), engine
    for name, run in runs.items():
        assert np.array_equal(run.windows[0][0][:, :-1], window[:, :-1]), name
        assert np.array_equal(run.readout, runs["emulator"].readout), name


def test_a_recurrent_layer_keeps_lavas_24_bit_state_step_by_step(tmp_path):
    """slayer's recurrent block steps its neuron one step per call, carrying the state between calls; the MSG
    neuron corrects each step from the state the last one left. 128 neurons spike every step (input 254 each)
    and feed neuron 128 through recurrent weights of 254: 128 x 254 per step drives its current past 2**23 at
    step 5, where Lava wraps it (the neuron falls silent for a while) and slayer alone keeps spiking."""
    n, steps = 129, 12
    w = np.zeros((n, 1), np.int64)
    w[:128] = 254
    r = np.zeros((n, n), np.int64)
    r[128, :128] = 254
    neuron = NeuronSpec(threshold=100 / 64, current_decay=1 / 4096, voltage_decay=1.0)
    net = SpikeNet(ModelSpec((1, 1, 1), 2, (LayerSpec("recurrent", n),), neuron)).eval()
    block = net.blocks[0]
    with torch.no_grad():
        block.input_synapse.weight.copy_(torch.from_numpy(w).float().reshape(n, 1, 1, 1, 1) / 64)
        block.recurrent_synapse.weight.copy_(torch.from_numpy(r).float().reshape(n, n, 1, 1, 1) / 64)
        net.readout.weight.fill_(2 / 64)
    q = quantize_model(net, np.r_[0, np.full(steps - 1, 64)])
    assert np.array_equal(q.layers[0].weight, w) and np.array_equal(q.layers[0].recurrent_weight, r)
    write_net(q, tmp_path / "rec.net")  # each step's input fits int16: 128 x 254 = 32512
    netfile = read_net(tmp_path / "rec.net")
    x = np.ones((2, 1, 1, 1, steps), np.uint8)

    with torch.no_grad():
        _, (y,) = net(torch.from_numpy(x).float())
        _, (y_again,) = net(torch.from_numpy(x).float())  # a second forward starts from rest again
    assert torch.equal(y, y_again)
    window = np.zeros(y.shape, np.uint8)  # s_0[tau] for tau in [0, T - 1), from slayer's shifted output
    window[..., :-1] = y.numpy().astype(np.uint8)[..., 1:]
    assert window[:, :128, :-1].all()
    # neuron 128: spikes at tau 1-4, then its wrapped current silences it (an unbounded one would not stop)
    assert window[0, 128, :5].tolist() == [0, 1, 1, 1, 1] and not window[0, 128, 5:8].any()

    from lava.lib.dl.slayer.block import cuba as cuba_block

    plain = cuba_block.Recurrent(neuron.slayer_params(), 1, n, weight_norm=False, delay_shift=True)
    plain.load_state_dict(block.state_dict(), strict=False)
    with torch.no_grad():
        unbounded = plain(torch.from_numpy(x).float().reshape(2, 1, steps)).numpy().astype(np.uint8)
    assert unbounded[0, 128, 2:].all()  # slayer's own dynamics: spikes on (shifted: from step 2)
    assert not np.array_equal(unbounded, y.numpy().astype(np.uint8))

    runs = {name: backends.run(name, netfile, x, backends.RunOptions(record_spikes=True))
            for name in ("emulator", "lava")}
    from spikeship.sim.emulator import ENGINES, emulate

    for engine in ENGINES:  # every engine of the emulator, not only the default
        runs[f"emulator-{engine}"] = emulate(netfile, x, engine=engine)
    for name, run in runs.items():
        assert np.array_equal(run.windows[0][..., :-1], window[..., :-1]), name
        assert np.array_equal(run.readout, runs["emulator"].readout), name
    for engine in ("onnxruntime", "reference"):
        spikes, _, acc = run_onnx(build_onnx(q), x.astype(np.float32), q.two_weights, engine=engine)
        assert np.array_equal(spikes[0].astype(np.uint8), y.numpy().astype(np.uint8)), engine
        assert np.array_equal(acc, runs["emulator"].readout), engine
