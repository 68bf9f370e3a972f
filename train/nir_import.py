"""A walked NIR graph (``train.nir_graph``, floats) on Loihi's integer grid, as a spikeship model and checkpoint.

    imported = map_to_loihi(walked)                  # integers per layer, and what each rounding cost
    model = build_model(imported)                    # a SpikeNet holding exactly those integers
    save_imported(path, imported, model, ...)        # the checkpoint every later stage takes

Per spiking layer (float weights ``w`` with the neuron's gain folded in, threshold ``theta``):

- decays: ``iDecay = round(4096 dt/tau_syn)`` (4096 for LIF's instant synapse), ``vDecay = round(4096
  dt/tau_mem)``: 12 bits, the rounding reported as the time constant it amounts to;
- weights and threshold: the dynamics are linear in (weights, threshold) and the reset goes to 0, so scaling
  both by one factor changes no spike. The layer is scaled so that its threshold is an integer mantissa ``m``
  (``vThMant``; the threshold is then exact) and its weights ``2 round(m w / (2 theta))`` use as much of the
  8-bit range ``[-254, 254]`` as fits, with every neuron's worst-case per-step input within half of int16
  (``INPUT_SHARE``: the other half is room for ``train --init`` to grow the weights; export refuses a network
  beyond int16, where Lava would wrap the input). Weights
  that already lie on the grid (``64 w`` even integers, ``64 theta`` an integer: a spikeship export) are
  kept as they are, so a round trip gives the very same integers. The rounding of the weights is reported
  relative to the largest weight.
- the readout (an ``Affine``/``Linear`` node's weights) is scaled the same way with no threshold to keep: the
  TWO decision (an argmax) does not depend on its scale. A spike-count readout (the identity on the last
  layer's spikes) is the identity times 254, the largest 8-bit weight: the same decision, and the widest range
  of logits for ``train --init``'s cross-entropy (a readout of weight 1 caps them at 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..errors import SpikeshipError
from ..fixedpoint import DECAY_UNITY, WEIGHT_SCALE
from ..hardware import value as hw
from .model import ModelSpec, NeuronSpec, SpikeNet
from .msg import synapses
from .nir_graph import FloatLayer, FloatReadout, Walked

WEIGHT_STEP = int(hw("weight_step"))
#: the largest weight magnitude used when scaling (weight_max; -256 is avoided: Lava's Dense may alter it)
WEIGHT_LIMIT = int(hw("weight_max"))
INPUT_MIN, INPUT_MAX = int(hw("synaptic_input_min")), int(hw("synaptic_input_max"))
#: the share of the int16 worst-case input a scaled layer may use (the rest: headroom for fine-tuning)
INPUT_SHARE = 0.5
VTH_MIN, VTH_MAX = int(hw("vth_mant_min")), int(hw("vth_mant_max"))
I_DECAY_MIN, I_DECAY_MAX = int(hw("current_decay_min")), int(hw("current_decay_max"))
V_DECAY_MIN, V_DECAY_MAX = int(hw("voltage_decay_min")), int(hw("voltage_decay_max"))

DISCRETIZATION = ("forward Euler with step dt (NIR's Lava mapping): current decay = dt/tau_syn, voltage decay = "
                  "dt/tau_mem, input weights x w_in (dt/tau_syn) r (dt/tau_mem); LIF: instant synapse (current "
                  "decay 1), weights x r dt/tau")
ERRORS = ("what makes the deployed network differ from the graph's float dynamics: decays rounded to 1/4096 and "
          "weights to the 8-bit grid (reported per layer), Loihi truncating each decay product toward zero and "
          "keeping 24-bit states, and the pipeline: layer k runs k steps later, so the readout sees the last "
          "layer's first T - L steps")
RESET = ("reset to zero without delay (NIR has no field for the reset mode; only such a reset deploys "
         "faithfully: snnTorch needs reset_mechanism='zero', reset_delay=False)")


# ------------------------------------------------------------------------------------------------ integers

def to_grid(x: np.ndarray, scale: float) -> np.ndarray:
    """``scale * x`` rounded to the nearest even integer (slayer's 8-bit weight step), int64."""
    return (WEIGHT_STEP * np.round(np.asarray(x, dtype=np.float64) * scale / WEIGHT_STEP)).astype(np.int64)


def fits(w: np.ndarray, share: float = 1.0) -> bool:
    """Within the 8-bit range, and every neuron's worst-case per-step input within ``share`` of int16."""
    rows = np.asarray(w, dtype=np.int64).reshape(w.shape[0], -1)
    return bool(np.abs(rows).max() <= WEIGHT_LIMIT and np.clip(rows, 0, None).sum(1).max() <= share * INPUT_MAX
                and np.clip(rows, None, 0).sum(1).min() >= share * INPUT_MIN)


def largest_fit(x: np.ndarray, cap: int, share: float = INPUT_SHARE) -> tuple[int, np.ndarray]:
    """The largest integer ``m <= cap`` whose ``to_grid(x, m)`` fits with ``share`` of int16, and those integers;
    ``(0, ...)`` if none."""
    rows = np.asarray(x, dtype=np.float64).reshape(x.shape[0], -1)
    bounds = [WEIGHT_LIMIT / np.abs(rows).max(),
              share * INPUT_MAX / max(np.clip(rows, 0, None).sum(1).max(), 1e-300),
              -share * INPUT_MIN / max(-np.clip(rows, None, 0).sum(1).min(), 1e-300), cap]
    m = int(min(cap, math.floor(min(bounds))))
    while m >= 1:
        w = to_grid(x, m)
        if fits(w, share):
            return m, w
        m -= max(1, m // 64)  # rounding up pushed a sum over: step down
    return 0, to_grid(x, 0)


def _on_grid(x: np.ndarray, step: int) -> bool:
    x = np.asarray(x, dtype=np.float64)
    return bool(np.allclose(x, step * np.round(x / step), rtol=0.0, atol=1e-6))


def weight_error(exact: np.ndarray, integers: np.ndarray, scale: float) -> dict:
    """How far ``integers / scale`` is from ``exact``: the largest and the rms error, both relative to the
    largest |exact| weight."""
    err = integers / scale - exact
    top = float(np.abs(exact).max())
    return {"max": float(np.abs(err).max() / top), "rms": float(np.sqrt(np.mean(err ** 2)) / top)}


# ------------------------------------------------------------------------------------------------ records

@dataclass(frozen=True)
class DecayMapping:
    """A decay per step as Loihi holds it: ``integer`` / 4096 for ``exact`` (= dt/tau); ``tau`` the time
    constant in seconds, ``tau_deployed`` the one the integer amounts to (None: no decay)."""

    exact: float
    integer: int
    tau: float | None
    tau_deployed: float | None

    def text(self, name: str) -> str:
        if self.tau is None:
            return f"{name} {self.integer}/4096 (instant synapse)"
        same = abs(self.integer / DECAY_UNITY - self.exact) < 1e-12
        tail = "exact" if same else (f"tau {self.tau_deployed:.4g} s, {100 * (self.tau_deployed / self.tau - 1):+.2f}%"
                                     if self.tau_deployed else "no decay")
        return f"{name} {self.exact:.6g} -> {self.integer}/4096 ({tail})"


def map_decay(exact: float, tau: float | None, dt: float, lo: int, hi: int, where: str, field: str) -> DecayMapping:
    integer = int(round(exact * DECAY_UNITY))
    if not lo <= integer <= hi:
        raise SpikeshipError(f"{where}: {field} {tau:.6g} s gives a decay of {exact:.6g} per step, which rounds to "
                             f"{integer}/4096, outside Loihi's [{lo}, {hi}]/4096 (choose another --dt)")
    deployed = dt * DECAY_UNITY / integer if (tau is not None and integer) else None
    return DecayMapping(exact, integer, tau, deployed)


@dataclass(frozen=True, eq=False)
class LayerMapping:
    """One spiking layer on Loihi: integer weights (one array per synapse of its block, in ``train.msg.synapses``
    order: the weight, then a recurrent layer's recurrent weight), ``vth_mant``, decays, the scale (integer weight
    units per float weight unit), whether the graph already held these integers, and the rounding error."""

    index: int
    layer: FloatLayer
    weights: tuple[np.ndarray, ...]
    vth_mant: int
    current: DecayMapping
    voltage: DecayMapping
    scale: float
    exact: bool
    error: dict

    @property
    def neuron_spec(self) -> NeuronSpec:
        return NeuronSpec(threshold=self.vth_mant / WEIGHT_SCALE, current_decay=self.current.integer / DECAY_UNITY,
                          voltage_decay=self.voltage.integer / DECAY_UNITY)

    @property
    def weight(self) -> np.ndarray:
        return self.weights[0]

    def card(self) -> dict:
        n = self.layer.neuron
        return {"layer": self.index, "kind": self.layer.kind, "nodes": list(self.layer.nodes), "neuron": n.type,
                "nir": {k: float(v) if isinstance(v, (int, float)) else v for k, v in n.params.items()},
                "gain": n.gain, "current_decay": [self.current.exact, self.current.integer],
                "voltage_decay": [self.voltage.exact, self.voltage.integer],
                "tau_deployed": [self.current.tau_deployed, self.voltage.tau_deployed],
                "threshold": n.threshold, "vth_mant": self.vth_mant, "weight_scale": self.scale,
                "weights_exact": self.exact, "weight_error": self.error}

    def line(self) -> str:
        n, s = self.layer.neuron, self.layer.synapse
        nodes = ", ".join(f"'{x}'" for x in self.layer.nodes)
        weights = "weights and threshold kept as written (already Loihi integers)" if self.exact else \
            (f"scaled to threshold mantissa {self.vth_mant} (x{self.scale:.4g} per unit weight): weight rounding "
             f"max {100 * self.error['max']:.2f}%, rms {100 * self.error['rms']:.3f}% of the largest weight")
        return (f"layer {self.index} {self.layer.kind} {'x'.join(map(str, s.input_shape))} -> "
                f"{'x'.join(map(str, s.shape))} from {nodes} ({n.type}, gain {n.gain:.6g}): "
                f"{self.current.text('current decay')}; {self.voltage.text('voltage decay')}; {weights}")


def map_layer(index: int, layer: FloatLayer, dt: float) -> LayerMapping:
    n = layer.neuron
    where = f"layer {index} (node '{n.node}')"
    tau_syn = n.params.get("tau_syn")
    current = map_decay(n.current_decay, tau_syn, dt, I_DECAY_MIN, I_DECAY_MAX, where, "tau_syn")
    voltage = map_decay(n.voltage_decay, n.params["tau_mem"], dt, V_DECAY_MIN, V_DECAY_MAX, where, "tau_mem")
    # a recurrent layer's input and recurrent weights feed the same neurons: one scale, one fan-in
    w = layer.weight if layer.recurrent is None else np.concatenate([layer.weight, layer.recurrent], axis=1)
    if not np.any(w):
        raise SpikeshipError(f"{where}: every weight is zero")
    exact = _on_grid(WEIGHT_SCALE * w, WEIGHT_STEP) and _on_grid(WEIGHT_SCALE * n.threshold, 1)
    ints, m = to_grid(w, WEIGHT_SCALE), int(round(WEIGHT_SCALE * n.threshold))
    if not (exact and fits(ints) and VTH_MIN <= m <= VTH_MAX):
        exact = False
        m, ints = largest_fit(w / n.threshold, VTH_MAX)
        if m < VTH_MIN:
            raise SpikeshipError(f"{where}: weights up to {np.abs(w).max():.6g} against a threshold of "
                                 f"{n.threshold:.6g} do not fit 8-bit weights and int16 inputs even at the smallest "
                                 f"threshold mantissa")
    scale = WEIGHT_SCALE if exact else m / n.threshold
    split = layer.weight.shape[1] if layer.recurrent is not None else ints.shape[1]
    weights = (ints[:, :split].reshape(layer.weight.shape),) + ((ints[:, split:],) if layer.recurrent is not None else ())
    return LayerMapping(index, layer, weights, m, current, voltage, float(scale), exact, weight_error(w, ints, scale))


@dataclass(frozen=True, eq=False)
class ReadoutMapping:
    readout: FloatReadout
    weight: np.ndarray
    scale: float
    exact: bool
    error: dict

    def card(self, layers: int) -> dict:
        what = (f"spike count: identity readout of layer {layers - 1}'s spikes, uniform TWO weights"
                if self.readout.spike_count else f"node '{self.readout.node}' kept as the non-spiking readout")
        return {"readout": what, "weight_scale": self.scale, "weights_exact": self.exact, "weight_error": self.error}

    def line(self, layers: int) -> str:
        card = self.card(layers)
        detail = "exact" if self.exact else (f"x{self.scale:.4g}: weight rounding max {100 * self.error['max']:.2f}%, "
                                             f"rms {100 * self.error['rms']:.3f}% of the largest")
        return f"readout {self.weight.shape[1]} -> {self.weight.shape[0]}: {card['readout']} ({detail})"


def map_readout(readout: FloatReadout) -> ReadoutMapping:
    w = readout.weight
    if readout.spike_count:  # the identity at the largest 8-bit weight: the same decision, the widest logit range
        ints = WEIGHT_LIMIT * np.rint(w).astype(np.int64)  # for fine-tuning's cross-entropy
        return ReadoutMapping(readout, ints, float(WEIGHT_LIMIT), True, weight_error(w, ints, WEIGHT_LIMIT))
    if not np.any(w):
        raise SpikeshipError(f"readout (node '{readout.node}'): every weight is zero")
    if _on_grid(WEIGHT_SCALE * w, WEIGHT_STEP):
        ints = to_grid(w, WEIGHT_SCALE)
        if fits(ints):
            return ReadoutMapping(readout, ints, float(WEIGHT_SCALE), True, weight_error(w, ints, WEIGHT_SCALE))
    top = float(np.abs(w).max())
    m, ints = largest_fit(w / top, WEIGHT_LIMIT)
    if m < 1:
        raise SpikeshipError(f"readout (node '{readout.node}'): its weights do not fit 8-bit weights and int16 inputs")
    return ReadoutMapping(readout, ints, m / top, False, weight_error(w, ints, m / top))


@dataclass(frozen=True, eq=False)
class Imported:
    """A NIR graph on Loihi's grid: the training spec (per-layer neurons where they differ) and the integers."""

    spec: ModelSpec
    layers: tuple[LayerMapping, ...]
    readout: ReadoutMapping
    walked: Walked


def map_to_loihi(walked: Walked) -> Imported:
    """Integers and the spec for every layer of ``walked`` (see the module docstring); one line on refusal."""
    dt = walked.dt
    layers = tuple(map_layer(i, layer, dt) for i, layer in enumerate(walked.layers))
    readout = map_readout(walked.readout)
    neurons = [m.neuron_spec for m in layers]
    specs = tuple(replace(m.layer.synapse.spec, neuron=None if n == neurons[0] else n) for m, n in zip(layers, neurons))
    try:
        spec = ModelSpec(tuple(walked.data_shape), int(readout.weight.shape[0]), specs, neurons[0])
    except ValueError as e:
        raise SpikeshipError(f"the graph's layers do not make a spikeship network: {e}") from None
    return Imported(spec, layers, readout, walked)


# ------------------------------------------------------------------------------------------------ the model

def _load(synapse, integers: np.ndarray) -> None:
    target = synapse.weight
    if integers.size != target.numel():
        raise ValueError(f"{integers.size} weights for a synapse of {target.numel()}")
    target.data.copy_(torch.from_numpy(integers / WEIGHT_SCALE).to(target.dtype).reshape(target.shape))


def build_model(imported: Imported) -> SpikeNet:
    """A ``SpikeNet`` of ``imported.spec`` whose synapses hold the mapped integers (``w_int / 64``, which the
    8-bit hook leaves as they are)."""
    model = SpikeNet(imported.spec).eval()
    with torch.no_grad():
        for block, layer in zip(model.blocks, imported.layers):
            targets = synapses(block)
            if len(targets) != len(layer.weights):
                raise ValueError(f"layer {layer.index}: {len(layer.weights)} weight arrays for {len(targets)} synapses")
            for synapse, weight in zip(targets, layer.weights):
                _load(synapse, weight)
        _load(model.readout, imported.readout.weight)
    return model


def two_weights_for(time_steps: int, written: tuple[float, ...] | None) -> np.ndarray:
    """The float TWO weights: those the graph's metadata carries, else uniform (a_t = 1)."""
    if written is None:
        return np.ones(time_steps)
    if len(written) != time_steps:
        raise SpikeshipError(f"the graph's metadata has {len(written)} TWO weights for T = {time_steps} steps")
    return np.asarray(written, dtype=np.float64)


def model_card(imported: Imported, source: Path, dt: float, dt_from: str, two_from: str) -> dict:
    """What was mapped and how (stored in the checkpoint's config under ``import``, so in every ``.net``)."""
    return {"source": str(source), "format": "NIR", "dt": dt, "dt_from": dt_from,
            "discretization": DISCRETIZATION, "reset": RESET, "errors": ERRORS,
            "layers": [m.card() for m in imported.layers],
            **imported.readout.card(len(imported.layers)), "two_weights": two_from}


def save_imported(path: str | Path, imported: Imported, model: SpikeNet, *, two_weights: np.ndarray, dataset: str,
                  data_dir: str | None, class_names, card: dict, metrics: dict | None = None,
                  downsample: int = 1) -> Path:
    """The spikeship checkpoint of an imported network (epoch 0, no training state: ``train --init`` fine-tunes
    it, ``--resume`` does not apply)."""
    from .checkpoint import save_checkpoint

    time_steps = len(two_weights)
    config = {"dataset": dataset, "data_dir": data_dir, "time_steps": time_steps, "sensor_downsample": int(downsample),
              "import": card}
    return save_checkpoint(path, spec=imported.spec, state_dict=model.state_dict(), two_weights=two_weights,
                           dataset=dataset, data_dir=data_dir, time_steps=time_steps, class_names=class_names,
                           config=config, metrics=metrics or {}, epoch=0)
