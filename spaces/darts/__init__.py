"""The DARTS CIFAR-10 space: a normal and a reduction cell, each of 4 nodes with 2 inputs.

``space`` - genotypes (JSON and the ``Genotype(...)`` text), key, graph; ``model`` - the
evaluation network. The paper's CIFAR-10 training recipe is ``training.recipes.darts``.
"""
from .space import CELLS, CONCAT, DARTS_V1, DARTS_V2, NODES, OPS, DartsArch, DartsBuildConfig, DartsSpace, parse_genotype

__all__ = ["CELLS", "CONCAT", "DARTS_V1", "DARTS_V2", "NODES", "OPS", "DartsArch", "DartsBuildConfig",
           "DartsSpace", "parse_genotype"]
