"""The search-space interface, split by capability, and the graph form predictors consume.

Every space is a :class:`SearchSpace` (name, canonical key, JSON form, size). What else
it can do it says by the capability classes it also derives from:

* :class:`Sampling` - draw random architectures and mutate them (what search strategies need);
* :class:`Enumeration` - list every unique architecture (exhaustive benchmarks, ``spaces enumerate``);
* :class:`GraphEncoding` - the node-based :class:`ArchGraph` predictors consume;
* :class:`ModelBuilding` - the PyTorch network, shaped by a typed build config.

A space implements only what it supports; callers ask with :func:`require`, which names
what the space can do instead when it lacks the capability.
"""
from __future__ import annotations

import abc
import json
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Hashable, Iterator, Mapping

import numpy as np

from .errors import InvalidArchError, SpacesError


@dataclass(frozen=True, eq=False)
class ArchGraph:
    """A DAG with one operation per node, nodes in a topological order.

    ``ops[i]`` indexes ``vocab``; ``adjacency[i, j] == 1`` means an edge i -> j
    (always strictly upper-triangular). Node 0 is the input, the last node the output.
    """

    ops: np.ndarray  # int64 [n]
    adjacency: np.ndarray  # uint8 [n, n]
    vocab: tuple[str, ...]
    #: Optional numeric attributes of each node (float32 [n, len(node_feature_names)]), for
    #: spaces whose nodes are whole layers (kernel, expand ratio, channels, feature-map size).
    node_features: np.ndarray | None = None
    node_feature_names: tuple[str, ...] = ()
    #: Optional attributes of the whole graph (e.g. the input resolution), by name.
    graph_features: tuple[tuple[str, float], ...] = ()

    def __post_init__(self):
        n = len(self.ops)
        if self.adjacency.shape != (n, n):
            raise ValueError(f"adjacency shape {self.adjacency.shape} does not match {n} nodes")
        if np.any(np.tril(self.adjacency)):
            raise ValueError("adjacency must be strictly upper-triangular")
        if self.node_features is not None and self.node_features.shape != (n, len(self.node_feature_names)):
            raise ValueError(f"node_features shape {self.node_features.shape} does not match {n} nodes x "
                             f"{len(self.node_feature_names)} named features")

    @property
    def num_nodes(self) -> int:
        return len(self.ops)

    def __eq__(self, other):
        if not isinstance(other, ArchGraph) or (self.node_features is None) != (other.node_features is None):
            return False
        return (self.vocab == other.vocab and np.array_equal(self.ops, other.ops)
                and np.array_equal(self.adjacency, other.adjacency)
                and (self.node_features is None or np.array_equal(self.node_features, other.node_features))
                and self.node_feature_names == other.node_feature_names
                and self.graph_features == other.graph_features)

    __hash__ = None  # mutable arrays inside


class SearchSpace(abc.ABC):
    """One family of architectures. Archs are frozen, hashable values."""

    name: str
    #: Names of the evaluators (search.evaluators) that can evaluate this space's archs;
    #: the first is the default.
    evaluators: tuple[str, ...] = ()
    #: Well-known architectures by name (JSON forms), e.g. the published cells of papers.
    named_archs: Mapping[str, Any] = MappingProxyType({})
    #: A predictor-guided search's default predictor settings on this space, by predictor
    #: name (the best measured ones; values a user sets win). The predictors' own defaults
    #: stay the papers' models.
    search_predictor: Mapping[str, Mapping[str, Any]] = MappingProxyType({})

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

    def to_text(self, arch) -> str:
        """The form users of this space know it by (reports, exported files); JSON by default."""
        return json.dumps(self.to_json(arch))


class Sampling(abc.ABC):
    """Random architectures and their mutations."""

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator):
        """A random valid architecture."""

    @abc.abstractmethod
    def mutate(self, arch, rng: np.random.Generator):
        """A valid architecture with a different key, near ``arch``."""

    def mutate_distinct(self, arch, rng, attempt):
        """Retry ``attempt(arch, rng)`` until it returns a different key; shared by mutate()s."""
        old = self.key(arch)
        while True:
            new = attempt(arch, rng)
            if new is not None and self.key(new) != old:
                return new


class Enumeration(abc.ABC):
    """Every architecture, one per key."""

    @abc.abstractmethod
    def enumerate(self) -> Iterator:
        """Every unique architecture (one per key), in a fixed order."""


class GraphEncoding(abc.ABC):
    """The node-based graph predictors consume."""

    #: The operation names a graph node can carry, in index order.
    graph_vocab: tuple[str, ...]
    #: The most nodes a graph of this space has, where sizes vary widely (predictors are sized
    #: for it, not only for the graphs they were fitted on); None: no hint.
    max_graph_nodes: int | None = None

    @abc.abstractmethod
    def to_graph(self, arch) -> ArchGraph:
        """The graph of ``arch``; the same graph for every arch of one key."""

    def from_graph(self, graph: ArchGraph):
        """The architecture a graph of this space's form stands for (e.g. one decoded by a
        generative model); raises InvalidArchError saying what is wrong with it."""
        raise SpacesError(f"space {self.name!r} cannot turn graphs back into architectures")

    def check_graph_vocab(self, graph: ArchGraph) -> None:
        if tuple(graph.vocab) != tuple(self.graph_vocab):
            raise InvalidArchError(f"graph vocabulary {tuple(graph.vocab)} is not {self.name}'s "
                                   f"{tuple(self.graph_vocab)}")


class ModelBuilding(abc.ABC):
    """The PyTorch network of an architecture."""

    #: The dataclass of the network's shape (classes, widths, depths, regularisers); its
    #: defaults are the network the benchmark trained.
    build_config_class: ClassVar[type]
    #: The shape of one input image (channels, height, width) the network takes.
    input_shape: ClassVar[tuple[int, int, int]] = (3, 32, 32)

    def build_config(self, values: dict | None = None):
        """A checked build config from a dict of overrides (unknown keys list the valid ones)."""
        from narnas.config import build
        return build(self.build_config_class, values, path=f"{self.name} build config")

    def inference_config(self, config):
        """The build config of the deployed network of a trained one: training aids (auxiliary
        heads, drop-path) off. Its parameters are a subset of the trained network's."""
        return config

    @abc.abstractmethod
    def build_model(self, arch, config=None):
        """The ``torch.nn.Module`` of ``arch``; ``config`` is a build config, a dict of
        overrides, or None for the defaults."""


#: capability class -> what it lets a caller do, for error messages.
CAPABILITIES = {Sampling: "sample and mutate", Enumeration: "enumerate its architectures",
                GraphEncoding: "encode architectures as graphs", ModelBuilding: "build networks"}


def capabilities(space) -> list[str]:
    """What ``space`` can do beyond the core interface, in words."""
    return [words for cls, words in CAPABILITIES.items() if isinstance(space, cls)]


def require(space, capability: type, purpose: str = ""):
    """``space`` itself when it has ``capability``; else a SpacesError naming what it can do."""
    if isinstance(space, capability):
        return space
    can = capabilities(space)
    why = f" (needed {purpose})" if purpose else ""
    raise SpacesError(f"space {space.name!r} cannot {CAPABILITIES[capability]}{why}; it can "
                      + (", ".join(can) if can else "only key and parse architectures"))
