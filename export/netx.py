"""The ``.net`` file: netx's HDF5 layers plus the ``spikeship/`` group. ``write_net`` and ``read_net``.

Layout (docs/DESIGN.md, "The `.net` file"); field names, dtypes and orders are those of lava-dl slayer's
``export_hdf5`` (slayer/block/base.py), which ``lava.lib.dl.netx.hdf5.Network`` reads:

    layer/<i>/type          (1,) S10, b"dense" | b"conv" | b"flatten"
    layer/<i>/shape         int64, output (F,) or (C, H, W)          [flatten: (C*H*W, 1, 1)]
    layer/<i>/weight        float32, dense (out, in); conv (out, in/groups, kH, kW), slayer/PyTorch order
                            (netx flips the kernel and transposes it to Lava's (out, kW, kH, in) itself)
    layer/<i>/inFeatures, outFeatures                                 [dense]
    layer/<i>/inChannels, outChannels, kernelSize, stride, padding, dilation (H, W pairs), groups  [conv]
    layer/<i>/neuron/{type="CUBA", iDecay, vDecay, vThMant, refDelay, gradedSpike}
    spikeship/format_version, time_steps, input_shape (C, H, W), class_names, model_card (JSON),
    spikeship/readout/weight (int16, classes x features), spikeship/readout/two_weights (int64, T),
    spikeship/layer_sources (what each spiking layer was in the model: dense, conv or pool)

No ``input`` layer: the input spikes feed the first synapse (pass ``input_shape`` in W, H, C order to netx
when the first layer is a conv). A ``flatten`` entry precedes the first dense layer after a conv. A file is
written to a temporary name in the target folder and renamed, and only after ``validate.check_net`` passed:
a refused export leaves no file behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ..errors import SpikeshipError
from ..files import atomic_output
from .quantize import NeuronParams, QuantizedLayer, QuantizedNet
from .validate import LOIHI1, LayerResources, LoihiLimits, check_net

FORMAT_VERSION = 1
GROUP = "spikeship"


@dataclass(frozen=True)
class NetFile:
    """What ``read_net`` returns: the integer network and the file's metadata."""

    net: QuantizedNet
    class_names: tuple[str, ...]
    model_card: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION


# ---------------------------------------------------------------------------------------------- writing


def _write_type(g: h5py.Group, kind: str) -> None:
    g.create_dataset("type", (1,), "S10", [kind.encode("ascii")])


def _write_neuron(g: h5py.Group, n: NeuronParams) -> None:
    # same keys and value types as slayer's cuba.Neuron.device_params
    g.create_dataset("neuron/type", data=n.type)
    g.create_dataset("neuron/iDecay", data=np.int64(n.i_decay))
    g.create_dataset("neuron/vDecay", data=np.int64(n.v_decay))
    g.create_dataset("neuron/vThMant", data=np.int64(n.vth_mant))
    g.create_dataset("neuron/refDelay", data=np.int64(n.ref_delay))
    g.create_dataset("neuron/gradedSpike", data=bool(n.graded_spike))


def _write_dense(g: h5py.Group, layer: QuantizedLayer) -> None:
    _write_type(g, "dense")
    g.create_dataset("shape", data=np.asarray(layer.shape, dtype=np.int64))
    g.create_dataset("inFeatures", data=np.int64(layer.weight.shape[1]))
    g.create_dataset("outFeatures", data=np.int64(layer.weight.shape[0]))
    g.create_dataset("weight", data=layer.weight.astype(np.float32))
    _write_neuron(g, layer.neuron)


def _write_conv(g: h5py.Group, layer: QuantizedLayer) -> None:
    _write_type(g, "conv")
    g.create_dataset("shape", data=np.asarray(layer.shape, dtype=np.int64))
    g.create_dataset("inChannels", data=np.int64(layer.input_shape[0]))
    g.create_dataset("outChannels", data=np.int64(layer.shape[0]))
    g.create_dataset("kernelSize", data=np.asarray(layer.kernel, dtype=np.int64))
    g.create_dataset("stride", data=np.asarray(layer.stride, dtype=np.int64))
    g.create_dataset("padding", data=np.asarray(layer.padding, dtype=np.int64))
    g.create_dataset("dilation", data=np.asarray(layer.dilation, dtype=np.int64))
    g.create_dataset("groups", data=np.int64(layer.groups))
    g.create_dataset("weight", data=layer.weight.astype(np.float32))
    _write_neuron(g, layer.neuron)


def _write_flatten(g: h5py.Group, shape: tuple[int, ...]) -> None:
    _write_type(g, "flatten")
    g.create_dataset("shape", data=np.asarray([int(np.prod(shape)), 1, 1], dtype=np.int64))


#: IR kind -> netx writer. The kinds netx can build from our IR; validation refuses any other kind.
LAYER_WRITERS = {"dense": _write_dense, "conv": _write_conv}


