"""ONNX of the deployed network, one time step per call, in the chip's integer arithmetic.

``build_onnx(qnet)`` returns a ``ModelProto``; ``export_onnx(qnet, path)`` checks it with ``onnx.checker``
and writes it atomically; ``run_onnx(model, x, two_weights)`` steps it over T with onnxruntime (or onnx's
reference evaluator) and returns spikes per layer, readout integers and TWO accumulators.

One call = one time step t. Inputs: ``x`` (N, C, H, W) float32 binary spikes; per spiking layer k the
state ``u_k``, ``v_k`` (int64, CUBA current and voltage in Loihi units) and ``s_k`` (float32, the spikes
layer k produced at t - 1: slayer's one-step ``delay_shift`` buffer); ``acc`` (N, classes) int64 and
``a_t`` (1,) int64, the TWO weight of this step. Outputs: ``spikes_k`` = what ``SpikeNet.forward`` returns
for layer k at step t, ``readout`` = ``64 * readout[..., t]`` (int64), ``acc_next = acc + a_t * readout``
and the next state (``*_next``). Per layer, with a = the integer synaptic input of this step:

    u = sign(u*(4096 - iDecay)) * (|u*(4096 - iDecay)| >> 12) + 64 * a
    v = sign(v*(4096 - vDecay)) * (|v*(4096 - vDecay)| >> 12) + u
    spike = v > 64 * vThMant;  v = 0 where spike

(slayer's ``_li_dynamics_fwd`` and Lava's LIF: right shift rounding toward zero, done here as Abs, BitShift
on uint64, Sign). Integer-exact: the state update is int64. Conv and MatMul run in float32 (onnxruntime's
CPU Conv has no integer or double kernel) on integer operands: spikes are 0/1 and |w| <= 256, so every
partial sum, in any order, is an integer of magnitude at most (fan-in) * 256 <= 4096 * 256 = 2**20 < 2**24
(validation bounds the fan-in at 4,096 axons), exactly representable in float32; the Cast to int64 is
exact. The test compares against PyTorch bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import SpikeshipError
from ..files import write_bytes
from .quantize import QuantizedLayer, QuantizedNet

OPSET = 17
IR_VERSION = 8  # onnxruntime 1.16+ reads it; onnx 1.23 would default to 14
DECAY_SHIFT = 12
ACT_SHIFT = 6


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


def _shift_toward_zero(g: _Graph, x: str, shift: str) -> str:
    """sign(x) * (|x| >> 12) in int64."""
    mag = g.op("Cast", [g.op("Abs", [x])], to=TensorProto.UINT64)
    shifted = g.op("Cast", [g.op("BitShift", [mag, shift], direction="RIGHT")], to=TensorProto.INT64)
    return g.op("Mul", [g.op("Sign", [x]), shifted])


def _synapse(g: _Graph, layer: QuantizedLayer, k: int, x: str) -> str:
    """Integer synaptic input (int64) of layer k for float32 spikes x."""
    w = np.asarray(layer.weight, dtype=np.float32)
    if layer.kind == "dense":
        flat = g.op("Flatten", [x], axis=1)
        z = g.op("MatMul", [flat, g.const(f"w_{k}", np.ascontiguousarray(w.T))])
    else:
        ph, pw = layer.padding
        z = g.op("Conv", [x, g.const(f"w_{k}", w)], kernel_shape=list(layer.kernel), strides=list(layer.stride),
                 pads=[ph, pw, ph, pw], dilations=list(layer.dilation), group=int(layer.groups))
    return g.op("Cast", [z], to=TensorProto.INT64)


def _neuron(g: _Graph, layer: QuantizedLayer, k: int, a: str) -> None:
    n = layer.neuron
    shift = g.const(f"shift_{k}", np.array(DECAY_SHIFT, dtype=np.uint64))
    keep_u = g.const(f"keep_u_{k}", np.array((1 << DECAY_SHIFT) - n.i_decay, dtype=np.int64))
    keep_v = g.const(f"keep_v_{k}", np.array((1 << DECAY_SHIFT) - n.v_decay, dtype=np.int64))
    act = g.const(f"act_scale_{k}", np.array(1 << ACT_SHIFT, dtype=np.int64))
    threshold = g.const(f"threshold_{k}", np.array(n.vth_mant << ACT_SHIFT, dtype=np.int64))
    zero = g.const(f"zero_{k}", np.array(0, dtype=np.int64))
    u = g.op("Add", [_shift_toward_zero(g, g.op("Mul", [f"u_{k}", keep_u]), shift), g.op("Mul", [a, act])],
             out=f"u_{k}_next")
    v = g.op("Add", [_shift_toward_zero(g, g.op("Mul", [f"v_{k}", keep_v]), shift), u])
    spike = g.op("Greater", [v, threshold])
    g.op("Where", [spike, zero, v], out=f"v_{k}_next")
    g.op("Cast", [spike], out=f"s_{k}_next", to=TensorProto.FLOAT)
    g.op("Identity", [f"s_{k}"], out=f"spikes_{k}")  # delay_shift: this step emits last step's spikes


def _info(name: str, elem: int, shape: tuple) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, ["N", *shape])


#: float32 represents every integer of magnitude up to 2**24 exactly
FLOAT32_EXACT = 1 << 24


def _check_float32_exact(name: str, weight: np.ndarray) -> None:
    """Every partial sum of (0/1 spike) x weight stays below 2**24 in magnitude, whatever the order."""
    w = np.asarray(weight)
    if w.dtype.kind not in "iu":
        raise SpikeshipError(f"{name}: weights are not integers; quantize and validate the network first")
    bound = int(np.abs(w.reshape(w.shape[0], -1)).sum(axis=1).max())
    if bound >= FLOAT32_EXACT:
        raise SpikeshipError(f"{name}: sum of |weights| of one neuron is {bound} >= 2**24; float32 Conv/MatMul "
                             f"would not be exact")


def build_onnx(qnet: QuantizedNet) -> onnx.ModelProto:
    """The per-step integer model of ``qnet`` (see the module docstring for inputs and outputs)."""
    for layer in qnet.layers:
        _check_float32_exact(layer.name, layer.weight)
    _check_float32_exact("readout", qnet.readout_weight)
    g = _Graph()
    inputs = [_info("x", TensorProto.FLOAT, tuple(qnet.input_shape))]
    outputs = []
    x = "x"
    for k, layer in enumerate(qnet.layers):
        if layer.kind not in ("dense", "conv"):
            raise SpikeshipError(f"{layer.name}: layer type {layer.kind!r} has no ONNX form; supported: dense, conv")
        shape = tuple(layer.shape)
        inputs += [_info(f"u_{k}", TensorProto.INT64, shape), _info(f"v_{k}", TensorProto.INT64, shape),
                   _info(f"s_{k}", TensorProto.FLOAT, shape)]
        outputs += [_info(f"spikes_{k}", TensorProto.FLOAT, shape), _info(f"u_{k}_next", TensorProto.INT64, shape),
                    _info(f"v_{k}_next", TensorProto.INT64, shape), _info(f"s_{k}_next", TensorProto.FLOAT, shape)]
        _neuron(g, layer, k, _synapse(g, layer, k, x))
        x = f"spikes_{k}"
    classes = qnet.num_classes
    inputs += [_info("acc", TensorProto.INT64, (classes,)), helper.make_tensor_value_info("a_t", TensorProto.INT64, [1])]
    w_ro = np.ascontiguousarray(np.asarray(qnet.readout_weight, dtype=np.float32).T)
    r = g.op("MatMul", [g.op("Flatten", [x], axis=1), g.const("w_readout", w_ro)])
    r = g.op("Cast", [r], out="readout", to=TensorProto.INT64)
    g.op("Add", ["acc", g.op("Mul", [r, "a_t"])], out="acc_next")
    outputs += [_info("readout", TensorProto.INT64, (classes,)), _info("acc_next", TensorProto.INT64, (classes,))]
    graph = helper.make_graph(g.nodes, "spikeship_step", inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="spikeship")
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {"time_steps": str(qnet.time_steps),
                                   "two_weights": ",".join(str(int(a)) for a in qnet.two_weights)})
    onnx.checker.check_model(model, full_check=True)
    return model


def export_onnx(qnet: QuantizedNet, path: str | Path) -> onnx.ModelProto:
    """Build, check and write the model (temporary name, then rename)."""
    model = build_onnx(qnet)
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
