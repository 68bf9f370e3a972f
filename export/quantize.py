"""The one place that turns a trained ``SpikeNet`` into integers: ``quantize_model(net, two_weights)`` gives
the :class:`~spikeship.network.Network` record every later stage reads.

Pure: it reads the model and never changes it. In particular it does not call slayer's ``export_hdf5``
(that method disables weight normalisation on the live model) nor ``neuron.device_params`` (whose decay
getters clamp the decay parameters in place); it reads the very same values without side effects:

- weights: ``synapse.pre_hook_fx(weight, descale=True)``, exactly what slayer's ``export_hdf5`` writes
  (weight normalisation, if enabled, is recomputed from ``weight_g``/``weight_v`` by its own hook object);
- neuron: ``iDecay``/``vDecay`` = ``round(decay)`` (what slayer's forward uses, unclamped so that the
  validator sees an out-of-range value instead of a silently different one), ``vThMant`` =
  ``neuron.v_th_mant``, ``refDelay`` = ``neuron.ref_delay``, ``gradedSpike`` = ``neuron.graded_spike``.

Each layer kind has one entry in ``QUANTIZERS`` (its block -> a :class:`~spikeship.network.Layer`). Pooling
becomes a depthwise conv (netx cannot build ``pool``): groups = channels, the pool's 1x1xkxk weight tiled to
(C, 1, k, k). Weights stay floating point arrays when they are not integers (a block without the
8-bit hook): ``export.validate`` then refuses them with the layer named, rather than this function rounding
silently.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from ..errors import SpikeshipError
from ..fixedpoint import WEIGHT_SCALE
from ..network import Layer, Network, Neuron, by_kind
from ..train.msg import synapses


# ----------------------------------------------------------------------------------------------------
# reading a slayer block without side effects


def _effective_weight(synapse) -> torch.Tensor:
    """The synapse weight the forward uses; with weight norm, recomputed by its own hook (no mutation)."""
    for hook in synapse._forward_pre_hooks.values():
        if type(hook).__name__ == "WeightNorm":
            return hook.compute_weight(synapse)
    return synapse.weight


def integer_weight(synapse, scale: int = WEIGHT_SCALE) -> np.ndarray:
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


def neuron_params(neuron, layer: str) -> Neuron:
    """The values of slayer's ``neuron.device_params``, read without its in-place clamp."""
    return Neuron(
        i_decay=_scalar_param("current decay", layer, neuron.current_decay),
        v_decay=_scalar_param("voltage decay", layer, neuron.voltage_decay),
        vth_mant=int(neuron.v_th_mant),
        ref_delay=int(neuron.ref_delay),
        graded_spike=bool(neuron.graded_spike),
        type="CUBA",
    )


def _bias(block) -> np.ndarray | None:
    """Any bias the block adds: a synapse bias, a block bias (slayer's recurrent block) or a neuron norm
    (slayer exports norm.bias as the bias)."""
    for owner in [*synapses(block), block]:
        b = getattr(owner, "bias", None)
        if isinstance(b, torch.Tensor):
            return b.detach().double().cpu().numpy().reshape(-1)
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


def _common(block, kind: str, index: int) -> dict:
    return dict(
        kind=kind,
        index=index,
        shape=_neuron_shape(block, index),
        neuron=neuron_params(block.neuron, f"layer {index} ({kind})"),
        bias=_bias(block),
        has_delay=getattr(block, "delay", None) is not None,
        delay_shift=bool(getattr(block, "delay_shift", False)),
    )


def _conv_geometry(synapse) -> dict:
    return dict(kernel=_pair(synapse.kernel_size), stride=_pair(synapse.stride), padding=_pair(synapse.padding),
                dilation=_pair(synapse.dilation))


def quantize_dense(block, kind: str, index: int, input_shape: tuple[int, ...]) -> Layer:
    w = integer_weight(block.synapse)
    return Layer(input_shape=(int(np.prod(input_shape)),), weight=w.reshape(w.shape[:2]),
                 **_common(block, kind, index))


