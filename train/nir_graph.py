"""Reading a NIR graph into the layers spikeship can run: a chain of synapse + CUBA neuron, then a readout.

    graph = read_graph("model.nir")                       # nir.read, one-line errors
    meta = graph_metadata(graph)                           # dt, TWO weights, data set, class names (if written)
    walked = walk_graph(graph, dt=1e-4, data_shape=(2, 34, 34))

The walk follows the edges from the graph's one ``Input`` to its one ``Output``; every node on the way goes
through its entry in :data:`MAPPERS` (``{NIR node type: mapper}``, as norse's export table), a pure function
``mapper(name, node, walk) -> walk``. What Loihi's CUBA pipeline cannot express is refused with one line naming
the node and the reason: unsupported node types (the line names the supported ones), per-neuron values that
differ, a non-zero leak potential, reset potential or bias, shapes that do not chain, branches and cycles.

The continuous-time neurons are discretized with forward Euler at step ``dt`` (NIR's own Lava mapping):

    CubaLIF   tau_syn dI/dt = -I + w_in S,   tau_mem dv/dt = (v_leak - v) + r I,   spike when v > v_threshold
      ->      I[t] = (1 - dt/tau_syn) I[t-1] + (dt/tau_syn) w_in S[t]
              v[t] = (1 - dt/tau_mem) v[t-1] + (dt/tau_mem) r I[t];   v = 0 where it spiked (v_leak = v_reset = 0)

Scaling the current by ``(dt/tau_mem) r`` makes this Loihi's CUBA step exactly (current decay ``dt/tau_syn``,
voltage decay ``dt/tau_mem``, the current added to the voltage as it is) with the synapse's weights multiplied
by the gain ``w_in (dt/tau_syn) r (dt/tau_mem)``. ``LIF`` (``tau dv/dt = (v_leak - v) + r I``) is the same
with an instant synapse: current decay 1, gain ``r dt/tau``. A recurrent layer is a dense synapse followed by a
subgraph ``Input -> neuron <-> Affine/Linear -> Output``, or that cycle written flat in the graph (what snnTorch
1.0 writes for ``RSynaptic``/``RLeaky``; :func:`fold_recurrence`):
the recurrent weights ``R`` add ``R s[t-1]`` to the synapse's input, the spikes of the step before (a cycle in
discrete time takes one step), through the same gain. The result is still floating point (:class:`Walked`);
``train.nir_import`` puts it on Loihi's integer grid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import SpikeshipError
from ..hardware import value as hw
from .model import KINDS, LayerSpec

#: what the walk maps to a spiking layer's synapse (for the refusal lines)
SYNAPSE_NODES = ("Affine", "Linear", "Conv2d", "SumPool2d", "AvgPool2d")


@dataclass(frozen=True, eq=False)
class Synapse:
    """A synapse node waiting for its neuron: the layer it makes (``spec``: kind and geometry), its float
    weights in spikeship's layout (dense ``(out, in)``, conv ``(out, in, kH, kW)``, pool ``(1, 1, k, k)``: one kernel
    for every channel), the shapes it takes and gives, and the NIR nodes it came from."""

    spec: LayerSpec
    weight: np.ndarray
    input_shape: tuple[int, ...]
    shape: tuple[int, ...]
    nodes: tuple[str, ...]
    recurrent: np.ndarray | None = None  # a recurrent layer's (to, from) weights on its own spikes of the step before


@dataclass(frozen=True)
class FloatNeuron:
    """A CUBA neuron after discretization, in floats: ``current_decay = dt/tau_syn`` (1 for LIF), ``voltage_decay =
    dt/tau_mem``, the firing threshold, and the ``gain`` its input weights are multiplied by. ``params``: the NIR
    values it came from (time constants in seconds), for the model card."""

    node: str
    type: str
    current_decay: float
    voltage_decay: float
    threshold: float
    gain: float
    params: dict


@dataclass(frozen=True, eq=False)
class FloatLayer:
    """One spiking layer of the graph: a synapse and its neuron. ``weight`` has the gain folded in."""

    synapse: Synapse
    neuron: FloatNeuron

    @property
    def weight(self) -> np.ndarray:
        return self.synapse.weight * self.neuron.gain

    @property
    def recurrent(self) -> np.ndarray | None:
        """The recurrent weights, gain folded in (they feed the same neurons through the same ``w_in``)."""
        return None if self.synapse.recurrent is None else self.synapse.recurrent * self.neuron.gain

    @property
    def kind(self) -> str:
        return self.synapse.spec.kind

    @property
    def nodes(self) -> tuple[str, ...]:
        return self.synapse.nodes + (self.neuron.node,)


@dataclass(frozen=True, eq=False)
class FloatReadout:
    """The non-spiking readout: an ``Affine``/``Linear`` node's weights ``(classes, features)``, or, when the graph
    ends in a spiking layer, the identity on that layer's spikes (``node`` None: a spike-count readout)."""

    weight: np.ndarray
    node: str | None

    @property
    def spike_count(self) -> bool:
        return self.node is None


