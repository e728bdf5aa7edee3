"""NAR-Former's tokenizer: every node becomes real-number sine/cosine codes.

A number p is coded as [sin(b_1 p pi), cos(b_1 p pi), ..., sin(b_L p pi), cos(b_L p pi)]
with frequencies b spaced linearly from 2^0 to 2^(L-1). A node's token is the
concatenation of the codes of its operation index, its own position, and the sum of
the codes of its source nodes' positions (the first node's source code is code(-1)).
After the last node an end token codes 1e5 in every part. Everything is vectorised
over the batch: no Python loop over nodes.
"""
from __future__ import annotations

import functools

import numpy as np

from .graphs import GraphBatch

END_VALUE = 1e5


def frequencies(num_freqs: int) -> np.ndarray:
    return np.linspace(1.0, 2.0 ** (num_freqs - 1), num_freqs)


def sincos_code(values: np.ndarray, num_freqs: int) -> np.ndarray:
    """Code of each value: shape values.shape + (2 * num_freqs,), sin/cos interleaved.

    Computed in float64: the high frequencies need the precision to be reproducible.
    """
    angles = np.asarray(values, dtype=np.float64)[..., None] * np.pi * frequencies(num_freqs)
    return np.stack([np.sin(angles), np.cos(angles)], axis=-1).reshape(*angles.shape[:-1], 2 * num_freqs)


@functools.lru_cache(maxsize=64)
def code_table(first: int, count: int, num_freqs: int) -> np.ndarray:
    """Codes of the integers first .. first+count-1 (read-only, cached)."""
    table = sincos_code(np.arange(first, first + count), num_freqs)
    table.setflags(write=False)
    return table


def tokenize(batch: GraphBatch, num_freqs: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(tokens float32 [B, N+1, 6L], mask bool [B, N+1]) for a padded batch.

    Token i < num_nodes is node i; token num_nodes is the end token; the rest is padding.
    Operation and position codes come from small cached tables; the source codes are
    one batched matrix product, so the cost is a few array operations per batch.
    """
    b, n = batch.ops.shape
    width = 2 * num_freqs
    mask = batch.mask
    num_ops = int(batch.ops.max()) + 1
    op_table = code_table(0, max(num_ops, 1), num_freqs)
    pos_table = code_table(-1, n + 1, num_freqs)  # row 0 is code(-1), row k+1 is code(k)
    tokens = np.zeros((b, n + 1, 3 * width), dtype=np.float32)
    tokens[:, :n, :width] = op_table[np.where(mask, batch.ops, 0)]
    tokens[:, :n, width:2 * width] = pos_table[1:]
    # source code of node i = sum over its predecessors j of code(j); code(-1) for the input
    incoming = batch.adjacency.transpose(0, 2, 1).reshape(b * n, n)  # row (g, i): predecessors of i
    tokens[:, :n, 2 * width:] = (incoming @ pos_table[1:].astype(np.float32)).reshape(b, n, width)
    tokens[:, 0, 2 * width:] = pos_table[0]
    return _with_end_token(tokens, batch, num_freqs)


#: How a node's own position joins its op code (NAR-Former's Table 5 "Self_ID").
SELF_ID = ("concat", "add")


def with_self_id(tokens: np.ndarray, num_freqs: int, self_id: str = "concat",
                 num_nodes: np.ndarray | None = None) -> np.ndarray:
    """``tokenize``'s tokens as they are ("concat": [op, own position, sources], 6L), or with the
    own-position code added to the op code ("add": [op + own position, sources], 4L). With
    ``num_nodes`` (the end token's index per graph) the end token keeps code(1e5) per part."""
    if self_id == "concat":
        return tokens
    width = 2 * num_freqs
    out = np.concatenate([tokens[..., :width] + tokens[..., width:2 * width], tokens[..., 2 * width:]], axis=-1)
    if num_nodes is not None:
        rows = np.arange(len(tokens))
        out[rows, num_nodes, :width] = tokens[rows, num_nodes, :width]
    return out


def node_tokens(batch: GraphBatch, num_freqs: int = 32, self_id: str = "concat") -> np.ndarray:
    """float32 [B, N, 6L or 4L]: the node tokens alone (no end token; padding zero), for
    predictors that read nodes, not a sequence (TNASP's transformer, NP's GCN)."""
    tokens, _ = tokenize(batch, num_freqs)
    n = batch.ops.shape[1]
    return with_self_id(tokens, num_freqs, self_id)[:, :n] * batch.mask[..., None]  # end tokens zeroed too


#: Node attributes of layer graphs (whole networks such as ofa_mbv3) that the layer tokens code.
LAYER_PARTS = ("kernel", "expand_ratio")


def has_layer_attributes(batch: GraphBatch) -> bool:
    return batch.features is not None and all(name in batch.feature_names for name in LAYER_PARTS)


def tokenize_layers(batch: GraphBatch, num_freqs: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """The tokens NAR-Former's supplement (sec. 2.4) uses on the MobileNet space: per layer the
    codes of its kernel size, its expand ratio and its own position, in place of the
    operation, position and source codes; then the end token. Same shapes as ``tokenize``.

    The position is the node's ``slot`` attribute where the graph has one (its place in the
    supernet, so a block is coded the same whatever the depths before it), else its index."""
    b, n = batch.ops.shape
    width = 2 * num_freqs
    tokens = np.zeros((b, n + 1, 3 * width), dtype=np.float32)
    for part, name in enumerate(LAYER_PARTS):
        values = batch.features[:, :, batch.feature_names.index(name)]
        tokens[:, :n, part * width:(part + 1) * width] = sincos_code(values, num_freqs)
    if "slot" in batch.feature_names:
        tokens[:, :n, 2 * width:] = sincos_code(batch.features[:, :, batch.feature_names.index("slot")], num_freqs)
    else:
        tokens[:, :n, 2 * width:] = code_table(0, n, num_freqs)[None]
    return _with_end_token(tokens, batch, num_freqs)


def _with_end_token(tokens: np.ndarray, batch: GraphBatch, num_freqs: int) -> tuple[np.ndarray, np.ndarray]:
    """Zero the padding nodes, put the end token after each graph's last node; (tokens, mask)."""
    b, n = batch.ops.shape
    tokens[:, :n] *= batch.mask[..., None]
    rows = np.arange(b)
    tokens[rows, batch.num_nodes] = np.tile(sincos_code(np.array(END_VALUE), num_freqs), 3)
    full_mask = np.zeros((b, n + 1), dtype=bool)
    full_mask[:, :n] = batch.mask
    full_mask[rows, batch.num_nodes] = True
    return tokens, full_mask
