"""The one place that turns a trained ``SpikeNet`` into integers: ``quantize_model(net, two_weights)``.

Pure: it reads the model and never changes it. In particular it does not call slayer's ``export_hdf5``
(that method disables weight normalisation on the live model) nor ``neuron.device_params`` (whose decay
getters clamp the decay parameters in place); it reads the very same values without side effects:

- weights: ``synapse.pre_hook_fx(weight, descale=True)``, exactly what slayer's ``export_hdf5`` writes
  (weight normalisation, if enabled, is recomputed from ``weight_g``/``weight_v`` by its own hook object);
- neuron: ``iDecay``/``vDecay`` = ``round(decay)`` (what slayer's forward uses, unclamped so that the
  validator sees an out-of-range value instead of a silently different one), ``vThMant`` =
  ``neuron.v_th_mant``, ``refDelay`` = ``neuron.ref_delay``, ``gradedSpike`` = ``neuron.graded_spike``.

Pooling becomes a depthwise conv (netx cannot build ``pool``): groups = channels, the pool's 1x1xkxk weight
tiled to (C, 1, k, k). Weights stay floating point arrays when they are not integers (a block without the
8-bit hook): ``export.validate`` then refuses them with the layer named, rather than this function rounding
silently.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from lava.lib.dl.slayer.block import cuba as cuba_block

from ..errors import SpikeshipError

#: kinds in the integer IR (what netx can build); pooling is a ``conv`` whose ``source`` is ``pool``
LAYER_KINDS = ("dense", "conv")
#: readout integers are W_SCALE * slayer weight (train.model.W_SCALE; slayer's CUBA scale 1 << 6)
W_SCALE = 64


def _array_equal(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype.kind == b.dtype.kind and a.shape == b.shape and bool(np.array_equal(a, b))


def _dataclass_equal(a, b) -> bool:
    if type(a) is not type(b):
        return False
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not _array_equal(x, y):
                return False
        elif x != y:
            return False
    return True


@dataclass(frozen=True)
class NeuronParams:
    """CUBA neuron as Loihi/netx see it: decays in 1/4096, threshold mantissa (voltage > vth_mant << 6)."""

    i_decay: int
    v_decay: int
    vth_mant: int
    ref_delay: int = 1
    graded_spike: bool = False
    type: str = "CUBA"


@dataclass(frozen=True, eq=False)
class QuantizedLayer:
    """One spiking layer in integers.

    kind: ``dense`` or ``conv`` (what netx builds); source: what the model had (``dense``, ``conv``, ``pool``).
    input_shape / shape: (C, H, W) or (F,), slayer order. weight: int64 (or float if it was not integer),
    dense (out, in), conv (out, in / groups, kH, kW) in slayer/PyTorch order. kernel, stride, padding,
    dilation: (H, W) pairs; all (1, 1)/(0, 0) for dense. bias: None unless the model had one (refused).
    """

    index: int
    kind: str
    source: str
    input_shape: tuple[int, ...]
    shape: tuple[int, ...]
    weight: np.ndarray
    neuron: NeuronParams
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: np.ndarray | None = None
    has_delay: bool = False
    delay_shift: bool = True

    def __eq__(self, other) -> bool:
        return _dataclass_equal(self, other)

    __hash__ = None

    @property
    def name(self) -> str:
        return f"layer {self.index} ({self.source})"

    @property
    def num_neurons(self) -> int:
        return int(np.prod(self.shape))

    @property
    def fan_in(self) -> int:
        """Synapses into one neuron (full receptive field for conv)."""
        return int(np.prod(self.weight.shape[1:]))


@dataclass(frozen=True, eq=False)
class QuantizedNet:
    """The whole network in integers: spiking layers, readout (classes, features), TWO weights (length T)."""

    input_shape: tuple[int, int, int]
    layers: tuple[QuantizedLayer, ...]
    readout_weight: np.ndarray
    two_weights: np.ndarray
    readout_bias: np.ndarray | None = None

    def __eq__(self, other) -> bool:
        return _dataclass_equal(self, other)

    __hash__ = None

    @property
    def time_steps(self) -> int:
        return int(len(self.two_weights))

    @property
    def num_classes(self) -> int:
        return int(self.readout_weight.shape[0])


# ----------------------------------------------------------------------------------------------------
# reading a slayer block without side effects


def _effective_weight(synapse) -> torch.Tensor:
    """The synapse weight the forward uses; with weight norm, recomputed by its own hook (no mutation)."""
    for hook in synapse._forward_pre_hooks.values():
        if type(hook).__name__ == "WeightNorm":
            return hook.compute_weight(synapse)
    return synapse.weight


def integer_weight(synapse, scale: int = W_SCALE) -> np.ndarray:
    """``pre_hook_fx(weight, descale=True)`` as an array (int64 when every value is an integer).

    Without a pre-hook the forward uses the float weight itself, whose integer view is ``scale * weight``.
    """
    with torch.no_grad():
        w = _effective_weight(synapse).detach()
        hook = synapse.pre_hook_fx
        q = hook(w, descale=True) if hook is not None else w * scale
        q = q.double().cpu().numpy()
    if np.all(np.isfinite(q)) and np.array_equal(q, np.round(q)):
        return q.astype(np.int64)
    return q


def _scalar_param(name: str, layer: str, tensor: torch.Tensor) -> int:
    t = tensor.detach().reshape(-1)
    if t.numel() != 1:
        raise SpikeshipError(f"{layer}: per-neuron {name} (shared_param=False) cannot be exported; "
                             f"netx takes one {name} per layer")
    return int(torch.round(t.double()).item())


def neuron_params(neuron, layer: str) -> NeuronParams:
    """The values of slayer's ``neuron.device_params``, read without its in-place clamp."""
    return NeuronParams(
        i_decay=_scalar_param("current decay", layer, neuron.current_decay),
        v_decay=_scalar_param("voltage decay", layer, neuron.voltage_decay),
        vth_mant=int(neuron.v_th_mant),
        ref_delay=int(neuron.ref_delay),
        graded_spike=bool(neuron.graded_spike),
        type="CUBA",
    )


