"""Models: a small declarative spec, built from slayer CUBA blocks, with a non-spiking quantized readout.

Every spiking block is a slayer CUBA block (``delay_shift=True``, no bias, binary spikes, 8-bit weights via
slayer's ``quantize_8bit`` hook) whose neuron is the MSG subclass, so what trains is what Loihi computes.
The readout is a ``slayer.synapse.Dense`` given the same 8-bit hook: it is exported exactly as it is used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from lava.lib.dl import slayer

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (Lava's) has no tomllib
    import tomli as tomllib

from ..errors import SpikeshipError
from ..fixedpoint import DECAY_UNITY, WEIGHT_SCALE
from ..hardware import value as hw
from .msg import MSGConv, MSGDense, MSGPool, MSGRecurrent, SurrogateConfig


@dataclass(frozen=True)
class NeuronSpec:
    """CUBA neuron parameters in slayer's units (threshold in weight units, decays as fractions of 1).

    Checked against the same Loihi limits export checks (``spikeship.hardware``), so a network that trains
    also exports: threshold mantissa ``int(64 threshold)`` in [1, 2**17 - 1], current decay ``round(4096 d)`` in
    [1, 4096] (netx cannot express 0), voltage decay in [0, 4096]."""

    threshold: float = 1.25
    current_decay: float = 0.25
    voltage_decay: float = 0.03
    tau_grad: float = 0.03
    scale_grad: float = 3.0

    def __post_init__(self) -> None:
        lo, hi = hw("vth_mant_min"), hw("vth_mant_max")
        if not lo <= int(self.threshold * WEIGHT_SCALE) <= hi:
            raise ValueError(f"threshold {self.threshold} out of range [{lo / WEIGHT_SCALE}, {hi / WEIGHT_SCALE}] "
                             f"(threshold mantissa {lo}..{hi} in units of 1/{WEIGHT_SCALE})")
        for name, key in (("current_decay", "current_decay"), ("voltage_decay", "voltage_decay")):
            value = getattr(self, name)
            lo, hi = hw(f"{key}_min"), hw(f"{key}_max")
            if not lo <= round(value * DECAY_UNITY) <= hi:
                raise ValueError(f"{name} {value} out of range [{lo / DECAY_UNITY:g}, {hi / DECAY_UNITY:g}] "
                                 f"({key.replace('_', ' ')} {lo}..{hi} in units of 1/{DECAY_UNITY})")

    def slayer_params(self) -> dict:
        return {
            "threshold": self.threshold,
            "current_decay": self.current_decay,
            "voltage_decay": self.voltage_decay,
            "tau_grad": self.tau_grad,
            "scale_grad": self.scale_grad,
            "requires_grad": False,
            "graded_spike": False,
        }


@dataclass(frozen=True)
class LayerSpec:
    """One spiking layer. ``dense``: ``features`` outputs. ``recurrent``: ``features`` outputs that also feed
    back to themselves one step later (slayer's CUBA ``Recurrent`` block; netx ``dense_rec``). ``conv``:
    ``features`` output channels, ``kernel``, ``stride``, ``padding``. ``pool``: sum pooling over ``kernel`` x
    ``kernel`` (stride = kernel unless given), exported as a depthwise conv. ``dense`` and ``recurrent`` take
    their input flattened (after a conv or pool layer, in C, H, W order), so no conv or pool layer may follow
    them. What each kind means in training is its entry in ``KINDS``."""

    kind: str
    features: int = 0
    kernel: int = 1
    stride: int = 0
    padding: int = 0
    neuron: NeuronSpec | None = None  # this layer's neuron; None: the model's

    def __post_init__(self) -> None:
        if isinstance(self.neuron, dict):  # from TOML or a checkpoint's dict
            object.__setattr__(self, "neuron", NeuronSpec(**self.neuron))
        if self.kind not in KINDS:
            raise ValueError(f"unknown layer kind {self.kind!r}; supported: {', '.join(KINDS)}")
        if KINDS[self.kind].needs_features and self.features <= 0:
            raise ValueError(f"{self.kind} layer needs features > 0")
        if self.kernel <= 0 or self.stride < 0 or self.padding < 0:
            raise ValueError(f"bad kernel/stride/padding in {self}")

    @property
    def effective_stride(self) -> int:
        if self.stride:
            return self.stride
        return self.kernel if KINDS[self.kind].stride_is_kernel else 1


def _dense_shape(layer: LayerSpec, index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return (layer.features,)


def _spatial_shape(layer: LayerSpec, index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    c, h, w = shape
    k, s, p = layer.kernel, layer.effective_stride, layer.padding
    h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    if h <= 0 or w <= 0:
        raise ValueError(f"layer {index} ({layer.kind}, kernel {k}) does not fit its input")
    return (layer.features or c, h, w)


def _pool_shape(layer: LayerSpec, index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    _, h, w = shape
    k = layer.kernel
    if layer.padding or layer.effective_stride != k or h % k or w % k:
        # slayer's Pool pads odd sizes at one end only, which a depthwise conv cannot express
        raise ValueError(f"layer {index} (pool {k}x{k}) needs stride = kernel, no padding and an input "
                         f"{h}x{w} divisible by {k}")
    return _spatial_shape(layer, index, shape)


def _dense_block(layer: LayerSpec, in_shape: tuple[int, ...], params: dict, common: dict):
    return MSGDense(params, int(torch.tensor(in_shape).prod()), layer.features, **common)


def _recurrent_block(layer: LayerSpec, in_shape: tuple[int, ...], params: dict, common: dict):
    return MSGRecurrent(params, int(torch.tensor(in_shape).prod()), layer.features, **common)


def _conv_block(layer: LayerSpec, in_shape: tuple[int, ...], params: dict, common: dict):
    return MSGConv(params, in_shape[0], layer.features, layer.kernel, stride=layer.effective_stride,
                   padding=layer.padding, **common)


def _pool_block(layer: LayerSpec, in_shape: tuple[int, ...], params: dict, common: dict):
    return MSGPool(params, layer.kernel, stride=layer.effective_stride, padding=layer.padding, **common)


@dataclass(frozen=True)
class LayerKind:
    """What a layer kind is in training: ``output_shape(spec, index, input shape)`` (ValueError when it does
    not fit), its slayer block ``build(spec, input shape, neuron params, common block args)``, whether it takes
    its input flattened (C, H, W order), whether it needs ``features``, and whether its stride defaults to
    its kernel."""

    output_shape: Callable[[LayerSpec, int, tuple], tuple]
    build: Callable[[LayerSpec, tuple, dict, dict], torch.nn.Module]
    flat_input: bool = False
    needs_features: bool = True
    stride_is_kernel: bool = False


#: layer kind -> how it trains (export: ``export.quantize.QUANTIZERS``; the other concerns: docs/DESIGN.md)
KINDS: dict[str, LayerKind] = {
    "dense": LayerKind(_dense_shape, _dense_block, flat_input=True),
    "recurrent": LayerKind(_dense_shape, _recurrent_block, flat_input=True),
    "conv": LayerKind(_spatial_shape, _conv_block),
    "pool": LayerKind(_pool_shape, _pool_block, needs_features=False, stride_is_kernel=True),
}


def check_layer_order(layers: tuple[LayerSpec, ...]) -> None:
    """ValueError unless every layer that takes (C, H, W) comes before the first that flattens its input."""
    if not layers:
        raise ValueError("a model needs at least one spiking layer")
    flat = None
    for i, layer in enumerate(layers):
        if KINDS[layer.kind].flat_input:
            flat = flat or layer
        elif flat is not None:
            flat_kinds, spatial = (" and ".join(k for k, kind in KINDS.items() if kind.flat_input == f)
                                   for f in (True, False))
            raise ValueError(f"layer {i} ({layer.kind}) takes a (C, H, W) input and cannot follow the "
                             f"{flat.kind} layer before it, whose output is flat ({flat_kinds} layers flatten "
                             f"their input, so {spatial} layers go before them)")


@dataclass(frozen=True)
class ModelSpec:
    """A network: input shape (C, H, W), spiking layers, and a non-spiking readout to ``num_classes``."""

    input_shape: tuple[int, int, int]
    num_classes: int
    layers: tuple[LayerSpec, ...]
    neuron: NeuronSpec = field(default_factory=NeuronSpec)
    weight_scale: float = 1.0

    def __post_init__(self) -> None:
        if len(self.input_shape) != 3 or min(self.input_shape) <= 0:
            raise ValueError(f"input_shape must be (C, H, W) with positive sizes, got {self.input_shape}")
        if self.num_classes < 2:
            raise ValueError("num_classes must be at least 2")
        check_layer_order(self.layers)
        self.layer_shapes()  # raises on sizes that do not fit

    @property
    def num_spiking_layers(self) -> int:
        return len(self.layers)

    def layer_shapes(self) -> list[tuple[int, ...]]:
        """Output shape of each spiking layer: (C, H, W) for conv/pool, (F,) for dense."""
        shape: tuple[int, ...] = tuple(self.input_shape)
        shapes: list[tuple[int, ...]] = []
        for i, layer in enumerate(self.layers):
            shape = KINDS[layer.kind].output_shape(layer, i, shape)
            shapes.append(shape)
        return shapes

    def neuron_of(self, layer: LayerSpec) -> NeuronSpec:
        """The neuron of ``layer``: its own, or the model's."""
        return layer.neuron or self.neuron

    def to_dict(self) -> dict:
        d = asdict(self)
        for layer in d["layers"]:
            if layer["neuron"] is None:
                del layer["neuron"]  # the same dict as before per-layer neurons existed
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        return cls(
            input_shape=tuple(d["input_shape"]),
            num_classes=int(d["num_classes"]),
            layers=tuple(LayerSpec(**layer) for layer in d["layers"]),
            neuron=NeuronSpec(**d.get("neuron", {})),
            weight_scale=float(d.get("weight_scale", 1.0)),
        )


def dense_spec(input_shape: tuple[int, int, int], num_classes: int, hidden: tuple[int, ...] = (128,),
               neuron: NeuronSpec = NeuronSpec()) -> ModelSpec:
    return ModelSpec(input_shape, num_classes, tuple(LayerSpec("dense", h) for h in hidden), neuron)


def recurrent_spec(input_shape: tuple[int, int, int], num_classes: int, hidden: tuple[int, ...] = (128,),
                   neuron: NeuronSpec = NeuronSpec()) -> ModelSpec:
    """Recurrent layers of ``hidden`` neurons each, then the readout."""
    return ModelSpec(input_shape, num_classes, tuple(LayerSpec("recurrent", h) for h in hidden), neuron)


def conv_spec(input_shape: tuple[int, int, int], num_classes: int, channels: tuple[int, int] = (8, 16),
              hidden: int = 64, neuron: NeuronSpec = NeuronSpec()) -> ModelSpec:
    """conv, pool, conv, pool, dense, readout (sizes for a 34x34 sensor: 32, 16, 16, 8)."""
    layers = (
        LayerSpec("conv", channels[0], kernel=3, padding=0),
        LayerSpec("pool", kernel=2),
        LayerSpec("conv", channels[1], kernel=3, padding=1),
        LayerSpec("pool", kernel=2),
        LayerSpec("dense", hidden),
    )
    return ModelSpec(input_shape, num_classes, layers, neuron)


def read_model_config(path: str | Path) -> dict:
    """The ``ModelSpec`` fields a TOML model config gives (``layers``, ``neuron``, ``weight_scale``), checked as
    far as they go without the data (kinds, parameters, layer order): ``[[layer]]`` tables (kind, features,
    kernel, stride, padding, and an optional per-layer ``[layer.neuron]``) and an optional ``[neuron]`` for the
    layers without their own."""
    try:
        with open(path, "rb") as f:
            d = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SpikeshipError(f"cannot read model config {path}: {e}") from None
    try:
        fields = dict(layers=tuple(LayerSpec(**layer) for layer in d.get("layer", [])),
                      neuron=NeuronSpec(**d.get("neuron", {})), weight_scale=float(d.get("weight_scale", 1.0)))
        check_layer_order(fields["layers"])
        return fields
    except (TypeError, ValueError) as e:
        raise SpikeshipError(f"bad model config {path}: {e}") from None


def spec_from_toml(path: str | Path, input_shape: tuple[int, int, int], num_classes: int) -> ModelSpec:
    """The network a TOML model config describes (:func:`read_model_config`) for this input and classes."""
    fields = read_model_config(path)
    try:
        return ModelSpec(input_shape=input_shape, num_classes=num_classes, **fields)
    except (TypeError, ValueError) as e:
        raise SpikeshipError(f"bad model config {path}: {e}") from None


class SpikeNet(torch.nn.Module):
    """slayer CUBA blocks followed by a non-spiking readout.

    ``forward(x)`` takes binary spikes (N, C, H, W, T) and returns ``(readout, spikes)``: the readout per
    step (N, classes, T) and one spike tensor per spiking layer, after slayer's one-step ``delay_shift``.
    """

    def __init__(self, spec: ModelSpec, surrogate: SurrogateConfig = SurrogateConfig()):
        super().__init__()
        self.spec = spec
        blocks = []
        shapes = spec.layer_shapes()
        common = dict(weight_scale=spec.weight_scale, weight_norm=False, delay_shift=True, surrogate=surrogate)
        for layer, in_shape in zip(spec.layers, [tuple(spec.input_shape)] + shapes[:-1]):
            params = spec.neuron_of(layer).slayer_params()
            blocks.append(KINDS[layer.kind].build(layer, in_shape, params, common))
        self.flat_input = [KINDS[layer.kind].flat_input for layer in spec.layers]
        self.blocks = torch.nn.ModuleList(blocks)
        last = blocks[-1].neuron
        n_last = int(torch.tensor(shapes[-1]).prod())
        self.readout = slayer.synapse.Dense(n_last, spec.num_classes, weight_scale=spec.weight_scale,
                                            pre_hook_fx=last.quantize_8bit)
        # Materialise the neuron shapes (slayer sets them on the first forward) so export can read them.
        with torch.no_grad():
            self.forward(torch.zeros(1, *spec.input_shape, 2))

    def set_surrogate(self, surrogate: SurrogateConfig) -> None:
        for block in self.blocks:
            block.neuron.surrogate = surrogate

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if x.dim() != 5 or tuple(x.shape[1:4]) != tuple(self.spec.input_shape):
            raise ValueError(f"expected input (N, {', '.join(map(str, self.spec.input_shape))}, T), got {tuple(x.shape)}")
        spikes = []
        for flat, block in zip(self.flat_input, self.blocks):
            if flat and x.dim() == 5:
                x = x.reshape(x.shape[0], -1, x.shape[-1])  # C, H, W order (slayer's Flatten)
            x = block(x)
            spikes.append(x)
        if x.dim() == 5:
            x = x.reshape(x.shape[0], -1, x.shape[-1])
        return self.readout(x), spikes


def readout_integers(readout: torch.Tensor) -> torch.Tensor:
    """The readout per step as the chip's integers: 64 * readout (the weight scale), exact for 8-bit weights
    and binary spikes (every weight is k / 32)."""
    return torch.round(readout.detach().double() * WEIGHT_SCALE).to(torch.int64)


def decode_integer(readout_int: torch.Tensor, two_weights_int: torch.Tensor) -> torch.Tensor:
    """Deployed decision: accumulators sum_t a_int[t] * r_t, shape (N, classes), int64."""
    return (readout_int * two_weights_int.to(torch.int64).view(1, 1, -1)).sum(-1)
