"""`spikeship import`: every refusal is one line naming the node and the reason, exit 2, nothing written."""

from __future__ import annotations

import numpy as np
import pytest

import nir
from nir_graphs import DIGITS, DT, chain, conv, cuba, digits_graph, flatten, lif, linear, recurrent, write
from spikeship.cli import main

N_IN = int(np.prod(DIGITS))


def _dense_head(**neuron):
    """Flatten -> Linear -> CubaLIF(8) with the neuron's parameters replaced."""
    return [flatten(DIGITS), linear(8, N_IN, 0, 0.08), cuba(8, **neuron)]


def _spread(value, n=8):
    v = np.full(n, value, dtype=np.float64)
    v[-1] *= 1.5
    return v


CASES = {
    # node types
    "unsupported node": (lambda: chain(flatten(DIGITS), nir.Scale(scale=np.ones(N_IN)), linear(8, N_IN), cuba(8)),
                         r"node '1' \(Scale\): node type not supported; spikeship imports Input, Affine, Linear, "
                         r"Conv2d, SumPool2d, AvgPool2d, Flatten, CubaLIF, LIF, NIRGraph, Output"),
    "IF neuron": (lambda: chain(flatten(DIGITS), linear(8, N_IN), nir.IF(r=np.ones(8), v_threshold=np.ones(8))),
                  r"node '2' \(IF\): node type not supported"),
    # per-neuron values that differ
    "per-neuron tau_syn": (lambda: chain(*_dense_head(tau_syn=_spread(2e-4))),
                           r"node '2' \(CubaLIF\): per-neuron tau_syn differs \(0.0002 to 0.0003\); Loihi's CUBA takes "
                           r"one value per layer"),
    "per-neuron tau_mem": (lambda: chain(*_dense_head(tau_mem=_spread(1e-3))), r"per-neuron tau_mem differs"),
    "per-neuron threshold": (lambda: chain(*_dense_head(v_threshold=_spread(1.0))),
                             r"node '2' \(CubaLIF\): per-neuron v_threshold differs"),
    "per-neuron w_in": (lambda: chain(*_dense_head(w_in=_spread(2.0))), r"per-neuron w_in differs"),
    "LIF per-neuron tau": (lambda: chain(flatten(DIGITS), linear(8, N_IN), lif(8, tau=_spread(1e-3))),
                           r"node '2' \(LIF\): per-neuron tau differs"),
    # leak, reset, bias
    "leak potential": (lambda: chain(*_dense_head(v_leak=np.full(8, 0.1))),
                       r"node '2' \(CubaLIF\): non-zero leak potential \(v_leak up to 0.1\)"),
    "reset potential": (lambda: chain(*_dense_head(v_reset=np.full(8, -0.5))),
                        r"node '2' \(CubaLIF\): non-zero reset potential \(Loihi resets to 0\)"),
    "affine bias": (lambda: chain(flatten(DIGITS), nir.Affine(weight=np.ones((8, N_IN)), bias=np.full(8, 0.2)), cuba(8)),
                    r"node '1' \(Affine\): non-zero bias \(bias up to 0.2\)"),
    "conv bias": (lambda: chain(nir.Conv2d(input_shape=np.array([34, 34]), weight=np.ones((4, 2, 3, 3)), stride=1, padding=0,
                                           dilation=1, groups=1, bias=np.ones(4)), cuba((4, 32, 32))),
                  r"node '0' \(Conv2d\): non-zero bias"),
    # shapes that do not chain
    "dense inputs": (lambda: chain(flatten(DIGITS), linear(8, 100), cuba(8)),
                     r"node '1' \(Linear\): takes 100 inputs but gets 2312 \(shapes do not chain\)"),
    "dense on an image": (lambda: chain(linear(8, N_IN), cuba(8)),
                          r"node '0' \(Linear\): takes a flat input but gets \(2, 34, 34\); put a Flatten before it"),
    "conv channels": (lambda: chain(conv(4, 3, 3), cuba((4, 32, 32))),
                      r"node '0' \(Conv2d\): takes 3 channels but gets 2 \(shapes do not chain\)"),
    "neuron count": (lambda: chain(flatten(DIGITS), linear(8, N_IN), cuba(6)),
                     r"node '2' \(CubaLIF\): tau_syn has 6 values for 8 neurons \(shapes do not chain\)"),
    "pool size": (lambda: chain(nir.SumPool2d(kernel_size=np.array([4, 4]), stride=np.array([4, 4]),
                                              padding=np.array([0, 0])), cuba((2, 8, 8))),
                  r"node '0' \(SumPool2d\): .*pool 4x4.* divisible by 4 \(shapes do not chain\)"),
    "output shape": (lambda: chain(*_dense_head(), output=[5]),
                     r"node 'output' \(Output\): declares shape \(5,\) but receives 8 values"),
    "input vs data set": (lambda: chain(flatten((2, 32, 32)), linear(8, 2048), cuba(8), input_shape=(2, 32, 32)),
                          r"node 'input' \(Input\): input shape \(2, 32, 32\) does not match the data set's "
                          r"\(C, H, W\) \(2, 34, 34\)"),
    "classes vs data set": (lambda: chain(*_dense_head()),
                            r"the readout gives 8 outputs, event-digits has 10 classes"),
    # structure
    "two synapses in a row": (lambda: chain(flatten(DIGITS), linear(8, N_IN), linear(8, 8), cuba(8)),
                              r"node '2' \(Linear\): follows the synapse '1' with no neuron between them"),
    "neuron without synapse": (lambda: chain(flatten(DIGITS), cuba(N_IN)),
                               r"node '1' \(CubaLIF\): has no synapse before it"),
    "conv readout": (lambda: chain(conv(4, 2, 3), cuba((4, 32, 32)), conv(4, 4, 3)),
                     r"node 'output' \(Output\): the graph ends in '2' without a neuron; only a dense synapse"),
    "no spiking layer": (lambda: chain(flatten(DIGITS), linear(10, N_IN)),
                         r"node 'output' \(Output\): the graph has no spiking layer"),
    # what the hardware cannot hold
    "tau below dt": (lambda: chain(*_dense_head(tau_syn=np.full(8, 5e-5))),
                     r"node '2' \(CubaLIF\): tau_syn 5e-05 s is shorter than the step dt = 0.0001 s"),
    "decay below 1/4096": (lambda: chain(*_dense_head(tau_syn=np.full(8, 1.0))),
                           r"layer 0 \(node '2'\): tau_syn 1 s gives a decay of 0.0001 per step, which rounds to "
                           r"0/4096, outside Loihi's \[1, 4096\]/4096"),
    "grouped conv": (lambda: chain(conv(4, 2, 3, groups=2), cuba((4, 32, 32))),
                     r"node '0' \(Conv2d\): grouped convolution \(groups=2\) is expressible only as pooling"),
    "dilation": (lambda: chain(conv(4, 2, 3, dilation=2), cuba((4, 30, 30))),
                 r"node '0' \(Conv2d\): dilation \(2, 2\) is not expressible"),
    "stride differs": (lambda: chain(conv(4, 2, 3, stride=np.array([1, 2])), cuba((4, 32, 16))),
                       r"node '0' \(Conv2d\): stride \(1, 2\) differs between height and width"),
    "threshold not positive": (lambda: chain(*_dense_head(v_threshold=np.full(8, -1.0))),
                               r"node '2' \(CubaLIF\): v_threshold -1 is not positive"),
    "weights beyond 8 bits": (lambda: chain(*_dense_head(v_threshold=np.full(8, 1e-4))),
                              r"layer 0 \(node '2'\): weights up to .* against a threshold of 0.0001 do not fit 8-bit "
                              r"weights"),
    "all weights zero": (lambda: chain(flatten(DIGITS), nir.Linear(weight=np.zeros((10, N_IN))), cuba(10)),
                         r"layer 0 \(node '2'\): every weight is zero"),
    "non-finite": (lambda: chain(*_dense_head(tau_mem=np.full(8, np.inf))),
                   r"node '2' \(CubaLIF\): tau_mem has non-finite values"),
    # recurrent layers
    "subgraph shape": (lambda: chain(flatten(DIGITS), linear(8, N_IN), recurrent(8, edges=[
        ("input", "lif"), ("lif", "w_rec"), ("lif", "output")])),
        r"node '2' \(NIRGraph\): a subgraph is imported only as a recurrent layer: Input -> CubaLIF or LIF <-> "
        r"Affine/Linear -> Output"),
    "recurrent weight shape": (lambda: _flat_recurrent(np.ones((8, 6))),  # (a subgraph's, NIR's own read refuses)
                               r"node '3' \(Linear\): recurrent weight \(8, 6\) for 8 neurons"),
    "recurrent bias": (lambda: chain(flatten(DIGITS), linear(8, N_IN), recurrent(8, bias=np.full(8, 0.1))),
                       r"node '2/w_rec' \(Affine\): non-zero bias"),
    "recurrent after conv": (lambda: chain(conv(4, 2, 3), recurrent(8)),  # refused before any size check
                             r"node '1' \(NIRGraph\): a recurrent layer takes its input through a dense synapse"),
    "recurrent neuron": (lambda: chain(flatten(DIGITS), linear(8, N_IN), recurrent(8, neuron=cuba(8, v_leak=np.ones(8)))),
                         r"node '2/lif' \(CubaLIF\): non-zero leak potential"),
    "branch": (lambda: _branching(), r"node '1' \(Linear\): branches to '2', '3'; spikeship imports a chain"),
    "cycle": (lambda: _cycle(), r"node '1' \(Linear\): is reached twice: a cycle outside a recurrent layer"),
    "two inputs": (lambda: _two_inputs(), r"the graph has 2 Input nodes; spikeship imports a chain"),
    "metadata": (lambda: chain(*_dense_head(), metadata={"class_names": "not a JSON list"}),
                 r"graph metadata: unreadable value"),
}


