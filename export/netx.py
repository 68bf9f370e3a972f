"""The ``.net`` file: netx's HDF5 layers plus the ``spikeship/`` group. ``write_net`` and ``read_net``.

Layout (docs/DESIGN.md, "The `.net` file"); field names, dtypes and orders are those of lava-dl slayer's
``export_hdf5`` (slayer/block/base.py), which ``lava.lib.dl.netx.hdf5.Network`` reads:

    layer/<i>/type          (1,) S10, b"dense" | b"dense_rec" | b"conv" | b"flatten"
    layer/<i>/shape         int64, output (F,) or (C, H, W)          [flatten: (C*H*W, 1, 1)]
    layer/<i>/weight        float32, dense (out, in); conv (out, in/groups, kH, kW), slayer/PyTorch order
                            (netx flips the kernel and transposes it to Lava's (out, kW, kH, in) itself)
    layer/<i>/weight_rec    float32, (out, out): to, from the layer's own neurons  [dense_rec]
    layer/<i>/inFeatures, outFeatures                                 [dense, dense_rec]
    layer/<i>/inChannels, outChannels, kernelSize, stride, padding, dilation (H, W pairs), groups  [conv]
    layer/<i>/neuron/{type="CUBA", iDecay, vDecay, vThMant, refDelay, gradedSpike}
    spikeship/format_version, time_steps, input_shape (C, H, W), class_names, model_card (JSON),
    spikeship/readout/weight (int16, classes x features), spikeship/readout/two_weights (int64, T),
    spikeship/layer_sources (each spiking layer's kind: dense, recurrent, conv or pool)

No ``input`` layer: the input spikes feed the first synapse (pass ``input_shape`` in W, H, C order to netx
when the first layer is a conv). A ``flatten`` entry precedes the first dense (or dense_rec) layer after a
conv. A recurrent layer is netx's ``dense_rec``, which netx builds as ``RecurrentDense``. Each layer
kind has one entry in ``WRITERS`` (netx type and writer); each netx type one in ``READERS``. A file is
written to a temporary name in the target folder and renamed, and only after :func:`check` passed: a refused
export leaves no file behind. Reading returns the same :class:`~spikeship.network.Network` record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from ..errors import SpikeshipError
from ..files import atomic_output
from ..network import Layer, Network, Neuron, by_kind
from .validate import LOIHI1, LayerResources, LoihiLimits, check_lava_dense, check_net

FORMAT_VERSION = 1
GROUP = "spikeship"


# ---------------------------------------------------------------------------------------------- writing


def _write_type(g: h5py.Group, kind: str) -> None:
    g.create_dataset("type", (1,), "S10", [kind.encode("ascii")])


def _write_neuron(g: h5py.Group, n: Neuron) -> None:
    # same keys and value types as slayer's cuba.Neuron.device_params
    g.create_dataset("neuron/type", data=n.type)
    g.create_dataset("neuron/iDecay", data=np.int64(n.i_decay))
    g.create_dataset("neuron/vDecay", data=np.int64(n.v_decay))
    g.create_dataset("neuron/vThMant", data=np.int64(n.vth_mant))
    g.create_dataset("neuron/refDelay", data=np.int64(n.ref_delay))
    g.create_dataset("neuron/gradedSpike", data=bool(n.graded_spike))


def _write_dense(g: h5py.Group, layer: Layer, netx_type: str = "dense") -> None:
    _write_type(g, netx_type)
    g.create_dataset("shape", data=np.asarray(layer.shape, dtype=np.int64))
    g.create_dataset("inFeatures", data=np.int64(layer.weight.shape[1]))
    g.create_dataset("outFeatures", data=np.int64(layer.weight.shape[0]))
    g.create_dataset("weight", data=layer.weight.astype(np.float32))
    _write_neuron(g, layer.neuron)


def _write_dense_rec(g: h5py.Group, layer: Layer) -> None:
    """As slayer's ``AbstractRecurrent.export_hdf5``: a dense layer plus ``weight_rec``."""
    _write_dense(g, layer, "dense_rec")
    g.create_dataset("weight_rec", data=layer.recurrent_weight.astype(np.float32))


def _write_conv(g: h5py.Group, layer: Layer) -> None:
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


@dataclass(frozen=True)
class NetxKind:
    """How a layer kind is written: the netx layer type it becomes, its writer, and whether netx builds it
    with Lava's ``Dense`` (whose weight handling ``validate.check_lava_dense`` checks)."""

    netx_type: str
    write: Callable[[h5py.Group, Layer], None]
    lava_dense: bool = False


#: layer kind -> netx layer (pooling is a depthwise conv: netx cannot build ``pool``)
WRITERS: dict[str, NetxKind] = {
    "dense": NetxKind("dense", _write_dense, lava_dense=True),
    "recurrent": NetxKind("dense_rec", _write_dense_rec, lava_dense=True),
    "conv": NetxKind("conv", _write_conv),
    "pool": NetxKind("conv", _write_conv),
}


