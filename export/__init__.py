"""Export stage: quantization checks against Loihi limits, netx HDF5 writer with the TWO readout, ONNX."""