def _write_layers(root: h5py.Group, layers: tuple[QuantizedLayer, ...]) -> None:
    i = 0
    for k, layer in enumerate(layers):
        if layer.kind == "dense" and k > 0 and layers[k - 1].kind != "dense":
            _write_flatten(root.create_group(str(i)), layers[k - 1].shape)
            i += 1
        LAYER_WRITERS[layer.kind](root.create_group(str(i)), layer)
        i += 1


def _write_spikeship(g: h5py.Group, qnet: QuantizedNet, class_names, model_card: dict) -> None:
    g.create_dataset("format_version", data=np.int64(FORMAT_VERSION))
    g.create_dataset("time_steps", data=np.int64(qnet.time_steps))
    g.create_dataset("input_shape", data=np.asarray(qnet.input_shape, dtype=np.int64))
    text = h5py.string_dtype("utf-8")
    g.create_dataset("class_names", data=np.array(list(class_names), dtype=object), dtype=text)
    g.create_dataset("layer_sources", data=np.array([l.source for l in qnet.layers], dtype=object), dtype=text)
    g.create_dataset("model_card", data=json.dumps(model_card, sort_keys=True, default=str), dtype=text)
    g.create_dataset("readout/weight", data=np.asarray(qnet.readout_weight).astype(np.int16))
    g.create_dataset("readout/two_weights", data=np.asarray(qnet.two_weights).astype(np.int64))


def write_net(qnet: QuantizedNet, path: str | Path, *, class_names=(), model_card: dict | None = None,
              limits: LoihiLimits = LOIHI1) -> tuple[LayerResources, ...]:
    """Validate ``qnet`` and write it to ``path`` (temporary name, then rename). Returns the per-layer
    resources. Raises ``SpikeshipError`` (and leaves no file) when the network breaks a limit."""
    resources = check_net(qnet, tuple(LAYER_WRITERS), limits)
    class_names = tuple(str(c) for c in class_names) or tuple(str(c) for c in range(qnet.num_classes))
    if len(class_names) != qnet.num_classes:
        raise SpikeshipError(f"{len(class_names)} class names for {qnet.num_classes} readout classes")
    try:
        json.dumps(model_card or {}, default=str)
    except (TypeError, ValueError) as e:
        raise SpikeshipError(f"model card is not JSON-serialisable: {e}") from None
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        _write_layers(f.create_group("layer"), qnet.layers)
        _write_spikeship(f.create_group(GROUP), qnet, class_names, model_card or {})
    return resources


# ---------------------------------------------------------------------------------------------- reading

#: what the reader needs, per group (anything else missing is a one-line "unreadable" error)
_SPIKESHIP_KEYS = ("format_version", "time_steps", "input_shape", "class_names", "layer_sources", "model_card",
                   "readout/weight", "readout/two_weights")
_LAYER_KEYS = {"dense": ("shape", "weight"),
               "conv": ("shape", "weight", "stride", "padding", "dilation", "groups")}
_NEURON_KEYS = ("type", "iDecay", "vDecay", "vThMant")


def _require(g, keys) -> None:
    missing = [f"{g.name.lstrip('/')}/{k}" for k in keys if k not in g]
    if missing:
        raise SpikeshipError(f"{', '.join(missing)} missing")


def _text(v) -> str:
    a = np.asarray(v).reshape(-1)
    item = a[0] if a.size else v
    return item.decode("utf-8") if isinstance(item, bytes) else str(item)


def _int(g, key: str) -> int:
    a = np.asarray(g[key][()]).reshape(-1)
    if a.size != 1 and (a.size == 0 or np.any(a != a[0])):
        raise SpikeshipError(f"{g.name.lstrip('/')}/{key}: per-neuron values are not supported "
                             "(expected one shared value)")
    return int(a[0])


def _pair(g, key: str) -> tuple[int, int]:
    a = np.asarray(g[key][()]).reshape(-1)
    return (int(a[0]), int(a[0])) if a.size == 1 else (int(a[0]), int(a[1]))


def _integers(a) -> np.ndarray:
    """int64 when every value is an integer; else float64 as is (validation names the value)."""
    a = np.asarray(a)
    if np.all(np.isfinite(a)) and np.array_equal(a, np.round(a)):
        return a.astype(np.int64)
    return a.astype(np.float64)


def _read_neuron(g, where: str) -> NeuronParams:
    if "neuron" not in g:
        raise SpikeshipError(f"{where}: no neuron (a non-spiking netx layer is not supported)")
    n = g["neuron"]
    _require(n, _NEURON_KEYS)
    return NeuronParams(i_decay=_int(n, "iDecay"), v_decay=_int(n, "vDecay"), vth_mant=_int(n, "vThMant"),
                        ref_delay=_int(n, "refDelay") if "refDelay" in n else 1,
                        graded_spike=bool(np.asarray(n["gradedSpike"][()]).reshape(-1)[0])
                        if "gradedSpike" in n else False,
                        type=_text(n["type"][()]))


