"""snnTorch 1.0 networks as NIR graphs and their spikes (tests and bench/nir_snntorch.py).

snnTorch's ``export_to_nir`` of a ``Synaptic`` stack fails nir 1.0.8's type inference (its CubaLIF parameters are
per-layer scalars), so a graph is assembled from the nodes snnTorch's exporter writes for each module
(``snntorch.export_nir._extract_snntorch_module``): exactly what snnTorch writes, Input and Output added."""

from __future__ import annotations

import numpy as np
import torch

#: the only snnTorch reset that Loihi's CUBA (and NIR, which has no reset-mode field) runs the same way
FAITHFUL = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)


def snntorch_graph(net: torch.nn.Sequential, input_shape, outputs: int):
    import nir
    from snntorch.export_nir import _extract_snntorch_module

    nodes = {"input": nir.Input(input_type=np.asarray(input_shape))}
    for i, module in enumerate(net):
        node = _extract_snntorch_module(module)
        if isinstance(node, nir.Flatten):  # snnTorch leaves its input type to nirtorch's tracing
            node = nir.Flatten(input_type={"input": np.asarray(input_shape)}, start_dim=node.start_dim,
                               end_dim=node.end_dim)
        nodes[str(i)] = node
    nodes["output"] = nir.Output(output_type=np.asarray([outputs]))
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), type_check=False)


def snntorch_spikes(net: torch.nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """Every spiking module's output per step, ``(N, *shape, T)``, from zero state; ``x`` is ``(N, *input, T)``."""
    import snntorch as snn

    for module in net:
        if isinstance(module, snn.SpikingNeuron):
            module.reset_mem()
    steps: dict[int, list] = {}
    for t in range(x.shape[-1]):
        h = x[..., t]
        for i, module in enumerate(net):
            h = module(h)
            if isinstance(module, snn.SpikingNeuron):
                steps.setdefault(i, []).append(h)
    return [torch.stack(s, -1) for _, s in sorted(steps.items())]
