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

