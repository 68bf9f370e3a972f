"""Deploy stage: build the Lava process graph from a .net file and run it."""
