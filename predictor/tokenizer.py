"""NAR-Former's tokenizer: every node becomes real-number sine/cosine codes.

A number p is coded as [sin(b_1 p pi), cos(b_1 p pi), ..., sin(b_L p pi), cos(b_L p pi)]
with frequencies b spaced linearly from 2^0 to 2^(L-1). A node's token is the
concatenation of the codes of its operation index, its own position, and the sum of
the codes of its source nodes' positions (the first node's source code is code(-1)).
After the last node an end token codes 1e5 in every part. Everything is vectorised
over the batch: no Python loop over nodes.
"""
from __future__ import annotations

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


def tokenize(batch: GraphBatch, num_freqs: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(tokens float32 [B, N+1, 6L], mask bool [B, N+1]) for a padded batch.

    Token i < num_nodes is node i; token num_nodes is the end token; the rest is padding.
    """
    b, n = batch.ops.shape
    mask = batch.mask
    op_code = sincos_code(np.where(mask, batch.ops, 0), num_freqs)  # [B, N, 2L]
    pos_code = sincos_code(np.arange(n), num_freqs)  # [N, 2L]
    # source code of node i = sum over its predecessors j of code(j)
    src_code = np.einsum("bji,jd->bid", batch.adjacency.astype(np.float64), pos_code)
    src_code[:, 0] = sincos_code(np.array(-1.0), num_freqs)
    node_tokens = np.concatenate([op_code, np.broadcast_to(pos_code, op_code.shape), src_code], axis=-1)
    node_tokens *= mask[..., None]
    tokens = np.zeros((b, n + 1, 6 * num_freqs), dtype=np.float64)
    tokens[:, :n] = node_tokens
    end = np.tile(sincos_code(np.array(END_VALUE), num_freqs), 3)
    tokens[np.arange(b), batch.num_nodes] = end
    full_mask = np.zeros((b, n + 1), dtype=bool)
    full_mask[:, :n] = mask
    full_mask[np.arange(b), batch.num_nodes] = True
    return tokens.astype(np.float32), full_mask