def _netx_kind(layer: Layer) -> NetxKind:
    return by_kind(WRITERS, layer.kind, layer.name, "netx form")


def check(net: Network, limits: LoihiLimits = LOIHI1) -> tuple[LayerResources, ...]:
    """Everything a ``.net`` file must satisfy: Loihi's limits (``validate.check_net``), a netx writer for
    every kind, and weights Lava's ``Dense`` holds exactly where netx builds one."""
    for layer in net.layers:
        _netx_kind(layer)
    resources = check_net(net, limits)
    for layer in net.layers:
        if _netx_kind(layer).lava_dense:
            parts = [("weight", layer.weight)] if layer.recurrent_weight is None else \
                [("input weight", layer.weight), ("recurrent weight", layer.recurrent_weight)]
            check_lava_dense(layer.name, *parts)
    return resources


def _write_layers(root: h5py.Group, net: Network) -> None:
    i = 0
    previous = tuple(net.input_shape)
    for layer in net.layers:
        if len(layer.input_shape) == 1 and len(previous) == 3 and i > 0:  # netx flattens explicitly
            _write_flatten(root.create_group(str(i)), previous)
            i += 1
        _netx_kind(layer).write(root.create_group(str(i)), layer)
        previous = tuple(layer.shape)
        i += 1


def _write_spikeship(g: h5py.Group, net: Network, model_card: str) -> None:
    g.create_dataset("format_version", data=np.int64(FORMAT_VERSION))
    g.create_dataset("time_steps", data=np.int64(net.time_steps))
    g.create_dataset("input_shape", data=np.asarray(net.input_shape, dtype=np.int64))
    text = h5py.string_dtype("utf-8")
    g.create_dataset("class_names", data=np.array(list(net.class_names), dtype=object), dtype=text)
    g.create_dataset("layer_sources", data=np.array([layer.kind for layer in net.layers], dtype=object), dtype=text)
    g.create_dataset("model_card", data=model_card, dtype=text)
    g.create_dataset("readout/weight", data=np.asarray(net.readout.weight).astype(np.int16))
    g.create_dataset("readout/two_weights", data=np.asarray(net.two_weights).astype(np.int64))


def write_net(net: Network, path: str | Path, *, limits: LoihiLimits = LOIHI1) -> tuple[LayerResources, ...]:
    """Validate ``net`` (:func:`check`) and write it to ``path`` (temporary name, then rename). Returns the
    per-layer resources. Raises ``SpikeshipError`` (and leaves no file) when the network breaks a limit."""
    resources = check(net, limits)
    with atomic_output(path) as tmp:
        write_net_file(net, tmp)
    return resources


def write_net_file(net: Network, path: str | Path) -> None:
    """Write an already checked network to ``path`` as it is (callers write to a temporary name: see
    :func:`write_net` and ``export.stage``)."""
    if len(net.class_names) != net.num_classes:
        raise SpikeshipError(f"{len(net.class_names)} class names for {net.num_classes} readout classes")
    try:
        card = json.dumps(net.model_card, sort_keys=True, default=str)
    except (TypeError, ValueError) as e:
        raise SpikeshipError(f"model card is not JSON-serialisable: {e}") from None
    with h5py.File(path, "w") as f:
        _write_layers(f.create_group("layer"), net)
        _write_spikeship(f.create_group(GROUP), net, card)


# ---------------------------------------------------------------------------------------------- reading

#: what the reader needs, per group (anything else missing is a one-line "unreadable" error)
_SPIKESHIP_KEYS = ("format_version", "time_steps", "input_shape", "class_names", "layer_sources", "model_card",
                   "readout/weight", "readout/two_weights")
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


def _read_neuron(g, where: str) -> Neuron:
    if "neuron" not in g:
        raise SpikeshipError(f"{where}: no neuron (a non-spiking netx layer is not supported)")
    n = g["neuron"]
    _require(n, _NEURON_KEYS)
    return Neuron(i_decay=_int(n, "iDecay"), v_decay=_int(n, "vDecay"), vth_mant=_int(n, "vThMant"),
                  ref_delay=_int(n, "refDelay") if "refDelay" in n else 1,
                  graded_spike=bool(np.asarray(n["gradedSpike"][()]).reshape(-1)[0]) if "gradedSpike" in n else False,
                  type=_text(n["type"][()]))


def _read_dense(g, where: str, previous: tuple[int, ...]) -> dict:
    _require(g, ("shape", "weight"))
    return dict(input_shape=(int(np.prod(previous)),), weight=_integers(g["weight"][()]))


def _read_dense_rec(g, where: str, previous: tuple[int, ...]) -> dict:
    _require(g, ("weight_rec",))
    return dict(_read_dense(g, where, previous), recurrent_weight=_integers(g["weight_rec"][()]))


