"""Once-for-All's elastic MobileNetV3 space (``ofa_mbv3``).

``space`` - the arch (ks, e, d, r), key, JSON form, sampling and OFA's mutation, the layer
list with analytic parameters and MACs, and the layer graph; ``latency`` - OFA's Note10
per-layer latency tables; ``model`` - subnets built through the ``ofa`` package.
"""
from .space import (BLOCKS, DEPTHS, EXPAND, GRAPH_VOCAB, KS, LARGEST, MAX_DEPTH, NODE_FEATURES, RESOLUTIONS,
                    SMALLEST, STAGES, OFAArch, OFAMobileNetV3Space, count_macs, count_params, layers, make_arch,
                    make_divisible)

__all__ = ["BLOCKS", "DEPTHS", "EXPAND", "GRAPH_VOCAB", "KS", "LARGEST", "MAX_DEPTH", "NODE_FEATURES",
           "RESOLUTIONS", "SMALLEST", "STAGES", "OFAArch", "OFAMobileNetV3Space", "count_macs", "count_params",
           "layers", "make_arch", "make_divisible"]
