"""NAR-Former's whole-network encoding (its supplement, section 1) and the GNN's node features.

Every layer becomes 15 codes of 32 real numbers (480 in all), each a sine/cosine code of the
NAR-Former tokenizer: operation type, own position, source positions (the sum of their
codes), the eight operation attributes of the supplement's Table 1 (kernel shape, stride,
padding, dilation, groups, bias, permutation, output padding) and the four values of the
output shape (batch, channels, height, width). An attribute with several values shares its
32 numbers (kernel h and w: 16 each; the 4 paddings and the 4 permutation entries: 8 each).
A layer without an attribute, or an output with fewer dimensions, has zeros in that code, as
the supplement pads.

Our choice where the supplement is silent: sizes (groups, batch, channels, height, width)
are coded on a log2 scale (powers of two become the small integers the codes are made for);
kernel, stride, padding, dilation, bias, permutation and positions are small integers, coded as
they are. The codes tell values apart but do not order them: their lowest frequency already
repeats every 2 units, and the highest make 512 and 520 channels unrelated.

Options beyond the supplement: ``cost_codes=True`` adds two codes, the layer's MACs and its
memory access on a log2 scale, which the supplement's token leaves the model to infer (a conv's
input channels are only in its producer's token); ``raw_values=True`` appends the layer's values
as plain numbers (log2(1 + x) / 8), which an unseen network's values can be interpolated between.

A dataset is kept as compact per-graph arrays (a 250-layer network is 15 numbers per layer);
the 480-wide tokens are built from them per network and kept only while a predictor fits
(about 0.9 GB for our 2,600 networks), then batched with padding.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from predictor.tokenizer import sincos_code
from .graph import NODE_FEATURES, OP_VOCAB, STATIC_FEATURES

CODE = 32  # numbers per code, as in the supplement
SLOTS = 15
TOKEN_WIDTH = CODE * SLOTS  # 480
#: The optional per-layer cost codes (``cost_codes=True``), after the supplement's 15.
COST_FEATURES = ("macs", "memory_access")

#: (slot name, node features it codes, log2 scale) for the attribute and shape slots.
ATTRIBUTE_SLOTS = (
    ("kernel", ("kernel_h", "kernel_w"), False),
    ("stride", ("stride_h", "stride_w"), False),
    ("padding", ("pad_top", "pad_left", "pad_bottom", "pad_right"), False),
    ("dilation", ("dilation_h", "dilation_w"), False),
    ("groups", ("groups",), True),
    ("bias", ("bias",), False),
    ("perm", ("perm_0", "perm_1", "perm_2", "perm_3"), False),
    ("output_padding", ("output_padding_h", "output_padding_w"), False),
    ("batch", ("out_batch",), True),
    ("channels", ("out_channels",), True),
    ("height", ("out_height",), True),
    ("width", ("out_width",), True),
)
_COL = {name: i for i, name in enumerate(NODE_FEATURES)}
_WINDOW_OPS = ("Conv", "ConvTranspose", "MaxPool", "AveragePool")
#: Which ops have which attribute (the rest get a zero code there).
_HAS = {
    "kernel": _WINDOW_OPS, "stride": _WINDOW_OPS, "padding": _WINDOW_OPS, "dilation": _WINDOW_OPS,
    "groups": ("Conv", "ConvTranspose"), "bias": ("Conv", "ConvTranspose", "Gemm"), "perm": ("Transpose",),
    "output_padding": ("ConvTranspose",),
}


@dataclass
class CompactGraph:
    """What the encoders need of one layer graph, small enough to keep for every network."""

    ops: np.ndarray  # int64 [n]
    sources: tuple[np.ndarray, np.ndarray]  # (src, dst) edge lists
    values: np.ndarray  # float32 [n, len(NODE_FEATURES)]
    static: np.ndarray  # float64 [len(STATIC_FEATURES)]

    @property
    def num_nodes(self) -> int:
        return len(self.ops)


def compact(graph) -> CompactGraph:
    src, dst = np.nonzero(graph.adjacency)
    static = dict(graph.graph_features)
    return CompactGraph(np.asarray(graph.ops, dtype=np.int64), (src.astype(np.int64), dst.astype(np.int64)),
                        np.asarray(graph.node_features, dtype=np.float32),
                        np.array([static[k] for k in STATIC_FEATURES], dtype=np.float64))


def _presence_table() -> np.ndarray:
    """bool [len(OP_VOCAB), len(ATTRIBUTE_SLOTS)]: op type has the slot's attribute (shape
    slots: always, zeroed separately where the dimension is absent)."""
    table = np.ones((len(OP_VOCAB), len(ATTRIBUTE_SLOTS)), dtype=bool)
    for s, (name, _, _) in enumerate(ATTRIBUTE_SLOTS):
        if name in _HAS:
            table[:, s] = [op in _HAS[name] for op in OP_VOCAB]
    return table


PRESENCE = _presence_table()


def _code(values: np.ndarray, width: int) -> np.ndarray:
    """[..., k] values -> [..., width]: each value coded in width/k numbers."""
    k = values.shape[-1]
    per = width // k
    return sincos_code(values, per // 2).reshape(*values.shape[:-1], k * per)


def pad_batch(graphs: list[CompactGraph]):
    """(ops int64 [B,N] with -1 padding, values float32 [B,N,F], adjacency float32 [B,N,N])."""
    sizes = np.array([g.num_nodes for g in graphs])
    b, n = len(graphs), int(sizes.max())
    ops = np.full((b, n), -1, dtype=np.int64)
    values = np.zeros((b, n, len(NODE_FEATURES)), dtype=np.float32)
    adjacency = np.zeros((b, n, n), dtype=np.float32)
    for i, g in enumerate(graphs):
        ops[i, :g.num_nodes] = g.ops
        values[i, :g.num_nodes] = g.values
        adjacency[i, g.sources[0], g.sources[1]] = 1.0
    return ops, values, adjacency, sizes


#: The optional plain values (``raw_values=True``): every node feature but the permutation, as
#: log2(1 + x) / 8 (the GNN's columns, at most about 4), after the codes.
RAW_FEATURES = tuple(name for name in NODE_FEATURES if not name.startswith("perm_"))
RAW_SCALE = 1.0 / 8.0


def token_width(cost_codes: bool = False, raw_values: bool = False) -> int:
    return TOKEN_WIDTH + (len(COST_FEATURES) * CODE if cost_codes else 0) + (len(RAW_FEATURES) if raw_values else 0)


def narformer_tokens(graphs: list[CompactGraph], cost_codes: bool = False, raw_values: bool = False):
    """(tokens float32 [B, N+1, width], mask bool [B, N+1], num_nodes [B], adjacency [B, N, N]):
    one token per layer and NAR-Former's end token after the last; width 480, or 544 with
    ``cost_codes``, and the plain values after them with ``raw_values``."""
    ops, values, adjacency, sizes = pad_batch(graphs)
    b, n = ops.shape
    mask = ops >= 0
    width = token_width(cost_codes, raw_values)
    coded = token_width(cost_codes)
    tokens = np.zeros((b, n + 1, width), dtype=np.float32)
    half = CODE // 2
    tokens[:, :n, 0:CODE] = sincos_code(np.where(mask, ops, 0), half)
    positions = sincos_code(np.arange(-1, n), half).astype(np.float32)  # row 0: code(-1), the input's source
    tokens[:, :n, CODE:2 * CODE] = positions[1:][None]
    # sources: the sum of the codes of each layer's inputs (one batched product)
    tokens[:, :n, 2 * CODE:3 * CODE] = np.matmul(adjacency.transpose(0, 2, 1), positions[1:n + 1])
    tokens[:, 0, 2 * CODE:3 * CODE] = positions[0]
    present = PRESENCE[np.where(mask, ops, 0)]  # [B, N, slots]
    for s, (_, names, log_scale) in enumerate(ATTRIBUTE_SLOTS):
        v = values[:, :, [_COL[name] for name in names]].astype(np.float64)
        shape_slot = names[0].startswith("out_")
        if log_scale:
            v = np.log2(np.maximum(v, 1.0))
        code = _code(v, CODE)
        keep = present[:, :, s] & (values[:, :, _COL[names[0]]] > 0 if shape_slot else True)
        tokens[:, :n, (3 + s) * CODE:(4 + s) * CODE] = code * keep[..., None]
    if cost_codes:  # zero where the layer has none (a ReLU moves memory but has no MACs)
        v = values[:, :, [_COL[name] for name in COST_FEATURES]].astype(np.float64)
        code = sincos_code(np.log2(np.maximum(v, 1.0)), CODE // 2)  # [B, N, 2, 32]: a code each
        tokens[:, :n, TOKEN_WIDTH:coded] = (code * (v > 0)[..., None]).reshape(b, n, -1)
    if raw_values:  # magnitudes as they are: the codes tell integers apart but do not order them
        v = values[:, :, [_COL[name] for name in RAW_FEATURES]].astype(np.float64)
        tokens[:, :n, coded:] = RAW_SCALE * np.log2(1.0 + np.maximum(v, 0.0))
    tokens[:, :n] *= mask[..., None]
    rows = np.arange(b)
    tokens[rows, sizes, :coded] = np.tile(sincos_code(np.array(1e5), half), coded // CODE)
    full_mask = np.zeros((b, n + 1), dtype=bool)
    full_mask[:, :n] = mask
    full_mask[rows, sizes] = True
    return tokens, full_mask, sizes, adjacency


def stack_tokens(per_graph: list[np.ndarray]):
    """Per-graph tokens ([n_i + 1, 480] each, as ``narformer_tokens([g])[0][0]``) -> the
    batched (tokens, mask, sizes) of :func:`narformer_tokens`: zero padding after each end token."""
    sizes = np.array([len(t) - 1 for t in per_graph])
    tokens = np.zeros((len(per_graph), int(sizes.max()) + 1, per_graph[0].shape[1]), dtype=np.float32)
    mask = np.zeros(tokens.shape[:2], dtype=bool)
    for i, t in enumerate(per_graph):
        tokens[i, :len(t)] = t
        mask[i, :len(t)] = True
    return tokens, mask, sizes


#: The GNN's node features: one-hot op, then these columns on a log2(1 + x) scale.
GNN_COLUMNS = tuple(name for name in NODE_FEATURES if name not in ("perm_0", "perm_1", "perm_2", "perm_3"))
_GNN_INDEX = [_COL[c] for c in GNN_COLUMNS]


def gnn_node_features(graph: CompactGraph) -> np.ndarray:
    """float32 [n, |vocab| + columns] for one graph."""
    onehot = np.zeros((graph.num_nodes, len(OP_VOCAB)), dtype=np.float32)
    onehot[np.arange(graph.num_nodes), graph.ops] = 1.0
    cols = np.log2(1.0 + np.maximum(graph.values[:, _GNN_INDEX], 0.0))
    return np.concatenate([onehot, cols.astype(np.float32)], axis=-1)


def gnn_batch(graphs: list[CompactGraph], features: list[np.ndarray] | None = None):
    """A batch as one disjoint graph (no padding, so a 40-layer and an 800-layer network cost
    what they are): (features [total, F], edges int64 [2, E] in the batch's node numbering,
    graph int64 [total]: which network each node belongs to)."""
    features = features if features is not None else [gnn_node_features(g) for g in graphs]
    sizes = np.array([g.num_nodes for g in graphs])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    edges = np.concatenate([np.stack(g.sources) + off for g, off in zip(graphs, offsets)], axis=1)
    graph = np.repeat(np.arange(len(graphs)), sizes)
    return np.concatenate(features).astype(np.float32), edges.astype(np.int64), graph


def static_matrix(graphs: list[CompactGraph]) -> np.ndarray:
    """float64 [B, 5]: batch size and log10 of FLOPs, MACs, parameters and memory access."""
    s = np.stack([g.static for g in graphs])
    out = s.copy()
    out[:, 1:] = np.log10(1.0 + s[:, 1:])
    return out
