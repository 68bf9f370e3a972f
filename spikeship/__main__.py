"""``python -m spikeship ...`` (what ``torchrun ... -m spikeship`` runs): the same as the console script."""

import sys

from spikeship.cli import main

sys.exit(main())
