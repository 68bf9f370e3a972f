"""ONNX of the deployed network, one time step per call, in the chip's integer arithmetic.

``build_onnx(net)`` returns a ``ModelProto``; ``export_onnx(net, path)`` checks it with ``onnx.checker``
and writes it atomically; ``run_onnx(model, x, two_weights)`` steps it over T with onnxruntime (or onnx's
reference evaluator) and returns spikes per layer, readout integers and TWO accumulators.

One call = one time step t. Inputs: ``x`` (N, C, H, W) float32 binary spikes; per spiking layer k the
state ``u_k``, ``v_k`` (int64, CUBA current and voltage in Loihi units) and ``s_k`` (float32, the spikes
layer k produced at t - 1: slayer's one-step ``delay_shift`` buffer, and the input of a recurrent layer's
recurrent synapse: ``a_t = W x_t + R s_k``, Lava's one-step recurrent delay); ``acc`` (N, classes) int64 and
``a_t`` (1,) int64, the TWO weight of this step. Outputs: ``spikes_k`` = what ``SpikeNet.forward`` returns
for layer k at step t, ``readout`` = ``64 * readout[..., t]`` (int64), ``acc_next = acc + a_t * readout``
and the next state (``*_next``).

The neuron update is :func:`spikeship.fixedpoint.cuba_step` itself, called on symbolic tensors
(:class:`_Sym`) that record each operation as an ONNX node: 24-bit current wrap and voltage clamp included,
so the ONNX model follows Lava where the state leaves 24 bits. Integer-exact: the state is int64; the
synapses (per kind: ``SYNAPSES``) run Conv and MatMul in float32 (onnxruntime's CPU Conv has no integer or
double kernel) on integer operands: spikes are 0/1 and |w| <= 256, so every partial sum, in any order, is an
integer of magnitude below 2**24 (checked per layer: the sum of |weights| of one neuron), exactly
representable in float32; the Cast to int64 is exact. The tests compare against PyTorch bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .. import fixedpoint
from ..errors import SpikeshipError
from ..files import write_bytes
from ..network import Layer, Network, by_kind, recurrent_synapse

OPSET = 17
IR_VERSION = 8  # onnxruntime 1.16+ reads it; onnx 1.23 would default to 14


class _Graph:
    """Tiny builder: named constants and nodes with generated output names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def const(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        if out is None:
            self._n += 1
            out = f"{op_type.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def auto_const(self, array: np.ndarray) -> str:
        self._n += 1
        return self.const(f"const_{self._n}", array)


class _Sym:
    """A symbolic int64 (or bool) tensor: Python operators append ONNX nodes, so the fixed-point core's plain
    arithmetic (:mod:`spikeship.fixedpoint`) writes the graph. Comparisons give bool tensors, which arithmetic
    casts to int64 (the core uses them as 0/1 factors); ``>>`` is defined for non-negative operands only (the
    core shifts magnitudes), as ONNX's BitShift works on unsigned integers."""

    def __init__(self, g: _Graph, name: str, is_bool: bool = False) -> None:
        self.g, self.name, self.is_bool = g, name, is_bool

    def _value(self, other) -> str:
        if isinstance(other, _Sym):
            return other.name if not other.is_bool else self.g.op("Cast", [other.name], to=TensorProto.INT64)
        return self.g.auto_const(np.array(int(other), dtype=np.int64))

    def _arith(self, op: str, other, swap: bool = False) -> "_Sym":
        a, b = self._value(self), self._value(other)
        return _Sym(self.g, self.g.op(op, [b, a] if swap else [a, b]))

    def _compare(self, op: str, other) -> "_Sym":
        return _Sym(self.g, self.g.op(op, [self._value(self), self._value(other)]), is_bool=True)

    def __add__(self, o):
        return self._arith("Add", o)

    __radd__ = __add__

    def __sub__(self, o):
        return self._arith("Sub", o)

    def __rsub__(self, o):
        return self._arith("Sub", o, swap=True)

    def __mul__(self, o):
        return self._arith("Mul", o)

    __rmul__ = __mul__

    def __abs__(self):
        return _Sym(self.g, self.g.op("Abs", [self._value(self)]))

    def __rshift__(self, bits: int):
        mag = self.g.op("Cast", [self._value(self)], to=TensorProto.UINT64)
        shift = self.g.auto_const(np.array(int(bits), dtype=np.uint64))
        shifted = self.g.op("BitShift", [mag, shift], direction="RIGHT")
        return _Sym(self.g, self.g.op("Cast", [shifted], to=TensorProto.INT64))

    def __lt__(self, o):
        return self._compare("Less", o)

    def __le__(self, o):
        return self._compare("LessOrEqual", o)

    def __gt__(self, o):
        return self._compare("Greater", o)

    def __ge__(self, o):
        return self._compare("GreaterOrEqual", o)


def _dense(g: _Graph, layer: Layer, k: int, x: str) -> str:
    w = np.asarray(layer.weight, dtype=np.float32)
    flat = g.op("Flatten", [x], axis=1)
    return g.op("MatMul", [flat, g.const(f"w_{k}", np.ascontiguousarray(w.T))])


def _conv(g: _Graph, layer: Layer, k: int, x: str) -> str:
    ph, pw = layer.padding
    return g.op("Conv", [x, g.const(f"w_{k}", np.asarray(layer.weight, dtype=np.float32))],
                kernel_shape=list(layer.kernel), strides=list(layer.stride), pads=[ph, pw, ph, pw],
                dilations=list(layer.dilation), group=int(layer.groups))


#: layer kind -> the float32 ONNX op of its (input) synapse (spikes in, exact integer sums out); a recurrent
#: synapse is a ``dense`` one from the layer's own spikes of the step before (``s_k``)
SYNAPSES = {"dense": _dense, "recurrent": _dense, "conv": _conv, "pool": _conv}


def _synapse(g: _Graph, layer: Layer, k, x: str) -> str:
    """Integer synaptic input (int64) of layer k for float32 spikes x."""
    synapse = by_kind(SYNAPSES, layer.kind, layer.name, "ONNX form")
    return g.op("Cast", [synapse(g, layer, k, x)], to=TensorProto.INT64)


def _layer_input(g: _Graph, layer: Layer, k: int, x: str) -> str:
    """Layer k's synaptic input: from ``x``, plus its recurrent synapse from its own last spikes ``s_k``."""
    a = _synapse(g, layer, k, x)
    rec = recurrent_synapse(layer)
    return a if rec is None else g.op("Add", [a, _synapse(g, rec, f"{k}_rec", f"s_{k}")])


def _neuron(g: _Graph, layer: Layer, k: int, a: str) -> None:
    n = layer.neuron
    spike, u, v = fixedpoint.cuba_step(_Sym(g, a), _Sym(g, f"u_{k}"), _Sym(g, f"v_{k}"),
                                       n.i_decay, n.v_decay, n.vth_mant)
    g.op("Identity", [u.name], out=f"u_{k}_next")
    g.op("Identity", [v.name], out=f"v_{k}_next")
    g.op("Cast", [spike.name], out=f"s_{k}_next", to=TensorProto.FLOAT)
    g.op("Identity", [f"s_{k}"], out=f"spikes_{k}")  # delay_shift: this step emits last step's spikes


def _info(name: str, elem: int, shape: tuple) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, ["N", *shape])


