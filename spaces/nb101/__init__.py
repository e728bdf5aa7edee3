"""NAS-Bench-101: cells of up to 7 vertices and 9 edges over three operations.

``space`` - the architecture rules, key (the official module hash), JSON form and graph;
``enum`` - the 423,624 unique cells, enumerated once and cached; ``data`` - the
benchmark readers (official tfrecord, compact npz); ``model`` - the paper's network.
"""
from .space import (GRAPH_VOCAB, MAX_EDGES, MAX_VERTICES, OPS, NB101Arch, NB101BuildConfig, NB101Space,
                    arch_from_codes, make_arch, module_hash)

__all__ = ["GRAPH_VOCAB", "MAX_EDGES", "MAX_VERTICES", "OPS", "NB101Arch", "NB101BuildConfig", "NB101Space",
           "arch_from_codes", "make_arch", "module_hash"]
