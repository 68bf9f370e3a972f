"""The `spikeship` command: dispatch to stage modules, one-line errors, exit codes."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from spikeship import __version__, cli

COMMANDS = ("train", "import", "export", "run", "parity", "report", "demo")


def test_the_seven_subcommands_are_in_the_table():
    assert tuple(cli.STAGES) == COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_each_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: spikeship {command}") and cli.STAGES[command].help in out


def test_help_lists_the_registered_data_sets_and_backends(capsys):
    from spikeship.backends import BACKENDS
    from spikeship.train.datasets import DATASETS

    for command in ("train", "run", "report"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        for name in DATASETS:
            assert f"{name}:" in out, (command, name)
        if command != "train":
            for name in BACKENDS:
                assert name in out


@pytest.fixture
def plugged_stage(tmp_path, monkeypatch):
    """A stage module on sys.path, plugged into the table as `report`."""
    (tmp_path / "fake_stage.py").write_text(textwrap.dedent('''
        from spikeship.errors import SpikeshipError
        def add_arguments(parser):
            parser.add_argument("--what", default="ok")
        def run(args):
            if args.what == "fail":
                raise SpikeshipError("bad input\\nsecond line")
            if args.what == "interrupt":
                raise KeyboardInterrupt
            print("ran with", args.what)
            return 3 if args.what == "three" else None
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.STAGES, "report", cli.Stage("fake_stage", "fake report"))


def test_a_stage_module_plugs_in(plugged_stage, capsys):
    assert cli.main(["report"]) == 0 and capsys.readouterr().out == "ran with ok\n"
    assert cli.main(["report", "--what", "three"]) == 3


def test_user_errors_are_one_line_and_exit_2(plugged_stage, capsys):
    assert cli.main(["report", "--what", "fail"]) == 2
    assert capsys.readouterr().err == "spikeship: bad input second line\n"


def test_ctrl_c_exits_130(plugged_stage, capsys):
    assert cli.main(["report", "--what", "interrupt"]) == 130


def test_no_command_prints_help_and_exits_2(capsys):
    assert cli.main([]) == 2 and "COMMAND" in capsys.readouterr().out


def test_console_script_version_and_unknown_command():
    exe = Path(sys.executable).with_name("spikeship")
    done = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, f"spikeship {__version__}\n")
    bad = subprocess.run([str(exe), "fly"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("spikeship: argument COMMAND: invalid choice: 'fly'") and bad.stderr.count("\n") == 1


@pytest.mark.parametrize("argv, expected", [
    (["train", "--split", "x"], "spikeship: train: unrecognized arguments: --split x (see `spikeship train --help`)"),
    (["run", "m.net", "--split", "dev"], "spikeship: run: argument --split: invalid choice: 'dev' (choose from "),
    (["run", "m.net", "--samples", "many"], "spikeship: run: argument --samples: invalid int value: 'many'"),
    (["export", "--nir-dt"], "spikeship: export: argument --nir-dt: expected one argument"),
])
def test_argument_errors_are_one_line_and_exit_2(argv, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(expected) and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_import_time_notices_of_dependencies_are_held_back():
    # torch prints "No CUDA runtime is found" and lava-dl a Prophesee toolbox warning when imported;
    # a fresh process shows whether the CLI keeps them out of a command's output.
    exe = Path(sys.executable).with_name("spikeship")
    done = subprocess.run([str(exe), "export", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert done.stdout.startswith("usage: spikeship export")
    for notice in ("Prophesee", "No CUDA runtime"):
        assert notice not in done.stdout and notice not in done.stderr
