"""NAS-Bench-101 cells: DAGs of at most 7 vertices and 9 edges, 3 operations.

An architecture is the *pruned* cell (vertices not on an input -> output path
removed), as the official API's ``ModelSpec`` holds it. Its key is the official
module hash (iterative MD5 fingerprint), so isomorphic cells share a key; its JSON
form is the official ``{"matrix": [[...]], "ops": ["input", ..., "output"]}``.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from narnas.config import at_least

from ..base import ArchGraph, Enumeration, GraphEncoding, ModelBuilding, Sampling, SearchSpace
from ..errors import InvalidArchError
from ..registry import register_space

INPUT, OUTPUT = "input", "output"
OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")  # the official order; hash labels index it
MAX_VERTICES = 7
MAX_EDGES = 9
#: Node vocabulary of the graph form (also the op codes of the compact npz files).
GRAPH_VOCAB = (INPUT, "conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3", OUTPUT)


@dataclass(frozen=True)
class NB101Arch:
    """A pruned, valid cell. Build it with :func:`make_arch`, which checks the rules."""

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    @property
    def num_vertices(self) -> int:
        return len(self.ops)

    def adjacency(self) -> np.ndarray:
        return np.array(self.matrix, dtype=np.uint8).reshape(self.num_vertices, self.num_vertices)


def make_arch(matrix, ops) -> NB101Arch:
    """Check a cell against the official rules, prune it, and return the arch.

    Raises InvalidArchError saying which rule the cell breaks.
    """
    try:
        m = np.array(matrix, dtype=np.int64)
    except (TypeError, ValueError):
        raise InvalidArchError(f"NB101 matrix must be a square list of lists of 0/1; got {matrix!r}") from None
    ops = list(ops) if isinstance(ops, (list, tuple)) else ops
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2:
        raise InvalidArchError(f"NB101 matrix must be square with at least 2 vertices; got shape {m.shape}")
    n = m.shape[0]
    if not isinstance(ops, list) or len(ops) != n:
        raise InvalidArchError(f"NB101 cell needs one op per vertex: {n} vertices, ops {ops!r}")
    if not np.isin(m, (0, 1)).all():
        raise InvalidArchError("NB101 matrix entries must be 0 or 1")
    if np.tril(m).any():
        raise InvalidArchError("NB101 matrix must be strictly upper-triangular (a DAG in topological order)")
    if ops[0] != INPUT or ops[-1] != OUTPUT:
        raise InvalidArchError(f"NB101 ops must start with {INPUT!r} and end with {OUTPUT!r}; got {ops!r}")
    for op in ops[1:-1]:
        if op not in OPS:
            raise InvalidArchError(f"unknown NB101 op {op!r}; valid: {', '.join(OPS)}")
    keep = _on_input_output_path(m)
    if not keep[0]:
        raise InvalidArchError("NB101 cell has no path from input to output")
    m = m[np.ix_(keep, keep)]
    ops = [op for op, k in zip(ops, keep) if k]
    if len(ops) > MAX_VERTICES:
        raise InvalidArchError(f"NB101 cell has {len(ops)} vertices after pruning; at most {MAX_VERTICES}")
    if m.sum() > MAX_EDGES:
        raise InvalidArchError(f"NB101 cell has {int(m.sum())} edges after pruning; at most {MAX_EDGES}")
    return NB101Arch(tuple(tuple(int(v) for v in row) for row in m), tuple(ops))


def _on_input_output_path(m: np.ndarray) -> np.ndarray:
    """Which vertices lie on some input -> output path (m upper-triangular)."""
    n = len(m)
    from_input = np.zeros(n, bool)
    from_input[0] = True
    for v in range(1, n):
        from_input[v] = bool((from_input[:v] & (m[:v, v] > 0)).any())
    to_output = np.zeros(n, bool)
    to_output[-1] = True
    for v in range(n - 2, -1, -1):
        to_output[v] = bool((to_output[v + 1:] & (m[v, v + 1:] > 0)).any())
    return from_input & to_output


def hash_labels(ops) -> list[int]:
    """The vertex labels of the official hash: -1 input, -2 output, else the index in OPS."""
    return [-1] + [OPS.index(op) for op in ops[1:-1]] + [-2]


@functools.lru_cache(maxsize=1 << 18)
def module_hash(matrix: tuple, labels: tuple) -> str:
    """The official NAS-Bench-101 module hash of a pruned cell.

    Weisfeiler-Lehman-style: start from md5 of (out-degree, in-degree, label) per
    vertex; n times, replace each vertex's hash by md5 of its sorted in-neighbour
    hashes, its sorted out-neighbour hashes and its own; md5 the sorted list.
    """
    md5 = hashlib.md5
    n = len(labels)
    ins = [[s for s in range(n) if matrix[s][v]] for v in range(n)]
    outs = [[d for d in range(n) if matrix[v][d]] for v in range(n)]
    hashes = [md5(str((len(outs[v]), len(ins[v]), labels[v])).encode()).hexdigest() for v in range(n)]
    for _ in range(n):
        hashes = [md5(("".join(sorted([hashes[s] for s in ins[v]])) + "|"
                       + "".join(sorted([hashes[d] for d in outs[v]])) + "|" + hashes[v]).encode()).hexdigest()
                  for v in range(n)]
    return md5(str(sorted(hashes)).encode()).hexdigest()


@dataclass(frozen=True)
class NB101BuildConfig:
    """The network of the NB101 paper: a 3x3 stem, 3 stacks of 3 cells, channels doubled per stack."""
    num_classes: int = 10
    stem_channels: int = 128
    num_stacks: int = 3
    cells_per_stack: int = 3

    def validate(self):
        at_least(self, 1, "num_classes", "stem_channels", "num_stacks", "cells_per_stack",
                 where="nb101.build")


@register_space("nb101")
class NB101Space(SearchSpace, Sampling, Enumeration, GraphEncoding, ModelBuilding):
    """NAS-Bench-101 cells: at most 7 vertices and 9 edges, 3 ops (423,624 unique cells)."""

    name = "nb101"
    graph_vocab = GRAPH_VOCAB
    evaluators = ("benchmark", "cifar10-train")
    # The NB101 recipe (the best measured NAR-Former on NB101, docs/results.md "Predictor quality").
    search_predictor = MappingProxyType({"narformer": MappingProxyType(
        {"augment": 2, "lambda_ac": 0.05, "weight_decay": 0.05, "attention": "graph"})})
    build_config_class = NB101BuildConfig

    def sample(self, rng):
        """The official random cell: each upper-triangular edge with p=0.5, ops uniform; redraw until valid."""
        n = MAX_VERTICES
        while True:
            m = np.triu(rng.integers(0, 2, (n, n)), 1)
            ops = [INPUT, *(OPS[i] for i in rng.integers(0, len(OPS), n - 2)), OUTPUT]
            arch = _try_make(m, ops)
            if arch is not None:
                return arch

    def mutate(self, arch, rng, mutation_rate: float = 1.0):
        """The NB-101 paper's evolution mutation: flip each edge with p = rate/7 and resample each
        inner op with p = rate/5 (on the cell padded back to 7 vertices); redraw until the
        result is valid and has a different key."""
        return self.mutate_distinct(arch, rng, lambda a, r: _mutate_once(a, r, mutation_rate))

    def enumerate(self):
        from .enum import load_enumeration
        table = load_enumeration()
        for i in range(len(table["n_vertices"])):
            yield arch_from_codes(table["adjacency"][i], table["ops"][i], table["n_vertices"][i])

    def count(self) -> int:
        from .enum import load_enumeration
        return len(load_enumeration()["n_vertices"])

    def key(self, arch) -> str:
        return module_hash(arch.matrix, tuple(hash_labels(arch.ops)))

    def to_json(self, arch) -> dict:
        return {"matrix": [list(row) for row in arch.matrix], "ops": list(arch.ops)}

    def from_json(self, obj):
        if isinstance(obj, str):
            try:
                obj = json.loads(obj)
            except json.JSONDecodeError as exc:
                raise InvalidArchError(f"NB101 architecture is not valid JSON: {exc}") from None
        if not isinstance(obj, dict) or set(obj) != {"matrix", "ops"}:
            raise InvalidArchError('an NB101 architecture is {"matrix": [[0/1, ...], ...], "ops": '
                                   f'["input", ..., "output"]}}; got {obj!r:.200}')
        return make_arch(obj["matrix"], obj["ops"])

    def to_graph(self, arch) -> ArchGraph:
        ops = np.array([GRAPH_VOCAB.index(op) for op in arch.ops], dtype=np.int64)
        return ArchGraph(ops, arch.adjacency(), GRAPH_VOCAB)

    def from_graph(self, graph: ArchGraph) -> NB101Arch:
        """The pruned cell of a graph; the official validity rules apply (a path from input to
        output, at most 7 vertices and 9 edges after pruning)."""
        self.check_graph_vocab(graph)
        return make_arch(np.asarray(graph.adjacency), [GRAPH_VOCAB[int(o)] for o in graph.ops])

    def build_model(self, arch, config=None):
        from .model import NB101Network
        c = self.build_config(config)
        return NB101Network(arch.adjacency(), arch.ops, c.num_classes, c.stem_channels, c.num_stacks,
                            c.cells_per_stack)


def _try_make(matrix, ops):
    try:
        return make_arch(matrix, ops)
    except InvalidArchError:
        return None


def _mutate_once(arch: NB101Arch, rng, rate: float):
    n, pad = arch.num_vertices, MAX_VERTICES - arch.num_vertices
    # Pad back to 7 vertices with unconnected ones before the output, so that every
    # edge and op of the full cell can be mutated, as in the official example.
    m = np.zeros((MAX_VERTICES, MAX_VERTICES), dtype=np.int64)
    old = arch.adjacency()
    m[:n - 1, :n - 1] = old[:n - 1, :n - 1]
    m[:n - 1, -1] = old[:n - 1, -1]
    ops = list(arch.ops[:-1]) + [OPS[i] for i in rng.integers(0, len(OPS), pad)] + [OUTPUT]
    flips = np.triu(rng.random((MAX_VERTICES, MAX_VERTICES)) < rate / MAX_VERTICES, 1)
    m = np.where(flips, 1 - m, m)
    for v in range(1, MAX_VERTICES - 1):
        if rng.random() < rate / (MAX_VERTICES - 2):
            ops[v] = [o for o in OPS if o != ops[v]][int(rng.integers(len(OPS) - 1))]
    return _try_make(m, ops)


def arch_from_codes(adjacency: np.ndarray, op_codes: np.ndarray, n_vertices: int) -> NB101Arch:
    """An arch from the compact npz layout (padded 7x7 adjacency, GRAPH_VOCAB op codes)."""
    n = int(n_vertices)
    ops = tuple(GRAPH_VOCAB[int(c)] for c in op_codes[:n])
    matrix = tuple(tuple(int(v) for v in row[:n]) for row in adjacency[:n])
    return NB101Arch(matrix, ops)

