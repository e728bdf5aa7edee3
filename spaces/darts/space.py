"""The DARTS search space (Liu et al. 2019): a normal and a reduction cell.

A cell has two inputs (0 = c_{k-2}, 1 = c_{k-1}) and 4 intermediate nodes (2..5); node
i takes exactly two *different* earlier nodes through one operation each, and the cell
output concatenates the 4 intermediate nodes. A genotype lists the cell's 8 edges as
(operation, input) pairs, two per node, in node order: the DARTS ``Genotype`` form.

The two edges into a node are summed, so their order does not matter: the key sorts
them, and genotypes that differ only in that order share a key.
"""
from __future__ import annotations

import ast
import dataclasses
import json
import math
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from narnas.config import at_least
from narnas.errors import ConfigError

from ..base import ArchGraph, GraphEncoding, ModelBuilding, Sampling, SearchSpace
from ..errors import InvalidArchError
from ..registry import register_space

OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
       "dil_conv_5x5")
NODES = 4
CONCAT = (2, 3, 4, 5)
CELLS = ("normal", "reduce")
#: Graph nodes per cell: the two inputs, one per edge operation, the output.
GRAPH_VOCAB = ("c_k-2", "c_k-1", *OPS, "output")

Cell = tuple  # 8 (op, input) pairs


@dataclass(frozen=True)
class DartsArch:
    normal: Cell
    reduce: Cell

    def cell(self, name: str) -> Cell:
        return getattr(self, name)


def _canonical(cell: Cell) -> Cell:
    pairs = []
    for node in range(NODES):
        pairs += sorted(cell[2 * node: 2 * node + 2], key=lambda e: (e[1], OPS.index(e[0])))
    return tuple(pairs)


def check_cell(cell, name: str = "cell") -> Cell:
    """A cell as a tuple of 8 (op, input) pairs; InvalidArchError saying what is wrong."""
    try:
        edges = [tuple(e) for e in cell]
    except TypeError:
        raise InvalidArchError(f"{name} must be a list of (operation, input) pairs, got {cell!r}") from None
    if len(edges) != 2 * NODES:
        raise InvalidArchError(f"{name} has {len(edges)} edges; a DARTS cell has {2 * NODES} "
                               f"(two inputs for each of its {NODES} nodes)")
    out = []
    for index, edge in enumerate(edges):
        node = index // 2 + 2
        if len(edge) != 2 or not isinstance(edge[0], str) or isinstance(edge[1], bool) or not isinstance(edge[1], int):
            raise InvalidArchError(f"{name} edge {index} must be (operation, input), got {edge!r}")
        op, src = edge
        if op not in OPS:
            raise InvalidArchError(f"{name} edge {index}: unknown operation {op!r}; valid: {', '.join(OPS)}")
        if not 0 <= src < node:
            raise InvalidArchError(f"{name} edge {index}: node {node} cannot take input {src} "
                                   f"(only earlier nodes 0..{node - 1})")
        out.append((op, src))
    for node in range(NODES):
        if out[2 * node][1] == out[2 * node + 1][1]:
            raise InvalidArchError(f"{name} node {node + 2} takes input {out[2 * node][1]} twice; "
                                   "its two inputs must differ")
    return tuple(out)


def parse_genotype(text: str) -> dict:
    """``Genotype(normal=[...], normal_concat=[...], reduce=[...], reduce_concat=[...])`` as
    pasted from DARTS-family code, parsed without evaluating code."""
    try:
        call = ast.parse(text.strip(), mode="eval").body
        if not (isinstance(call, ast.Call) and getattr(call.func, "id", getattr(call.func, "attr", None)) == "Genotype"):
            raise ValueError("not a Genotype(...) call")
        if call.args:
            raise ValueError("use keyword arguments: Genotype(normal=..., reduce=...)")
        return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    except (SyntaxError, ValueError) as err:
        raise InvalidArchError(f"cannot parse the genotype {text[:80]!r}: {err}") from None


