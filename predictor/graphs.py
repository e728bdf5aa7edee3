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
    # per-graph numbers every graph carries (a name some graphs lack is left out)
    per_graph = [dict(getattr(g, "graph_features", ()) or ()) for g in graphs]
    shared = [name for name in per_graph[0] if all(name in f for f in per_graph)]
    graph_features = {name: np.array([f[name] for f in per_graph], dtype=np.float64) for name in shared} or None
    names = getattr(graphs[0], "node_feature_names", ())
    if not names or any(getattr(g, "node_feature_names", ()) != names for g in graphs):
        return GraphBatch(ops, adjacency, sizes, graph_features=graph_features)
    features = np.zeros((len(graphs), width, len(names)), dtype=np.float32)
    for i, g in enumerate(graphs):
        features[i, :sizes[i]] = g.node_features
    return GraphBatch(ops, adjacency, sizes, features, tuple(names), graph_features)


def neighbour_mask(batch: GraphBatch) -> np.ndarray:
    """bool [B, N, N]: node i and node j share an edge (either way) or i == j. Padding
    nodes have no edges, so their rows hold only themselves."""
    adj = batch.adjacency > 0
    return adj | adj.transpose(0, 2, 1) | np.eye(batch.max_nodes, dtype=bool)[None]


def node_slots(batch: GraphBatch) -> np.ndarray:
    """int64 [B, N]: where each node sits in a fixed-width encoding. Whole networks give each
    layer a ``slot`` in their supernet (a block keeps its slot whatever the depths before it,
    so the same position means the same block in every graph); cells use the node index."""
    if batch.features is not None and "slot" in batch.feature_names:
        slots = batch.features[:, :, batch.feature_names.index("slot")].astype(np.int64)
        slots = np.where(batch.mask, slots, np.arange(batch.max_nodes)[None])
        if slots.min() < 0 or slots.max() >= batch.max_nodes:
            raise PredictorError(f"node slots must be in 0..{batch.max_nodes - 1}, got {slots.min()}..{slots.max()}")
        return slots
    return np.broadcast_to(np.arange(batch.max_nodes), batch.ops.shape)


def _placed(batch: GraphBatch, num_ops: int) -> tuple[np.ndarray, np.ndarray]:
    """(one-hot ops [B, N, num_ops], adjacency [B, N, N]), both placed by ``node_slots``
    (empty slots are zero)."""
    b, n = batch.ops.shape
    slots = node_slots(batch)
    ops = np.zeros((b, n, num_ops), dtype=np.float32)
    g, i = np.nonzero(batch.mask)
    ops[g, slots[g, i], batch.ops[g, i]] = 1.0
    adjacency = np.zeros((b, n, n), dtype=np.float32)
    adjacency[np.arange(b)[:, None, None], slots[:, :, None], slots[:, None, :]] = batch.adjacency
    return ops, adjacency


def flat_encoding(batch: GraphBatch, num_ops: int) -> np.ndarray:
    """float32 [B, N(N-1)/2 + N * num_ops]: the upper-triangular adjacency and one-hot
    operations, both placed by ``node_slots`` (empty slots are zero)."""
    ops, adjacency = _placed(batch, num_ops)
    upper_rows, upper_cols = np.triu_indices(batch.max_nodes, 1)
    return np.concatenate([adjacency[:, upper_rows, upper_cols], ops.reshape(len(ops), -1)], axis=1)


def edge_op_encoding(batch: GraphBatch, num_ops: int) -> np.ndarray:
    """float32 [B, N(N-1)/2 * num_ops]: for every edge i -> j, the one-hot operation of j, placed
    by ``node_slots``: which operation reads which input, jointly. On a DARTS cell, whose graph
    nodes are its edges, this is the one-hot (op, input) code of each node's two edges (the linear
    baseline of NAS-Bench-301 work), where ``flat_encoding`` codes op and input apart."""
    ops, adjacency = _placed(batch, num_ops)
    upper_rows, upper_cols = np.triu_indices(batch.max_nodes, 1)
    labelled = adjacency[:, upper_rows, upper_cols, None] * ops[:, upper_cols, :]
    return labelled.reshape(len(ops), -1)
