"""Importing Lava safely from any point of a program.

Lava's runtime calls ``multiprocessing.set_start_method('fork')`` when it is first imported, which raises
"context has already been set" if anything touched multiprocessing's default context before (tqdm's lock,
a DataLoader, a Queue). On Linux that context is already ``fork``; then it is cleared so Lava sets the very
same method again. Any other start method is left alone (Lava then fails with its own error).
"""

from __future__ import annotations

import multiprocessing
import sys

_LAVA_MP = "lava.magma.runtime.message_infrastructure.multiprocessing"


def import_lava() -> None:
    """Import Lava's runtime (idempotent)."""
    if _LAVA_MP in sys.modules:
        return
    default = multiprocessing.context._default_context
    actual = getattr(default, "_actual_context", None)
    if actual is not None and actual.get_start_method() == "fork":
        default._actual_context = None
    __import__(_LAVA_MP)
