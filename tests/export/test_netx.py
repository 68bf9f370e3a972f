"""Round trip: quantize -> write -> netx builds real Lava processes with our weights; read_net gives it back."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from lava.lib.dl.netx import hdf5

from spikeship.errors import SpikeshipError
from spikeship.export.netx import FORMAT_VERSION, check, read_net, write_net
from spikeship.export.quantize import quantize_model

from nets import two_for


def _lava_dense_weight(proc) -> np.ndarray:
    """netx stores dense weights shifted left by -weight_exp (optimize_weight_bits); undo it exactly."""
    w = np.asarray(proc.synapse.weights.get(), dtype=np.int64)
    exp = int(proc.synapse.proc_params["weight_exp"])
    assert exp <= 0 and np.all(w % (1 << -exp) == 0)
    return w >> -exp


def _check_lif(proc, layer) -> None:
    n = proc.neuron
    assert int(np.asarray(n.vth.get()).reshape(-1)[0]) == layer.neuron.vth_mant
    assert int(np.asarray(n.du.get()).reshape(-1)[0]) == layer.neuron.i_decay - 1  # netx: du = iDecay - 1
    assert int(np.asarray(n.dv.get()).reshape(-1)[0]) == layer.neuron.v_decay


def test_conv_pool_dense_round_trip_through_netx(conv_net, tmp_path):
    card = {"dataset": "event-digits", "config": {"epochs": 1}, "metrics": {"test_accuracy": 0.5}}
    q = quantize_model(conv_net, two_for(conv_net), class_names=("zero", "one", "two"), model_card=card)
    path = tmp_path / "model.net"
    write_net(q, path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.net"]  # no temporary left behind

    back = read_net(path)
    assert back == q  # the very record the exporter wrote
    assert back.class_names == ("zero", "one", "two")
    assert back.model_card == card and back.dataset == "event-digits"
    assert [layer.kind for layer in back.layers] == ["conv", "pool", "conv", "dense"]
    assert back.layers[1].groups == 3

    c, h, w = q.input_shape
    net = hdf5.Network(str(path), input_shape=(w, h, c))  # netx reads layer/ only; spikeship/ is ignored
    assert len(net.layers) == len(q.layers)
    for proc, layer in zip(net.layers, q.layers):
        if len(layer.input_shape) == 3:
            assert type(proc).__name__ == "Conv"
            assert tuple(proc.shape) == tuple(layer.shape[::-1])  # Lava's W, H, C
            expected = layer.weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)  # (out, kW, kH, in), flipped
            assert np.array_equal(np.asarray(proc.synapse.weight.get(), dtype=np.int64), expected)
            assert tuple(proc.synapse.stride.get()) == layer.stride[::-1]
            assert tuple(proc.synapse.padding.get()) == layer.padding[::-1]
            assert int(np.asarray(proc.synapse.groups.get()).reshape(-1)[0]) == layer.groups
        else:
            assert type(proc).__name__ == "Dense"
            assert tuple(proc.shape) == layer.shape
            assert np.array_equal(_lava_dense_weight(proc), layer.weight)
        _check_lif(proc, layer)
    # the pooling layer became a depthwise conv with the pool weight (64 = 1.0) on every channel
    pool = q.layers[1]
    assert pool.weight.shape == (3, 1, 2, 2) and np.all(pool.weight == 64)


def test_dense_only_round_trip(dense_net, tmp_path):
    q = quantize_model(dense_net, two_for(dense_net, 5))
    path = tmp_path / "dense.net"
    write_net(q, path)
    assert read_net(path) == q
    assert read_net(path).class_names == ("0", "1")
    net = hdf5.Network(str(path))
    assert [tuple(p.shape) for p in net.layers] == [(6,), (4,)]
    for proc, layer in zip(net.layers, q.layers):
        assert np.array_equal(_lava_dense_weight(proc), layer.weight)
        _check_lif(proc, layer)


def test_file_layout_matches_slayer_export(conv_net, tmp_path):
    """Field names and dtypes as slayer's export_hdf5 writes them; flatten before the first dense after conv."""
    q = quantize_model(conv_net, two_for(conv_net))
    path = tmp_path / "m.net"
    write_net(q, path)
    with h5py.File(path, "r") as f:
        types = [f["layer"][str(i)]["type"][0] for i in range(len(f["layer"]))]
        assert types == [b"conv", b"conv", b"conv", b"flatten", b"dense"]
        conv = f["layer/0"]
        assert set(conv.keys()) == {"type", "shape", "inChannels", "outChannels", "kernelSize", "stride",
                                    "padding", "dilation", "groups", "weight", "neuron"}
        assert conv["weight"].shape == (3, 2, 3, 3) and conv["weight"].dtype == np.float32
        assert list(conv["shape"][()]) == [3, 6, 6]
        assert set(conv["neuron"].keys()) == {"type", "iDecay", "vDecay", "vThMant", "refDelay", "gradedSpike"}
        assert conv["neuron/type"][()] == b"CUBA"
        assert list(f["layer/3/shape"][()]) == [4 * 2 * 2, 1, 1]
        dense = f["layer/4"]
        assert int(dense["inFeatures"][()]) == 16 and int(dense["outFeatures"][()]) == 5
        s = f["spikeship"]
        assert int(s["format_version"][()]) == FORMAT_VERSION
        assert int(s["time_steps"][()]) == 8
        assert list(s["input_shape"][()]) == [2, 6, 6]
        assert s["readout/weight"].dtype == np.int16 and s["readout/weight"].shape == (3, 5)
        assert s["readout/two_weights"].dtype == np.int64
        assert list(s["readout/two_weights"][:4]) == [0, 0, 0, 0]  # 4 spiking layers: pipeline fill
        assert json.loads(s["model_card"][()]) == {}