def _read_conv(g, where: str, previous: tuple[int, ...]) -> dict:
    _require(g, ("shape", "weight", "stride", "padding", "dilation", "groups"))
    w = _integers(g["weight"][()])
    if w.ndim != 4:
        raise SpikeshipError(f"{where}: conv weight must be 4-d (out, in/groups, kH, kW), got shape {w.shape}")
    return dict(input_shape=tuple(previous), weight=w, kernel=(int(w.shape[2]), int(w.shape[3])),
                stride=_pair(g, "stride"), padding=_pair(g, "padding"), dilation=_pair(g, "dilation"),
                groups=_int(g, "groups"))


#: netx layer type -> the fields of a Layer it holds (``flatten`` entries carry none)
READERS = {"dense": _read_dense, "dense_rec": _read_dense_rec, "conv": _read_conv}


def _read_layer(g, index: int, kind: str, previous: tuple[int, ...], netx_type: str, where: str) -> Layer:
    if kind not in WRITERS:
        raise SpikeshipError(f"{where}: layer kind {kind!r} is not known to this spikeship "
                             f"(known: {', '.join(WRITERS)})")
    if WRITERS[kind].netx_type != netx_type:
        raise SpikeshipError(f"{where}: a {kind} layer is written as netx {WRITERS[kind].netx_type!r}, "
                             f"not {netx_type!r}")
    fields = READERS[netx_type](g, where, previous)
    if "weight_rec" in g and "recurrent_weight" not in fields:
        raise SpikeshipError(f"{where}: recurrent weights are not supported in a netx {netx_type!r} layer "
                             f"(a recurrent layer is 'dense_rec')")
    shape = tuple(int(s) for s in np.asarray(g["shape"][()]).reshape(-1))
    return Layer(kind=kind, index=index, shape=shape, neuron=_read_neuron(g, where),
                 bias=np.asarray(g["bias"][()], dtype=np.float64).reshape(-1) if "bias" in g else None,
                 has_delay="delay" in g, **fields)


def _read(f: h5py.File) -> Network:
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
    layers: list[Layer] = []
    shape = input_shape
    for key in keys:
        g, where = root[key], f"layer/{key}"
        netx_type = _text(g["type"][()]) if "type" in g else "?"
        if netx_type == "flatten":
            continue
        if netx_type not in READERS:
            raise SpikeshipError(f"{where}: layer type {netx_type!r} is not supported "
                                 f"(supported: {', '.join(READERS)}, flatten)")
        index = len(layers)
        if index >= len(sources):
            raise SpikeshipError(f"more layers than {GROUP}/layer_sources lists")
        layer = _read_layer(g, index, sources[index], shape, netx_type, where)
        layers.append(layer)
        shape = layer.shape
    if len(layers) != len(sources):
        raise SpikeshipError(f"{len(layers)} layers but {len(sources)} layer sources")
    time_steps = _int(s, "time_steps")
    two = _integers(s["readout/two_weights"][()]).reshape(-1)
    if two.size != time_steps:
        raise SpikeshipError(f"{two.size} TWO weights for {time_steps} time steps")
    w = _integers(s["readout/weight"][()])
    if w.ndim != 2 or not layers:
        raise SpikeshipError(f"readout weight must be (classes, features), got shape {w.shape}")
    readout = Layer(kind="dense", index=len(layers), input_shape=(layers[-1].num_neurons,),
                    shape=(int(w.shape[0]),), weight=w, neuron=None)
    names = tuple(_text(v) for v in np.asarray(s["class_names"][()]).reshape(-1))
    card = json.loads(_text(s["model_card"][()]))
    return Network(input_shape=input_shape, layers=tuple(layers), readout=readout, two_weights=two,
                   class_names=names, model_card=card if isinstance(card, dict) else {})


def read_net(path: str | Path, *, check_limits: bool = True) -> Network:
    """Read a ``.net`` file written by :func:`write_net`: the one parser of the format. A missing, non-HDF5,
    truncated or non-spikeship file raises ``SpikeshipError`` (one line naming the file), and so does a
    network the exporter would refuse (:func:`check`), unless ``check_limits`` is False (``export --inspect``
    describes such a file)."""
    path = Path(path)
    if not path.is_file():
        raise SpikeshipError(f"{path}: no such file")
    if not h5py.is_hdf5(str(path)):
        raise SpikeshipError(f"{path}: not a netx .net file (not HDF5)")
    try:
        with h5py.File(path, "r") as f:
            net = _read(f)
        if check_limits:
            check(net)
        return net
    except SpikeshipError as e:
        raise SpikeshipError(f"{path}: {e}") from None
    except (OSError, KeyError, ValueError, TypeError, IndexError) as e:
        msg = str(e).splitlines()[0] if str(e) else ""
        raise SpikeshipError(f"{path}: unreadable .net file ({type(e).__name__}: {msg})") from None
