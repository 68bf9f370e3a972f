"""The ``.net`` file as the emulator and the Lava runner see it: plain frozen records, from the file alone.

The format is parsed in one place, :func:`spikeship.export.netx.read_net`; this module checks the result with
the exporter's own validation (:func:`spikeship.export.validate.check_net`: anything netx would build
differently from what the emulator models, such as a bias, synaptic delays, graded spikes, non-CUBA neurons,
weights Lava's Dense cannot hold, is refused by name) and keeps only what running the network needs. So a
file that one of the emulator and the Lava runner accepts, the other accepts too, and so does the exporter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SpikeshipError


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


def _neuron(n) -> CubaParams:
    return CubaParams(i_decay=n.i_decay, v_decay=n.v_decay, vth_mant=n.vth_mant)


def _layer(layer) -> DenseLayer | ConvLayer:
    if layer.kind == "dense":
        return DenseLayer(weight=layer.weight, neuron=_neuron(layer.neuron))
    return ConvLayer(weight=layer.weight, stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                     groups=layer.groups, neuron=_neuron(layer.neuron), shape=tuple(layer.shape))


def read_net(path: str | Path) -> NetSpec:
    """Read (``export.netx.read_net``) and check (``export.validate.check_net``) a ``.net`` file; every
    problem is a one-line :class:`SpikeshipError` naming the file."""
    from ..export.netx import LAYER_WRITERS, read_net as read_netx
    from ..export.validate import check_net

    nf = read_netx(path)
    q = nf.net
    try:
        check_net(q, tuple(LAYER_WRITERS))
    except SpikeshipError as e:
        raise SpikeshipError(f"{path}: {e}") from None
    return NetSpec(path=str(path), layers=tuple(_layer(layer) for layer in q.layers),
                   input_shape=tuple(q.input_shape), time_steps=q.time_steps, readout_weight=q.readout_weight,
                   two_weights=q.two_weights, class_names=nf.class_names, model_card=nf.model_card)
