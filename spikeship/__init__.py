"""spikeship: train SNNs with MSG+TWO, export to Lava-DL netx, run in Lava, prove parity, report energy."""

__version__ = "0.1.0"
