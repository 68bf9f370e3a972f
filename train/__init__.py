"""Training stage: data sets, models (slayer CUBA blocks), MSG surrogate, TWO decoder, training loop."""
