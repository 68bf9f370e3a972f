"""The fixed-point CUBA step, once, on every kind of operand the runtimes give it (ints, numpy, torch, numba)."""

import numpy as np
import pytest
import torch

from spikeship import fixedpoint
from spikeship.hardware import value
from spikeship.sim import kernels


def step(a, u, v, i_decay, v_decay, vth):
    """One step on one neuron by every path; all must agree. Returns (spike, u, v) as Python values."""
    results = set()
    s, uu, vv = fixedpoint.cuba_step(a, u, v, i_decay, v_decay, vth)  # Python integers
    results.add((bool(s), int(uu), int(vv)))
    s, uu, vv = fixedpoint.cuba_step(np.array([a]), np.array([u]), np.array([v]), i_decay, v_decay, vth)
    results.add((bool(s[0]), int(uu[0]), int(vv[0])))
    s, uu, vv = fixedpoint.cuba_step(torch.tensor([a]), torch.tensor([u]), torch.tensor([v]), i_decay, v_decay, vth)
    results.add((bool(s[0]), int(uu[0]), int(vv[0])))
    uu, vv, ss = np.array([u]), np.array([v]), np.zeros(1, np.uint8)
    kernels.cuba_step(np.array([a]), uu, vv, i_decay, v_decay, vth, ss)
    results.add((bool(ss[0]), int(uu[0]), int(vv[0])))
    assert len(results) == 1, results
    return results.pop()


def test_constants_come_from_the_hardware_table():
    assert fixedpoint.DECAY_UNITY == 1 << value("decay_shift") == 4096
    assert fixedpoint.ACTIVATION_SCALE == 1 << value("activation_shift") == 64
    assert fixedpoint.THRESHOLD_SCALE == 64
    assert fixedpoint.CURRENT_MAX == 2 ** 23 and fixedpoint.CURRENT_RANGE == 2 ** 24
    assert fixedpoint.VOLTAGE_MAX == 2 ** 23 - 1
    assert fixedpoint.SLAYER_STATE_SCALE == 4096


def test_integrates_thresholds_strictly_and_resets():
    # threshold 80 << 6 = 5120
    assert step(100, 0, 0, 1024, 128, 80) == (True, 6400, 0)  # u = 100 << 6; v = 6400 > 5120 -> spike, v = 0
    # u decays by 3072/4096: 6400 -> 4800, plus -30 << 6; v (0) + u
    assert step(-30, 6400, 0, 1024, 128, 80) == (False, 2880, 2880)
    assert step(80, 0, 0, 1024, 128, 80) == (False, 5120, 5120)  # equal to the threshold: no spike (v > vth)
    # v decays by (4096 - 128)/4096: 5000 * 3968 >> 12 = 4843
    assert step(0, 0, 5000, 1024, 128, 80) == (False, 0, 4843)


def test_decay_rounds_toward_zero():
    # -6401 * 3072 / 4096 = -4800.75: Loihi shifts the magnitude, giving -4800 (floor would be -4801)
    assert step(0, -6401, 0, 1024, 0, 1000) == (False, -4800, -4800)


@pytest.mark.parametrize("u, wrapped", [
    (2 ** 23, 2 ** 23),  # the top of Lava's range stays
    (2 ** 23 + 1, -(2 ** 23) + 1),  # above it, 2**24 is subtracted
    (-(2 ** 23) + 1, -(2 ** 23) + 1),  # the bottom stays
    (-(2 ** 23), 2 ** 23),  # at -2**23, 2**24 is added (Lava compares with <=)
    (-(2 ** 23) - 5, 2 ** 23 - 5),
])
def test_current_wraps_as_lava_does_at_the_edges(u, wrapped):
    assert int(fixedpoint.wrap_current(u)) == wrapped
    assert int(fixedpoint.wrap_current(np.array([u]))[0]) == wrapped
    assert int(fixedpoint.wrap_current(torch.tensor([u]))[0]) == wrapped


def test_current_wraps_and_voltage_saturates_in_a_step():
    spiked, u, v = step(140000, 0, 0, 4096, 0, 131071)  # 140000 << 6 = 8,960,000 > 2**23
    assert u == 8_960_000 - (1 << 24) and not spiked
    _, u, v = step(-100000, 0, -6_400_000, 4096, 0, 131071)
    assert u == -6_400_000 and v == -(1 << 23) + 1
    spiked, u, v = step(0, 8_000_000, 8_000_000, 0, 0, 131071)  # v = 16,000,000 saturates, then spikes
    assert (spiked, u, v) == (True, 8_000_000, 0)


def test_in_range_is_exactly_where_wrap_and_clamp_do_nothing():
    m, vm = fixedpoint.CURRENT_MAX, fixedpoint.VOLTAGE_MAX
    assert fixedpoint.in_range(-m + 1, m, -vm, vm)
    assert not fixedpoint.in_range(-m, 0, 0, 0) and not fixedpoint.in_range(0, m + 1, 0, 0)
    assert not fixedpoint.in_range(0, 0, -vm - 1, 0) and not fixedpoint.in_range(0, 0, 0, vm + 1)
    for u in (-m + 1, m):
        assert fixedpoint.wrap_current(u) == u
    for v in (-vm, vm):
        assert fixedpoint.clamp_voltage(v) == v