def _read_layer(g, index: int, source: str, input_shape: tuple[int, ...], kind: str, where: str) -> QuantizedLayer:
    _require(g, _LAYER_KEYS[kind])
    if "weight_rec" in g:
        raise SpikeshipError(f"{where}: recurrent weights are not supported")
    extra = dict(bias=np.asarray(g["bias"][()], dtype=np.float64).reshape(-1) if "bias" in g else None,
                 has_delay="delay" in g, neuron=_read_neuron(g, where))
    shape = tuple(int(s) for s in np.asarray(g["shape"][()]).reshape(-1))
    w = _integers(g["weight"][()])
    if kind == "dense":
        return QuantizedLayer(index=index, kind="dense", source=source, input_shape=(int(np.prod(input_shape)),),
                              shape=shape, weight=w, **extra)
    if w.ndim != 4:
        raise SpikeshipError(f"{where}: conv weight must be 4-d (out, in/groups, kH, kW), got shape {w.shape}")
    return QuantizedLayer(index=index, kind="conv", source=source, input_shape=tuple(input_shape), shape=shape,
                          weight=w, kernel=(int(w.shape[2]), int(w.shape[3])), stride=_pair(g, "stride"),
                          padding=_pair(g, "padding"), dilation=_pair(g, "dilation"), groups=_int(g, "groups"),
                          **extra)


def _read(f: h5py.File) -> NetFile:
    if "layer" not in f:
        raise SpikeshipError("not a netx .net file (no layer/ group)")
    if GROUP not in f:
        raise SpikeshipError(f"not a spikeship .net file (no {GROUP}/ group with the readout and TWO "
                             "weights); export the model with spikeship")
    s = f[GROUP]
    _require(s, _SPIKESHIP_KEYS)
    version = _int(s, "format_version")
    if version > FORMAT_VERSION:
        raise SpikeshipError(f"format version {version} is newer than this spikeship ({FORMAT_VERSION})")
    input_shape = tuple(int(v) for v in np.asarray(s["input_shape"][()]).reshape(-1))
    sources = [_text(v) for v in np.asarray(s["layer_sources"][()]).reshape(-1)]
    root = f["layer"]
    keys = sorted(root.keys(), key=lambda k: int(k) if k.isdigit() else -1)
    if keys != [str(i) for i in range(len(keys))]:  # netx reads layer/0 .. layer/<n-1>
        raise SpikeshipError(f"layer/ entries are not 0..{len(keys) - 1}: {keys}")
    layers: list[QuantizedLayer] = []
    shape = input_shape
    for key in keys:
        g, where = root[key], f"layer/{key}"
        kind = _text(g["type"][()]) if "type" in g else "?"
        if kind == "flatten":
            continue
        if kind not in LAYER_WRITERS:
            raise SpikeshipError(f"{where}: layer type {kind!r} is not supported "
                                 f"(supported: {', '.join(LAYER_WRITERS)}, flatten)")
        index = len(layers)
        if index >= len(sources):
            raise SpikeshipError(f"more layers than {GROUP}/layer_sources lists")
        layer = _read_layer(g, index, sources[index], shape, kind, where)
        layers.append(layer)
        shape = layer.shape
    if len(layers) != len(sources):
        raise SpikeshipError(f"{len(layers)} layers but {len(sources)} layer sources")
    time_steps = _int(s, "time_steps")
    two = _integers(s["readout/two_weights"][()]).reshape(-1)
    if two.size != time_steps:
        raise SpikeshipError(f"{two.size} TWO weights for {time_steps} time steps")
    qnet = QuantizedNet(input_shape=input_shape, layers=tuple(layers),
                        readout_weight=_integers(s["readout/weight"][()]), two_weights=two)
    names = tuple(_text(v) for v in np.asarray(s["class_names"][()]).reshape(-1))
    card = json.loads(_text(s["model_card"][()]))
    return NetFile(net=qnet, class_names=names, model_card=card, format_version=version)


def read_net(path: str | Path) -> NetFile:
    """Read a ``.net`` file written by ``write_net``: the one parser of the format (``sim.netfile`` builds on
    it). A missing, non-HDF5, truncated or non-spikeship file raises ``SpikeshipError`` (one line). The
    result is not validated: call ``validate.check_net`` (``sim.netfile.read_net`` does)."""
    path = Path(path)
    if not path.is_file():
        raise SpikeshipError(f"{path}: no such file")
    if not h5py.is_hdf5(str(path)):
        raise SpikeshipError(f"{path}: not a netx .net file (not HDF5)")
    try:
        with h5py.File(path, "r") as f:
            return _read(f)
    except SpikeshipError as e:
        raise SpikeshipError(f"{path}: {e}") from None
    except (OSError, KeyError, ValueError, TypeError, IndexError) as e:
        msg = str(e).splitlines()[0] if str(e) else ""
        raise SpikeshipError(f"{path}: unreadable .net file ({type(e).__name__}: {msg})") from None
