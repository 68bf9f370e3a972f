"""Bit-exact batched fixed-point emulator of the deployed graph, and the parity comparison."""