def _check_float32_exact(name: str, weight: np.ndarray) -> None:
    """Every partial sum of (0/1 spike) x weight stays below 2**24 in magnitude, whatever the order."""
    w = np.asarray(weight)
    if w.dtype.kind not in "iu":
        raise SpikeshipError(f"{name}: weights are not integers; quantize and validate the network first")
    bound = fixedpoint.weight_bound(w)
    if bound >= fixedpoint.FLOAT32_EXACT:
        raise SpikeshipError(f"{name}: sum of |weights| of one neuron is {bound} >= 2**24; float32 Conv/MatMul "
                             f"would not be exact")


def build_onnx(net: Network) -> onnx.ModelProto:
    """The per-step integer model of ``net`` (see the module docstring for inputs and outputs)."""
    for layer in net.layers:
        _check_float32_exact(layer.name, layer.weight)
        if layer.recurrent_weight is not None:
            _check_float32_exact(f"{layer.name} recurrent", layer.recurrent_weight)
    _check_float32_exact("readout", net.readout.weight)
    g = _Graph()
    inputs = [_info("x", TensorProto.FLOAT, tuple(net.input_shape))]
    outputs = []
    x = "x"
    for k, layer in enumerate(net.layers):
        shape = tuple(layer.shape)
        inputs += [_info(f"u_{k}", TensorProto.INT64, shape), _info(f"v_{k}", TensorProto.INT64, shape),
                   _info(f"s_{k}", TensorProto.FLOAT, shape)]
        outputs += [_info(f"spikes_{k}", TensorProto.FLOAT, shape), _info(f"u_{k}_next", TensorProto.INT64, shape),
                    _info(f"v_{k}_next", TensorProto.INT64, shape), _info(f"s_{k}_next", TensorProto.FLOAT, shape)]
        _neuron(g, layer, k, _layer_input(g, layer, k, x))
        x = f"spikes_{k}"
    classes = net.num_classes
    inputs += [_info("acc", TensorProto.INT64, (classes,)), helper.make_tensor_value_info("a_t", TensorProto.INT64, [1])]
    r = _synapse(g, net.readout, len(net.layers), x)
    g.op("Identity", [r], out="readout")
    g.op("Add", ["acc", g.op("Mul", ["readout", "a_t"])], out="acc_next")
    outputs += [_info("readout", TensorProto.INT64, (classes,)), _info("acc_next", TensorProto.INT64, (classes,))]
    graph = helper.make_graph(g.nodes, "spikeship_step", inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="spikeship")
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {"time_steps": str(net.time_steps),
                                   "two_weights": ",".join(str(int(a)) for a in net.two_weights)})
    onnx.checker.check_model(model, full_check=True)
    return model