#: Known genotypes from the DARTS paper and code (for tests, docs and `--arch darts_v2`).
DARTS_V1 = {"normal": [("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
                       ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
            "reduce": [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
                       ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)]}
DARTS_V2 = {"normal": [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
                       ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
            "reduce": [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
                       ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)]}


DATASETS = ("cifar10", "imagenet")
#: The DARTS paper's ImageNet network (mobile setting): 14 cells of 48 initial channels.
IMAGENET_SIZES = {"num_classes": 1000, "channels": 48, "layers": 14}


@dataclass(frozen=True)
class DartsBuildConfig:
    """The DARTS evaluation network; the defaults are the paper's CIFAR-10 one (36 channels,
    20 cells, reduction cells at 1/3 and 2/3 of the depth). ``dataset="imagenet"`` is the
    paper's ImageNet (mobile setting) network: a stem of two stride-2 3x3 convolutions then a
    third (224 -> 28 px before the first cell); ``build_model(arch, dataset="imagenet")`` also
    sets its sizes (1,000 classes, 48 channels, 14 cells) unless given."""
    num_classes: int = 10
    channels: int = 36
    layers: int = 20
    #: The auxiliary head after the second reduction cell (training only).
    auxiliary: bool = False
    #: Probability of dropping a whole edge operation (scheduled by the training recipe).
    drop_path: float = 0.0
    dataset: str = "cifar10"

    def validate(self):
        at_least(self, 1, "num_classes", "channels", where="darts.build")
        if self.dataset not in DATASETS:
            raise ConfigError(f"darts.build.dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        if self.layers < 3:
            raise ConfigError(f"darts.build.layers must be at least 3 (two reduction cells), "
                                   f"got {self.layers}")
        if not 0 <= self.drop_path < 1:
            raise ConfigError(f"darts.build.drop_path must be in [0, 1), got {self.drop_path}")


@register_space("darts")
class DartsSpace(SearchSpace, Sampling, GraphEncoding, ModelBuilding):
    """DARTS CIFAR-10 cells: a normal and a reduction cell, 4 nodes x 2 inputs, 7 ops.

    No Enumeration: the space has about 10^18 genotypes."""
    name = "darts"
    graph_vocab = GRAPH_VOCAB
    evaluators = ("cifar10-train",)
    build_config_class = DartsBuildConfig
    named_archs = MappingProxyType({"darts_v1": DARTS_V1, "darts_v2": DARTS_V2})
    # NAR-Former's DARTS search schedule (supplement 2.3): lr 1e-3, batch 32, 1,000 epochs per
    # round. Not scaled down for CPU: a round's ten trainings outlast its refit by far.
    search_predictor = MappingProxyType({"narformer": MappingProxyType({"lr": 1e-3, "batch_size": 32, "epochs": 1000})})

    def sample(self, rng):
        return DartsArch(*(self._sample_cell(rng) for _ in CELLS))

    @staticmethod
    def _sample_cell(rng) -> Cell:
        edges = []
        for node in range(NODES):
            inputs = rng.choice(node + 2, size=2, replace=False)
            edges += [(OPS[int(rng.integers(len(OPS)))], int(i)) for i in inputs]
        return tuple(edges)

    def mutate(self, arch, rng):
        """Change one operation or one input of one edge of one cell."""
        def attempt(a, rng):
            name = CELLS[int(rng.integers(2))]
            edges = list(a.cell(name))
            index = int(rng.integers(len(edges)))
            op, src = edges[index]
            if rng.random() < 0.5:
                edges[index] = (OPS[int(rng.choice([i for i in range(len(OPS)) if OPS[i] != op]))], src)
            else:
                node = index // 2 + 2
                other = edges[index ^ 1][1]
                choices = [s for s in range(node) if s not in (src, other)]
                if not choices:
                    return None
                edges[index] = (op, int(rng.choice(choices)))
            return DartsArch(**{**{c: a.cell(c) for c in CELLS}, name: tuple(edges)})
        return self.mutate_distinct(arch, rng, attempt)

    def count(self) -> int:
        per_cell = math.prod(math.comb(node + 2, 2) * len(OPS) ** 2 for node in range(NODES))
        return per_cell ** 2

    def key(self, arch) -> str:
        return ";".join(f"{c}=" + ",".join(f"{op}~{src}" for op, src in _canonical(arch.cell(c))) for c in CELLS)

    def to_json(self, arch) -> dict:
        return {"normal": [list(e) for e in arch.normal], "normal_concat": list(CONCAT),
                "reduce": [list(e) for e in arch.reduce], "reduce_concat": list(CONCAT)}

    def from_json(self, obj) -> DartsArch:
        if isinstance(obj, str):
            text = obj.strip()
            obj = parse_genotype(text) if text.startswith(("Genotype", "genotypes.Genotype")) else _json(text)
        if not isinstance(obj, dict):
            raise InvalidArchError(f"a DARTS genotype is a dict or a Genotype(...) text, got {type(obj).__name__}")
        unknown = set(obj) - {"normal", "normal_concat", "reduce", "reduce_concat"}
        if unknown:
            raise InvalidArchError(f"unknown genotype field(s) {', '.join(sorted(unknown))}")
        for c in CELLS:
            if c not in obj:
                raise InvalidArchError(f"the genotype has no {c!r} cell")
            concat = obj.get(f"{c}_concat", list(CONCAT))
            if list(concat) != list(CONCAT):
                raise InvalidArchError(f"{c}_concat must be {list(CONCAT)} (all four nodes), got {concat!r}")
        return DartsArch(*(check_cell(obj[c], c) for c in CELLS))

    def to_text(self, arch) -> str:
        """The DARTS ``Genotype(...)`` text, as DARTS-family code prints it."""
        cell = lambda c: "[" + ", ".join(f"({op!r}, {src})" for op, src in arch.cell(c)) + "]"
        return (f"Genotype(normal={cell('normal')}, normal_concat={list(CONCAT)}, "
                f"reduce={cell('reduce')}, reduce_concat={list(CONCAT)})")

    def to_graph(self, arch) -> ArchGraph:
        """Both cells, operations as nodes: per cell the two inputs, the 8 edge operations (in
        node order) and the output; an edge operation reads the input node it names, or the
        operations of the intermediate node it names; the output reads every operation. The
        reduction cell's inputs read the normal cell's output. 22 nodes."""
        return ArchGraph(*_graph_arrays([_canonical(arch.cell(name)) for name in CELLS]), GRAPH_VOCAB)

    def from_graph(self, graph: ArchGraph) -> DartsArch:
        """The arch of a graph of ``to_graph``'s form (an edge operation may list its node's
        two edges in either order); InvalidArchError naming the first node that breaks it."""
        self.check_graph_vocab(graph)
        per = 2 + 2 * NODES + 1
        ops = [int(o) for o in graph.ops]
        adjacency = np.asarray(graph.adjacency) != 0
        if len(ops) != 2 * per or adjacency.shape != (2 * per, 2 * per):
            raise InvalidArchError(f"a DARTS graph has {2 * per} nodes (two cells of {per}), got {len(ops)}")
        cells = []
        for c, name in enumerate(CELLS):
            base = c * per
            ends = (ops[base], ops[base + 1], ops[base + per - 1])
            if ends != (0, 1, len(GRAPH_VOCAB) - 1):
                raise InvalidArchError(f"the {name} cell's graph must start with c_k-2, c_k-1 and end with output; "
                                       f"got {[GRAPH_VOCAB[o] for o in ends]}")
            cell = []
            for index in range(2 * NODES):
                node = base + 2 + index
                if not 2 <= ops[node] < 2 + len(OPS):
                    raise InvalidArchError(f"{name} edge {index} carries {GRAPH_VOCAB[ops[node]]!r}, not an operation")
                cell.append((OPS[ops[node] - 2], _source(adjacency[:, node], base, name, index)))
            cells.append(check_cell(cell, name))
        _, expected_adjacency = _graph_arrays(cells)
        if not np.array_equal(expected_adjacency != 0, adjacency):
            raise InvalidArchError("the graph has edges a DARTS cell pair does not (each operation reads one input "
                                   "or one node's two operations; the outputs read every operation)")
        return DartsArch(*(_canonical(cell) for cell in cells))

    def inference_config(self, config):
        return dataclasses.replace(self.build_config(config), auxiliary=False, drop_path=0.0)

    def build_config(self, values=None):
        values = dict(values.__dict__ if dataclasses.is_dataclass(values) else values or {})
        if values.get("dataset") == "imagenet":  # the ImageNet network's own sizes, unless given
            values = {**IMAGENET_SIZES, **values}
        return super().build_config(values)

    def build_model(self, arch, config=None, dataset: str | None = None):
        """The network of ``arch``; ``dataset="imagenet"`` gives the DARTS ImageNet network."""
        from .model import DartsNetwork
        if dataset is not None:
            config = {**(dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config or {}),
                      "dataset": dataset}
        c = self.build_config(config)
        return DartsNetwork(arch, c.num_classes, c.channels, c.layers, c.auxiliary, c.drop_path,
                           stem="imagenet" if c.dataset == "imagenet" else "cifar")


def _graph_arrays(cells) -> tuple[np.ndarray, np.ndarray]:
    """(ops, adjacency) of ``to_graph`` for the two cells' (op, input) pairs, in the given order."""
    per = 2 + 2 * NODES + 1
    n = 2 * per
    adj = np.zeros((n, n), dtype=np.uint8)
    ops = np.zeros(n, dtype=np.int64)
    for c, cell in enumerate(cells):
        base = c * per
        ops[base], ops[base + 1], ops[base + per - 1] = 0, 1, len(GRAPH_VOCAB) - 1
        for index, (op, src) in enumerate(cell):
            node = base + 2 + index
            ops[node] = 2 + OPS.index(op)
            if src < 2:
                adj[base + src, node] = 1
            else:
                first = base + 2 + 2 * (src - 2)
                adj[first: first + 2, node] = 1
            adj[node, base + per - 1] = 1
        if c:
            adj[per - 1, base: base + 2] = 1
    return ops, adj


def _source(incoming: np.ndarray, base: int, name: str, index: int) -> int:
    """The input an edge operation reads, from the graph nodes feeding it: one of the cell's
    two inputs, or both operations of an intermediate node."""
    feeding = sorted(int(i) - base for i in np.flatnonzero(incoming))
    if len(feeding) == 1 and feeding[0] in (0, 1):
        return feeding[0]
    if len(feeding) == 2 and feeding[0] >= 2 and feeding[0] % 2 == 0 and feeding[1] == feeding[0] + 1:
        return 2 + (feeding[0] - 2) // 2
    raise InvalidArchError(f"{name} edge {index} reads graph nodes {feeding} of its cell; an operation reads one "
                           "input (0 or 1) or the two operations of one intermediate node")


def _json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidArchError(f"not a genotype (neither JSON nor Genotype(...)): {err}") from None
