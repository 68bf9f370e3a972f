"""Layouts and pipeline delays: the one place that says which step of which runtime is which.

Layouts. slayer (and the emulator, and everything spikeship stores) uses channel-first ``(C, H, W)`` with
time last; netx/Lava conv layers are ``(W, H, C)`` ("XYZ"). Dense layers are ``(F,)`` everywhere, and a
dense layer after a conv layer flattens in ``C, H, W`` order in both (netx transposes WHC to CHW first).

Delays (measured with Lava 0.10 / lava-dl 0.6, ``Loihi2SimCfg(select_tag='fixed_pt')``; the tests in
tests/deploy re-check every one of them spike by spike):

* Canonical per-sample frame, used to name steps in every comparison: ``s_k[tau]`` is the spike output
  of spiking layer ``k`` (0-based, the input spikes feed layer 0's synapse directly) at local step ``tau``
  of an isolated simulation of one sample, before layer ``k``'s own one-step output delay. Layer 0 at
  ``tau`` integrates input ``x[tau]``; layer ``k > 0`` integrates ``s_{k-1}[tau - 1]``. The input is zero
  for ``tau >= T``. Layer ``k`` receives nothing before ``tau = k``, so ``s_k[tau] = 0`` for ``tau < k``.
* Every backend reports layer ``k``'s *window*, ``s_k[tau]`` for ``tau`` in ``[k, k + T)`` (what Lava emits
  for a sample, below); with the zeros before it, the window determines every other view.
* slayer with ``delay_shift=True`` returns ``y_k[t] = s_k[t - 1]`` for ``t`` in ``[0, T)`` (``y_k[0]``
  is fill), so PyTorch sees ``s_k`` over ``[0, T - 1)``: :func:`slayer_view` of the window.
* Lava streams samples back to back (sample ``j`` occupies input steps ``[jT, jT + T)``, global 0-based
  step ``g = time_step - 1``). Each Dense/Conv synapse delays by one step, so layer ``k``'s spikes at ``g``
  are ``s_k[g - jT - 1]``. With ``netx.hdf5.Network(reset_interval=T, reset_offset=RESET_OFFSET)`` layer
  ``k`` is reset at the start of the global steps ``[jT + k + 1, jT + k + 1 + T)``: its *window* for sample
  ``j``, which holds ``s_k[tau]`` for ``tau`` in ``[k, k + T)`` and depends on sample ``j`` alone. Steps
  ``tau < k`` of the isolated view are zero anyway (the input has not reached layer ``k``).
* The readout synapse (a Lava Dense fed by the last layer) adds one more step: at global step ``g`` the TWO
  readout receives ``r_t = W_r @ s_{L-1}[t - 1]`` with ``t = g - jT - 1``, ``t`` in ``[0, T)``. The steps
  ``t < L`` carry the previous sample's spikes (pipeline fill), so their TWO weights must be zero; then the
  readout equals slayer's ``sum_t a_int[t] * 64 * readout[..., t]`` exactly.
* A run of ``N`` samples therefore needs ``N * T + L`` steps (the last layer's last window ends there).
* Recurrent layers (netx ``RecurrentDense``: the neuron's spikes go back to it through a Lava ``Dense``, one
  step late, as slayer's ``R s[t - 1]``): the reset clears the neuron, not that synapse's buffer, which at
  the first step of sample ``j``'s window still delivers the previous sample's last spikes (measured: a spike
  at the last step of one window made the next window's first step spike). So the Lava backend stops the
  run after the step before each later window (:func:`recurrent_clear_steps`) and zeroes that buffer; then
  the window depends on sample ``j`` alone again, as in the isolated frame (``s_k[k - 1] = 0``).
"""

from __future__ import annotations

import numpy as np

#: ``reset_offset`` to give ``netx.hdf5.Network``: layer k resets at time_step = jT + k + 2 (1-based)
RESET_OFFSET = 1
#: global step of a sample's first input is j*T; each synapse adds this many steps
SYNAPSE_DELAY = 1


def lava_steps(num_samples: int, time_steps: int, num_layers: int) -> int:
    """Steps a Lava run needs so that every layer's window and the readout of the last sample complete."""
    return num_samples * time_steps + num_layers


def layer_window(sample: int, layer: int, time_steps: int) -> tuple[int, int]:
    """Global 0-based Lava steps ``[start, stop)`` of layer ``layer``'s window for sample ``sample``."""
    start = sample * time_steps + layer + SYNAPSE_DELAY
    return start, start + time_steps


def recurrent_clear_steps(num_samples: int, time_steps: int, layer: int) -> list[int]:
    """Step counts (time steps completed since the start) after which layer ``layer``'s recurrent synapse buffer
    holds the previous sample's last spikes and must be zeroed: the step before each later window."""
    return [layer_window(j, layer, time_steps)[0] for j in range(1, num_samples)]


def readout_step(global_step: int, time_steps: int) -> tuple[int, int]:
    """``(sample, t)`` of the readout input the TWO process receives at 0-based global step ``g``.

    ``sample`` is negative before the first sample's window."""
    rel = global_step - SYNAPSE_DELAY
    return rel // time_steps, rel % time_steps


def readout_done_step(sample: int, time_steps: int) -> int:
    """Global 0-based step at which the readout of ``sample`` is complete (its ``t = T - 1``)."""
    return sample * time_steps + time_steps - 1 + SYNAPSE_DELAY


def slayer_view(window: np.ndarray, layer: int) -> np.ndarray:
    """From layer ``layer``'s window (``s_k[k : k + T]``, time last) to slayer's delay-shifted ``y_k`` over
    ``[0, T)``: ``y_k[t] = s_k[t - 1]``, zero where ``t - 1 < k``."""
    T = window.shape[-1]
    out = np.zeros(window.shape, dtype=window.dtype)
    if layer + 1 < T:
        out[..., layer + 1:] = window[..., : T - 1 - layer]
    return out


def window_from_slayer(shifted: np.ndarray, layer: int) -> np.ndarray:
    """From slayer's ``y_k`` over ``[0, T)`` to the part of layer ``layer``'s window it holds, ``s_k[tau]`` for
    ``tau`` in ``[k, T - 1)``, as a full-length window with zeros beyond (what PyTorch never computes)."""
    T = shifted.shape[-1]
    out = np.zeros(shifted.shape, dtype=shifted.dtype)
    if layer + 1 < T:
        out[..., : T - 1 - layer] = shifted[..., layer + 1:]
    return out


def chw_to_whc(x: np.ndarray) -> np.ndarray:
    """``(C, H, W, ...)`` to Lava's ``(W, H, C, ...)`` (trailing axes such as time stay in place)."""
    return np.swapaxes(x, 0, 2) if x.ndim >= 3 else x


def whc_to_chw(x: np.ndarray) -> np.ndarray:
    """Lava's ``(W, H, C, ...)`` to ``(C, H, W, ...)``; the inverse of :func:`chw_to_whc`."""
    return np.swapaxes(x, 0, 2) if x.ndim >= 3 else x


def to_lava_layout(shape_chw: tuple[int, ...], x: np.ndarray) -> np.ndarray:
    """One layer's array in spikeship layout ``(*shape_chw, T)`` to Lava's layout (WHC for 3-d shapes)."""
    return chw_to_whc(x) if len(shape_chw) == 3 else x


def from_lava_layout(shape_chw: tuple[int, ...], x: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_lava_layout`."""
    return whc_to_chw(x) if len(shape_chw) == 3 else x
