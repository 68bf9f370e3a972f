"""The hardware table: every figure has a unit and a source, and holds the published value."""

from __future__ import annotations

import dataclasses

import pytest

from spikeship import hardware
from spikeship.hardware import HARDWARE, HardwareConstant, lookup, value


def test_every_constant_is_sourced():
    assert len(HARDWARE) >= 30
    for name, c in HARDWARE.items():
        assert c.name == name and c.unit and c.source
        assert isinstance(c.value, (int, float))


@pytest.mark.parametrize("name, expected, unit", [
    ("cores_per_chip", 128, "cores"),
    ("neurons_per_core", 1024, "compartments"),
    ("synaptic_memory_per_core", 131072, "bytes"),
    ("fan_in_axons_per_core", 4096, "axons"),
    ("fan_out_axons_per_core", 4096, "axons"),
    ("weight_bits", 8, "bits"),
    ("weight_min", -256, "weight units (w_int)"),
    ("weight_max", 254, "weight units (w_int)"),
    ("synaptic_input_min", -32768, "weight units per step"),
    ("synaptic_input_max", 32767, "weight units per step"),
    ("current_bits", 24, "bits"),
    ("voltage_bits", 24, "bits"),
    ("vth_mant_max", 131071, "threshold units (<< 6)"),
    ("current_decay_min", 1, "1/4096 per step"),
    ("voltage_decay_max", 4096, "1/4096 per step"),
    ("loihi_synop_energy", 23.6, "pJ"),
    ("loihi_synupdate_energy", 120.0, "pJ"),
    ("loihi_neuron_update_active_energy", 81.0, "pJ"),
    ("loihi_neuron_update_inactive_energy", 52.0, "pJ"),
    ("loihi_spike_in_tile_energy", 1.7, "pJ"),
    ("loihi_tile_hop_ew_energy", 3.0, "pJ"),
    ("loihi_tile_hop_ns_energy", 4.0, "pJ"),
    ("loihi_synop_time", 3.5, "ns"),
    ("fp32_mac_energy", 4.6, "pJ"),
    ("fp32_ac_energy", 0.9, "pJ"),
    ("fp16_mac_energy", 1.5, "pJ"),
    ("fp16_ac_energy", 0.4, "pJ"),
    ("int8_mac_energy", 0.23, "pJ"),
    ("int8_ac_energy", 0.03, "pJ"),
])
def test_published_values(name, expected, unit):
    c = lookup(name)
    assert c.value == expected and c.unit == unit and value(name) == expected


def test_sources_name_the_papers():
    assert "Davies" in lookup("loihi_synop_energy").source and "Table 2" in lookup("loihi_synop_energy").source
    assert "Horowitz, ISSCC 2014" in lookup("int8_ac_energy").source
    assert "Table 1" in lookup("fan_in_axons_per_core").source
    assert "Lava" in lookup("synaptic_input_max").source


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="no hardware constant 'bogus'; known: .*cores_per_chip"):
        lookup("bogus")


def test_records_are_frozen_and_need_a_source():
    with pytest.raises(dataclasses.FrozenInstanceError):
        lookup("cores_per_chip").value = 256
    with pytest.raises(ValueError):
        HardwareConstant("x", 1, "bits", "")
    assert "Loihi 2" in hardware.LOIHI2_ENERGY_NOTE
