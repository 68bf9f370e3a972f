"""Shared fixtures: tiny real SpikeNets with varied 8-bit weights, and networks exported to .net files with
inputs: dense, conv+pool, recurrent only, dense -> recurrent -> dense, conv -> recurrent (helpers in
tests/support/nets.py, on the path through pytest's ``pythonpath``)."""

from __future__ import annotations

import pytest
import torch

from nets import NETS, conv_pool_dense_spec, dense_spec_tiny, make_case, recurrent_spec_tiny, set_integer_weights
from spikeship.train.model import SpikeNet


@pytest.fixture
def conv_net() -> SpikeNet:
    torch.manual_seed(0)
    return set_integer_weights(SpikeNet(conv_pool_dense_spec()), seed=1)


@pytest.fixture
def dense_net() -> SpikeNet:
    torch.manual_seed(0)
    return set_integer_weights(SpikeNet(dense_spec_tiny()), seed=2)


@pytest.fixture
def recurrent_net() -> SpikeNet:
    torch.manual_seed(0)
    return set_integer_weights(SpikeNet(recurrent_spec_tiny()), seed=3)


def _case_fixture(name: str):
    """``<name>_case``: ``nets.NETS[name]`` exported to a .net file with inputs, once per session."""

    @pytest.fixture(scope="session", name=f"{name}_case")
    def case(tmp_path_factory):
        return make_case(name, tmp_path_factory.mktemp(name))

    return case


# dense_case, conv_case, recurrent_case, mixed_case, conv_recurrent_case
for _name in NETS:
    globals()[f"{_name}_case"] = _case_fixture(_name)
