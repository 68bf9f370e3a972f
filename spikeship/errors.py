"""The one error type a user can cause. The CLI prints its message as one line and exits 2."""


class SpikeshipError(Exception):
    """Bad input from the user: missing or malformed data, corrupt files, a network that does not fit."""

    exit_code = 2
