"""Input and output through ``.npy`` files the process models memory-map, instead of Lava Vars.

``Var.get``/``Var.set`` move data element by element through the runtime (measured: about 27 us per
element; 32 s for one 2312 x 512 input chunk), which would dominate any run. These processes read their
input stream from, and write spikes or per-step counts into, ``.npy`` files the caller creates and reads.

* :class:`StreamSource`: sends ``stream[time_step - 1]`` of a ``(steps, *shape)`` array, zeros after it.
* :class:`SpikeRecorder`: writes each step's input into ``spikes[time_step - 1]`` (``(steps, *shape)``,
  uint8) when ``spikes_path`` is given, and its sum into ``counts[time_step - 1]`` (``(steps,)``, int64).
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class StreamSource(AbstractProcess):
    def __init__(self, *, shape: tuple, path: str) -> None:
        super().__init__(shape=tuple(shape), path=str(path))
        self.s_out = OutPort(shape=tuple(shape))


@implements(proc=StreamSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyStreamSourceFixed(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.stream = np.load(proc_params["path"], mmap_mode="r")
        self.zeros = np.zeros(proc_params["shape"], np.int32)

    def run_spk(self) -> None:
        g = int(self.time_step) - 1
        self.s_out.send(self.stream[g].astype(np.int32) if g < self.stream.shape[0] else self.zeros)


class SpikeRecorder(AbstractProcess):
    def __init__(self, *, shape: tuple, counts_path: str, spikes_path: str | None = None) -> None:
        super().__init__(shape=tuple(shape), counts_path=str(counts_path),
                         spikes_path=None if spikes_path is None else str(spikes_path))
        self.a_in = InPort(shape=tuple(shape))


@implements(proc=SpikeRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeRecorderFixed(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.counts = np.load(proc_params["counts_path"], mmap_mode="r+")
        path = proc_params["spikes_path"]
        self.spikes = None if path is None else np.load(path, mmap_mode="r+")

    def run_spk(self) -> None:
        data = self.a_in.recv()
        g = int(self.time_step) - 1
        if g < self.counts.shape[0]:
            self.counts[g] = int(np.count_nonzero(data))
            if self.spikes is not None:
                self.spikes[g] = data != 0
