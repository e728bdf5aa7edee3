"""The search-space interface and the graph form that predictors consume.

A space owns everything about its architectures: sampling, mutation, validity,
the canonical key, the JSON form, the node-based graph and the PyTorch network.
The rest of the engine handles architectures only through this interface.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Hashable, Iterator

import numpy as np


@dataclass(frozen=True, eq=False)
class ArchGraph:
    """A DAG with one operation per node, nodes in a topological order.

    ``ops[i]`` indexes ``vocab``; ``adjacency[i, j] == 1`` means an edge i -> j
    (always strictly upper-triangular). Node 0 is the input, the last node the output.
    """

    ops: np.ndarray  # int64 [n]
    adjacency: np.ndarray  # uint8 [n, n]
    vocab: tuple[str, ...]

    def __post_init__(self):
        n = len(self.ops)
        if self.adjacency.shape != (n, n):
            raise ValueError(f"adjacency shape {self.adjacency.shape} does not match {n} nodes")
        if np.any(np.tril(self.adjacency)):
            raise ValueError("adjacency must be strictly upper-triangular")

    @property
    def num_nodes(self) -> int:
        return len(self.ops)

    def __eq__(self, other):
        return (isinstance(other, ArchGraph) and self.vocab == other.vocab
                and np.array_equal(self.ops, other.ops)
                and np.array_equal(self.adjacency, other.adjacency))

    __hash__ = None  # mutable arrays inside


class SearchSpace(abc.ABC):
    """One family of architectures. Archs are frozen, hashable values."""

    name: str
    #: The operation names a graph node can carry, in index order.
    graph_vocab: tuple[str, ...]
    #: Names of the evaluators (search.evaluators) that can evaluate this space's archs;
    #: the first is the default.
    evaluators: tuple[str, ...] = ()

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator):
        """A random valid architecture."""

    @abc.abstractmethod
    def mutate(self, arch, rng: np.random.Generator):
        """A valid architecture with a different key, near ``arch``."""

    @abc.abstractmethod
    def enumerate(self) -> Iterator:
        """Every unique architecture (one per key), in a fixed order."""

    @abc.abstractmethod
    def count(self) -> int:
        """The number of unique architectures."""

    @abc.abstractmethod
    def key(self, arch) -> Hashable:
        """A canonical id: isomorphic architectures share it."""

    @abc.abstractmethod
    def to_json(self, arch) -> Any:
        """A JSON-serialisable form, the official one of the benchmark where there is one."""

    @abc.abstractmethod
    def from_json(self, obj: Any):
        """Parse ``to_json``'s form (or a JSON text of it); raises InvalidArchError."""

    @abc.abstractmethod
    def to_graph(self, arch) -> ArchGraph:
        """The node-based graph predictors consume."""

    @abc.abstractmethod
    def build_model(self, arch, num_classes: int = 10):
        """The PyTorch network (``torch.nn.Module``) the benchmark trained."""

    def mutate_distinct(self, arch, rng, attempt):
        """Retry ``attempt(arch, rng)`` until it returns a different key; shared by mutate()s."""
        old = self.key(arch)
        while True:
            new = attempt(arch, rng)
            if new is not None and self.key(new) != old:
                return new
