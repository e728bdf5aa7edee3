"""A space confined to a list of its architectures: what a search over a table of results sees.

A table of your own results (:mod:`spaces.table`) holds a few hundred of a space's
architectures; a search that looks values up there can propose only those. ``restrict(space,
archs)`` is ``space`` with its sampling confined to ``archs``:

* ``sample`` draws one of them uniformly;
* ``mutate`` mutates in the whole space, then moves the mutant to the nearest listed
  architecture other than the parent (ties drawn at random), so a search's local steps stay
  local. Distance: the number of node operations, edges and node attributes in which two graphs
  differ (graphs padded to the larger); a space without graphs gets a random listed arch;
* ``enumerate`` and ``count`` are the list's.

Everything else (keys, JSON, graphs, networks) is the space's own: the view is an instance of a
subclass of the space's class, so every capability check still sees what the space can do.
"""
from __future__ import annotations

import numpy as np

from .base import Enumeration, GraphEncoding, Sampling, SearchSpace
from .errors import SpacesError


class Restricted(Sampling, Enumeration):
    """The overrides of a confined space (mixed in before the space's own class)."""

    _archs: list
    _rows: dict
    _codes: tuple | None  # (ops, adjacency, node features) of every listed arch, padded

    def count(self) -> int:
        return len(self._archs)

    def enumerate(self):
        return iter(self._archs)

    def sample(self, rng: np.random.Generator):
        return self._archs[int(rng.integers(len(self._archs)))]

    def mutate(self, arch, rng: np.random.Generator):
        if len(self._archs) < 2:
            raise SpacesError(f"the {self.name} table holds one architecture: nothing to mutate it into")
        mutant = super().mutate(arch, rng) if isinstance(self.unrestricted, Sampling) else arch
        parent = self._rows.get(self.key(arch))
        row = self._rows.get(self.key(mutant))
        if row is not None and row != parent:
            return mutant
        distance = self._distances(mutant)
        if parent is not None:
            distance[parent] = np.iinfo(distance.dtype).max
        nearest = np.flatnonzero(distance == distance.min())
        return self._archs[int(rng.choice(nearest))]

    def _distances(self, arch) -> np.ndarray:
        if self._codes is None:
            return np.zeros(len(self._archs), dtype=np.int64)
        ops, adjacency, features = _encode([self.to_graph(arch)], self._codes[0].shape[1])
        codes = self._codes
        distance = (codes[0] != ops).sum(1) + (codes[1] != adjacency).sum(1, dtype=np.int64)
        if features is not None:
            distance += (codes[2] != features).sum(1)
        return distance.astype(np.int64)

    def __reduce__(self):  # the class is made at run time: pickle the recipe, not the class
        return restrict, (self.unrestricted, self._archs)


def restrict(space: SearchSpace, archs) -> SearchSpace:
    """``space`` confined to ``archs`` (one per key; see the module's docstring)."""
    archs = list(archs)
    if not archs:
        raise SpacesError(f"no {space.name} architectures to confine the space to")
    base = type(space)
    view_class = type(f"{base.__name__}Restricted", (Restricted, base), {"__module__": __name__})
    view = object.__new__(view_class)
    view.__dict__.update(space.__dict__)
    view.unrestricted = space
    view._archs = archs
    view._rows = {space.key(a): i for i, a in enumerate(archs)}
    if len(view._rows) != len(archs):
        raise SpacesError(f"the {space.name} architectures to confine the space to repeat a key")
    view._codes = None
    if isinstance(space, GraphEncoding):
        graphs = [space.to_graph(a) for a in archs]
        view._codes = _encode(graphs, max(g.num_nodes for g in graphs))
    return view


def _encode(graphs, nodes: int):
    """(ops [n, nodes] padded with -1, adjacency [n, nodes*nodes], node features [n, ...] or None)."""
    ops = np.full((len(graphs), nodes), -1, dtype=np.int64)
    adjacency = np.zeros((len(graphs), nodes, nodes), dtype=np.uint8)
    width = graphs[0].node_features.shape[1] if graphs[0].node_features is not None else 0
    features = np.full((len(graphs), nodes, width), np.nan, dtype=np.float32) if width else None
    for i, g in enumerate(graphs):
        n = min(g.num_nodes, nodes)  # a mutant larger than every listed arch: compare its first nodes
        ops[i, :n] = g.ops[:n]
        adjacency[i, :n, :n] = g.adjacency[:n, :n]
        if features is not None and g.node_features is not None:
            features[i, :n] = g.node_features[:n]
    if features is not None:
        features = np.nan_to_num(features, nan=-1.0).reshape(len(graphs), -1)
    return ops, adjacency.reshape(len(graphs), -1), features
