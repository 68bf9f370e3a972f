"""The one record of a deployed network, from export to report.

``export.quantize`` makes a :class:`Network` from a trained model, ``export.netx`` writes it to a ``.net`` file
and reads it back (the same record), ``export.validate`` checks it, the emulator and the Lava backend run it,
``spikeship.energy`` and the report count it, ``export.onnx_export`` writes it as ONNX. Plain frozen records
of integers (numpy), no torch and no Lava: every stage, and a machine without Lava, can read them.

A layer's ``kind`` (``dense``, ``conv``, ``pool``, ...) is where it came from in the model and the key of every
per-kind table (one per concern, see docs/DESIGN.md "Adding a layer kind"); nothing guesses it back from
shapes. Pooling, for example, is a ``pool`` layer whose weights are a depthwise convolution, because that is
what netx can build.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np

from .errors import SpikeshipError


def _array_equal(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype.kind == b.dtype.kind and a.shape == b.shape and bool(np.array_equal(a, b))


def records_equal(a, b) -> bool:
    """Field-by-field equality of two records whose fields may be numpy arrays (records and tuples of
    records compare with their own ``==``)."""
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


def by_kind(table: dict, kind: str, where: str, concern: str):
    """``table[kind]`` of a per-kind table, or one line naming the layer, the concern and the kinds it knows."""
    try:
        return table[kind]
    except KeyError:
        raise SpikeshipError(f"{where}: layer kind {kind!r} has no {concern}; known: {', '.join(table)}") from None


@dataclass(frozen=True)
class Neuron:
    """CUBA neuron in Loihi units: decays in 1/4096 per step, threshold mantissa (a spike when
    ``v > vth_mant << 6``). ``ref_delay``, ``graded_spike`` and ``type`` are kept so validation can refuse
    what Lava would run differently."""

    i_decay: int
    v_decay: int
    vth_mant: int
    ref_delay: int = 1
    graded_spike: bool = False
    type: str = "CUBA"


@dataclass(frozen=True, eq=False)
class Layer:
    """One synapse and the neurons it feeds, in integers.

    ``kind``: the key of every per-kind table. ``input_shape``: what the synapse takes, ``(C, H, W)`` or, for
    layers that flatten their input, ``(F,)`` (C, H, W order, as slayer flattens). ``shape``: the output.
    ``weight``: int64 (float64 only when the model held non-integer weights: validation names them);
    dense ``(out, in)``, conv ``(out, in / groups, kH, kW)`` in slayer/PyTorch order. ``kernel``, ``stride``,
    ``padding``, ``dilation``: (H, W) pairs. ``neuron``: None for the non-spiking readout.
    ``recurrent_weight``: only for kinds whose geometry is recurrent (``spikeship.energy.GEOMETRY``): the dense
    synapse from the layer's own neurons to themselves, ``(neurons, neurons)`` (to, from), integers like
    ``weight``; a spike of step ``tau`` arrives at step ``tau + 1`` (Lava's one-step synapse delay). None
    otherwise.
    ``bias``, ``has_delay``, ``delay_shift``: what the model had, kept for validation to refuse.
    """

    kind: str
    index: int
    input_shape: tuple[int, ...]
    shape: tuple[int, ...]
    weight: np.ndarray
    neuron: Neuron | None
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: np.ndarray | None = None
    has_delay: bool = False
    delay_shift: bool = True
    recurrent_weight: np.ndarray | None = None

    def __eq__(self, other) -> bool:
        return records_equal(self, other)

    __hash__ = None

    @property
    def name(self) -> str:
        return "readout" if self.neuron is None else f"layer {self.index} ({self.kind})"

    @property
    def num_neurons(self) -> int:
        return int(np.prod(self.shape))

    @property
    def num_inputs(self) -> int:
        return int(np.prod(self.input_shape))


def recurrent_synapse(layer: Layer) -> Layer | None:
    """A layer's recurrent synapse as a ``dense`` layer of its own (from the layer's own neurons to
    themselves), which every runtime computes from the layer's spikes of the step before; None without one."""
    if layer.recurrent_weight is None:
        return None
    return replace(layer, kind="dense", input_shape=(layer.num_neurons,), weight=layer.recurrent_weight,
                   recurrent_weight=None)


@dataclass(frozen=True, eq=False)
class Network:
    """The deployed network: spiking layers, the non-spiking readout (a ``dense`` layer without neuron) and
    the integer TWO weights ``a_int[t]`` (length T), with the class names and the model card."""

    input_shape: tuple[int, int, int]
    layers: tuple[Layer, ...]
    readout: Layer
    two_weights: np.ndarray
    class_names: tuple[str, ...] = ()
    model_card: dict = field(default_factory=dict)

    def __eq__(self, other) -> bool:
        return records_equal(self, other)

    __hash__ = None

    @property
    def time_steps(self) -> int:
        return int(len(self.two_weights))

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def num_classes(self) -> int:
        return int(self.readout.shape[0])

    @property
    def layer_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(layer.shape) for layer in self.layers]

    @property
    def feed_shape(self) -> tuple[int, ...]:
        """One input step as the first synapse takes it: ``(C, H, W)``, or flattened ``(F,)``."""
        return tuple(self.layers[0].input_shape)

    @property
    def dataset(self) -> str | None:
        """The data set the model card names (what the network was trained or imported for), if any."""
        name = self.model_card.get("dataset") if isinstance(self.model_card, dict) else None
        return str(name) if name else None
