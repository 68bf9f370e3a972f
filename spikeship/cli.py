"""The `spikeship` command: argument parsing and dispatch only.

Each subcommand is a stage module with two functions:

    add_arguments(parser)   # declares the subcommand's flags on an argparse parser
    run(args) -> int | None # does the work (builds its frozen config from args); None means 0

``STAGES`` maps the subcommand to its module. Modules are imported lazily, only for the subcommand being
run, so ``spikeship --help`` stays fast.

Errors: SpikeshipError -> "spikeship: <message>" on stderr (one line), exit 2;
Ctrl-C -> exit 130; SIGTERM -> the same clean path as Ctrl-C (``Terminated`` raised in the main thread),
"spikeship: terminated", exit 143.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import importlib
import signal
import sys
import threading
from dataclasses import dataclass

from spikeship import __version__
from spikeship.distributed import leave, world
from spikeship.errors import SpikeshipError, Terminated


@dataclass(frozen=True)
class Stage:
    module: str  # provides add_arguments(parser) and run(args)
    help: str


STAGES = {
    "train": Stage("spikeship.train.cli_stage", "train a spiking network with MSG + TWO"),
    "import": Stage("spikeship.import_stage", "bring a NIR graph (snnTorch, Norse, ...) in as a spikeship checkpoint"),
    "export": Stage("spikeship.export.cli_stage", "quantize and write a netx .net file (and ONNX, NIR)"),
    "run": Stage("spikeship.deploy.cli_stage", "run a .net file in Lava or the emulator"),
    "parity": Stage("spikeship.sim.cli_stage", "compare PyTorch, emulator and Lava spike by spike"),
    "report": Stage("spikeship.report_stage", "spike counts, synaptic operations and energy"),
    "demo": Stage("spikeship.demo", "train, export, run, parity and report, end to end (--task digits|speech)"),
}


def load_stage(name: str):
    """(add_arguments, run) of a subcommand's module."""
    module = _import_quietly(STAGES[name].module)
    return module.add_arguments, module.run


def _import_quietly(name: str):
    """Import a stage module with slayer first, holding back what dependencies print at import (torch's
    "No CUDA runtime is found" on CPU machines, lava-dl's optional Prophesee toolbox warning): every
    command would otherwise start with them. Shown after all if the import fails."""
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            importlib.import_module("lava.lib.dl.slayer")
            return importlib.import_module(name)
    except BaseException:
        sys.stderr.write(buf.getvalue())
        raise


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors (an unknown flag or choice, a missing argument, flags that exclude each other)
    turned into one line ``spikeship: <command>: <message> (see --help)``, exit 2, like every other error a
    user can cause (argparse itself prints its usage block and exits from inside ``parse_args``)."""

    command: str | None = None  # the subcommand being parsed, for the errors the root parser reports

    def error(self, message: str):
        command = self.prog.removeprefix("spikeship").strip() or self.command
        where, prog = (f"{command}: ", f"spikeship {command}") if command else ("", "spikeship")
        raise SpikeshipError(f"{where}{message} (see `{prog} --help`)")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s stage is imported and given its flags."""
    parser = _Parser(
        prog="spikeship",
        description="Train spiking networks with MSG+TWO, export them to Lava-DL netx, run them "
                    "in Lava, prove parity spike by spike, and report energy.")
    parser.command = command
    parser.add_argument("--version", action="version", version=f"spikeship {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, stage in STAGES.items():
        p = sub.add_parser(name, help=stage.help, description=stage.help)
        if name == command:
            add_arguments, run = load_stage(name)
            add_arguments(p)
            p.set_defaults(_run=run)
    return parser


def _command_in(argv: list[str]) -> str | None:
    """The subcommand named in argv (the first word that is a known subcommand), if any."""
    for word in argv:
        if word in STAGES:
            return word
        if not word.startswith("-"):
            return None
    return None


def _terminate(signum, frame) -> None:  # noqa: ARG001 - a signal handler's signature
    """SIGTERM -> :class:`Terminated` in the main thread. Once only: a second SIGTERM while the first one's
    cleanup runs (stopping Lava, unlocking a run folder) is ignored, so it cannot cut that cleanup short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        parser = build_parser(_command_in(argv))
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        result = args._run(args)
        leave()  # under torchrun: every rank is here, done; see distributed.leave
        return 0 if result is None else int(result)
    except SpikeshipError as err:
        message = " ".join(str(err).split("\n")).strip() or type(err).__name__
        if world().is_main:  # under torchrun every rank meets the same bad input; rank 0 says it once
            print(message if message.startswith("spikeship") else f"spikeship: {message}", file=sys.stderr)
        return getattr(err, "exit_code", 2)
    except KeyboardInterrupt:
        print("spikeship: interrupted", file=sys.stderr)
        return 130
    except Terminated as err:
        print("spikeship: terminated", file=sys.stderr)
        return err.exit_code
    finally:
        if in_main_thread and previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
