"""Shared fixtures: tiny real SpikeNets with varied 8-bit weights, and a dense and a conv+pool network exported
to .net files with inputs (helpers in tests/support/nets.py, on the path through pytest's ``pythonpath``)."""

from __future__ import annotations

import pytest
import torch

from nets import conv_pool_dense_spec, dense_spec_tiny, make_case, set_integer_weights
from spikeship.train.model import SpikeNet


@pytest.fixture
def conv_net() -> SpikeNet:
    torch.manual_seed(0)
    return set_integer_weights(SpikeNet(conv_pool_dense_spec()), seed=1)


@pytest.fixture
def dense_net() -> SpikeNet:
    torch.manual_seed(0)
    return set_integer_weights(SpikeNet(dense_spec_tiny()), seed=2)


@pytest.fixture(scope="session")
def dense_case(tmp_path_factory):
    return make_case("dense", tmp_path_factory.mktemp("dense"))


@pytest.fixture(scope="session")
def conv_case(tmp_path_factory):
    return make_case("conv", tmp_path_factory.mktemp("conv"))
