"""The emulator's ``torch`` engine: dense products in torch, on the CPU or a CUDA device (``--device cuda``).

Dense layers are one GEMM over every step of a chunk's window, convolutions ``unfold`` + GEMM (never
``conv2d``: cuDNN and NNPACK may pick Winograd or FFT algorithms, which transform the operands and are not
exact). The float dtype follows :func:`spikeship.sim.engines.exact_float`; in float32 the weights must also
have at most 8 significant bits (every 8-bit weight has), so the products stay exact even where a global
setting lets GEMMs round their operands to TF32 or bfloat16 (accumulation stays float32). The CUBA neuron
is :func:`spikeship.fixedpoint.cuba_step` on int64 tensors, step by step (a recurrent synapse adds the layer's
spikes of the step before, one GEMM per step). Needs neither Lava nor numba.
"""

from __future__ import annotations

import numpy as np

from .. import fixedpoint
from ..errors import SpikeshipError
from ..network import Layer, Network, recurrent_synapse
from .engines import exact_float, op_name

#: significant bits a float32 GEMM operand keeps even when rounded to bfloat16 (the coarsest mode torch offers)
BF16_SIGNIFICANT_BITS = 8


def significant_bits(weight) -> int:
    """The most significant bits of any integer weight (trailing zero bits do not count)."""
    w = np.abs(np.asarray(weight, dtype=np.int64)).reshape(-1)
    w = w[w != 0]
    if not w.size:
        return 0
    odd = w // (w & -w)  # strip trailing zeros
    return int(np.max(np.floor(np.log2(odd)).astype(np.int64) + 1))


class TorchEngine:
    """Dense products (GEMM, ``unfold`` + GEMM) in torch and int64 neurons, on ``cpu`` or ``cuda``; the chunk
    stays on the device from the input to the last layer."""

    threaded = False  # torch parallelises each operation itself

    def __init__(self, net: Network, device: str = "cpu") -> None:
        import torch

        if device == "cuda" and not torch.cuda.is_available():
            raise SpikeshipError("--device cuda: no CUDA device is available here (use --device cpu)")
        if device not in ("cpu", "cuda"):
            raise SpikeshipError(f"unknown device {device!r}; choose cpu or cuda")
        self.torch, self.device, self.net = torch, torch.device(device), net
        # working memory per chunk: a quarter of what the GPU has free, 256 MiB on the CPU
        self.chunk_bytes = torch.cuda.mem_get_info()[0] // 4 if device == "cuda" else 256 << 20
        self.synapses = [getattr(self, "_" + op_name(layer))(layer) for layer in net.layers]
        self.feedback = [None if rec is None else self._dense(rec) for rec in map(recurrent_synapse, net.layers)]
        self.readout_synapse = self._dense(net.readout)

    def _dtype(self, weight):
        exact32 = exact_float(weight) == np.float32 and significant_bits(weight) <= BF16_SIGNIFICANT_BITS
        return self.torch.float32 if exact32 else self.torch.float64

    def _dense(self, layer: Layer):
        torch = self.torch
        dtype = self._dtype(layer.weight)
        w = torch.from_numpy(np.asarray(layer.weight, dtype=np.float64)).to(self.device, dtype).T.contiguous()

        def apply(src):  # (R, *in) uint8 -> (R, *out) float
            return (src.reshape(src.shape[0], -1).to(dtype) @ w).reshape((src.shape[0],) + tuple(layer.shape))

        return apply

    def _conv(self, layer: Layer):
        torch = self.torch
        g = layer.groups
        out_c, in_per_group, kh, kw = layer.weight.shape
        dtype = self._dtype(layer.weight)
        # (G, out/G, in/G * kH * kW), the row order unfold produces within a group
        w = torch.from_numpy(np.asarray(layer.weight, dtype=np.float64).reshape(g, out_c // g, in_per_group * kh * kw))
        w = w.to(self.device, dtype)
        positions = int(np.prod(layer.shape[1:]))
        rows_per_part = max(1, self.chunk_bytes // 4 // ((g * w.shape[2] + out_c) * positions * 8))

        def apply(src):  # (R, C, H, W) uint8 -> (R, *out) float, in parts that bound unfold's memory
            parts = []
            for lo in range(0, src.shape[0], rows_per_part):
                x = src[lo:lo + rows_per_part].to(dtype)
                cols = torch.nn.functional.unfold(x, (kh, kw), dilation=layer.dilation, padding=layer.padding,
                                                  stride=layer.stride)  # (R, C * kH * kW, P)
                acc = torch.matmul(w, cols.reshape(x.shape[0], g, -1, cols.shape[-1]))  # (R, G, out/G, P)
                parts.append(acc.reshape((x.shape[0],) + tuple(layer.shape)))
            return torch.cat(parts) if len(parts) > 1 else parts[0]

        return apply

    def feed(self, x: np.ndarray):
        return self.torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 0))).to(self.device)  # (T, B, *feed)

    def layer(self, k: int, src):
        torch = self.torch
        layer, n = self.net.layers[k], self.net.layers[k].neuron
        n_t, b = src.shape[:2]
        a = self.synapses[k](src.reshape((n_t * b,) + tuple(src.shape[2:]))).reshape(n_t, b, -1)
        out = torch.empty((n_t, b, layer.num_neurons), dtype=torch.uint8, device=self.device)
        u = torch.zeros((b, layer.num_neurons), dtype=torch.int64, device=self.device)
        v = torch.zeros_like(u)
        for t in range(n_t):
            a_t = a[t].to(torch.int64)
            if self.feedback[k] is not None and t > 0:  # the layer's own spikes of the step before
                a_t = a_t + self.feedback[k](out[t - 1]).to(torch.int64)
            spikes, u, v = fixedpoint.cuba_step(a_t, u, v, n.i_decay, n.v_decay, n.vth_mant)
            out[t] = spikes
        counts = out.sum((0, 2), dtype=torch.int64).cpu().numpy()
        return out.reshape((n_t, b) + tuple(layer.shape)), counts

    def window(self, k: int, spikes) -> np.ndarray:
        return spikes.permute(tuple(range(1, spikes.dim())) + (0,)).cpu().numpy()

    def readout(self, spikes, steps: int) -> np.ndarray:
        b = spikes.shape[1]
        r = self.readout_synapse(spikes[:steps].reshape((steps * b,) + tuple(spikes.shape[2:])))
        return r.reshape(steps, b, -1).to(self.torch.int64).permute(1, 2, 0).cpu().numpy()
