"""Fixtures: a dense and a conv+pool network (random SpikeNets exported with export.netx) and inputs."""

from __future__ import annotations

import pytest

from spikeship.sim.testnets import make_case


@pytest.fixture(scope="session")
def dense_case(tmp_path_factory):
    return make_case("dense", tmp_path_factory.mktemp("dense"))


@pytest.fixture(scope="session")
def conv_case(tmp_path_factory):
    return make_case("conv", tmp_path_factory.mktemp("conv"))
