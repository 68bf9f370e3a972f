"""The `spikeship` command: argument parsing and dispatch only.

Each subcommand is a stage module with two functions:

    add_arguments(parser)   # declares the subcommand's flags on an argparse parser
    run(args) -> int | None # does the work (builds its frozen config from args); None means 0

``STAGES`` maps the subcommand to its module. A stage plugs in by creating that module; nothing
here changes. Modules are imported lazily, only for the subcommand being run, so
``spikeship --help`` stays fast. Until a stage's module exists, ``PLANNED_FLAGS`` shows the flags
it will take (from the issues) and running it says "not built yet" (exit 2).

Errors: SpikeshipError -> "spikeship: <message>" on stderr (one line), exit 2;
Ctrl-C -> exit 130; SIGTERM -> the same clean path as Ctrl-C (``Terminated`` raised in the main thread),
"spikeship: terminated", exit 143.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import importlib
import importlib.util
import signal
import sys
import threading
from dataclasses import dataclass

from spikeship import __version__
from spikeship.errors import NotBuiltYet, SpikeshipError, Terminated


@dataclass(frozen=True)
class Stage:
    module: str  # provides add_arguments(parser) and run(args)
    help: str


STAGES = {
    "train": Stage("spikeship.train.cli_stage", "train a spiking network with MSG + TWO"),
    "export": Stage("spikeship.export.cli_stage", "quantize and write a netx .net file (and ONNX)"),
    "run": Stage("spikeship.deploy.cli_stage", "run a .net file in Lava or the emulator"),
    "parity": Stage("spikeship.sim.cli_stage", "compare PyTorch, emulator and Lava spike by spike"),
    "report": Stage("spikeship.report_stage", "spike counts, synaptic operations and energy"),
    "demo": Stage("spikeship.demo", "train, export, run, check parity and report on event-digits"),
}


# --- flags of stages whose module does not exist yet (the stage's add_arguments replaces them) ---

def _data_flags(parser, split: bool = False, samples: bool = False) -> None:
    from spikeship.train.data import add_data_arguments

    add_data_arguments(parser)
    if split:
        parser.add_argument("--split", choices=("train", "test"), default="test")
    if samples:
        parser.add_argument("--samples", type=int, default=None, metavar="N",
                            help="number of samples (default: the whole split)")


def _planned_train(p) -> None:
    _data_flags(p)
    p.add_argument("--arch", choices=("dense", "conv"), default="dense")
    p.add_argument("--config", metavar="FILE", help="model/training spec (TOML) instead of --arch")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--method", choices=("msg", "sg"), default="msg")
    p.add_argument("--mask-prob", type=float, default=0.5, metavar="P")
    p.add_argument("--surrogate", choices=("pwl", "arctan"), default="pwl")
    p.add_argument("--decode", choices=("two", "mean"), default="two")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--out", metavar="DIR", required=False)
    p.add_argument("--resume", action="store_true")


def _planned_export(p) -> None:
    p.add_argument("model", nargs="?", metavar="RUN/model.pt")
    p.add_argument("--out", metavar="model.net")
    p.add_argument("--onnx", metavar="model.onnx")
    p.add_argument("--inspect", metavar="model.net", help="describe an exported file instead")


def _planned_run(p) -> None:
    p.add_argument("net", metavar="model.net")
    _data_flags(p, split=True, samples=True)
    p.add_argument("--backend", choices=("lava", "emulator"), default="lava")
    p.add_argument("--out", metavar="run.json")
    p.add_argument("--workers", type=int, default=1, metavar="K")


def _planned_parity(p) -> None:
    p.add_argument("model", metavar="RUN/model.pt")
    p.add_argument("net", metavar="model.net")
    p.add_argument("--samples", type=int, default=20, metavar="N")
    p.add_argument("--out", metavar="parity.json")
    p.add_argument("--plot", metavar="raster.png")


def _planned_report(p) -> None:
    p.add_argument("net", metavar="model.net")
    _data_flags(p, split=True, samples=True)
    p.add_argument("--backend", choices=("lava", "emulator"), default="emulator")
    p.add_argument("--out", metavar="DIR")


def _planned_demo(p) -> None:
    p.add_argument("--out", metavar="DIR", default="demo-out")


PLANNED_FLAGS = {
    "train": _planned_train, "export": _planned_export, "run": _planned_run,
    "parity": _planned_parity, "report": _planned_report, "demo": _planned_demo,
}


def _not_built(name: str):
    def run(args) -> int:
        raise NotBuiltYet(f"spikeship {name}: not built yet")

    return run


def load_stage(name: str):
    """(add_arguments, run) of a subcommand: its module's, or the planned flags and a refusal."""
    stage = STAGES[name]
    if importlib.util.find_spec(stage.module) is None:
        return PLANNED_FLAGS[name], _not_built(name)
    module = _import_quietly(stage.module)
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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s stage is imported and given its flags."""
    parser = argparse.ArgumentParser(
        prog="spikeship",
        description="Train spiking networks with MSG+TWO, export them to Lava-DL netx, run them "
                    "in Lava, prove parity spike by spike, and report energy.")
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
        return 0 if result is None else int(result)
    except SpikeshipError as err:
        message = " ".join(str(err).split("\n")).strip() or type(err).__name__
        print(message if message.startswith("spikeship") else f"spikeship: {message}",
              file=sys.stderr)
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
