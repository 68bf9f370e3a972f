"""docs/DESIGN.md "Adding a layer kind", done: a test-only kind registered in exactly the tables the section
names, then taken through train, export (.net and ONNX), the emulator, Lava (parity), and the report.

The kind is ``avgpool``: sum pooling whose weight is frozen at threshold / (kernel * kernel), so each output
averages its window in units of the threshold. It maps onto what netx already builds (a depthwise conv), so
every entry reuses an existing function: that is the point: a new kind is one entry per concern.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spikeship import backends
from spikeship.energy import CONV, GEOMETRY
from spikeship.export import netx, onnx_export, quantize
from spikeship.export.stage import ExportConfig, export_checkpoint
from spikeship.sim import emulator
from spikeship.train import model as train_model


def _avgpool_block(layer, in_shape, params, common):
    block = train_model.KINDS["pool"].build(layer, in_shape, params, common)
    with torch.no_grad():  # a fixed average: threshold / k**2 per input, not learned
        block.synapse.weight.fill_(params["threshold"] / layer.kernel ** 2)
    block.synapse.weight.requires_grad_(False)
    return block


@pytest.fixture
def avgpool(monkeypatch):
    """The six entries of docs/DESIGN.md "Adding a layer kind" (removed again after the test)."""
    pool = train_model.KINDS["pool"]
    monkeypatch.setitem(train_model.KINDS, "avgpool", train_model.LayerKind(
        pool.output_shape, _avgpool_block, needs_features=False, stride_is_kernel=True))
    monkeypatch.setitem(quantize.QUANTIZERS, "avgpool", quantize.quantize_pool)
    monkeypatch.setitem(netx.WRITERS, "avgpool", netx.WRITERS["pool"])
    monkeypatch.setitem(GEOMETRY, "avgpool", CONV)
    monkeypatch.setitem(emulator.OPS, "avgpool", "conv")
    monkeypatch.setitem(onnx_export.SYNAPSES, "avgpool", onnx_export.SYNAPSES["pool"])
    return "avgpool"


CONFIG = """
[[layer]]
kind = "conv"
features = 4
kernel = 3
[[layer]]
kind = "avgpool"
kernel = 2
[[layer]]
kind = "dense"
features = 16
"""


def test_a_new_kind_goes_through_every_stage(avgpool, tmp_path):
    from spikeship.report import report_on_inputs
    from spikeship.sim.parity import check_parity
    from spikeship.train.checkpoint import load_checkpoint
    from spikeship.train.data import load_samples
    from spikeship.train.loop import TrainConfig, train

    (tmp_path / "net.toml").write_text(CONFIG)
    metrics = train(TrainConfig(model_config=str(tmp_path / "net.toml"), epochs=1, time_steps=8, max_samples=48,
                                batch_size=16, out=str(tmp_path / "run"), progress=False))
    assert metrics["epochs"] == 1
    ckpt = load_checkpoint(tmp_path / "run" / "model.pt")
    assert [layer.kind for layer in ckpt.spec.layers] == ["conv", "avgpool", "dense"]
    block = ckpt.build_model().blocks[1]
    assert float(block.synapse.weight.reshape(-1)[0]) == pytest.approx(1.25 / 4)  # frozen, not trained

    net_path, onnx_path = tmp_path / "m.net", tmp_path / "m.onnx"
    net, _ = export_checkpoint(ExportConfig(model=tmp_path / "run" / "model.pt", out=net_path, onnx=onnx_path))
    assert [layer.kind for layer in net.layers] == ["conv", "avgpool", "dense"]
    back = netx.read_net(net_path)
    assert back == net and back.layers[1].groups == 4 and np.all(back.layers[1].weight == 20)  # 64 * 1.25 / 4

    samples = load_samples("event-digits", None, "test", 8, 12)
    run = check_parity(back, ckpt.build_model(), samples.inputs, samples.labels, against=("lava",))
    assert run.result.ok, run.result.first_mismatch.line()
    assert all(w.sum() > 0 for w in run.runs["lava"].windows), "every layer must spike for the check to mean much"

    report, _ = report_on_inputs(back, samples.inputs, samples.labels, "emulator", {"backend": "emulator"})
    assert [layer["name"] for layer in report["layers"]] == ["0:conv", "1:avgpool", "2:dense", "readout"]
    assert report["layers"][1]["synapses"] == 4 * 16 * 16 * 1 * 2 * 2  # depthwise: one input per tap
    json.dumps(report)

    model = onnx_export.build_onnx(back)
    spikes, _, acc = onnx_export.run_onnx(model, samples.inputs.astype(np.float32), back.two_weights)
    emu = backends.run("emulator", back, samples.inputs)
    assert np.array_equal(acc, emu.readout)
    assert onnx_path.read_bytes() == model.SerializeToString()
