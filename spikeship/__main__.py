"""``python -m spikeship ...``: the same as the ``spikeship`` command (torchrun and subprocess tests use it)."""

import sys

from spikeship.cli import main

if __name__ == "__main__":
    sys.exit(main())
