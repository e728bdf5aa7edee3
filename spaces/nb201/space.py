"""NAS-Bench-201 (NATS-Bench topology) cells: 4 nodes, 6 edges, 5 operations per edge.

An architecture is the tuple of the 6 edge operations in the order of the official
string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (edges 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2).
Its key is that official string; its JSON form is the string too.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from narnas.config import at_least

from ..base import ArchGraph, Enumeration, GraphEncoding, ModelBuilding, Sampling, SearchSpace
from ..errors import InvalidArchError
from ..registry import register_space

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NUM_EDGES = 6
#: (target node, source node) of each edge, in arch-string order.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))

GRAPH_VOCAB = ("input",) + OPS + ("output",)
# Node-based form (as arch2vec and NAR-Former use): node 0 input, nodes 1..6 the edge
# operations in arch-string order, node 7 output. Edge op (t <- s) feeds every edge
# op leaving node t; edges into cell node 3 feed the output.
_GRAPH_ADJ = np.zeros((8, 8), dtype=np.uint8)
for _i, (_t, _s) in enumerate(EDGES):
    if _s == 0:
        _GRAPH_ADJ[0, _i + 1] = 1
    for _j, (_t2, _s2) in enumerate(EDGES):
        if _s2 == _t:
            _GRAPH_ADJ[_i + 1, _j + 1] = 1
    if _t == 3:
        _GRAPH_ADJ[_i + 1, 7] = 1
_GRAPH_ADJ.setflags(write=False)


@dataclass(frozen=True)
class NB201Arch:
    """The 6 edge operations as indices into ``OPS``."""

    ops: tuple[int, ...]

    def __post_init__(self):
        if len(self.ops) != NUM_EDGES or not all(isinstance(o, int) and 0 <= o < len(OPS) for o in self.ops):
            raise InvalidArchError(f"an NB201 cell has {NUM_EDGES} operations, each an index below "
                                   f"{len(OPS)}; got {self.ops!r}")

    def __str__(self):
        return to_arch_str(self.ops)


def to_arch_str(ops) -> str:
    names = [f"{OPS[o]}~{s}" for o, (_, s) in zip(ops, EDGES)]
    return "|" + "|+|".join(["|".join(names[0:1]), "|".join(names[1:3]), "|".join(names[3:6])]) + "|"


def parse_arch_str(text: str) -> NB201Arch:
    """Parse the official NB201 string; raises InvalidArchError saying what is wrong."""
    if not isinstance(text, str):
        raise InvalidArchError(f"an NB201 architecture is a string like {to_arch_str([3] * 6)!r}; got {type(text).__name__}")
    nodes = text.strip().split("+")
    if len(nodes) != 3:
        raise InvalidArchError(f"NB201 string {text!r} must have 3 '+'-separated nodes, has {len(nodes)}")
    ops = {}
    for target, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")):
            raise InvalidArchError(f"NB201 node {node!r} in {text!r} must start and end with '|'")
        items = [item for item in node[1:-1].split("|")]
        if len(items) != target:
            raise InvalidArchError(f"NB201 node {target} in {text!r} must have {target} inputs, has {len(items)}")
        for item in items:
            op, sep, src = item.partition("~")
            if not sep or not src.isdigit():
                raise InvalidArchError(f"NB201 edge {item!r} in {text!r} is not 'op~input'")
            if op not in OPS:
                raise InvalidArchError(f"unknown NB201 operation {op!r} in {text!r}; valid: {', '.join(OPS)}")
            src = int(src)
            if src >= target or (target, src) in ops:
                raise InvalidArchError(f"NB201 node {target} in {text!r}: input {src} is repeated or not an earlier node")
            ops[(target, src)] = OPS.index(op)
    return NB201Arch(tuple(ops[e] for e in EDGES))


@dataclass(frozen=True)
class NB201BuildConfig:
    """The network of the NB201 paper: 3 stages of 5 cells, 16 channels doubled per stage."""
    num_classes: int = 10
    channels: int = 16
    cells_per_stage: int = 5

    def validate(self):
        at_least(self, 1, "num_classes", "channels", "cells_per_stage", where="nb201.build")


@register_space("nb201")
class NB201Space(SearchSpace, Sampling, Enumeration, GraphEncoding, ModelBuilding):
    """NAS-Bench-201 cells: 6 edges x 5 ops (15,625 cells)."""

    name = "nb201"
    graph_vocab = GRAPH_VOCAB
    evaluators = ("benchmark", "cifar10-train")
    # 100 epochs per refit (a quarter of the cost of 300 at the same quality) with attention along
    # the cell's edges (found the optimum in 10 of 10 searches): docs/guide/search.md "Search cost".
    search_predictor = MappingProxyType({"narformer": MappingProxyType({"epochs": 100, "attention": "graph"})})
    build_config_class = NB201BuildConfig

    def sample(self, rng):
        return NB201Arch(tuple(int(o) for o in rng.integers(0, len(OPS), NUM_EDGES)))

    def mutate(self, arch, rng):
        """Change one edge to a different operation (the AutoDL / NB201 REA mutation)."""
        ops = list(arch.ops)
        edge = int(rng.integers(NUM_EDGES))
        ops[edge] = (ops[edge] + 1 + int(rng.integers(len(OPS) - 1))) % len(OPS)
        return NB201Arch(tuple(ops))

    def enumerate(self):
        for ops in itertools.product(range(len(OPS)), repeat=NUM_EDGES):
            yield NB201Arch(ops)

    def count(self) -> int:
        return len(OPS) ** NUM_EDGES

    def key(self, arch) -> str:
        return to_arch_str(arch.ops)

    def to_json(self, arch) -> str:
        return to_arch_str(arch.ops)

    def to_text(self, arch) -> str:
        return to_arch_str(arch.ops)

    def from_json(self, obj):
        if isinstance(obj, str) and obj.lstrip().startswith('"'):
            obj = json.loads(obj)
        return parse_arch_str(obj)

    def to_graph(self, arch) -> ArchGraph:
        ops = np.array([0, *(o + 1 for o in arch.ops), len(GRAPH_VOCAB) - 1], dtype=np.int64)
        return ArchGraph(ops, _GRAPH_ADJ, GRAPH_VOCAB)

    def from_graph(self, graph: ArchGraph) -> NB201Arch:
        """The cell of a node-based graph: 8 nodes in the fixed wiring, edge ops on nodes 1-6."""
        self.check_graph_vocab(graph)
        ops = [int(o) for o in graph.ops]
        if len(ops) != NUM_EDGES + 2 or not np.array_equal(graph.adjacency, _GRAPH_ADJ):
            raise InvalidArchError(f"an NB201 graph has {NUM_EDGES + 2} nodes wired as the cell's edges; got "
                                   f"{len(ops)} nodes" + ("" if len(ops) != NUM_EDGES + 2 else " wired otherwise"))
        if ops[0] != 0 or ops[-1] != len(GRAPH_VOCAB) - 1 or not all(1 <= o <= len(OPS) for o in ops[1:-1]):
            raise InvalidArchError(f"an NB201 graph is input, {NUM_EDGES} edge ops, output; got "
                                   f"{[GRAPH_VOCAB[o] for o in ops]}")
        return NB201Arch(tuple(o - 1 for o in ops[1:-1]))

    def build_model(self, arch, config=None):
        from .model import NB201Network
        c = self.build_config(config)
        return NB201Network(arch.ops, c.num_classes, c.channels, c.cells_per_stage)