def _bias(block) -> np.ndarray | None:
    """Any bias the block adds: a synapse bias or a neuron norm (slayer exports norm.bias as the bias)."""
    synapse_bias = getattr(block.synapse, "bias", None)
    if synapse_bias is not None:
        return synapse_bias.detach().double().cpu().numpy().reshape(-1)
    norm = getattr(block.neuron, "norm", None)
    if norm is None:
        return None
    try:
        b = norm.bias
    except (AttributeError, TypeError, RuntimeError):  # a norm whose bias cannot be computed is still a bias
        b = None
    if not isinstance(b, torch.Tensor):
        return np.asarray([np.nan])
    with torch.no_grad():
        return b.detach().double().cpu().numpy().reshape(-1)


def _pair(x) -> tuple[int, int]:
    return int(x[0]), int(x[1])


def _neuron_shape(block, index: int) -> tuple[int, ...]:
    shape = block.neuron.shape
    if shape is None:
        raise SpikeshipError(f"layer {index}: neuron shape unknown (run one forward pass before exporting)")
    return tuple(int(s) for s in shape)


def _common(block, index: int, source: str) -> dict:
    name = f"layer {index} ({source})"
    return dict(
        index=index,
        source=source,
        shape=_neuron_shape(block, index),
        neuron=neuron_params(block.neuron, name),
        bias=_bias(block),
        has_delay=getattr(block, "delay", None) is not None,
        delay_shift=bool(getattr(block, "delay_shift", False)),
    )


def _map_dense(block, index: int, input_shape: tuple[int, ...]) -> QuantizedLayer:
    w = integer_weight(block.synapse)
    w = w.reshape(w.shape[:2])
    return QuantizedLayer(kind="dense", input_shape=(int(np.prod(input_shape)),), weight=w,
                          **_common(block, index, "dense"))