def quantize_recurrent(block, kind: str, index: int, input_shape: tuple[int, ...]) -> Layer:
    """slayer's recurrent block: its input synapse as a dense weight, its recurrent synapse (to, from)."""
    w, r = integer_weight(block.input_synapse), integer_weight(block.recurrent_synapse)
    return Layer(input_shape=(int(np.prod(input_shape)),), weight=w.reshape(w.shape[:2]),
                 recurrent_weight=r.reshape(r.shape[:2]), **_common(block, kind, index))


def quantize_conv(block, kind: str, index: int, input_shape: tuple[int, ...]) -> Layer:
    s = block.synapse
    w = integer_weight(s)
    return Layer(input_shape=tuple(input_shape), weight=w.reshape(w.shape[:4]), groups=int(s.groups),
                 **_conv_geometry(s), **_common(block, kind, index))


def quantize_pool(block, kind: str, index: int, input_shape: tuple[int, ...]) -> Layer:
    """Sum pooling as the depthwise convolution netx can build: the pool's one kernel tiled per channel."""
    s = block.synapse
    w = integer_weight(s)  # (1, 1, kH, kW, 1): one kernel shared by every channel
    channels = int(input_shape[0])
    w = np.tile(w.reshape(1, 1, *w.shape[2:4]), (channels, 1, 1, 1))
    return Layer(input_shape=tuple(input_shape), weight=w, groups=channels, **_conv_geometry(s),
                 **_common(block, kind, index))


#: layer kind -> how its slayer block becomes a :class:`~spikeship.network.Layer`
QUANTIZERS = {"dense": quantize_dense, "recurrent": quantize_recurrent, "conv": quantize_conv, "pool": quantize_pool}


def quantize_layers(blocks, kinds, input_shape: tuple[int, ...]) -> tuple[Layer, ...]:
    """The spiking layers: block ``i`` of kind ``kinds[i]`` through ``QUANTIZERS``."""
    layers = []
    shape = tuple(int(s) for s in input_shape)
    for i, (block, kind) in enumerate(zip(blocks, kinds)):
        layer = by_kind(QUANTIZERS, kind, f"layer {i}", "quantizer")(block, kind, i, shape)
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


def quantize_readout(readout, index: int, features: int) -> Layer:
    """The non-spiking readout synapse as a ``dense`` layer without neuron."""
    w = integer_weight(readout)
    w = w.reshape(w.shape[:2])
    bias = getattr(readout, "bias", None)
    return Layer(kind="dense", index=index, input_shape=(int(features),), shape=(int(w.shape[0]),), weight=w,
                 neuron=None, bias=None if bias is None else bias.detach().double().cpu().numpy().reshape(-1))


def quantize_model(net, two_weights, *, class_names=(), model_card: dict | None = None) -> Network:
    """A trained ``SpikeNet`` as integers. ``two_weights``: the float TWO weights a_t (length T), quantized
    with ``train.two.quantize_two_weights`` (round(a*64), zero for the first L steps), or integers already.

    Reads ``net.spec`` (input shape, layer kinds), ``net.blocks`` and ``net.readout``; never modifies the model.
    """
    input_shape = tuple(int(s) for s in net.spec.input_shape)
    layers = quantize_layers(net.blocks, [layer.kind for layer in net.spec.layers], input_shape)
    readout = quantize_readout(net.readout, len(layers), layers[-1].num_neurons)
    two = quantize_two(two_weights, len(layers))
    names = tuple(str(c) for c in class_names) or tuple(str(c) for c in range(readout.shape[0]))
    try:  # as the .net file will hold it (JSON), so the record read back equals this one
        card = json.loads(json.dumps(model_card or {}, sort_keys=True, default=str))
    except (TypeError, ValueError) as e:
        raise SpikeshipError(f"model card is not JSON-serialisable: {e}") from None
    return Network(input_shape=input_shape, layers=layers, readout=readout, two_weights=two,
                   class_names=names, model_card=card)
