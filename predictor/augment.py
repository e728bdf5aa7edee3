"""Renumbered twins of a cell: the same network as another node sequence.

* ``"flow"``: NAR-Former's information-flow-consistency augmentation. The inner nodes are
  renumbered in another topological order, so every node still comes after its sources and
  the adjacency stays upper-triangular.
* ``"isomorphism"``: the graph-isomorphism augmentation NAR-Former compares it with (its
  Table 5, "GI Aug"): any renumbering of the inner nodes (the input stays first, the output
  last), so a node may come before its sources.
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


def random_inner_permutation(num_nodes: int, rng: np.random.Generator) -> np.ndarray:
    """Input first, output last, the nodes between in a uniformly random order."""
    return np.concatenate([[0], 1 + rng.permutation(max(num_nodes - 2, 0)), [num_nodes - 1]])[:num_nodes]


#: Augmentation kind -> how it draws a node order for a graph's adjacency.
ORDERS = {"flow": random_topological_order,
          "isomorphism": lambda adjacency, rng: random_inner_permutation(len(adjacency), rng)}


def permute_graph(ops: np.ndarray, adjacency: np.ndarray, order: np.ndarray):
    """The graph with node order[k] renamed k."""
    return ops[order], adjacency[np.ix_(order, order)]


def twins(ops: np.ndarray, adjacency: np.ndarray, rng: np.random.Generator, count: int = 2,
          attempts: int = 20, kind: str = "flow") -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to ``count`` distinct renumberings (of ``kind``, see the module docstring) that
    differ from the original token sequence."""
    order_of = ORDERS[kind]
    seen = {(ops.tobytes(), adjacency.tobytes())}
    found = []
    for _ in range(attempts):
        if len(found) == count:
            break
        new_ops, new_adj = permute_graph(ops, adjacency, order_of(adjacency, rng))
        sig = (new_ops.tobytes(), new_adj.tobytes())
        if sig not in seen:
            seen.add(sig)
            found.append((new_ops, new_adj))
    return found