@pytest.mark.parametrize("content", [b"", b"not hdf5 at all", None])
def test_read_net_refuses_non_spikeship_files(tmp_path, conv_net, content):
    path = tmp_path / "bad.net"
    if content is None:  # a valid HDF5 file without the spikeship group
        with h5py.File(path, "w") as f:
            f.create_group("layer")
    else:
        path.write_bytes(content)
    with pytest.raises(SpikeshipError) as e:
        read_net(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_read_net_refuses_truncated_file(tmp_path, conv_net):
    good = tmp_path / "good.net"
    write_net(quantize_model(conv_net, two_for(conv_net)), good)
    data = good.read_bytes()
    bad = tmp_path / "truncated.net"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(SpikeshipError, match="truncated.net"):
        read_net(bad)


def test_read_net_missing_file(tmp_path):
    with pytest.raises(SpikeshipError, match="no such file"):
        read_net(tmp_path / "absent.net")


def test_exported_file_runs_in_lava_with_pytorchs_spikes(conv_net, tmp_path):
    """The file, run by netx in Lava's fixed-point simulator, spikes exactly as the PyTorch model (all layers)."""
    import torch
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    steps = 10
    q = quantize_model(conv_net, two_for(conv_net, steps))
    path = tmp_path / "model.net"
    write_net(q, path)
    torch.manual_seed(5)
    x = (torch.rand(1, *q.input_shape, steps) < 0.4).float()
    with torch.no_grad():
        _, spikes = conv_net(x)
    c, h, w = q.input_shape
    net = hdf5.Network(str(path), input_shape=(w, h, c))
    source = Source(data=x[0].numpy().transpose(2, 1, 0, 3).astype(np.int8))  # (C, H, W, T) -> Lava's (W, H, C, T)
    source.s_out.connect(net.inp)
    sinks = []
    for proc in net.layers:
        sinks.append(Sink(shape=proc.out.shape, buffer=steps))
        proc.out.connect(sinks[-1].a_in)
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        lava = [s.data.get() for s in sinks]
    finally:
        net.stop()
    for k, (got, ref) in enumerate(zip(lava, spikes)):
        ref = ref[0].numpy()
        if ref.ndim == 4:
            ref = ref.transpose(2, 1, 0, 3)
        assert ref.sum() > 0, f"layer {k} silent: weak test"
        assert np.array_equal(got, ref), f"layer {k}: {int((got != ref).sum())} spikes differ"


def test_netx_ignores_the_spikeship_group(conv_net, tmp_path):
    q = quantize_model(conv_net, two_for(conv_net))
    with_group, without = tmp_path / "with.net", tmp_path / "without.net"
    write_net(q, with_group)
    with h5py.File(with_group, "r") as src, h5py.File(without, "w") as dst:
        src.copy("layer", dst)
        assert "spikeship" in src
    c, h, w = q.input_shape
    a = hdf5.Network(str(with_group), input_shape=(w, h, c))
    b = hdf5.Network(str(without), input_shape=(w, h, c))
    assert str(a) == str(b) and len(a.layers) == len(b.layers) == 4
    for pa, pb in zip(a.layers, b.layers):
        wa = pa.synapse.weight.get() if hasattr(pa.synapse, "weight") else pa.synapse.weights.get()
        wb = pb.synapse.weight.get() if hasattr(pb.synapse, "weight") else pb.synapse.weights.get()
        assert np.array_equal(wa, wb)


def test_written_file_has_the_usual_permissions(dense_net, tmp_path):
    import os

    path = tmp_path / "m.net"
    write_net(quantize_model(dense_net, two_for(dense_net, 5)), path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def _replace(f, key, data):
    del f[key]
    f.create_dataset(key, data=data)


TAMPERED = {  # hand edits the one reader refuses, each with its one-line message
    "spikeship key": (lambda f: f.__delitem__("spikeship/layer_sources"), r"spikeship/layer_sources missing$"),
    "neuron key": (lambda f: f.__delitem__("layer/2/neuron/vThMant"), r"layer/2/neuron/vThMant missing$"),
    "per-neuron decay": (lambda f: _replace(f, "layer/0/neuron/iDecay", [1024, 2048]),
                         r"layer/0/neuron/iDecay: per-neuron values are not supported \(expected one shared value\)$"),
    "layer keys": (lambda f: f["layer"].create_group("extra"), r"layer/ entries are not 0\.\.5: \['extra', '0'"),
    "layer type": (lambda f: _replace(f, "layer/1/type", np.array([b"pool"], "S10")),
                   r"layer/1: layer type 'pool' is not supported \(supported: dense, dense_rec, conv, flatten\)$"),
    "recurrent": (lambda f: f["layer/4"].create_dataset("weight_rec", data=np.zeros((5, 5))),
                  r"layer/4: recurrent weights are not supported in a netx 'dense' layer \(a recurrent layer is "
                  r"'dense_rec'\)$"),
    "dense_rec type of a dense layer": (lambda f: _replace(f, "layer/4/type", np.array([b"dense_rec"], "S10")),
                                        r"layer/4: a dense layer is written as netx 'dense', not 'dense_rec'$"),
    "no neuron": (lambda f: f.__delitem__("layer/4/neuron"), r"layer/4: no neuron"),
    "5-d conv weight": (lambda f: _replace(f, "layer/0/weight", f["layer/0/weight"][()][..., None]),
                        r"layer/0: conv weight must be 4-d"),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_read_net_refuses_hand_edited_files(conv_net, tmp_path, case):
    edit, pattern = TAMPERED[case]
    path = tmp_path / "m.net"
    write_net(quantize_model(conv_net, two_for(conv_net)), path)
    with h5py.File(path, "a") as f:
        edit(f)
    with pytest.raises(SpikeshipError, match=f"^{path}: " + pattern) as e:
        read_net(path)
    assert "\n" not in str(e.value)


def test_non_integer_readout_is_kept_for_validation_to_name(conv_net, tmp_path):
    path = tmp_path / "m.net"
    write_net(quantize_model(conv_net, two_for(conv_net)), path)
    with h5py.File(path, "a") as f:
        _replace(f, "spikeship/readout/weight", f["spikeship/readout/weight"][()] + 0.5)
    with pytest.raises(SpikeshipError, match=rf"^{path}: readout: weight -?\d+\.5 is not an integer"):
        read_net(path)
    q = read_net(path, check_limits=False)
    assert q.readout.weight.dtype == np.float64
    with pytest.raises(SpikeshipError, match=r"^readout: weight -?\d+\.5 is not an integer"):
        check(q)


def test_recurrent_round_trip_through_netx(tmp_path):
    """conv -> recurrent -> recurrent: a flatten, then two dense_rec layers, as slayer's own export_hdf5 writes
    them; netx builds RecurrentDense with our input and recurrent weights (one shared exponent)."""
    import copy

    import torch

    from nets import set_integer_weights
    from spikeship.train.model import LayerSpec, ModelSpec, SpikeNet

    torch.manual_seed(0)
    spec = ModelSpec((2, 4, 4), 3, (LayerSpec("conv", 3, kernel=3, padding=1), LayerSpec("recurrent", 6),
                                    LayerSpec("recurrent", 4)))
    model = set_integer_weights(SpikeNet(spec), seed=4)
    q = quantize_model(model, two_for(model, 6))
    assert [layer.recurrent_weight is not None for layer in q.layers] == [False, True, True]
    assert q.layers[1].recurrent_weight.shape == (6, 6) and q.layers[1].weight.shape == (6, 48)
    path = tmp_path / "rec.net"
    write_net(q, path)
    assert read_net(path) == q

    with h5py.File(path, "r") as f:
        assert [f["layer"][str(i)]["type"][0] for i in range(4)] == [b"conv", b"flatten", b"dense_rec", b"dense_rec"]
        ours = f["layer/2"]
        slayer_file = tmp_path / "slayer.h5"
        with h5py.File(slayer_file, "w") as g:
            copy.deepcopy(model.blocks[1]).export_hdf5(g.create_group("layer"))
        with h5py.File(slayer_file, "r") as g:
            theirs = g["layer"]
            assert set(ours.keys()) == set(theirs.keys())
            for key in ("type", "shape", "inFeatures", "outFeatures", "weight", "weight_rec"):
                assert np.array_equal(ours[key][()], theirs[key][()]), key
                assert ours[key].dtype == theirs[key].dtype, key
            for key in theirs["neuron"]:
                assert np.array_equal(ours["neuron"][key][()], theirs["neuron"][key][()]), key

    c, h, w = q.input_shape
    net = hdf5.Network(str(path), input_shape=(w, h, c))
    assert [type(p).__name__ for p in net.layers] == ["Conv", "RecurrentDense", "RecurrentDense"]
    for proc, layer in zip(net.layers[1:], q.layers[1:]):
        exp = int(proc.synapse.proc_params["weight_exp"])
        assert exp == int(proc.synapse_rec.proc_params["weight_exp"]) <= 0
        for synapse, weight in ((proc.synapse, layer.weight), (proc.synapse_rec, layer.recurrent_weight)):
            assert np.array_equal(np.asarray(synapse.weights.get(), dtype=np.int64), weight << -exp)
        _check_lif(proc, layer)