def _branching():
    g = chain(flatten(DIGITS), linear(8, N_IN), cuba(8), cuba(8))
    g.edges = [e for e in g.edges if e != ("2", "3")] + [("1", "3")]
    return g


def _cycle():
    g = chain(flatten(DIGITS), linear(8, N_IN), cuba(8), linear(10, 8), cuba(10), output=[10])
    g.edges = [e for e in g.edges if e != ("4", "output")] + [("4", "1")]
    return g


def _flat_recurrent(weight):
    """Linear -> CubaLIF <-> Linear written flat, as snnTorch 1.0 writes RSynaptic."""
    g = chain(flatten(DIGITS), linear(8, N_IN), cuba(8), nir.Linear(weight=weight))
    g.edges = [e for e in g.edges if e not in (("2", "3"), ("3", "output"))] + [("2", "3"), ("3", "2"), ("2", "output")]
    return g


def _two_inputs():
    g = chain(flatten(DIGITS), linear(8, N_IN), cuba(8))
    g.nodes["input2"] = nir.Input(input_type=np.asarray(DIGITS))
    g.edges.append(("input2", "0"))
    return g


def check_refused(tmp_path, capsys, argv, pattern):
    """One line on stderr matching ``pattern``, exit 2, and no file besides the inputs."""
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("spikeship: "), err
    assert __import__("re").search(pattern, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    return err


@pytest.mark.parametrize("case", list(CASES))
def test_refused_with_the_node_and_the_reason(case, tmp_path, capsys):
    build, pattern = CASES[case]
    path = write(build(), tmp_path / "model.nir")
    err = check_refused(tmp_path, capsys, ["import", str(path), "--out", str(tmp_path / "model.pt"), "--dt", str(DT),
                                           "--dataset", "event-digits", "--samples", "0"], pattern)
    assert err.startswith(f"spikeship: {path}: ")


@pytest.mark.parametrize("content", ["garbage", "truncated", "empty", "hdf5 without a graph"])
def test_damaged_file_is_one_line_exit_2(content, tmp_path, capsys):
    path = tmp_path / "model.nir"
    if content == "garbage":
        path.write_bytes(b"not an HDF5 file at all" * 10)
    elif content == "empty":
        path.write_bytes(b"")
    elif content == "truncated":
        write(digits_graph(), path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        import h5py

        with h5py.File(path, "w") as f:
            f.create_dataset("version", data="1.0.8")
    check_refused(tmp_path, capsys, ["import", str(path), "--out", str(tmp_path / "m.pt"), "--dt", "1e-4",
                                     "--dataset", "event-digits"], rf"spikeship: not a readable NIR file: {path} \(")


def test_missing_file_dt_and_data_set(tmp_path, capsys):
    path = write(digits_graph(), tmp_path / "model.nir")
    out = str(tmp_path / "m.pt")
    check_refused(tmp_path, capsys, ["import", str(tmp_path / "none.nir"), "--out", out, "--dt", "1e-4"],
                  "NIR file not found")
    check_refused(tmp_path, capsys, ["import", str(path), "--out", out, "--dataset", "event-digits"],
                  r"the graph's metadata has no dt; give --dt SECONDS")
    check_refused(tmp_path, capsys, ["import", str(path), "--out", out, "--dt", "1e-4"],
                  r"the graph's metadata names no data set; give --dataset NAME \(event-digits, ")
    check_refused(tmp_path, capsys, ["import", str(path), "--out", out, "--dt", "-1", "--dataset", "event-digits"],
                  r"--dt must be a positive number")
    check_refused(tmp_path, capsys, ["import", str(path), "--out", out, "--dt", "1e-4", "--dataset", "event-digits",
                                     "--time-steps", "2"], r"T = 2 steps must exceed the 2 spiking layers")
