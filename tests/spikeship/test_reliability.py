"""Faults and bad input as users meet them, through the real CLI in a subprocess: one line on stderr, exit 2,
no output file left behind (docs/RELIABILITY.md lists every case and the test that keeps it)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from cli_run import spikeship
from nets import make_case, make_checkpoint_case
from tonic_files import write_nmnist_bin


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return make_checkpoint_case(tmp_path_factory.mktemp("ckpt"))


def test_parity_of_a_checkpoint_and_a_net_of_different_networks(exported, tmp_path):
    ckpt, _ = exported
    other, *_ = make_case("dense", tmp_path, time_steps=8)  # another network, same T
    done = spikeship("parity", ckpt, other, "--samples", "4", "--out", tmp_path / "p.json", "--no-progress")
    assert done.code == 2
    assert "the checkpoint and the .net file are different networks: input (2, 34, 34) vs (2, 4, 4)" \
        in done.error_line
    assert not (tmp_path / "p.json").exists()


@pytest.fixture
def immutable(tmp_path):
    """A folder nobody may write into, root included (chattr +i); skipped where the file system has no such
    attribute."""
    folder = tmp_path / "immutable"
    folder.mkdir()
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
        pytest.skip("no immutable folders here (chattr +i)")
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.parametrize("plot, message", [
    ("missing/raster.png", "output folder does not exist"),
    ("p.json", "--plot {}: expected a .png file name"),
])
def test_parity_plot_paths_that_cannot_be_written_fail_before_running(exported, tmp_path, plot, message):
    ckpt, net = exported
    out = tmp_path / "parity.json"
    done = spikeship("parity", ckpt, net, "--samples", "2", "--out", out, "--plot", tmp_path / plot, "--no-progress")
    assert done.code == 2 and message.format(tmp_path / plot) in done.error_line
    assert not out.exists() and not (tmp_path / "p.json").exists()


def test_parity_plot_into_an_immutable_folder(exported, tmp_path, immutable):
    ckpt, net = exported
    done = spikeship("parity", ckpt, net, "--samples", "2", "--out", tmp_path / "parity.json",
                     "--plot", immutable / "raster.png", "--no-progress")
    assert done.code == 2 and done.error_line.startswith(f"spikeship: cannot write {immutable / 'raster.png'}: ")
    assert not (tmp_path / "parity.json").exists()


def _nmnist(root, content_of):
    for split, digit in (("Train", 3), ("Train", 7), ("Test", 3)):
        path = root / f"NMNIST/{split}/{digit}/a.bin"
        write_nmnist_bin(path, [1, 2], [3, 4], [10, 20], [0, 1])
        content = content_of(split, digit)
        if content is not None:
            path.write_bytes(content)
    return root


@pytest.mark.parametrize("content, message", [
    (bytes(range(256)) * 4 + b"xyz", "holds 1027 bytes, not whole 5-byte N-MNIST events"),
    (bytes([200, 1, 0, 0, 5]) * 3, "event x=200 is not x in [0, 34); the file does not hold this data set's events"),
    (b"", "none of the 2 samples of the train split holds an event"),
])
def test_nmnist_files_with_garbage_or_no_events(tmp_path, content, message):
    data = _nmnist(tmp_path / "data", lambda split, digit: content if split == "Train" else None)
    done = spikeship("train", "--dataset", "nmnist", "--data-dir", data, "--epochs", "1", "--time-steps", "4",
                     "--out", tmp_path / "run", "--quiet")
    assert done.code == 2 and message in done.error_line
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_run_on_a_garbage_nmnist_folder(exported, tmp_path):
    data = _nmnist(tmp_path / "data", lambda split, digit: bytes([1, 99, 0, 0, 5]) * 2 if split == "Test" else None)
    _, net = exported
    done = spikeship("run", net, "--dataset", "nmnist", "--data-dir", data, "--backend", "emulator",
                     "--out", tmp_path / "run.json", "--no-progress")
    assert done.code == 2 and "event y=99 is not y in [0, 34)" in done.error_line
    assert not (tmp_path / "run.json").exists()


def test_export_to_an_onnx_folder_writes_neither_file(exported, tmp_path):
    ckpt, _ = exported
    (tmp_path / "m.onnx").mkdir()
    done = spikeship("export", ckpt, "--out", tmp_path / "m.net", "--onnx", tmp_path / "m.onnx")
    assert done.code == 2 and done.error_line == f"spikeship: cannot write {tmp_path / 'm.onnx'}: it is a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_inspect_of_a_file_that_fails_the_checks_exits_2(exported, tmp_path):
    import h5py

    _, net = exported
    bad = tmp_path / "bad.net"
    shutil.copy(net, bad)
    with h5py.File(bad, "a") as f:
        f["spikeship/readout/two_weights"][0] = 7
    done = spikeship("export", "--inspect", bad)
    assert done.code == 2 and "TWO weights (x64): 7 " in done.out
    assert "fails the checks: readout: the TWO weights of the first 2 steps (pipeline fill) must be zero" \
        in done.error_line


def test_run_without_dataset_takes_the_model_cards(exported, tmp_path):
    _, net = exported
    done = spikeship("run", net, "--samples", "3", "--backend", "emulator", "--out", tmp_path / "r.json",
                     "--no-progress")
    assert done.code == 0, done.err
    assert json.loads((tmp_path / "r.json").read_text())["dataset"] == "event-digits"


@pytest.mark.parametrize("command", [["train", "--epochs", "1", "--max-samples", "20", "--quiet"],
                                     ["demo", "--epochs", "1"]])
def test_out_naming_an_existing_file(tmp_path, command):
    (tmp_path / "afile").write_text("mine\n")
    done = spikeship(*command, "--out", tmp_path / "afile")
    assert done.code == 2
    assert done.error_line.endswith(f"--out {tmp_path / 'afile'} is a file; "
                                    f"{'a training run' if command[0] == 'train' else 'the demo'} needs a folder")
    assert (tmp_path / "afile").read_text() == "mine\n"


def test_report_out_naming_an_existing_file(exported, tmp_path):
    (tmp_path / "afile").write_text("mine\n")
    done = spikeship("report", exported[1], "--samples", "2", "--out", tmp_path / "afile")
    assert done.code == 2 and done.error_line.endswith("is a file; the report needs a folder")


@pytest.mark.parametrize("where", ["inside", "itself"])
def test_train_into_an_immutable_folder_fails_before_any_epoch(immutable, where):
    out = immutable / "run" if where == "inside" else immutable
    done = spikeship("train", "--epochs", "1", "--max-samples", "20", "--quiet", "--out", out)
    assert done.code == 2
    expected = (f"cannot create the folder {out}: " if where == "inside" else f"cannot write into the folder {out}: ")
    assert done.error_line.startswith("spikeship: " + expected)
    assert "epoch" not in done.out


def _in_process(capsys, *argv) -> tuple[int, str]:
    """The CLI in this process (cheaper than a subprocess): exit code and the one line on stderr."""
    from spikeship.cli import main

    capsys.readouterr()
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("spikeship: "), err
    return code, err.strip()


@pytest.mark.parametrize("where", ["report", "a/b/report"])
def test_a_failed_report_leaves_no_folder_behind(exported, tmp_path, capsys, where):
    _, net = exported
    code, err = _in_process(capsys, "report", net, "--samples", "100000", "--out", tmp_path / where)
    assert code == 2 and "asked for 100000 samples" in err
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "mine").mkdir()  # a folder that was there before stays
    code, _ = _in_process(capsys, "report", net, "--samples", "100000", "--out", tmp_path / "mine")
    assert code == 2 and (tmp_path / "mine").is_dir()


def _dvsgesture(root, bad):
    from tonic_files import write_dvsgesture_npy

    write_dvsgesture_npy(root / "DVSGesture/ibmGestureTrain/user01_led/0.npy", [1, 2], [1, 2], [0, 1], [0, 5])
    write_dvsgesture_npy(root / "DVSGesture/ibmGestureTest/user24_led/0.npy", [1], [1], [1], [1])
    path = root / "DVSGesture/ibmGestureTrain/user02_led/3.npy"
    path.parent.mkdir(parents=True)
    if bad == "garbage":
        path.write_bytes(b"not an npy file at all")
    elif bad == "shape":
        import numpy as np

        np.save(path, np.zeros((5, 3), dtype=np.int64))
    else:
        write_dvsgesture_npy(path, [200, 3], [1, 2], [0, 1], [0, 5])
    return root


@pytest.mark.parametrize("bad, message", [
    ("garbage", "ibmGestureTrain/user02_led/3.npy is not a readable .npy array"),
    ("shape", "ibmGestureTrain/user02_led/3.npy holds a int64 array of shape (5, 3), not N x 4 events (x, y, p, t)"),
    ("outside", "event x=200 is not x in [0, 128); the file does not hold this data set's events"),
])
def test_dvsgesture_files_with_garbage_or_events_outside_the_sensor(tmp_path, capsys, bad, message):
    data = _dvsgesture(tmp_path / "data", bad)
    code, err = _in_process(capsys, "train", "--dataset", "dvsgesture", "--data-dir", data, "--epochs", "1",
                            "--time-steps", "4", "--quiet", "--out", tmp_path / "run")
    assert code == 2 and message in err
    assert not (tmp_path / "run").exists()


def _set_first(f, key, value):
    import numpy as np

    data = np.array(f[key][()])  # a copy, also of a scalar (a shared decay or threshold)
    data.flat[0] = value
    del f[key]
    f.create_dataset(key, data=data)


@pytest.mark.parametrize("key, value, message", [
    ("layer/0/weight", 256, "layer 0 (dense): weight 256 outside the 8-bit range [-256, 254]"),
    ("layer/0/weight", 3, "layer 0 (dense): weight 3 is not a multiple of 2 (8-bit weights are even integers in "
                            "[-256, 254])"),
    ("layer/0/neuron/iDecay", 4097, "layer 0 (dense): iDecay 4097 outside [1, 4096]"),
    ("layer/1/neuron/vDecay", -1, "layer 1 (dense): vDecay -1 outside [0, 4096]"),
    ("layer/1/neuron/vThMant", 1 << 17, "layer 1 (dense): vThMant 131072 outside [1, 131071]"),
])
def test_run_of_a_net_edited_beyond_loihi_limits(exported, tmp_path, capsys, key, value, message):
    import h5py

    _, net = exported
    edited = tmp_path / "edited.net"
    shutil.copy(net, edited)
    with h5py.File(edited, "a") as f:
        _set_first(f, key, value)
    code, err = _in_process(capsys, "run", edited, "--backend", "emulator", "--samples", "2", "--no-progress",
                            "--out", tmp_path / "r.json")
    assert code == 2 and err == f"spikeship: {edited}: {message}"
    assert not (tmp_path / "r.json").exists()


def _truncated_net(folder, net):
    data = net.read_bytes()
    (folder / "t.net").write_bytes(data[: len(data) // 2])


def _truncated_checkpoint(folder, net):
    data = net.with_name("model.pt").read_bytes()  # the checkpoint exported beside the .net
    (folder / "t.pt").write_bytes(data[: len(data) // 2])


def _nir_graph(folder, net):
    from nir_graphs import digits_graph, write

    write(digits_graph(), folder / "m.nir")


ARGUMENT_CASES = {  # (argv, files to make, message); NET: the exported .net file, CKPT: its checkpoint
    "train config syntax": (["train", "--config", "net.toml"], {"net.toml": "[[layer]\nkind = dense\n"},
                            "cannot read model config net.toml: Expected ']]' at the end of an array declaration"),
    "train config missing": (["train", "--config", "none.toml"], {},
                             "cannot read model config none.toml: [Errno 2] No such file or directory"),
    "train init missing": (["train", "--init", "none.pt"], {}, "checkpoint not found: none.pt"),
    "train resume nothing": (["train", "--resume", "--out", "run"], {}, "--resume: no checkpoint to resume at run/model.pt"),
    "train batch 0": (["train", "--batch-size", "0"], {}, "batch size must be a positive integer, got 0"),
    "train max samples 0": (["train", "--max-samples", "0"], {}, "max samples must be at least 1, got 0"),
    "run samples 0": (["run", "NET", "--samples", "0"], {}, "--samples must be positive, got 0"),
    "run workers 0": (["run", "NET", "--backend", "lava", "--workers", "0"], {}, "--workers must be positive, got 0"),
    "run out missing folder": (["run", "NET", "--samples", "2", "--out", "none/r.json"], {},
                               "output folder does not exist: none"),
    "run out is a folder": (["run", "NET", "--samples", "2", "--out", "."], {}, "cannot write .: it is a folder"),
    "run truncated net": (["run", "t.net", "--samples", "2"], {"t.net": _truncated_net},
                          "t.net: unreadable .net file (OSError: Unable to synchronously open file (truncated file"),
    "parity arguments swapped": (["parity", "NET", "CKPT", "--samples", "2"], {},
                                 "not a spikeship checkpoint: NET (not a torch zip archive)"),
    "export nir-dt not positive": (["export", "CKPT", "--nir", "m.nir", "--nir-dt", "-1"], {},
                                   "--nir-dt must be a positive number of seconds, got -1.0"),
    "export truncated checkpoint": (["export", "t.pt", "--out", "m.net"], {"t.pt": _truncated_checkpoint},
                                    "not a spikeship checkpoint: t.pt (not a torch zip archive)"),
    "parity truncated checkpoint": (["parity", "t.pt", "NET", "--samples", "2"], {"t.pt": _truncated_checkpoint},
                                    "not a spikeship checkpoint: t.pt (not a torch zip archive)"),
    "import out missing folder": (["import", "m.nir", "--out", "none/m.pt", "--dt", "1e-4", "--dataset", "event-digits"], {"m.nir": _nir_graph},
                                  "output folder does not exist: none"),
}


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a machine with a CUDA device")
@pytest.mark.parametrize("argv", [["run", "NET", "--backend", "emulator", "--device", "cuda", "--samples", "2"],
                                  ["train", "--device", "cuda", "--epochs", "1", "--out", "run"]])
def test_device_cuda_without_a_gpu_is_one_line(exported, tmp_path, capsys, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    argv = [str(exported[1]) if a == "NET" else a for a in argv]
    code, err = _in_process(capsys, *argv)
    assert (code, err) == (2, "spikeship: --device cuda: no CUDA device is available here (use --device cpu)")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", list(ARGUMENT_CASES))
def test_bad_arguments_are_one_line_exit_2_and_write_nothing(exported, tmp_path, capsys, monkeypatch, case):
    argv, files, message = ARGUMENT_CASES[case]
    ckpt, net = exported
    monkeypatch.chdir(tmp_path)
    for name, content in files.items():
        content(tmp_path, net) if callable(content) else (tmp_path / name).write_text(content)
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [{"NET": net, "CKPT": ckpt}.get(a, a) for a in argv]
    code, err = _in_process(capsys, *argv, *(["--no-progress"] if argv[0] in ("run", "parity") else []),
                            *(["--quiet"] if argv[0] == "train" else []))
    assert code == 2 and message.replace("NET", str(net)) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("command", [["report", "NET", "--samples", "2"], ["demo", "--epochs", "1"]])
def test_report_and_demo_into_an_immutable_folder(exported, immutable, capsys, command):
    argv = [str(exported[1]) if a == "NET" else a for a in command]
    code, err = _in_process(capsys, *argv, "--out", immutable)
    assert code == 2 and err.startswith(f"spikeship: cannot write into the folder {immutable}: ")
