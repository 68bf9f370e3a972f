"""TWO readout as a Lava process: per-class integer accumulation of ``a_int[w] * input``.

It receives the readout synapse's integer output every step (a standard Lava Dense fed by the last netx
layer). ``w`` is the step within the readout's window: at 1-based ``time_step`` the input belongs to step
``t = (time_step - 1 - offset) mod T`` of sample ``(time_step - 1 - offset) // T`` (``offset`` from
``spikeship.sim.layout``). The accumulator clears at ``t = 0`` and is written to row ``sample`` of the
``(N, classes)`` int64 ``.npy`` file ``results_path`` at ``t = T - 1`` (a memory map: Lava's ``Var.get``
moves data element by element), where the caller reads it after the run.

This folder holds only Lava processes: Lava's compiler imports every ``.py`` file next to a custom process.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class TwoReadout(AbstractProcess):
    """Integer TWO accumulation. ``two_weights``: ``(T,)`` integers; ``results_path``: an existing ``.npy``
    file of shape ``(N, classes)``, int64; ``offset``: steps between a sample's first input step and its
    readout step ``t = 0``."""

    def __init__(self, *, num_classes: int, two_weights: np.ndarray, results_path: str, offset: int) -> None:
        two = np.asarray(two_weights, dtype=np.int64).reshape(-1)
        super().__init__(num_classes=num_classes, time_steps=int(two.shape[0]), results_path=str(results_path),
                         offset=offset)
        self.a_in = InPort(shape=(num_classes,))
        self.two_weights = Var(shape=two.shape, init=two)
        self.acc = Var(shape=(num_classes,), init=np.zeros(num_classes, np.int64))


@implements(proc=TwoReadout, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyTwoReadoutFixed(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    two_weights: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=64)
    acc: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=64)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.time_steps = int(proc_params["time_steps"])
        self.results = np.load(proc_params["results_path"], mmap_mode="r+")
        self.window_offset = int(proc_params["offset"])

    def run_spk(self) -> None:
        x = self.a_in.recv().astype(np.int64)
        rel = int(self.time_step) - 1 - self.window_offset
        sample, t = divmod(rel, self.time_steps)
        if t == 0:
            self.acc[:] = 0
        self.acc[:] += np.int64(self.two_weights[t]) * x
        if t == self.time_steps - 1 and 0 <= sample < self.results.shape[0]:
            self.results[sample] = self.acc
