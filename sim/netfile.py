"""Read a spikeship ``.net`` file (netx HDF5 + the ``spikeship/`` group) into plain frozen records.

The emulator and the Lava runner both start here, so a file that one of them accepts the other accepts too.
Everything is read the way ``lava.lib.dl.netx.hdf5.Network`` reads it (``layer/<i>`` groups in order,
``type`` as ASCII bytes, weights cast to int); anything netx would build differently from what the emulator
models (bias, synaptic delays, graded spikes, non-CUBA neurons, other layer types) is refused by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SpikeshipError

SUPPORTED_LAYERS = ("dense", "conv", "flatten")


@dataclass(frozen=True)
class CubaParams:
    """Loihi CUBA neuron in device units: decays in 1/4096 per step, threshold mantissa (``<< 6`` on chip)."""

    i_decay: int
    v_decay: int
    vth_mant: int


@dataclass(frozen=True, eq=False)
class DenseLayer:
    weight: np.ndarray  # (out, in) int64
    neuron: CubaParams

    @property
    def shape(self) -> tuple[int, ...]:
        return (int(self.weight.shape[0]),)


@dataclass(frozen=True, eq=False)
class ConvLayer:
    weight: np.ndarray  # (out, in / groups, kH, kW) int64, slayer/torch orientation
    stride: tuple[int, int]  # (H, W)
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    neuron: CubaParams
    shape: tuple[int, int, int]  # output (C, H, W)


@dataclass(frozen=True, eq=False)
class NetSpec:
    """Everything the emulator and the Lava runner need, from the file alone."""

    path: str
    layers: tuple  # DenseLayer | ConvLayer, spiking layers in order (flatten is implicit)
    input_shape: tuple[int, ...]  # (C, H, W) or (F,)
    time_steps: int
    readout_weight: np.ndarray  # (classes, features) int64
    two_weights: np.ndarray  # (T,) int64
    class_names: tuple[str, ...]
    model_card: dict

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def num_classes(self) -> int:
        return int(self.readout_weight.shape[0])

    @property
    def feed_shape(self) -> tuple[int, ...]:
        """Shape of one input step as the first synapse takes it: (C, H, W) for conv, flattened (F,) for dense
        (C, H, W order, as slayer flattens)."""
        if isinstance(self.layers[0], DenseLayer):
            return (int(np.prod(self.input_shape)),)
        return tuple(self.input_shape)

    @property
    def layer_shapes(self) -> list[tuple[int, ...]]:
        return [layer.shape for layer in self.layers]


def _pair(value) -> tuple[int, int]:
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        return int(arr[0]), int(arr[0])
    return int(arr[0]), int(arr[1])


def _scalar(group, key: str, where: str) -> int:
    if key not in group:
        raise SpikeshipError(f"{where}: missing neuron/{key}")
    arr = np.asarray(group[key][()]).reshape(-1)
    if arr.size != 1 or np.any(arr != arr[0]):
        raise SpikeshipError(f"{where}: per-neuron {key} is not supported (expected one shared value)")
    return int(arr[0])


def _text(value) -> str:
    arr = np.asarray(value).reshape(-1)
    item = arr[0] if arr.size else value
    return item.decode("ascii") if isinstance(item, bytes) else str(item)


def _neuron(group, where: str) -> CubaParams:
    if "neuron" not in group:
        raise SpikeshipError(f"{where}: no neuron (a non-spiking netx layer is not supported)")
    n = group["neuron"]
    kind = _text(n["type"][()]) if "type" in n else "?"
    if kind not in ("CUBA", "LOIHI"):
        raise SpikeshipError(f"{where}: neuron type {kind!r} is not supported (CUBA only)")
    if "gradedSpike" in n and bool(np.asarray(n["gradedSpike"][()]).reshape(-1)[0]):
        raise SpikeshipError(f"{where}: graded spikes are not supported (Lava's LIF is binary)")
    params = CubaParams(_scalar(n, "iDecay", where), _scalar(n, "vDecay", where), _scalar(n, "vThMant", where))
    if not (1 <= params.i_decay <= 4096 and 0 <= params.v_decay <= 4096):
        raise SpikeshipError(f"{where}: decays iDecay={params.i_decay}, vDecay={params.v_decay} outside "
                             "Lava's range (iDecay 1..4096, vDecay 0..4096)")
    if not 0 <= params.vth_mant < (1 << 17):
        raise SpikeshipError(f"{where}: vThMant {params.vth_mant} outside 17 bits")
    return params


def _int_weight(group, where: str) -> np.ndarray:
    if "weight" not in group or not hasattr(group["weight"], "shape"):
        raise SpikeshipError(f"{where}: no weight")
    w = np.asarray(group["weight"][()])
    if not np.all(np.isfinite(w)) or np.any(w != np.round(w)):
        raise SpikeshipError(f"{where}: weights are not integers")
    return w.astype(np.int64)


def _read_layers(layers_group, input_shape: tuple[int, ...]) -> tuple:
    layers = []
    shape = tuple(input_shape)
    try:
        keys = sorted(layers_group.keys(), key=int)
    except ValueError:
        raise SpikeshipError("layer/ group has non-numeric entries") from None
    if keys != [str(i) for i in range(len(keys))]:
        raise SpikeshipError(f"layer/ entries are not 0..{len(keys) - 1}: {keys}")
    for key in keys:
        g = layers_group[key]
        where = f"layer/{key}"
        kind = _text(g["type"][()]) if "type" in g else "?"
        if kind not in SUPPORTED_LAYERS:
            raise SpikeshipError(f"{where}: layer type {kind!r} is not supported "
                                 f"(supported: {', '.join(SUPPORTED_LAYERS)})")
        if kind == "flatten":
            continue
        for unsupported in ("bias", "delay", "weight_rec"):
            if unsupported in g:
                raise SpikeshipError(f"{where}: {unsupported} is not supported")
        neuron = _neuron(g, where)
        weight = _int_weight(g, where)
        if kind == "dense":
            if weight.ndim != 2:
                raise SpikeshipError(f"{where}: dense weight must be 2-d, got shape {weight.shape}")
            fan_in = int(np.prod(shape))
            if weight.shape[1] != fan_in:
                raise SpikeshipError(f"{where}: dense weight takes {weight.shape[1]} inputs, previous layer "
                                     f"gives {fan_in}")
            if not weight.any():
                raise SpikeshipError(f"{where}: all dense weights are zero (netx cannot load such a layer)")
            layer = DenseLayer(weight=weight, neuron=neuron)
        else:
            if len(shape) != 3:
                raise SpikeshipError(f"{where}: conv after a dense layer is not supported")
            if weight.ndim == 5:
                weight = weight.reshape(weight.shape[:4])
            if weight.ndim != 4:
                raise SpikeshipError(f"{where}: conv weight must be 4-d, got shape {weight.shape}")
            groups = int(np.asarray(g["groups"][()]).reshape(-1)[0]) if "groups" in g else 1
            stride = _pair(g["stride"][()]) if "stride" in g else (1, 1)
            padding = _pair(g["padding"][()]) if "padding" in g else (0, 0)
            dilation = _pair(g["dilation"][()]) if "dilation" in g else (1, 1)
            c, h, w = shape
            if weight.shape[1] * groups != c or weight.shape[0] % groups:
                raise SpikeshipError(f"{where}: conv weight {weight.shape} with groups={groups} does not fit "
                                     f"{c} input channels")
            kh, kw = weight.shape[2:]
            oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
            ow = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
            out_shape = (int(weight.shape[0]), oh, ow)
            if "shape" in g and tuple(int(v) for v in np.asarray(g["shape"][()]).reshape(-1)) != out_shape:
                raise SpikeshipError(f"{where}: stored shape {tuple(g['shape'][()])} differs from the conv "
                                     f"output {out_shape}")
            layer = ConvLayer(weight=weight, stride=stride, padding=padding, dilation=dilation, groups=groups,
                              neuron=neuron, shape=out_shape)
        layers.append(layer)
        shape = layer.shape
    if not layers:
        raise SpikeshipError("the file has no spiking layer")
    return tuple(layers)


def read_net(path: str | Path) -> NetSpec:
    """Read and check a ``.net`` file; every problem is a one-line :class:`SpikeshipError`."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise SpikeshipError(f"{path}: no such file")
    if not h5py.is_hdf5(str(path)):
        raise SpikeshipError(f"{path}: not a netx .net file (not HDF5)")
    try:
        with h5py.File(path, "r") as f:
            if "layer" not in f:
                raise SpikeshipError(f"{path}: not a netx .net file (no layer/ group)")
            if "spikeship" not in f:
                raise SpikeshipError(f"{path}: no spikeship/ group (readout and TWO weights); "
                                     "export the model with spikeship")
            s = f["spikeship"]
            for key in ("readout/weight", "readout/two_weights", "time_steps", "input_shape"):
                if key not in s:
                    raise SpikeshipError(f"{path}: spikeship/{key} is missing")
            input_shape = tuple(int(v) for v in np.asarray(s["input_shape"][()]).reshape(-1))
            time_steps = int(np.asarray(s["time_steps"][()]).reshape(-1)[0])
            readout = np.asarray(s["readout/weight"][()])
            two = np.asarray(s["readout/two_weights"][()])
            names = tuple(_text(v) for v in np.asarray(s["class_names"][()]).reshape(-1)) \
                if "class_names" in s else ()
            card = {}
            if "model_card" in s:
                try:
                    card = json.loads(_text(s["model_card"][()]))
                except (ValueError, TypeError):
                    card = {}
            layers = _read_layers(f["layer"], input_shape)
    except SpikeshipError:
        raise
    except (OSError, KeyError, ValueError, TypeError, IndexError) as e:
        raise SpikeshipError(f"{path}: unreadable .net file ({type(e).__name__}: {str(e).splitlines()[0]})") \
            from None
    return _check(path, layers, input_shape, time_steps, readout, two, names, card)


