"""Reading .net files the exporter wrote, and hand-broken ones (one line each; more in test_netx.py)."""

import shutil

import h5py
import numpy as np
import pytest

from spikeship.errors import SpikeshipError
from spikeship.export.netx import read_net


def test_reads_what_the_exporter_wrote(conv_case):
    path, model, _, _, two = conv_case
    net = read_net(path)
    assert [layer.kind for layer in net.layers] == ["conv", "pool", "conv", "dense"]
    assert net.input_shape == (2, 10, 10) and net.feed_shape == (2, 10, 10)
    assert net.layers[3].input_shape == (72,) and net.readout.neuron is None
    assert net.layer_shapes == [(6, 10, 10), (6, 5, 5), (8, 3, 3), (24,)]
    pool = net.layers[1]
    assert pool.groups == 6 and pool.stride == (2, 2) and pool.weight.shape == (6, 1, 2, 2)
    assert np.array_equal(net.two_weights, two)
    assert net.readout.weight.shape == (5, 24) and net.readout.input_shape == (24,)
    assert np.array_equal(net.layers[0].weight, model.blocks[0].synapse.pre_hook_fx(
        model.blocks[0].synapse.weight, descale=True).detach().numpy().reshape(6, 2, 3, 3))


def _set(key, value):
    def edit(f):
        f[key][...] = value
    return edit


def _cut_weight(f):
    w = f["layer/1/weight"][()]
    del f["layer/1/weight"]
    f["layer/1"].create_dataset("weight", data=w[:, :-1])


def _set_source(index, kind):
    def edit(f):
        f["spikeship/layer_sources"][index] = kind
    return edit


BROKEN = {  # case: (fixture, edit, the one line after "<path>: ")
    "no layer group": ("dense_case", lambda f: [f.__delitem__(k) for k in list(f)] and None,
                       r"not a netx \.net file \(no layer/ group\)$"),
    "no spikeship group": ("dense_case", lambda f: f.__delitem__("spikeship"),
                           r"not a spikeship \.net file \(no spikeship/ group"),
    "TWO during pipeline fill": ("dense_case", lambda f: f["spikeship/readout/two_weights"].__setitem__(1, 5),
                                 r"readout: the TWO weights of the first 3 steps \(pipeline fill\) must be zero, "
                                 r"got \[0, 5, 0\]$"),
    "weight shape": ("dense_case", _cut_weight, r"layer 1 \(dense\): weight \(32, 47\) and output \(32,\) do not "
                                                r"match the geometry \(expected \(32, 48\)"),
    # netx's optimize_weight_bits divides by the largest weight: such a file would crash inside netx
    "all-zero dense weights": ("dense_case", _set("layer/2/weight", 0), r"layer 2 \(dense\): all weights are zero"),
    "unknown kind": ("dense_case", _set_source(1, "sparse"),
                     r"layer/1: layer kind 'sparse' is not known to this spikeship"),
    "kind of another netx type": ("conv_case", _set_source(0, "dense"),
                                  r"layer/0: a dense layer is written as netx 'dense', not 'conv'"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_files_are_one_line(case, request, tmp_path):
    fixture, edit, pattern = BROKEN[case]
    path = tmp_path / "x.net"
    shutil.copy(request.getfixturevalue(fixture)[0], path)
    with h5py.File(path, "a") as f:
        edit(f)
    with pytest.raises(SpikeshipError, match=f"^{path}: {pattern}") as e:
        read_net(path)
    assert "\n" not in str(e.value)
