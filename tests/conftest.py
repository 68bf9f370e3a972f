"""Shared fixtures: tiny real SpikeNets with varied 8-bit weights, and networks exported to .net files with
inputs: dense, conv+pool, recurrent only, dense -> recurrent -> dense, conv -> recurrent (helpers in
tests/support/nets.py, on the path through pytest's ``pythonpath``)."""

from __future__ import annotations

import pytest
import torch

from nets import conv_pool_dense_spec, dense_spec_tiny, make_case, recurrent_spec_tiny, set_integer_weights
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


@pytest.fixture(scope="session")
def dense_case(tmp_path_factory):
    return make_case("dense", tmp_path_factory.mktemp("dense"))


@pytest.fixture(scope="session")
def conv_case(tmp_path_factory):
    return make_case("conv", tmp_path_factory.mktemp("conv"))


@pytest.fixture(scope="session")
def recurrent_case(tmp_path_factory):
    return make_case("recurrent", tmp_path_factory.mktemp("recurrent"))


@pytest.fixture(scope="session")
def mixed_case(tmp_path_factory):
    return make_case("mixed", tmp_path_factory.mktemp("mixed"))


@pytest.fixture(scope="session")
def conv_recurrent_case(tmp_path_factory):
    return make_case("conv_recurrent", tmp_path_factory.mktemp("conv_recurrent"))