def export_onnx(net: Network, path: str | Path) -> onnx.ModelProto:
    """Build, check and write the model (temporary name, then rename)."""
    model = build_onnx(net)
    write_bytes(path, model.SerializeToString())
    return model


def _session(model: onnx.ModelProto, engine: str):
    if engine == "onnxruntime":
        import onnxruntime as ort

        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return lambda feeds: sess.run(None, feeds)
    if engine == "reference":
        from onnx.reference import ReferenceEvaluator

        ref = ReferenceEvaluator(model)
        return lambda feeds: ref.run(None, feeds)
    raise ValueError(f"engine must be onnxruntime or reference, got {engine!r}")


def run_onnx(model: onnx.ModelProto, x: np.ndarray, two_weights, engine: str = "onnxruntime"):
    """Step the per-step model over x (N, C, H, W, T) from zero state.

    Returns (spikes, readout, acc): ``spikes[k]`` (N, *shape_k, T) float32, ``readout`` (N, classes, T)
    int64, ``acc`` (N, classes) int64 = sum_t a_int[t] * readout[..., t].
    """
    step = _session(model, engine)
    x = np.asarray(x, dtype=np.float32)
    n, steps = x.shape[0], x.shape[-1]
    two = np.asarray(two_weights, dtype=np.int64).reshape(-1)
    if two.size != steps:
        raise ValueError(f"{two.size} TWO weights for {steps} steps")
    shapes = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim[1:]] for i in model.graph.input}
    out_names = [o.name for o in model.graph.output]
    state = {}
    for name, shape in shapes.items():
        if name in ("x", "a_t"):
            continue
        dtype = np.float32 if name.startswith("s_") else np.int64
        state[name] = np.zeros((n, *shape), dtype=dtype)
    num_layers = sum(1 for name in shapes if name.startswith("u_"))
    spikes = [[] for _ in range(num_layers)]
    readout = []
    for t in range(steps):
        result = dict(zip(out_names, step({"x": x[..., t], "a_t": two[t:t + 1], **state})))
        for k in range(num_layers):
            spikes[k].append(result[f"spikes_{k}"])
        readout.append(result["readout"])
        state = {name: result[f"{name}_next"] for name in state}
    return ([np.stack(s, axis=-1) for s in spikes], np.stack(readout, axis=-1), state["acc"])
