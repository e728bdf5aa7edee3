"""NAS-Bench-201: a 4-node cell with one of five operations on each of its 6 edges.

``space`` - the official arch string, key, JSON form and graph; ``data`` - the benchmark
readers (compact CSV, the official .pth and NATS-Bench files) and the packaged CIFAR-10
table in ``tables/``; ``model`` - the paper's network.
"""
from .space import EDGES, GRAPH_VOCAB, NUM_EDGES, OPS, NB201Arch, NB201BuildConfig, NB201Space, parse_arch_str, to_arch_str

__all__ = ["EDGES", "GRAPH_VOCAB", "NUM_EDGES", "OPS", "NB201Arch", "NB201BuildConfig", "NB201Space",
           "parse_arch_str", "to_arch_str"]
