"""Latency prediction of whole networks: layer graphs from ONNX, a measured latency dataset,
NAR-Former's whole-network encoding and its baselines."""