def _check(path, layers, input_shape, time_steps, readout, two, names, card) -> NetSpec:
    if time_steps <= 0:
        raise SpikeshipError(f"{path}: time_steps {time_steps} must be positive")
    if np.any(readout != np.round(readout)) or np.any(two != np.round(two)):
        raise SpikeshipError(f"{path}: readout and TWO weights must be integers")
    readout = readout.astype(np.int64)
    two = two.astype(np.int64).reshape(-1)
    features = int(np.prod(layers[-1].shape))
    if readout.ndim != 2 or readout.shape[1] != features:
        raise SpikeshipError(f"{path}: readout weight {readout.shape} does not take the last layer's "
                             f"{features} outputs")
    if not readout.any():
        raise SpikeshipError(f"{path}: all readout weights are zero (Lava's Dense cannot load them)")
    if two.shape[0] != time_steps:
        raise SpikeshipError(f"{path}: {two.shape[0]} TWO weights for {time_steps} time steps")
    if np.any(two[: len(layers)] != 0):
        raise SpikeshipError(f"{path}: the TWO weights of the first {len(layers)} steps must be zero "
                             "(the readout sees only pipeline fill there)")
    return NetSpec(path=str(path), layers=layers, input_shape=input_shape, time_steps=time_steps,
                   readout_weight=readout, two_weights=two, class_names=names, model_card=card)