@dataclass(frozen=True, eq=False)
class Walked:
    """A graph walked from input to output: what flows (``shape``), the spiking layers so far, a synapse waiting
    for its neuron, and the readout once the ``Output`` is reached. ``data_shape``: the data set's (C, H, W)."""

    dt: float
    data_shape: tuple[int, int, int]
    shape: tuple[int, ...] = ()
    layers: tuple[FloatLayer, ...] = ()
    synapse: Synapse | None = None
    readout: FloatReadout | None = None


@dataclass(frozen=True)
class GraphMetadata:
    """What a graph's metadata may carry (spikeship's exports write all four; snnTorch writes none)."""

    dt: float | None = None
    two_weights: tuple[float, ...] | None = None
    dataset: str | None = None
    class_names: tuple[str, ...] | None = None


def refuse(name: str, node, reason: str) -> SpikeshipError:
    return SpikeshipError(f"node '{name}' ({type(node).__name__}): {reason}")


# ------------------------------------------------------------------------------------------------ the file

#: what nir.read raises on a damaged, truncated or foreign file (h5py: OSError; missing keys: KeyError; ...)
_READ_ERRORS = (OSError, KeyError, ValueError, TypeError, AssertionError, AttributeError, IndexError)


def read_graph(path: str | Path):
    """The ``nir.NIRGraph`` in ``path`` (read without NIR's type check: the walk infers the shapes itself, and
    snnTorch writes per-layer scalars that the type check rejects). Anything else: one line."""
    import nir

    path = Path(path)
    if not path.is_file():
        raise SpikeshipError(f"NIR file not found: {path}")
    try:
        graph = nir.read(path, type_check=False)
    except _READ_ERRORS as e:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SpikeshipError(f"not a readable NIR file: {path} ({type(e).__name__}: {detail})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise SpikeshipError(f"{path}: holds a single {type(graph).__name__} node, not a NIR graph")
    return graph


def graph_metadata(graph) -> GraphMetadata:
    """The graph's ``dt``, ``two_weights``, ``dataset`` and ``class_names`` (a JSON list), each if present."""
    meta = graph.metadata if isinstance(graph.metadata, dict) else {}

    def text(v):
        return v.decode() if isinstance(v, bytes) else str(v)

    try:
        dt = float(np.asarray(meta["dt"]).reshape(())) if "dt" in meta else None
        two = tuple(float(a) for a in np.asarray(meta["two_weights"], dtype=np.float64).reshape(-1)) \
            if "two_weights" in meta else None
        dataset = text(meta["dataset"]) if "dataset" in meta else None
        names = tuple(str(c) for c in json.loads(text(meta["class_names"]))) if "class_names" in meta else None
    except (TypeError, ValueError) as e:
        raise SpikeshipError(f"graph metadata: unreadable value ({e})") from None
    return GraphMetadata(dt, two, dataset, names)


# ------------------------------------------------------------------------------------------------ helpers

def _array(name: str, node, field: str) -> np.ndarray:
    try:
        a = np.asarray(getattr(node, field), dtype=np.float64)
    except (TypeError, ValueError):
        raise refuse(name, node, f"{field} is not numeric") from None
    if not np.all(np.isfinite(a)):
        raise refuse(name, node, f"{field} has non-finite values")
    return a


def _uniform(name: str, node, field: str, neurons: int) -> float:
    """A neuron parameter that Loihi holds once per layer: one value (scalar or repeated per neuron)."""
    a = _array(name, node, field).reshape(-1)
    if a.size not in (1, neurons):
        raise refuse(name, node, f"{field} has {a.size} values for {neurons} neurons (shapes do not chain)")
    if not np.allclose(a, a[0], rtol=1e-9, atol=0.0):
        raise refuse(name, node, f"per-neuron {field} differs ({a.min():.6g} to {a.max():.6g}); Loihi's CUBA "
                                 f"takes one value per layer")
    return float(a[0])


def _zero(name: str, node, field: str, what: str) -> None:
    value = getattr(node, field, None)
    if value is None:
        return
    a = _array(name, node, field)
    if np.any(a != 0):
        raise refuse(name, node, f"non-zero {what} ({field} up to {np.abs(a).max():.6g}); Loihi's CUBA pipeline "
                                 f"has none")


def _pair(name: str, node, field: str) -> tuple[int, int]:
    a = np.asarray(getattr(node, field)).reshape(-1)
    if a.size == 1:
        a = np.repeat(a, 2)
    if a.size != 2 or not np.all(a == np.round(a)):
        raise refuse(name, node, f"{field} {a.tolist()} is not one or two integers")
    return int(a[0]), int(a[1])


def _square(name: str, node, field: str, value: tuple[int, int]) -> int:
    if value[0] != value[1]:
        raise refuse(name, node, f"{field} {value} differs between height and width; spikeship's layers take one "
                                 f"{field} for both")
    return value[0]


def _no_waiting_synapse(name: str, node, walk: Walked) -> None:
    if walk.synapse is not None:
        raise refuse(name, node, f"follows the synapse '{walk.synapse.nodes[-1]}' with no neuron between them; "
                                 f"a Loihi layer is one synapse and one CUBA neuron")


def _output_shape(name: str, node, spec: LayerSpec, index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(KINDS[spec.kind].output_shape(spec, index, shape))
    except ValueError as e:
        raise refuse(name, node, f"{e} (shapes do not chain)") from None


def _layer(kind: str, features: int = 0, kernel: int = 1, stride: int = 1, padding: int = 0) -> LayerSpec:
    """The LayerSpec, its stride left to the kind's default (0) where it is that default."""
    default = kernel if KINDS[kind].stride_is_kernel else 1
    return LayerSpec(kind, features, kernel=kernel, stride=0 if stride == default else stride, padding=padding)


def _with_synapse(walk: Walked, spec: LayerSpec, weight: np.ndarray, shape: tuple[int, ...], names) -> Walked:
    synapse = Synapse(spec, np.asarray(weight, dtype=np.float64), walk.shape, shape, tuple(names))
    return replace(walk, synapse=synapse, shape=shape)


# ------------------------------------------------------------------------------------------------ mappers

def _input(name: str, node, walk: Walked) -> Walked:
    declared = node.input_type.get("input") if isinstance(node.input_type, dict) else None
    data = tuple(walk.data_shape)
    if declared is None or np.asarray(declared).size == 0:
        return replace(walk, shape=data)  # no shape written: the data set's
    shape = tuple(int(s) for s in np.asarray(declared).reshape(-1))
    if shape not in (data, (int(np.prod(data)),)):
        raise refuse(name, node, f"input shape {shape} does not match the data set's (C, H, W) {data} "
                                 f"(or its {int(np.prod(data))} values flattened)")
    return replace(walk, shape=shape)


def _dense(name: str, node, walk: Walked) -> Walked:
    _no_waiting_synapse(name, node, walk)
    w = _array(name, node, "weight")
    if w.ndim != 2:
        raise refuse(name, node, f"weight of shape {w.shape}; a dense synapse is (out, in)")
    if len(walk.shape) != 1:
        raise refuse(name, node, f"takes a flat input but gets {walk.shape}; put a Flatten before it")
    if w.shape[1] != walk.shape[0]:
        raise refuse(name, node, f"takes {w.shape[1]} inputs but gets {walk.shape[0]} (shapes do not chain)")
    _zero(name, node, "bias", "bias")
    return _with_synapse(walk, _layer("dense", int(w.shape[0])), w, (int(w.shape[0]),), [name])


def _conv(name: str, node, walk: Walked) -> Walked:
    _no_waiting_synapse(name, node, walk)
    w = _array(name, node, "weight")
    if w.ndim != 4 or len(walk.shape) != 3:
        raise refuse(name, node, f"weight {w.shape} on input {walk.shape}; Conv2d takes (C, H, W) with a weight "
                                 f"(out, in, kH, kW)")
    _zero(name, node, "bias", "bias")
    if _pair(name, node, "dilation") != (1, 1):
        raise refuse(name, node, f"dilation {_pair(name, node, 'dilation')} is not expressible (spikeship's conv "
                                 f"layers have dilation 1)")
    groups = int(np.asarray(node.groups).reshape(()))
    channels = walk.shape[0]
    if w.shape[1] * groups != channels:
        raise refuse(name, node, f"takes {w.shape[1] * groups} channels but gets {channels} (shapes do not chain)")
    kernel = _square(name, node, "kernel", (int(w.shape[2]), int(w.shape[3])))
    stride = _square(name, node, "stride", _pair(name, node, "stride"))
    if isinstance(node.padding, (str, bytes)):
        mode = node.padding.decode() if isinstance(node.padding, bytes) else node.padding
        if mode == "same" and (stride != 1 or kernel % 2 == 0):
            raise refuse(name, node, "padding 'same' is expressible for stride 1 and an odd kernel only")
        padding = (kernel - 1) // 2 if mode == "same" else 0
    else:
        padding = _square(name, node, "padding", _pair(name, node, "padding"))
    if groups == 1:
        spec = _layer("conv", int(w.shape[0]), kernel=kernel, stride=stride, padding=padding)
        return _with_synapse(walk, spec, w, _output_shape(name, node, spec, len(walk.layers), walk.shape), [name])
    if groups == channels == w.shape[0] and np.all(w == w[:1]):  # one kernel for every channel: pooling
        spec = _layer("pool", kernel=kernel, stride=stride, padding=padding)
        return _with_synapse(walk, spec, w[:1, :1], _output_shape(name, node, spec, len(walk.layers), walk.shape),
                             [name])
    raise refuse(name, node, f"grouped convolution (groups={groups}) is expressible only as pooling: one kernel "
                             f"shared by every channel, stride = kernel, no padding")


def _pool(average: bool) -> Callable:
    def pool(name: str, node, walk: Walked) -> Walked:
        _no_waiting_synapse(name, node, walk)
        if len(walk.shape) != 3:
            raise refuse(name, node, f"pools a (C, H, W) input but gets {walk.shape}")
        kernel = _square(name, node, "kernel_size", _pair(name, node, "kernel_size"))
        stride = _square(name, node, "stride", _pair(name, node, "stride"))
        padding = _square(name, node, "padding", _pair(name, node, "padding"))
        spec = _layer("pool", kernel=kernel, stride=stride, padding=padding)
        shape = _output_shape(name, node, spec, len(walk.layers), walk.shape)
        weight = np.full((1, 1, kernel, kernel), 1.0 / (kernel * kernel) if average else 1.0)
        return _with_synapse(walk, spec, weight, shape, [name])

    return pool


def _flatten(name: str, node, walk: Walked) -> Walked:
    _no_waiting_synapse(name, node, walk)
    if len(walk.shape) == 1:
        return walk
    start, end = int(node.start_dim), int(node.end_dim)
    if start != 0 or end not in (-1, len(walk.shape) - 1):
        raise refuse(name, node, f"flattens dimensions {start}..{end} of {walk.shape}; spikeship flattens the whole "
                                 f"(C, H, W) input of a dense layer")
    return replace(walk, shape=(int(np.prod(walk.shape)),))


def _neuron(name: str, node, walk: Walked, current_decay: float, voltage_decay: float, gain: float,
            params: dict) -> Walked:
    """Close the waiting synapse with a neuron whose decays and gain are already discretized."""
    neurons = int(np.prod(walk.synapse.shape))
    threshold = _uniform(name, node, "v_threshold", neurons)
    _zero(name, node, "v_leak", "leak potential")
    _zero(name, node, "v_reset", "reset potential (Loihi resets to 0)")
    if threshold <= 0:
        raise refuse(name, node, f"v_threshold {threshold:.6g} is not positive")
    if not (np.isfinite(gain) and gain != 0):
        raise refuse(name, node, f"its input gain is {gain:.6g}; the synapse would carry nothing")
    neuron = FloatNeuron(name, type(node).__name__, current_decay, voltage_decay, threshold, gain,
                         {**params, "v_threshold": threshold})
    return replace(walk, layers=walk.layers + (FloatLayer(walk.synapse, neuron),), synapse=None)


def _decay(name: str, node, field: str, tau: float, dt: float) -> float:
    if not tau > 0:
        raise refuse(name, node, f"{field} {tau:.6g} s is not positive")
    if tau < dt:
        raise refuse(name, node, f"{field} {tau:.6g} s is shorter than the step dt = {dt:.6g} s (a decay above 1 "
                                 f"per step); choose a smaller --dt")
    return dt / tau


def _needs_synapse(name: str, node, walk: Walked) -> int:
    if walk.synapse is None:
        raise refuse(name, node, f"has no synapse before it ({', '.join(SYNAPSE_NODES)}); a Loihi layer is one "
                                 f"synapse and one CUBA neuron")
    return int(np.prod(walk.synapse.shape))


def _cuba_lif(name: str, node, walk: Walked) -> Walked:
    n = _needs_synapse(name, node, walk)
    tau_syn, tau_mem = _uniform(name, node, "tau_syn", n), _uniform(name, node, "tau_mem", n)
    r, w_in = _uniform(name, node, "r", n), _uniform(name, node, "w_in", n)
    du, dv = _decay(name, node, "tau_syn", tau_syn, walk.dt), _decay(name, node, "tau_mem", tau_mem, walk.dt)
    return _neuron(name, node, walk, du, dv, w_in * du * r * dv,
                   {"tau_syn": tau_syn, "tau_mem": tau_mem, "r": r, "w_in": w_in})


def _lif(name: str, node, walk: Walked) -> Walked:
    n = _needs_synapse(name, node, walk)
    tau, r = _uniform(name, node, "tau", n), _uniform(name, node, "r", n)
    dv = _decay(name, node, "tau", tau, walk.dt)
    return _neuron(name, node, walk, 1.0, dv, r * dv, {"tau_mem": tau, "r": r, "synapse": "instant"})


def _subgraph(name: str, node, walk: Walked) -> Walked:
    """A recurrent layer: the waiting dense synapse, and the subgraph's neuron with its recurrent weights."""
    import nir

    shape = "a subgraph is imported only as a recurrent layer: Input -> CubaLIF or LIF <-> Affine/Linear -> Output"
    inner = dict(node.nodes)

    def one(*types):
        found = [k for k, v in inner.items() if isinstance(v, types)]
        return found[0] if len(found) == 1 else None

    i, o, n, w = one(nir.Input), one(nir.Output), one(nir.CubaLIF, nir.LIF), one(nir.Affine, nir.Linear)
    edges = {tuple(e.decode() if isinstance(e, bytes) else str(e) for e in edge) for edge in node.edges}
    if None in (i, o, n, w) or len(inner) != 4 or edges != {(i, n), (n, w), (w, n), (n, o)}:
        raise refuse(name, node, shape)
    def label(k: str) -> str:
        return k if node.metadata.get(FOLDED) else f"{name}/{k}"

    neurons = _needs_synapse(name, node, walk)
    if walk.synapse.spec.kind != "dense":
        raise refuse(name, node, f"a recurrent layer takes its input through a dense synapse (Affine/Linear), not "
                                 f"'{walk.synapse.nodes[-1]}'")
    where = label(w)
    rec = _array(where, inner[w], "weight")
    if rec.shape != (neurons, neurons):
        raise refuse(where, inner[w], f"recurrent weight {rec.shape} for {neurons} neurons (shapes do not chain)")
    _zero(where, inner[w], "bias", "bias")
    synapse = replace(walk.synapse, spec=_layer("recurrent", neurons), recurrent=rec,
                      nodes=walk.synapse.nodes + (where,))
    return MAPPERS[type(inner[n])](label(n), inner[n], replace(walk, synapse=synapse))


def _output(name: str, node, walk: Walked) -> Walked:
    if not walk.layers:
        raise refuse(name, node, "the graph has no spiking layer (a synapse followed by CubaLIF or LIF)")
    if walk.synapse is not None:
        synapse = walk.synapse
        if synapse.spec.kind != "dense":
            raise refuse(name, node, f"the graph ends in '{synapse.nodes[-1]}' without a neuron; only a dense "
                                     f"synapse (Affine/Linear) can be the non-spiking readout")
        readout = FloatReadout(synapse.weight, synapse.nodes[-1])
    else:
        features, most = int(np.prod(walk.shape)), int(hw("fan_in_axons_per_core"))
        if features > most:
            raise refuse(name, node, f"the graph ends in a spiking layer of {features} neurons: its spike-count "
                                     f"readout (one class per neuron) would exceed {most} inputs per core")
        readout = FloatReadout(np.eye(features), None)
    declared = node.output_type.get("output") if isinstance(node.output_type, dict) else None
    if declared is not None and np.asarray(declared).size and \
            int(np.prod(np.asarray(declared))) != int(readout.weight.shape[0]):
        raise refuse(name, node, f"declares shape {tuple(np.asarray(declared).tolist())} but receives "
                                 f"{readout.weight.shape[0]} values (shapes do not chain)")
    return replace(walk, readout=readout, shape=(int(readout.weight.shape[0]),))


def _mappers() -> dict[type, Callable[[str, object, Walked], Walked]]:
    import nir

    return {
        nir.Input: _input,
        nir.Affine: _dense,
        nir.Linear: _dense,
        nir.Conv2d: _conv,
        nir.SumPool2d: _pool(average=False),
        nir.AvgPool2d: _pool(average=True),
        nir.Flatten: _flatten,
        nir.CubaLIF: _cuba_lif,
        nir.LIF: _lif,
        nir.NIRGraph: _subgraph,
        nir.Output: _output,
    }


#: NIR node type -> how it maps (``mapper(name, node, walk) -> walk``); every other type is refused
MAPPERS = _mappers()


# ------------------------------------------------------------------------------------------------ the walk

def _edges(graph) -> list[tuple[str, str]]:
    out = []
    for edge in graph.edges:
        a, b = (e.decode() if isinstance(e, bytes) else str(e) for e in edge)
        if a not in graph.nodes or b not in graph.nodes:
            raise SpikeshipError(f"edge ({a!r}, {b!r}) names a node the graph does not have")
        out.append((a, b))
    return out


#: a subgraph made here from a recurrent cycle written flat (its inner nodes keep their names in messages)
FOLDED = "spikeship_folded_cycle"


def fold_recurrence(nodes: dict, edges: list[tuple[str, str]]) -> tuple[dict, list[tuple[str, str]]]:
    """A recurrent layer written flat, ``neuron <-> Affine/Linear`` with that weight node connected to nothing
    else (what snnTorch 1.0 writes for ``RSynaptic``/``RLeaky`` through nirtorch 2.6), as the subgraph ``Input ->
    neuron <-> weight -> Output`` under the neuron's name; new dicts and lists, the graph is left as it is."""
    import nir

    nodes, edges = dict(nodes), list(edges)
    for n, w in [(a, b) for a, b in edges if (b, a) in edges and isinstance(nodes.get(a), (nir.CubaLIF, nir.LIF))
                 and isinstance(nodes.get(b), (nir.Affine, nir.Linear))]:
        if [e for e in edges if w in e] != [e for e in edges if e in ((n, w), (w, n))]:
            continue  # the weight node has other connections: not a recurrent layer's own weights
        size = np.asarray([np.asarray(nodes[w].weight).shape[0]])
        nodes[n] = nir.NIRGraph(nodes={"input": nir.Input(input_type=size), n: nodes[n], w: nodes[w],
                                       "output": nir.Output(output_type=size)},
                                edges=[("input", n), (n, w), (w, n), (n, "output")], type_check=False,
                                metadata={FOLDED: True})
        del nodes[w]
        edges = [e for e in edges if e not in ((n, w), (w, n))]
    return nodes, edges


def chain(graph) -> list[tuple[str, object]]:
    """The graph's nodes from its one Input to its one Output, in order (recurrent cycles written flat folded into
    subgraphs); branches, merges, other cycles and nodes off that path are refused."""
    import nir

    nodes, edges = fold_recurrence(graph.nodes, _edges(graph))

    def only(cls):
        found = [k for k, n in nodes.items() if isinstance(n, cls)]
        if len(found) != 1:
            raise SpikeshipError(f"the graph has {len(found)} {cls.__name__} nodes; spikeship imports a chain from "
                                 f"one Input to one Output")
        return found[0]

    start, end = only(nir.Input), only(nir.Output)
    successors: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in edges:
        successors[a].append(b)
    order, name = [], start
    while True:
        if name in (n for n, _ in order):
            raise refuse(name, nodes[name], "is reached twice: a cycle outside a recurrent layer")
        order.append((name, nodes[name]))
        nxt = successors[name]
        if name == end:
            if nxt:
                raise refuse(name, nodes[name], f"the Output has successors {nxt}")
            break
        if len(nxt) != 1:
            what = "leads nowhere" if not nxt else f"branches to {', '.join(repr(n) for n in nxt)}"
            raise refuse(name, nodes[name], f"{what}; spikeship imports a chain of layers")
        name = nxt[0]
    off = sorted(set(nodes) - {n for n, _ in order})
    if off:
        raise refuse(off[0], nodes[off[0]], "is not on the path from the Input to the Output (branches and "
                                            "side inputs are not supported)")
    return order


def walk_graph(graph, dt: float, data_shape: tuple[int, int, int]) -> Walked:
    """Every node of the chain through :data:`MAPPERS`; the result has its readout set."""
    if not (dt > 0 and np.isfinite(dt)):
        raise SpikeshipError(f"dt must be a positive number of seconds, got {dt}")
    walk = Walked(dt=float(dt), data_shape=tuple(int(s) for s in data_shape))
    for name, node in chain(graph):
        mapper = MAPPERS.get(type(node))
        if mapper is None:
            raise refuse(name, node, f"node type not supported; spikeship imports "
                                     f"{', '.join(t.__name__ for t in MAPPERS)}")
        walk = mapper(name, node, walk)
    return walk
