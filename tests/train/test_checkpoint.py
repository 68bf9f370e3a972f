"""Checkpoint round trip and the errors a user can cause with a bad file."""

import random

import pytest
import torch

from spikeship.errors import SpikeshipError
from spikeship.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from spikeship.train.model import NeuronSpec, SpikeNet, dense_spec

T = 6


def _tiny():
    torch.manual_seed(0)
    spec = dense_spec((2, 4, 4), 3, (8,), NeuronSpec(threshold=0.5))
    return spec, SpikeNet(spec)


def _save(path, spec, model, **extra):
    return save_checkpoint(path, spec=spec, state_dict=model.state_dict(), two_weights=[0.5, 1.5, 1, 1, 1, 1],
                           dataset="event-digits", data_dir=None, time_steps=T, class_names=["a", "b", "c"],
                           config={"lr": 0.01}, metrics={"test_accuracy": 0.5}, epoch=3, **extra)


def test_round_trip_rebuilds_the_same_model(tmp_path):
    spec, model = _tiny()
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    model(torch.ones(1, 2, 4, 4, T))[0].sum().backward()
    opt.step()
    rng = {"torch": torch.get_rng_state(), "python": [list(random.getstate()[1])]}
    path = _save(tmp_path / "model.pt", spec, model, optimizer_state=opt.state_dict(), rng_state=rng)
    ck = load_checkpoint(path)
    assert isinstance(ck, Checkpoint)
    assert ck.spec == spec
    assert ck.two_weights == (0.5, 1.5, 1.0, 1.0, 1.0, 1.0)
    assert (ck.dataset, ck.data_dir, ck.time_steps, ck.epoch) == ("event-digits", None, T, 3)
    assert ck.class_names == ("a", "b", "c")
    assert ck.config == {"lr": 0.01} and ck.metrics == {"test_accuracy": 0.5}
    assert torch.equal(ck.rng_state["torch"], rng["torch"])
    opt2 = torch.optim.AdamW(model.parameters(), lr=0.01)
    opt2.load_state_dict(ck.optimizer_state)  # loadable as is
    rebuilt = ck.build_model()
    assert not rebuilt.training
    x = (torch.rand(2, 2, 4, 4, T, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    model.eval()
    with torch.no_grad():
        assert torch.equal(rebuilt(x)[0], model(x)[0])
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary left behind


@pytest.mark.parametrize("content", [b"", b"garbage", None, "truncated"])
def test_bad_files_raise_one_line(tmp_path, content):
    path = tmp_path / "model.pt"
    if content is None:
        torch.save({"weights": torch.zeros(3)}, path)
    elif content == "truncated":
        spec, model = _tiny()
        _save(tmp_path / "good.pt", spec, model)
        path.write_bytes((tmp_path / "good.pt").read_bytes()[:2000])
    else:
        path.write_bytes(content)
    with pytest.raises(SpikeshipError, match="^not a spikeship checkpoint: ") as e:
        load_checkpoint(path)
    assert "\n" not in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(SpikeshipError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_two_weights_length_must_match(tmp_path):
    spec, model = _tiny()
    with pytest.raises(ValueError, match="two_weights"):
        save_checkpoint(tmp_path / "m.pt", spec=spec, state_dict=model.state_dict(), two_weights=[1.0] * 3,
                        dataset="x", data_dir=None, time_steps=T, class_names=["a", "b", "c"])
