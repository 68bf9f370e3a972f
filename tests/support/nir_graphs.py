"""Tiny NIR graphs written with the nir package the way snnTorch writes them (``w_in = tau_syn/dt``, ``r =
tau_mem/dt``, dt = 1e-4, zero leak and reset), for the import tests. Nothing here imports snnTorch."""

from __future__ import annotations

import numpy as np

DT = 1e-4
DIGITS = (2, 34, 34)  # event-digits' input (C, H, W)


def cuba(n, alpha=0.5, beta=0.9, threshold=1.0, dt=DT, **override):
    """snnTorch's ``Synaptic(alpha, beta, threshold)`` as its exporter writes it, per-neuron arrays of ``n``
    (an int or a shape), each parameter replaceable."""
    import nir

    shape = (n,) if isinstance(n, int) else tuple(n)
    tau_syn, tau_mem = dt / (1 - alpha), dt / (1 - beta)
    params = dict(tau_syn=np.full(shape, tau_syn), tau_mem=np.full(shape, tau_mem), r=np.full(shape, tau_mem / dt),
                  v_leak=np.zeros(shape), v_threshold=np.full(shape, threshold), v_reset=np.zeros(shape),
                  w_in=np.full(shape, tau_syn / dt))
    params.update(override)
    return nir.CubaLIF(**params)


def lif(n, beta=0.9, threshold=1.0, dt=DT, **override):
    """snnTorch's ``Leaky(beta, threshold)`` as its exporter writes it."""
    import nir

    shape = (n,) if isinstance(n, int) else tuple(n)
    tau = dt / (1 - beta)
    params = dict(tau=np.full(shape, tau), r=np.full(shape, tau / dt), v_leak=np.zeros(shape),
                  v_threshold=np.full(shape, threshold), v_reset=np.zeros(shape))
    params.update(override)
    return nir.LIF(**params)


def linear(n_out, n_in, seed=0, scale=0.3):
    import nir

    return nir.Linear(weight=np.random.default_rng(seed).normal(0.0, scale, (n_out, n_in)))


def conv(c_out, c_in, k, seed=0, scale=0.5, input_hw=DIGITS[1:], **geometry):
    import nir

    g = dict(stride=1, padding=0, dilation=1, groups=1)
    g.update(geometry)
    w = np.random.default_rng(seed).normal(0.0, scale, (c_out, c_in // g["groups"], k, k))
    return nir.Conv2d(input_shape=np.asarray(input_hw), weight=w, bias=np.zeros(c_out), **g)


def flatten(shape):
    import nir

    return nir.Flatten(input_type={"input": np.asarray(shape)}, start_dim=0, end_dim=-1)


def chain(*nodes, input_shape=DIGITS, output=None, metadata=None):
    """Input -> nodes -> Output, named 'input', '0', '1', ..., 'output' (as snnTorch names them); ``output``: the
    Output's declared shape (default: none declared, an empty shape)."""
    import nir

    named = {"input": nir.Input(input_type=np.asarray(input_shape))}
    for i, node in enumerate(nodes):
        named[str(i)] = node
    named["output"] = nir.Output(output_type=np.asarray(output if output is not None else [], dtype=np.int64))
    names = list(named)
    return nir.NIRGraph(nodes=named, edges=list(zip(names, names[1:])), metadata=dict(metadata or {}),
                        type_check=False)


def digits_graph(hidden=12, classes=10, seed=0, readout="spikes", **neuron):
    """Flatten -> Linear -> CubaLIF -> Linear -> CubaLIF [-> Linear] for event-digits: the shape of an snnTorch
    classifier; ``readout="spikes"`` ends in the spiking layer (snnTorch's usual), ``"affine"`` adds a readout."""
    layers = [flatten(DIGITS), linear(hidden, int(np.prod(DIGITS)), seed, 0.08), cuba(hidden, **neuron)]
    if readout == "spikes":
        layers += [linear(classes, hidden, seed + 1, 0.6), cuba(classes, **neuron)]
    else:
        layers += [linear(hidden, hidden, seed + 1, 0.6), cuba(hidden, **neuron), linear(classes, hidden, seed + 2)]
    return chain(*layers, output=[classes])


def write(graph, path, compression="gzip"):
    import nir

    nir.write(path, graph, compression=compression)
    return path


def recurrent(n, weight=None, neuron=None, seed=0, bias=None, edges=None):
    """A recurrent layer's neurons as the subgraph Input -> CubaLIF <-> Linear (or Affine) -> Output."""
    import nir

    w = np.random.default_rng(seed).normal(0.0, 0.3, (n, n)) if weight is None else weight
    rec = nir.Linear(weight=w) if bias is None else nir.Affine(weight=w, bias=bias)
    nodes = {"input": nir.Input(input_type=np.asarray([n])), "lif": neuron or cuba(n), "w_rec": rec,
             "output": nir.Output(output_type=np.asarray([n]))}
    return nir.NIRGraph(nodes=nodes, type_check=False,
                        edges=edges or [("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
