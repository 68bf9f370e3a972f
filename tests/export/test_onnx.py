"""The per-step integer ONNX model reproduces the PyTorch deploy-equivalent forward exactly."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from nets import two_for
from spikeship.export.onnx_export import build_onnx, export_onnx, run_onnx
from spikeship.export.quantize import quantize_model
from spikeship.train.model import decode_integer, readout_integers


def _torch_reference(net, x):
    with torch.no_grad():
        readout, spikes = net(x)
    return [s.numpy() for s in spikes], readout_integers(readout)


@pytest.mark.parametrize("engine", ["onnxruntime", "reference"])
@pytest.mark.parametrize("which", ["conv_net", "dense_net", "recurrent_net"])
def test_onnx_equals_pytorch_exactly(which, engine, request, tmp_path):
    net = request.getfixturevalue(which)
    steps = 12
    q = quantize_model(net, two_for(net, steps))
    path = tmp_path / "model.onnx"
    export_onnx(q, path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)

    torch.manual_seed(3)
    x = (torch.rand(4, *q.input_shape, steps) < 0.4).float()
    spikes_ref, readout_ref = _torch_reference(net, x)
    spikes, readout, acc = run_onnx(model, x.numpy(), q.two_weights, engine=engine)

    assert len(spikes) == len(q.layers)
    for k, (a, b) in enumerate(zip(spikes, spikes_ref)):
        assert a.shape == b.shape, k
        assert np.array_equal(a, b), f"layer {k}: {int((a != b).sum())} spikes differ"
        assert 0.02 < b.mean() < 0.9, f"layer {k} is (nearly) silent or saturated: the comparison would be weak"
    assert readout.dtype == np.int64 and np.array_equal(readout, readout_ref.numpy())
    assert np.array_equal(acc, decode_integer(readout_ref, torch.from_numpy(q.two_weights)).numpy())
    assert np.any(readout != 0)


def test_onnx_interface(conv_net):
    q = quantize_model(conv_net, two_for(conv_net))
    model = build_onnx(q)
    inputs = {i.name: i for i in model.graph.input}
    outputs = [o.name for o in model.graph.output]
    assert list(inputs) == ["x", "u_0", "v_0", "s_0", "u_1", "v_1", "s_1", "u_2", "v_2", "s_2",
                            "u_3", "v_3", "s_3", "acc", "a_t"]
    assert outputs[:4] == ["spikes_0", "u_0_next", "v_0_next", "s_0_next"]
    assert outputs[-2:] == ["readout", "acc_next"]
    assert inputs["u_0"].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert [d.dim_value for d in inputs["v_2"].type.tensor_type.shape.dim[1:]] == [4, 2, 2]
    props = {p.key: p.value for p in model.metadata_props}
    assert props["two_weights"] == ",".join(str(a) for a in q.two_weights)


def test_shift_rounds_toward_zero_for_negative_states(dense_net):
    """A strongly inhibited neuron: negative current and voltage decay as slayer does (toward zero)."""
    with torch.no_grad():
        dense_net.blocks[0].synapse.weight.fill_(-254 / 64)
        dense_net.blocks[0].neuron.current_decay.fill_(1001.0)  # 3095 * u is not a multiple of 4096
    q = quantize_model(dense_net, two_for(dense_net, 6))
    x = torch.ones(1, *q.input_shape, 6)
    spikes_ref, readout_ref = _torch_reference(dense_net, x)
    model = build_onnx(q)
    # the internal state after step 0 is known in closed form: u = 64 * a, with a = 18 * -254
    from onnx.reference import ReferenceEvaluator

    feeds = {"x": x[..., 0].numpy(), "a_t": np.zeros(1, np.int64), "acc": np.zeros((1, 2), np.int64)}
    for k, layer in enumerate(q.layers):
        feeds |= {f"u_{k}": np.zeros((1, *layer.shape), np.int64), f"v_{k}": np.zeros((1, *layer.shape), np.int64),
                  f"s_{k}": np.zeros((1, *layer.shape), np.float32)}
    names = [o.name for o in model.graph.output]
    out = dict(zip(names, ReferenceEvaluator(model).run(None, feeds)))
    assert np.all(out["u_0_next"] == 64 * 18 * -254)
    feeds |= {"u_0": out["u_0_next"], "v_0": out["v_0_next"]}
    out2 = dict(zip(names, ReferenceEvaluator(model).run(None, feeds)))
    u = 64 * 18 * -254
    decayed = -((-u * (4096 - 1001)) >> 12)  # toward zero
    assert decayed != (u * (4096 - 1001)) >> 12  # which differs from floor here
    assert np.all(out2["u_0_next"] == decayed + u)
    spikes, readout, _ = run_onnx(model, x.numpy(), q.two_weights)
    assert all(np.array_equal(a, b) for a, b in zip(spikes, spikes_ref))
    assert np.array_equal(readout, readout_ref.numpy())


def test_float32_exactness_precondition_is_enforced(dense_net):
    import dataclasses

    from spikeship.errors import SpikeshipError

    q = quantize_model(dense_net, two_for(dense_net, 5))
    huge = np.full((2, 70000), 254, dtype=np.int64)  # 70000 * 254 > 2**24
    layer = dataclasses.replace(q.layers[1], shape=(2,), weight=huge[:, :4])
    bad = dataclasses.replace(q, layers=(q.layers[0], layer),
                              readout=dataclasses.replace(q.readout, weight=np.full((2, 70000), 254)))
    with pytest.raises(SpikeshipError, match=r"readout: sum of \|weights\| of one neuron is 17780000 >= 2\*\*24"):
        build_onnx(bad)
