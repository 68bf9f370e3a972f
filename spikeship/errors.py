"""The one error type a user can cause. The CLI prints its message as one line and exits 2."""


class SpikeshipError(Exception):
    """Bad input from the user: missing or malformed data, corrupt files, a network that does not fit."""

    exit_code = 2


class Terminated(BaseException):
    """SIGTERM (what ``timeout``, SLURM, ``docker stop`` and CI cancellation send), raised in the main thread
    so that every ``finally`` runs as it does on Ctrl-C: Lava networks stop, run folders are unlocked.
    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` swallows it. The CLI prints
    "spikeship: terminated" and exits 128 + 15."""

    exit_code = 143


def run_script(main) -> None:
    """Run a script's ``main()`` (bench/ and tools): a :class:`SpikeshipError` (bad input, the speech extra
    missing) becomes one line ``spikeship: ...`` on stderr and its exit status, as in the CLI."""
    import sys

    try:
        main()
    except SpikeshipError as err:
        print(f"spikeship: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
