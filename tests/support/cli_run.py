"""The real `spikeship` command in a subprocess, as a user runs it (the venv's console script)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SPIKESHIP = str(Path(sys.executable).with_name("spikeship"))


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str

    @property
    def error_line(self) -> str:
        """stderr, which for a user error must be exactly one line starting 'spikeship: '."""
        lines = [line for line in self.err.splitlines() if line.strip()]
        assert len(lines) == 1, f"expected one line on stderr, got:\n{self.err}"
        assert lines[0].startswith("spikeship: "), lines[0]
        return lines[0]


def spikeship(*args, cwd=None, timeout: float = 300) -> Done:
    done = subprocess.run([SPIKESHIP, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd)
    return Done(done.returncode, done.stdout, done.stderr)