def _map_conv(block, index: int, input_shape: tuple[int, ...]) -> QuantizedLayer:
    s = block.synapse
    w = integer_weight(s)
    w = w.reshape(w.shape[:4])
    return QuantizedLayer(kind="conv", input_shape=input_shape, weight=w,
                          kernel=_pair(s.kernel_size), stride=_pair(s.stride), padding=_pair(s.padding),
                          dilation=_pair(s.dilation), groups=int(s.groups), **_common(block, index, "conv"))


def _map_pool(block, index: int, input_shape: tuple[int, ...]) -> QuantizedLayer:
    s = block.synapse
    w = integer_weight(s)  # (1, 1, kH, kW, 1): one kernel shared by every channel
    channels = int(input_shape[0])
    w = np.tile(w.reshape(1, 1, *w.shape[2:4]), (channels, 1, 1, 1))
    return QuantizedLayer(kind="conv", input_shape=input_shape, weight=w,
                          kernel=_pair(s.kernel_size), stride=_pair(s.stride), padding=_pair(s.padding),
                          dilation=_pair(s.dilation), groups=channels, **_common(block, index, "pool"))


#: slayer CUBA block type -> mapper. MSG blocks subclass these, so the lookup walks the MRO.
BLOCK_MAPPERS = {
    cuba_block.Dense: _map_dense,
    cuba_block.Conv: _map_conv,
    cuba_block.Pool: _map_pool,
}


def _mapper_for(block):
    for cls in type(block).__mro__:
        if cls in BLOCK_MAPPERS:
            return BLOCK_MAPPERS[cls]
    return None


def quantize_layers(blocks, input_shape: tuple[int, ...]) -> tuple[QuantizedLayer, ...]:
    layers = []
    shape = tuple(int(s) for s in input_shape)
    for i, block in enumerate(blocks):
        mapper = _mapper_for(block)
        if mapper is None:
            supported = ", ".join(f"slayer.block.cuba.{c.__name__}" for c in BLOCK_MAPPERS)
            raise SpikeshipError(f"layer {i}: block type {type(block).__name__} cannot be exported to netx; "
                                 f"supported: {supported}")
        layer = mapper(block, i, shape)
        layers.append(layer)
        shape = layer.shape
    return tuple(layers)


def quantize_two(two_weights, num_spiking_layers: int) -> np.ndarray:
    """Integer TWO weights: already-integer arrays pass through, floats go through ``train.two``."""
    a = np.asarray(two_weights)
    if a.ndim != 1 or a.size == 0:
        raise SpikeshipError(f"TWO weights must be a non-empty vector, got shape {a.shape}")
    if a.dtype.kind in "iu":
        return a.astype(np.int64)
    from ..train.two import quantize_two_weights

    return np.asarray(quantize_two_weights(a, num_spiking_layers), dtype=np.int64)


def quantize_model(net, two_weights) -> QuantizedNet:
    """A trained ``SpikeNet`` as integers. ``two_weights``: the float TWO weights a_t (length T), quantized
    with ``train.two.quantize_two_weights`` (round(a*64), zero for the first L steps), or integers already.

    Reads ``net.spec.input_shape``, ``net.blocks`` and ``net.readout``; never modifies the model.
    """
    input_shape = tuple(int(s) for s in net.spec.input_shape)
    layers = quantize_layers(net.blocks, input_shape)
    readout = integer_weight(net.readout)
    readout = readout.reshape(readout.shape[:2])
    readout_bias = None
    if getattr(net.readout, "bias", None) is not None:
        readout_bias = net.readout.bias.detach().double().cpu().numpy().reshape(-1)
    return QuantizedNet(
        input_shape=input_shape,
        layers=layers,
        readout_weight=readout,
        two_weights=quantize_two(two_weights, len(layers)),
        readout_bias=readout_bias,
    )
