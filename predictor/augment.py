"""Information-flow-consistency augmentation (NAR-Former).

Renumbering the inner nodes of a cell in another topological order gives the same
network with a different token sequence; its adjacency stays upper-triangular.
"""
from __future__ import annotations

import numpy as np


def random_topological_order(adjacency: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Kahn's algorithm picking a random ready node each step. In a cell every node lies on
    an input -> output path, so the input always comes first and the output last."""
    remaining = adjacency.sum(0).astype(int)
    ready = [int(v) for v in np.flatnonzero(remaining == 0)]
    order = []
    while ready:
        v = ready.pop(int(rng.integers(len(ready))))
        order.append(v)
        for w in np.flatnonzero(adjacency[v]):
            remaining[w] -= 1
            if remaining[w] == 0:
                ready.append(int(w))
    return np.array(order)


def permute_graph(ops: np.ndarray, adjacency: np.ndarray, order: np.ndarray):
    """The graph with node order[k] renamed k."""
    return ops[order], adjacency[np.ix_(order, order)]


def twins(ops: np.ndarray, adjacency: np.ndarray, rng: np.random.Generator, count: int = 2,
          attempts: int = 20) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to ``count`` distinct renumberings that differ from the original token sequence."""
    seen = {(ops.tobytes(), adjacency.tobytes())}
    found = []
    for _ in range(attempts):
        if len(found) == count:
            break
        new_ops, new_adj = permute_graph(ops, adjacency, random_topological_order(adjacency, rng))
        sig = (new_ops.tobytes(), new_adj.tobytes())
        if sig not in seen:
            seen.add(sig)
            found.append((new_ops, new_adj))
    return found
