"""Fixtures: tiny real SpikeNets with varied 8-bit weights (see export_nets.py)."""

from __future__ import annotations

import pytest
import torch

from export_nets import conv_pool_dense_spec, dense_spec_tiny, set_integer_weights
from spikeship.train.model import SpikeNet


@pytest.fixture
def conv_net() -> SpikeNet:
    torch.manual_seed(0)
    return set_integer_weights(SpikeNet(conv_pool_dense_spec()), seed=1)


@pytest.fixture
def dense_net() -> SpikeNet:
    torch.manual_seed(0)
    return set_integer_weights(SpikeNet(dense_spec_tiny()), seed=2)
