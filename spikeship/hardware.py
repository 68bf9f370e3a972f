"""Every hardware number spikeship uses, in one table, each with its unit and source.

Limits are Loihi 1's (Davies et al., "Loihi: A Neuromorphic Manycore Processor with On-Chip Learning",
IEEE Micro 38(1), 2018) and the fixed-point widths that Lava's bit-accurate LIF model and lava-dl slayer
implement (the executable definition we check parity against). Energy per operation: Davies et al. 2018,
Table 2, and Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014 (45 nm).
A wrong figure is a one-line fix here; nothing else in the code base holds a hardware number.

Pure data, no I/O: ``lookup(name)`` returns the record, ``value(name)`` its value.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HardwareConstant:
    """One published or implemented figure: ``value`` in ``unit``, and where it comes from."""

    name: str
    value: float | int
    unit: str
    source: str
    note: str = ""

    def __post_init__(self) -> None:
        if not self.name or not self.unit or not self.source:
            raise ValueError(f"hardware constant {self.name!r} needs a name, a unit and a source")


DAVIES = "Davies et al., IEEE Micro 38(1), 2018"
DAVIES_T1 = DAVIES + ", Table 1 (as commonly cited)"
DAVIES_T2 = DAVIES + ", Table 2 (pre-silicon SDF/SPICE, consistent with early silicon)"
HOROWITZ = "Horowitz, ISSCC 2014, 45 nm"
LAVA_LIF = "Lava lava/proc/lif/models.py AbstractPyLifModelFixed (bit-accurate Loihi LIF)"
SLAYER_Q = "lava-dl slayer neuron/base.py quantize_8bit (step 2/64, clamp [-256, 254]/64)"

_TABLE: tuple[HardwareConstant, ...] = (
    # --- resources (Loihi 1) ---
    HardwareConstant("cores_per_chip", 128, "cores", DAVIES),
    HardwareConstant("neurons_per_core", 1024, "compartments", DAVIES, "131,072 per chip"),
    HardwareConstant("synaptic_memory_per_core", 128 * 1024, "bytes", DAVIES, "16 MB per chip"),
    HardwareConstant("fan_in_axons_per_core", 4096, "axons", DAVIES_T1),
    HardwareConstant("fan_out_axons_per_core", 4096, "axons", DAVIES_T1),
    # --- fixed-point widths ---
    HardwareConstant("weight_bits", 8, "bits", DAVIES, "Loihi synaptic weights are 1-8 bits; here 8"),
    HardwareConstant("weight_min", -256, "weight units (w_int)", SLAYER_Q,
                     "8-bit mantissa with one extra shift: even integers only"),
    HardwareConstant("weight_max", 254, "weight units (w_int)", SLAYER_Q),
    HardwareConstant("weight_step", 2, "weight units (w_int)", SLAYER_Q, "weights are even integers"),
    HardwareConstant("weight_scale", 64, "w_int per slayer weight 1.0", SLAYER_Q, "slayer CUBA scale = 1 << 6"),
    HardwareConstant("synaptic_input_min", -(1 << 15), "weight units per step", LAVA_LIF,
                     "a_in is int16: the per-step sum of weights of spiking inputs"),
    HardwareConstant("synaptic_input_max", (1 << 15) - 1, "weight units per step", LAVA_LIF),
    HardwareConstant("activation_shift", 6, "bits", LAVA_LIF, "input is left-shifted by 6 into the current"),
    HardwareConstant("threshold_shift", 6, "bits", LAVA_LIF, "a neuron spikes when v > vThMant << 6"),
    HardwareConstant("current_bits", 24, "bits", LAVA_LIF,
                     "u is kept in (-2**23, 2**23]: above, 2**24 is subtracted; at or below -2**23, added"),
    HardwareConstant("voltage_bits", 24, "bits", LAVA_LIF, "v saturates at +-(2**23 - 1)"),
    HardwareConstant("vth_mant_min", 1, "threshold units (<< 6)", LAVA_LIF,
                     "0 would make every neuron spike on any positive voltage"),
    HardwareConstant("vth_mant_max", (1 << 17) - 1, "threshold units (<< 6)", LAVA_LIF, "vth is 17 bits"),
    HardwareConstant("current_decay_min", 1, "1/4096 per step", LAVA_LIF + "; lava-dl netx hdf5.py",
                     "netx writes du = iDecay - 1 (12-bit unsigned); Lava adds ds_offset 1 back"),
    HardwareConstant("current_decay_max", 4096, "1/4096 per step", LAVA_LIF, "du 4095 + ds_offset 1"),
    HardwareConstant("voltage_decay_min", 0, "1/4096 per step", LAVA_LIF),
    HardwareConstant("voltage_decay_max", 4096, "1/4096 per step", LAVA_LIF,
                     "slayer clamps decays to [0, 4096]; Lava's model takes dv = 4096 (no decay offset)"),
    HardwareConstant("decay_shift", 12, "bits", LAVA_LIF, "decays are in units of 1/4096"),
    HardwareConstant("ref_delay", 1, "steps", "lava-dl slayer neuron/cuba.py ref_delay (fixed at 1)"),
    HardwareConstant("two_weight_scale", 64, "a_int per TWO weight 1.0", "spikeship deploy/procs/two_readout.py",
                     "the TWO readout process accumulates integers a_int[t] = round(64 a_t)"),
    # --- energy per operation: Loihi 1 ---
    HardwareConstant("loihi_synop_energy", 23.6, "pJ", DAVIES_T2, "synaptic spike operation (minimum)"),
    HardwareConstant("loihi_synop_time", 3.5, "ns", DAVIES_T2),
    HardwareConstant("loihi_synupdate_energy", 120.0, "pJ", DAVIES_T2, "learning; unused here"),
    HardwareConstant("loihi_synupdate_time", 6.1, "ns", DAVIES_T2),
    HardwareConstant("loihi_neuron_update_active_energy", 81.0, "pJ", DAVIES_T2),
    HardwareConstant("loihi_neuron_update_active_time", 8.4, "ns", DAVIES_T2),
    HardwareConstant("loihi_neuron_update_inactive_energy", 52.0, "pJ", DAVIES_T2),
    HardwareConstant("loihi_neuron_update_inactive_time", 5.3, "ns", DAVIES_T2),
    HardwareConstant("loihi_spike_in_tile_energy", 1.7, "pJ", DAVIES_T2),
    HardwareConstant("loihi_spike_in_tile_time", 2.1, "ns", DAVIES_T2),
    HardwareConstant("loihi_tile_hop_ew_energy", 3.0, "pJ", DAVIES_T2),
    HardwareConstant("loihi_tile_hop_ew_time", 4.1, "ns", DAVIES_T2),
    HardwareConstant("loihi_tile_hop_ns_energy", 4.0, "pJ", DAVIES_T2),
    HardwareConstant("loihi_tile_hop_ns_time", 6.5, "ns", DAVIES_T2),
    # --- energy per operation: conventional accelerator reference ---
    HardwareConstant("fp32_mac_energy", 4.6, "pJ", HOROWITZ),
    HardwareConstant("fp32_ac_energy", 0.9, "pJ", HOROWITZ),
    HardwareConstant("fp16_mac_energy", 1.5, "pJ", HOROWITZ),
    HardwareConstant("fp16_ac_energy", 0.4, "pJ", HOROWITZ),
    HardwareConstant("int8_mac_energy", 0.23, "pJ", HOROWITZ),
    HardwareConstant("int8_ac_energy", 0.03, "pJ", HOROWITZ),
)

HARDWARE: dict[str, HardwareConstant] = {c.name: c for c in _TABLE}
if len(HARDWARE) != len(_TABLE):  # pragma: no cover - guards the table itself
    raise RuntimeError("duplicate name in the hardware table")

#: Loihi 2 has no published per-operation energy figures; reports must say so instead of inventing them.
LOIHI2_ENERGY_NOTE = "No per-operation energy figures are published for Loihi 2."


def lookup(name: str) -> HardwareConstant:
    """The record called ``name``; KeyError naming the known ones otherwise."""
    try:
        return HARDWARE[name]
    except KeyError:
        raise KeyError(f"no hardware constant {name!r}; known: {', '.join(sorted(HARDWARE))}") from None


def value(name: str) -> float | int:
    """The value of the constant called ``name``."""
    return lookup(name).value
