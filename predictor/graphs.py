"""Batching node-based graphs into padded arrays (one Python step per graph, not per node)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import PredictorError


@dataclass
class GraphBatch:
    ops: np.ndarray  # int64 [B, N], -1 = padding
    adjacency: np.ndarray  # float32 [B, N, N]
    num_nodes: np.ndarray  # int64 [B]
    #: per-node attributes [B, N, F] (zero on padding) and their names, when every graph has them
    features: np.ndarray | None = None
    feature_names: tuple[str, ...] = ()
    #: per-graph attributes by name, each [B]
    graph_features: dict | None = None

    @property
    def max_nodes(self) -> int:
        return self.ops.shape[1]

    @property
    def mask(self) -> np.ndarray:
        return self.ops >= 0


def batch_graphs(graphs: Sequence, max_nodes: int | None = None) -> GraphBatch:
    """Pad graphs to ``max_nodes`` (default: the largest). Raises PredictorError on bad graphs."""
    if len(graphs) == 0:
        raise PredictorError("no graphs given")
    sizes = np.array([len(g.ops) for g in graphs], dtype=np.int64)
    width = int(sizes.max()) if max_nodes is None else max_nodes
    if sizes.max() > width:
        raise PredictorError(f"a graph has {sizes.max()} nodes; this predictor was fitted for at most {width}")
    ops = np.full((len(graphs), width), -1, dtype=np.int64)
    adjacency = np.zeros((len(graphs), width, width), dtype=np.float32)
    for i, g in enumerate(graphs):
        n = sizes[i]
        ops[i, :n] = g.ops
        adjacency[i, :n, :n] = g.adjacency
    names = getattr(graphs[0], "node_feature_names", ())
    if not names or any(getattr(g, "node_feature_names", ()) != names for g in graphs):
        return GraphBatch(ops, adjacency, sizes)
    features = np.zeros((len(graphs), width, len(names)), dtype=np.float32)
    for i, g in enumerate(graphs):
        features[i, :sizes[i]] = g.node_features
    graph_names = [name for name, _ in graphs[0].graph_features]
    graph_features = {name: np.array([dict(g.graph_features).get(name, np.nan) for g in graphs])
                      for name in graph_names}
    return GraphBatch(ops, adjacency, sizes, features, tuple(names), graph_features)


def neighbour_mask(batch: GraphBatch) -> np.ndarray:
    """bool [B, N, N]: node i and node j share an edge (either way) or i == j. Padding
    nodes have no edges, so their rows hold only themselves."""
    adj = batch.adjacency > 0
    return adj | adj.transpose(0, 2, 1) | np.eye(batch.max_nodes, dtype=bool)[None]
