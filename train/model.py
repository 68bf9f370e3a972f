"""Models: a small declarative spec, built from slayer CUBA blocks, with a non-spiking quantized readout.

Every spiking block is a slayer CUBA block (``delay_shift=True``, no bias, binary spikes, 8-bit weights via
slayer's ``quantize_8bit`` hook) whose neuron is the MSG subclass, so what trains is what Loihi computes.
The readout is a ``slayer.synapse.Dense`` given the same 8-bit hook: it is exported exactly as it is used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from lava.lib.dl import slayer

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (Lava's) has no tomllib
    import tomli as tomllib

from ..errors import SpikeshipError
from .msg import MSGConv, MSGDense, MSGPool, SurrogateConfig

LAYER_KINDS = ("dense", "conv", "pool")
#: integer units: slayer weights are w_int / W_SCALE, readout integers are W_SCALE * readout
W_SCALE = 64


@dataclass(frozen=True)
class NeuronSpec:
    """CUBA neuron parameters in slayer's units (threshold in weight units, decays as fractions of 1)."""

    threshold: float = 1.25
    current_decay: float = 0.25
    voltage_decay: float = 0.03
    tau_grad: float = 0.03
    scale_grad: float = 3.0

    def __post_init__(self) -> None:
        if not 0 < self.threshold * W_SCALE < (1 << 17):
            raise ValueError(f"threshold {self.threshold} out of range (0, {(1 << 17) / W_SCALE})")
        for name in ("current_decay", "voltage_decay"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")

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
    """One spiking layer. ``dense``: ``features`` outputs. ``conv``: ``features`` output channels,
    ``kernel``, ``stride``, ``padding``. ``pool``: sum pooling over ``kernel`` x ``kernel`` (stride = kernel
    unless given), exported as a depthwise conv."""

    kind: str
    features: int = 0
    kernel: int = 1
    stride: int = 0
    padding: int = 0

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"unknown layer kind {self.kind!r}; supported: {', '.join(LAYER_KINDS)}")
        if self.kind in ("dense", "conv") and self.features <= 0:
            raise ValueError(f"{self.kind} layer needs features > 0")
        if self.kernel <= 0 or self.stride < 0 or self.padding < 0:
            raise ValueError(f"bad kernel/stride/padding in {self}")

    @property
    def effective_stride(self) -> int:
        if self.stride:
            return self.stride
        return self.kernel if self.kind == "pool" else 1


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
        if not self.layers:
            raise ValueError("a model needs at least one spiking layer")
        seen_dense = False
        for layer in self.layers:
            if layer.kind == "dense":
                seen_dense = True
            elif seen_dense:
                raise ValueError("conv/pool layers must come before the dense layers")
        self.layer_shapes()  # raises on sizes that do not fit

    @property
    def num_spiking_layers(self) -> int:
        return len(self.layers)

    def layer_shapes(self) -> list[tuple[int, ...]]:
        """Output shape of each spiking layer: (C, H, W) for conv/pool, (F,) for dense."""
        c, h, w = self.input_shape
        shapes: list[tuple[int, ...]] = []
        flat = None
        for i, layer in enumerate(self.layers):
            if layer.kind == "dense":
                flat = layer.features
                shapes.append((flat,))
                continue
            k, s, p = layer.kernel, layer.effective_stride, layer.padding
            if layer.kind == "pool" and (p or s != k or h % k or w % k):
                # slayer's Pool pads odd sizes at one end only, which a depthwise conv cannot express
                raise ValueError(f"layer {i} (pool {k}x{k}) needs stride = kernel, no padding and an input "
                                 f"{h}x{w} divisible by {k}")
            h = (h + 2 * p - k) // s + 1
            w = (w + 2 * p - k) // s + 1
            if h <= 0 or w <= 0:
                raise ValueError(f"layer {i} ({layer.kind}, kernel {k}) does not fit its input")
            if layer.kind == "conv":
                c = layer.features
            shapes.append((c, h, w))
        return shapes

    def to_dict(self) -> dict:
        return asdict(self)

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


def spec_from_toml(path: str | Path, input_shape: tuple[int, int, int], num_classes: int) -> ModelSpec:
    """Read ``[[layer]]`` tables (kind, features, kernel, stride, padding) and an optional ``[neuron]``."""
    try:
        with open(path, "rb") as f:
            d = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SpikeshipError(f"cannot read model config {path}: {e}") from None
    try:
        return ModelSpec(
            input_shape=input_shape,
            num_classes=num_classes,
            layers=tuple(LayerSpec(**layer) for layer in d.get("layer", [])),
            neuron=NeuronSpec(**d.get("neuron", {})),
            weight_scale=float(d.get("weight_scale", 1.0)),
        )
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
        params = spec.neuron.slayer_params()
        blocks = []
        in_c = spec.input_shape[0]
        in_features = None
        shapes = spec.layer_shapes()
        for layer, shape in zip(spec.layers, shapes):
            common = dict(weight_scale=spec.weight_scale, weight_norm=False, delay_shift=True, surrogate=surrogate)
            if layer.kind == "conv":
                blocks.append(MSGConv(params, in_c, layer.features, layer.kernel, stride=layer.effective_stride,
                                      padding=layer.padding, **common))
                in_c = layer.features
            elif layer.kind == "pool":
                blocks.append(MSGPool(params, layer.kernel, stride=layer.effective_stride, padding=layer.padding,
                                      **common))
            else:
                if in_features is None:
                    prev = shapes[len(blocks) - 1] if blocks else spec.input_shape
                    in_features = int(torch.tensor(prev).prod())
                blocks.append(MSGDense(params, in_features, layer.features, **common))
                in_features = layer.features
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
        for layer, block in zip(self.spec.layers, self.blocks):
            if layer.kind == "dense" and x.dim() == 5:
                x = x.reshape(x.shape[0], -1, x.shape[-1])  # C, H, W order (slayer's Flatten)
            x = block(x)
            spikes.append(x)
        if x.dim() == 5:
            x = x.reshape(x.shape[0], -1, x.shape[-1])
        return self.readout(x), spikes


def readout_integers(readout: torch.Tensor) -> torch.Tensor:
    """The readout per step as the chip's integers: W_SCALE * readout, exact for 8-bit weights and binary
    spikes (every weight is k / 32)."""
    return torch.round(readout.detach().double() * W_SCALE).to(torch.int64)


def decode_integer(readout_int: torch.Tensor, two_weights_int: torch.Tensor) -> torch.Tensor:
    """Deployed decision: accumulators sum_t a_int[t] * r_t, shape (N, classes), int64."""
    return (readout_int * two_weights_int.to(torch.int64).view(1, 1, -1)).sum(-1)
