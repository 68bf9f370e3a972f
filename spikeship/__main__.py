"""``python -m spikeship ...`` (what ``torchrun ... -m spikeship`` runs): the same as the console script."""

import sys

from spikeship.cli import main

if __name__ == "__main__":
    sys.exit(main())
