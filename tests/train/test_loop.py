"""The training loop: outputs, exact resume, determinism, and the errors a user can cause."""

import csv
import json

import numpy as np
import pytest
import torch

from spikeship.cli import main as cli_main
from spikeship.errors import SpikeshipError
from spikeship.train import two
from spikeship.train.checkpoint import load_checkpoint
from spikeship.train.data import FramedDataset
from spikeship.train.loop import TrainConfig, _train_epoch, train
from spikeship.train.model import NeuronSpec, SpikeNet, dense_spec
from toy_training import T, _cfg, _data


def test_train_writes_every_output(tmp_path):
    metrics = train(_cfg(tmp_path), data=_data())
    run = tmp_path / "run"
    for name in ("model.pt", "metrics.json", "history.csv", "curves.png", "two_weights.png"):
        assert (run / name).is_file(), name
    assert json.loads((run / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    for key in ("test_accuracy", "train_accuracy", "test_accuracy_quantized_deploy", "epochs", "method",
                "mask_prob", "decode", "two_weights"):
        assert key in metrics
    assert metrics["epochs"] == 3 and metrics["mask_prob"] == 0.5
    assert metrics["test_accuracy"] > 0.6  # the toy task is learnable
    assert abs(sum(metrics["two_weights"]) - T) < 1e-9
    assert metrics["two_weights"] != [1.0] * T  # updated at the starts of epochs 2 and 3
    assert metrics["two_weights_int"] == two.quantize_two_weights(metrics["two_weights"], 1).tolist()
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    ck = load_checkpoint(run / "model.pt")
    assert ck.epoch == 3 and ck.time_steps == T and ck.class_names == ("0", "1", "2")
    assert list(ck.two_weights) == metrics["two_weights"]
    assert ck.config["method"] == "msg"


def test_deploy_decode_uses_the_quantized_weights(tmp_path):
    """test_accuracy_quantized_deploy recomputed by hand from the checkpoint."""
    data = _data()
    metrics = train(_cfg(tmp_path), data=data)
    ck = load_checkpoint(tmp_path / "run" / "model.pt")
    model = ck.build_model()
    a_int = torch.from_numpy(two.quantize_two_weights(ck.two_weights, ck.spec.num_spiking_layers))
    with torch.no_grad():
        readout, _ = model(data[1].spikes.float())
    r = torch.round(readout.double() * 64).to(torch.int64)
    pred = (r * a_int.view(1, 1, -1)).sum(-1).argmax(1)
    assert metrics["test_accuracy_quantized_deploy"] == float((pred == data[1].labels).double().mean())


def _weights(path):
    return load_checkpoint(path).state_dict


@pytest.mark.parametrize("method,decode", [("msg", "two"), ("sg", "mean")])
def test_resume_equals_uninterrupted_run(tmp_path, method, decode):
    data = _data()
    full = train(_cfg(tmp_path / "a", method=method, decode=decode), data=data)
    train(_cfg(tmp_path / "b", method=method, decode=decode), data=data, stop_after=1)
    assert load_checkpoint(tmp_path / "b" / "run" / "model.pt").epoch == 1
    resumed = train(_cfg(tmp_path / "b", method=method, decode=decode, resume=True), data=data)
    wa, wb = _weights(tmp_path / "a" / "run" / "model.pt"), _weights(tmp_path / "b" / "run" / "model.pt")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    for key in ("test_accuracy", "train_accuracy", "two_weights", "final_loss", "test_step_accuracy"):
        assert full[key] == resumed[key], key


def test_deterministic_for_a_seed_and_different_across_seeds(tmp_path):
    data = _data()
    train(_cfg(tmp_path / "a", epochs=1), data=data)
    train(_cfg(tmp_path / "b", epochs=1), data=data)
    train(_cfg(tmp_path / "c", epochs=1, seed=4), data=data)
    wa, wb, wc = (_weights(tmp_path / d / "run" / "model.pt") for d in "abc")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_mean_decode_keeps_weights_at_one(tmp_path):
    metrics = train(_cfg(tmp_path, decode="mean", method="sg"), data=_data())
    assert metrics["two_weights"] == [1.0] * T and metrics["mask_prob"] == 0.0


def test_resume_with_changed_settings_is_refused(tmp_path):
    data = _data()
    train(_cfg(tmp_path, epochs=2), data=data, stop_after=1)
    with pytest.raises(SpikeshipError, match=r"^--resume continues the stored run unchanged; .*lr"):
        train(_cfg(tmp_path, epochs=2, lr=0.5, resume=True), data=data)


def test_nan_loss_names_epoch_and_batch():
    torch.manual_seed(0)
    spec = dense_spec((2, 8, 8), 3, (8,), NeuronSpec(threshold=0.5))
    model = SpikeNet(spec)
    with torch.no_grad():
        model.readout.weight[0, 0] = float("nan")
    tr, _ = _data()
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    cfg = TrainConfig(time_steps=T, batch_size=16, progress=False)
    with pytest.raises(SpikeshipError, match=r"^loss became nan at epoch 2, batch 1; try a lower --lr"):
        _train_epoch(model, opt, tr.spikes, tr.labels, two.initial_weights(T), cfg, 1, torch.device("cpu"))


@pytest.mark.parametrize("kw,message", [
    (dict(method="adam"), "unknown method"),
    (dict(arch="resnet"), "unknown architecture"),
    (dict(decode="max"), "unknown decode"),
    (dict(mask_prob=1.0), "mask probability"),
    (dict(epochs=0), "epochs must be a positive integer"),
    (dict(lr=float("nan")), "learning rate"),
])
def test_config_errors(kw, message):
    with pytest.raises(SpikeshipError, match=message):
        TrainConfig(**kw)


def _cli(capsys, *argv):
    code = cli_main(["train", "--quiet", *argv])
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize("argv,message", [
    (["--dataset", "cifar"], "unknown data set 'cifar'"),
    (["--dataset", "nmnist", "--data-dir", "MISSING"], "nmnist: no such folder"),
    (["--arch", "conv", "--time-steps", "5"], "time steps T=5 must be larger than the number of spiking layers (5)"),
])
def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys, argv, message):
    argv = [str(tmp_path / "missing") if a == "MISSING" else a for a in argv]
    code, err = _cli(capsys, *argv, "--max-samples", "4", "--out", str(tmp_path / "run"))
    assert code == 2
    assert message in err and "\n" not in err


def test_cli_resume_from_corrupt_checkpoint(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.pt").write_bytes(b"\x00" * 100)
    code, err = _cli(capsys, "--resume", "--out", str(tmp_path / "run"))
    assert code == 2 and err.startswith("spikeship: not a spikeship checkpoint:") and "\n" not in err


def test_cli_trains_event_digits_and_resumes(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert cli_main(["train", "--quiet", "--max-samples", "40", "--epochs", "1", "--time-steps", "4",
                     "--out", out]) == 0
    assert load_checkpoint(tmp_path / "run" / "model.pt").dataset == "event-digits"
    # --resume takes the stored settings; flags left out are not compared
    assert cli_main(["train", "--quiet", "--resume", "--out", out]) == 0
    # --epochs may extend a finished run, never shorten it below the epochs done
    assert cli_main(["train", "--quiet", "--resume", "--out", out, "--epochs", "2"]) == 0
    assert load_checkpoint(tmp_path / "run" / "model.pt").epoch == 2
    capsys.readouterr()
    code = cli_main(["train", "--quiet", "--resume", "--out", out, "--epochs", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == (f"spikeship: --resume --epochs 1: {out}/model.pt has trained 2 epochs already; "
                                 f"give --epochs 2 or more")


def test_network_from_toml_config(tmp_path):
    toml = tmp_path / "net.toml"
    toml.write_text('weight_scale = 2.0\n[[layer]]\nkind = "pool"\nkernel = 2\n[[layer]]\nkind = "dense"\n'
                    'features = 12\n[neuron]\nthreshold = 0.5\n')
    metrics = train(_cfg(tmp_path, model_config=str(toml), epochs=1), data=_data())
    ck = load_checkpoint(tmp_path / "run" / "model.pt")
    assert [layer.kind for layer in ck.spec.layers] == ["pool", "dense"]
    assert ck.spec.neuron.threshold == 0.5 and ck.spec.weight_scale == 2.0
    assert metrics["arch"] == f"config:{toml}"
    assert metrics["two_weights_int"][:2] == [0, 0]  # L = 2 steps of pipeline fill


def test_bad_toml_config_is_a_user_error(tmp_path):
    toml = tmp_path / "net.toml"
    toml.write_text('[[layer]]\nkind = "lstm"\n')
    with pytest.raises(SpikeshipError, match="bad model config .*unknown layer kind 'lstm'"):
        train(_cfg(tmp_path, model_config=str(toml)), data=_data())


def test_resume_needs_training_state(tmp_path):
    from spikeship.train.checkpoint import save_checkpoint

    data = _data()
    train(_cfg(tmp_path, epochs=2), data=data, stop_after=1)
    ck = load_checkpoint(tmp_path / "run" / "model.pt")
    save_checkpoint(tmp_path / "run" / "model.pt", spec=ck.spec, state_dict=ck.state_dict, two_weights=ck.two_weights,
                    dataset=ck.dataset, data_dir=None, time_steps=T, class_names=ck.class_names, config=ck.config,
                    epoch=1)  # a model-only checkpoint
    with pytest.raises(SpikeshipError, match="no training state to resume from"):
        train(_cfg(tmp_path, epochs=2, resume=True), data=data)


def test_a_layer_may_have_its_own_neuron(tmp_path):
    """[layer.neuron] in the TOML config: that layer's slayer neuron uses it; the others the model's."""
    from spikeship.train.model import ModelSpec, NeuronSpec, SpikeNet, spec_from_toml

    (tmp_path / "net.toml").write_text('[neuron]\nthreshold = 1.5\n[[layer]]\nkind = "dense"\nfeatures = 4\n'
                                       '[layer.neuron]\nthreshold = 0.5\ncurrent_decay = 0.5\n'
                                       '[[layer]]\nkind = "dense"\nfeatures = 3\n')
    spec = spec_from_toml(tmp_path / "net.toml", (1, 2, 2), 2)
    assert spec.neuron_of(spec.layers[0]) == NeuronSpec(threshold=0.5, current_decay=0.5)
    assert spec.neuron_of(spec.layers[1]) == NeuronSpec(threshold=1.5)
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    net = SpikeNet(spec)
    assert (net.blocks[0].neuron.v_th_mant, net.blocks[1].neuron.v_th_mant) == (32, 96)
    assert float(net.blocks[0].neuron.current_decay) == 2048


@pytest.mark.parametrize("spatial", ['kind = "conv"\nfeatures = 4\nkernel = 3', 'kind = "pool"\nkernel = 2'])
def test_a_recurrent_layer_before_a_spatial_layer_is_refused_by_the_cli(spatial, tmp_path, capsys):
    """recurrent (like dense) flattens its input: conv and pool layers must come before it. One line, exit 2,
    no run folder."""
    toml = tmp_path / "net.toml"
    toml.write_text(f'[[layer]]\nkind = "recurrent"\nfeatures = 8\n[[layer]]\n{spatial}\n')
    out = tmp_path / "run"
    assert cli_main(["train", "--quiet", "--config", str(toml), "--out", str(out), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    kind = spatial.split('"')[1]
    assert err == (f"spikeship: bad model config {toml}: layer 1 ({kind}) takes a (C, H, W) input and cannot follow "
                   f"the recurrent layer before it, whose output is flat (dense and recurrent layers flatten their "
                   f"input, so conv and pool layers go before them)\n")
    assert not out.exists()


def test_recurrent_depth_and_the_speech_preset(tmp_path):
    """--arch speech is one recurrent layer; a TOML of N recurrent layers (with a conv in front, flattened
    like a dense layer's input) is the depth study's network."""
    from spikeship.train.loop import build_spec
    from spikeship.train.model import SpikeNet, spec_from_toml

    spec = build_spec(TrainConfig(arch="speech", time_steps=8), (700, 1, 1), 20)
    assert [(layer.kind, layer.features) for layer in spec.layers] == [("recurrent", 128)]
    layers = '[[layer]]\nkind = "conv"\nfeatures = 2\nkernel = 3\n' + \
        '[[layer]]\nkind = "recurrent"\nfeatures = 6\n' * 3
    (tmp_path / "deep.toml").write_text(layers)
    spec = spec_from_toml(tmp_path / "deep.toml", (1, 5, 5), 3)
    assert spec.layer_shapes() == [(2, 3, 3), (6,), (6,), (6,)]
    net = SpikeNet(spec)
    readout, spikes = net(torch.ones(2, 1, 5, 5, 6))
    assert [tuple(s.shape) for s in spikes] == [(2, 2, 3, 3, 6), (2, 6, 6), (2, 6, 6), (2, 6, 6)]
