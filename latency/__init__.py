"""Latency of whole networks: layer graphs from any torch module or ONNX file, a measured,
resumable latency dataset of network families, NAR-Former's whole-network encoding and its
baselines (GNN, FLOPs, look-up table), and HELP's few-shot setting.

It sits above ``spaces`` (its families include the search spaces' networks) and ``predictor``
(NAR-Former's blocks); ``search`` uses it for the ``latency`` constraint. ``python -m latency``
builds and inspects datasets; ``python -m bench.latency`` scores predictors on one.
"""
