"""Our networks as NIR graphs, for the simulators and chips that read NIR (snnTorch, Norse, Sinabs, SpiNNaker2, ...).

    graph = network_graph(net, two_weights=ckpt.two_weights, dt=1e-4, dataset="event-digits")
    write_graph(graph, "model.nir")                   # nir.write, atomically

Each spiking layer is its synapse node (``SYNAPSES``, per kind) and a neuron node; a recurrent layer adds a
``Linear`` of its recurrent weights in a cycle with its neuron (``rec<k>.lif <-> rec<k>.w_rec``, as snnTorch 1.0 writes
``RSynaptic``; ``train.nir_graph`` also reads the subgraph form); the readout is an ``Affine``
node (NIR has no TWO decoder: the float TWO weights go into the graph's metadata, with ``dt``, the data set and
the class names). Loihi's CUBA step (``spikeship.fixedpoint``) is NIR's forward-Euler step at ``dt`` with

    tau_syn = dt * 4096 / iDecay,   tau_mem = dt * 4096 / vDecay,   v_threshold = vThMant / 64,
    w_in = g tau_syn / dt,   r = tau_mem / dt,   v_leak = v_reset = 0,   weights = w_int / 64,

so that ``w_in (dt/tau_syn) r (dt/tau_mem) = g``, the synapse gain (1, or a uniform pooling kernel's weight).
An instant synapse (``iDecay = 4096``) is written as ``LIF`` (``tau = tau_mem``, ``r = g tau / dt``). These are
the conventions snnTorch writes and reads (``w_in = tau_syn/dt``, ``r = tau_mem/dt``); snnTorch's importer assumes
``dt = 1e-4``, the default here. ``train.nir_import`` maps such a graph back onto the very same integers.
Parameters are per-neuron arrays of the layer's shape. A voltage decay of 0 (no leak) has no finite ``tau_mem``
and is refused.

What other simulators compute from the graph is float arithmetic: close to Loihi's integer step, not equal to it
(Loihi truncates each decay product toward zero and keeps 24-bit states).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import SpikeshipError
from ..files import atomic_output
from ..fixedpoint import DECAY_UNITY, WEIGHT_SCALE
from ..network import Layer, Network, by_kind

#: snnTorch's ``import_from_nir`` assumes this step; NIR's Lava example uses it too
DEFAULT_DT = 1e-4


def _floats(weight) -> np.ndarray:
    return np.asarray(weight, dtype=np.float64) / WEIGHT_SCALE


def _dense(layer: Layer) -> tuple[object, float]:
    import nir

    return nir.Linear(weight=_floats(layer.weight)), 1.0


def _conv_node(layer: Layer, weight: np.ndarray):
    import nir

    # NIR's Conv2d takes weight.shape[1] for its input channels, wrong for groups > 1: leave its input shape to
    # the graph's type inference then, which sets it from the node before
    hw = np.asarray(layer.input_shape[1:], dtype=np.int64) if layer.groups == 1 else None
    return nir.Conv2d(input_shape=hw, weight=weight,
                      stride=np.asarray(layer.stride, dtype=np.int64), padding=np.asarray(layer.padding, dtype=np.int64),
                      dilation=np.asarray(layer.dilation, dtype=np.int64), groups=int(layer.groups),
                      bias=np.zeros(layer.shape[0]))


def _conv(layer: Layer) -> tuple[object, float]:
    return _conv_node(layer, _floats(layer.weight)), 1.0


def _pool(layer: Layer) -> tuple[object, float]:
    """A uniform kernel is a ``SumPool2d`` whose weight goes into the neuron's gain; any other kernel stays the
    depthwise ``Conv2d`` it is on the chip."""
    import nir

    kernel = np.asarray(layer.weight)
    if np.all(kernel == kernel.reshape(-1)[0]):
        return (nir.SumPool2d(kernel_size=np.asarray(layer.kernel, dtype=np.int64),
                              stride=np.asarray(layer.stride, dtype=np.int64),
                              padding=np.asarray(layer.padding, dtype=np.int64)),
                float(kernel.reshape(-1)[0]) / WEIGHT_SCALE)
    return _conv(layer)


#: layer kind -> its synapse node and the gain left for the neuron (``train.nir_graph.MAPPERS`` reads them back);
#: a recurrent layer's own weights go with its neuron (``neurons_node``)
SYNAPSES: dict[str, Callable[[Layer], tuple[object, float]]] = {"dense": _dense, "recurrent": _dense, "conv": _conv,
                                                                "pool": _pool}


def neuron_node(layer: Layer, dt: float, gain: float):
    """The CubaLIF (or, for an instant synapse, LIF) node of a spiking layer (module docstring)."""
    import nir

    n = layer.neuron
    if n.v_decay == 0:
        raise SpikeshipError(f"{layer.name}: voltage decay 0 (no leak) has no NIR form (tau_mem would be infinite)")

    def full(value: float) -> np.ndarray:
        return np.full(tuple(layer.shape), float(value))

    tau_mem = dt * DECAY_UNITY / n.v_decay
    common = dict(v_leak=full(0.0), v_threshold=full(n.vth_mant / WEIGHT_SCALE), v_reset=full(0.0))
    if n.i_decay == DECAY_UNITY:
        return nir.LIF(tau=full(tau_mem), r=full(gain * tau_mem / dt), **common)
    tau_syn = dt * DECAY_UNITY / n.i_decay
    return nir.CubaLIF(tau_syn=full(tau_syn), tau_mem=full(tau_mem), r=full(tau_mem / dt),
                       w_in=full(gain * tau_syn / dt), **common)


def network_graph(net: Network, *, two_weights, dt: float = DEFAULT_DT, dataset: str | None = None):
    """The ``nir.NIRGraph`` of ``net`` (see the module docstring). ``two_weights``: the float TWO weights a_t (the
    checkpoint's); they must give the network's integer ones."""
    import nir

    from .quantize import quantize_two

    if not (dt > 0 and np.isfinite(dt)):
        raise SpikeshipError(f"--nir-dt must be a positive number of seconds, got {dt}")
    two = np.asarray(two_weights, dtype=np.float64)
    if two.shape != net.two_weights.shape or not np.array_equal(quantize_two(two, net.num_layers), net.two_weights):
        raise SpikeshipError("the TWO weights given do not quantize to the network's")
    nodes: dict[str, object] = {"input": nir.Input(input_type=np.asarray(net.input_shape, dtype=np.int64))}
    shape = tuple(net.input_shape)
    for layer in net.layers:
        k = layer.index
        if len(layer.input_shape) == 1 and len(shape) > 1:
            nodes[f"flatten{k}"] = nir.Flatten(input_type={"input": np.asarray(shape, dtype=np.int64)},
                                               start_dim=0, end_dim=-1)
        synapse, gain = by_kind(SYNAPSES, layer.kind, layer.name, "NIR form")(layer)
        nodes[f"{layer.kind}{k}"] = synapse
        if layer.recurrent_weight is None:
            nodes[f"lif{k}"] = neuron_node(layer, dt, gain)
        else:  # snnTorch 1.0's form and names: the cycle written flat (edges added below)
            nodes[f"rec{k}.lif"] = neuron_node(layer, dt, gain)
            nodes[f"rec{k}.w_rec"] = nir.Linear(weight=_floats(layer.recurrent_weight) / gain)
        shape = tuple(layer.shape)
    if len(shape) > 1:
        nodes["flatten_readout"] = nir.Flatten(input_type={"input": np.asarray(shape, dtype=np.int64)},
                                               start_dim=0, end_dim=-1)
    nodes["readout"] = nir.Affine(weight=_floats(net.readout.weight), bias=np.zeros(net.num_classes))
    nodes["output"] = nir.Output(output_type=np.asarray([net.num_classes], dtype=np.int64))
    names = [name for name in nodes if not name.endswith(".w_rec")]
    edges = list(zip(names, names[1:]))
    edges += [e for name in nodes if name.endswith(".w_rec") for e in ((name[:-5] + "lif", name),
                                                                        (name, name[:-5] + "lif"))]
    metadata = {"dt": float(dt), "two_weights": two, "class_names": json.dumps(list(net.class_names))}
    if dataset:
        metadata["dataset"] = str(dataset)
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)
    except (ValueError, AssertionError) as e:  # NIR's own type check: a shape that does not chain
        raise SpikeshipError(f"NIR refuses the graph: {e}") from None


def write_graph(graph, path: str | Path) -> Path:
    """``nir.write`` to a temporary name beside ``path``, then renamed."""
    import nir

    with atomic_output(path) as tmp:
        nir.write(tmp, graph)
    return Path(path)
