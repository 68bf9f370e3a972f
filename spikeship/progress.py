"""The progress bar every long stage shows on stderr (tqdm), off when not wanted."""

from __future__ import annotations

import sys


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar over ``total`` samples; ``bar.update(k)`` after ``k`` more are done."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="sample", file=sys.stderr, disable=not enabled, leave=False)
