import shutil

import h5py
import numpy as np
import pytest

from spikeship.errors import SpikeshipError
from spikeship.sim.netfile import ConvLayer, DenseLayer, read_net


def copy(src, tmp_path, name="x.net"):
    dst = tmp_path / name
    shutil.copy(src, dst)
    return dst


def test_reads_what_the_exporter_wrote(conv_case):
    path, model, _, _, two = conv_case
    net = read_net(path)
    assert [type(layer) for layer in net.layers] == [ConvLayer, ConvLayer, ConvLayer, DenseLayer]
    assert net.input_shape == (2, 10, 10) and net.feed_shape == (2, 10, 10)
    assert net.layer_shapes == [(6, 10, 10), (6, 5, 5), (8, 3, 3), (24,)]
    pool = net.layers[1]
    assert pool.groups == 6 and pool.stride == (2, 2) and pool.weight.shape == (6, 1, 2, 2)
    assert np.array_equal(net.two_weights, two)
    assert net.readout_weight.shape == (5, 24)
    assert np.array_equal(net.layers[0].weight, model.blocks[0].synapse.pre_hook_fx(
        model.blocks[0].synapse.weight, descale=True).detach().numpy().reshape(6, 2, 3, 3))


def test_not_hdf5(tmp_path):
    p = tmp_path / "model.net"
    p.write_text("not a network\n")
    with pytest.raises(SpikeshipError, match="not HDF5"):
        read_net(p)


def test_missing_file(tmp_path):
    with pytest.raises(SpikeshipError, match="no such file"):
        read_net(tmp_path / "nope.net")


def test_truncated_file(dense_case, tmp_path):
    data = dense_case[0].read_bytes()
    p = tmp_path / "cut.net"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(SpikeshipError) as e:
        read_net(p)
    assert "\n" not in str(e.value)


def test_hdf5_without_netx_layers(tmp_path):
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("x", data=[1, 2])
    with pytest.raises(SpikeshipError, match="no layer/ group"):
        read_net(p)


def test_plain_netx_without_spikeship_group(dense_case, tmp_path):
    p = copy(dense_case[0], tmp_path)
    with h5py.File(p, "a") as f:
        del f["spikeship"]
    with pytest.raises(SpikeshipError, match="no spikeship/ group"):
        read_net(p)


def test_unsupported_layer_type_is_named(dense_case, tmp_path):
    p = copy(dense_case[0], tmp_path)
    with h5py.File(p, "a") as f:
        del f["layer/1/type"]
        f["layer/1"].create_dataset("type", (1,), "S10", [b"pool"])
    with pytest.raises(SpikeshipError, match=r"layer/1: layer type 'pool' is not supported \(supported: dense"):
        read_net(p)


def test_two_weights_must_be_zero_during_pipeline_fill(dense_case, tmp_path):
    p = copy(dense_case[0], tmp_path)
    with h5py.File(p, "a") as f:
        f["spikeship/readout/two_weights"][1] = 5
    with pytest.raises(SpikeshipError, match=r"x\.net: readout: the TWO weights of the first 3 steps "
                                             r"\(pipeline fill\) must be zero, got \[0, 5, 0\]$"):
        read_net(p)


def test_weight_shape_mismatch(dense_case, tmp_path):
    p = copy(dense_case[0], tmp_path)
    with h5py.File(p, "a") as f:
        w = f["layer/1/weight"][()]
        del f["layer/1/weight"]
        f["layer/1"].create_dataset("weight", data=w[:, :-1])
    with pytest.raises(SpikeshipError, match=r"x\.net: layer 1 \(dense\): weight \(32, 47\) and output \(32,\) "
                                             r"do not match the geometry \(expected \(32, 48\)"):
        read_net(p)


def test_all_zero_dense_weights_are_refused(dense_case, tmp_path):
    # netx's optimize_weight_bits divides by the largest weight: such a file would crash inside netx
    p = copy(dense_case[0], tmp_path)
    with h5py.File(p, "a") as f:
        f["layer/2/weight"][...] = 0
    with pytest.raises(SpikeshipError, match=r"x\.net: layer 2 \(dense\): all weights are zero"):
        read_net(p)
