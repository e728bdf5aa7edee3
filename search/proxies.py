"""Zero-cost proxies in a search: their settings and what the strategies ask of them.

The ``zero-cost`` strategy ranks candidates by the proxies' vote and trains nothing to choose;
a predictor-guided strategy given proxies takes them as its predictor's per-graph inputs (at
the head, ``predictor.graph_inputs``) and, with ``first_round="proxies"``, picks its first
round by their vote from ``pool`` random archs instead of at random. Proxies are computed once
per architecture and cached (``zerocost.store``), shared between runs of one minibatch.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .errors import SearchError


@dataclass
class ProxiesSection:
    names: tuple = ()  # the proxies used (zerocost.proxies); none: no proxies
    first_round: str = "random"  # predictor-guided: "random", or "proxies" (the vote's best of ``pool``)
    pool: int = 100  # first_round="proxies": random archs ranked for the first round
    batch_size: int = 64  # images of the proxies' minibatch
    seed: int = 0  # of the minibatch and the networks' initialisation (not the run's: caches are shared)
    cache: str | None = None  # the proxy cache file (default $NARNAS_DATA/zerocost/SPACE.jsonl)
    data_dir: str | None = None  # the minibatch's dataset folder (default: the evaluator's, then as trainers find it)
    device: str = "cpu"  # where the proxies' networks run ("cuda" on a GPU)
    # the networks' size: build config keys (e.g. DARTS {"channels": 16, "layers": 8}); {}: the evaluation network
    network: dict = field(default_factory=dict)

    def validate(self):
        from zerocost.proxies import resolve
        try:
            resolve(list(self.names) or ["params"])
        except Exception as err:  # the proxies' own error names the valid ones
            raise SearchError(f"proxies: {err}") from None
        if self.first_round not in ("random", "proxies"):
            raise SearchError(f"proxies.first_round must be 'random' or 'proxies', got {self.first_round!r}")
        if self.first_round == "proxies" and not self.names:
            raise SearchError("proxies.first_round='proxies' needs proxies: give --proxies NAMES")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise SearchError(f"proxies.device must be 'cpu' or 'cuda[:N]', got {self.device!r}")
        if self.pool < 1 or self.batch_size < 2:
            raise SearchError(f"proxies.pool must be >= 1 and batch_size >= 2, got {self.pool}, {self.batch_size}")
        return self


class Proxies:
    """The proxies of a search's archs, computed on first use (the minibatch is read then)."""

    def __init__(self, space, section: ProxiesSection):
        self.space, self.section = space, section
        self.names = list(section.names)
        self._store = None

    @property
    def store(self):
        if self._store is None:
            from zerocost.batch import draw
            from zerocost.store import ProxyStore, check_cache, default_cache
            s = self.section
            cache = check_cache(s.cache) if s.cache else default_cache(self.space.name)
            self._store = ProxyStore(self.space, draw(self.space, s.batch_size, s.seed, s.data_dir, DATA_FLAG), s.seed,
                                     cache, s.device, network=s.network)
        return self._store

    def values(self, archs: list) -> np.ndarray:
        """float64 [len(archs), len(names)]."""
        return self.store.values(archs, self.names)

    def vote(self, archs: list) -> np.ndarray:
        """Each arch's mean rank over the proxies (higher is better; a NaN ranks last)."""
        from zerocost.proxies import vote
        return vote(self.values(archs))

    def attach(self, graphs: list, archs: list) -> list:
        """``graphs`` (of ``archs``) carrying the archs' proxies as per-graph numbers, which a
        predictor given ``graph_inputs`` reads at its head."""
        values = self.values(archs)
        return [dataclasses.replace(g, graph_features=tuple(g.graph_features) + tuple(zip(self.names, map(float, v))))
                for g, v in zip(graphs, values)]


DATA_FLAG = "--set proxies.data_dir=PATH"  # how a search names the minibatch's folder


def check_usable(space, section: ProxiesSection, given_as: str = DATA_FLAG) -> None:
    """A SearchError before any work when proxies are asked of a space that builds no networks,
    or their minibatch's dataset cannot be found (``given_as``: the flag that named its folder)."""
    if section.names:
        from spaces.base import ModelBuilding
        if not isinstance(space, ModelBuilding):
            raise SearchError(f"zero-cost proxies need networks; space {space.name!r} builds none")
        from narnas.errors import ConfigError
        try:
            space.build_config(section.network)
        except ConfigError as err:
            raise SearchError(f"proxies.network: {err}") from None
        from zerocost.batch import find_data
        from zerocost.errors import ZeroCostError
        try:
            find_data(space, section.data_dir, given_as)
        except ZeroCostError as err:
            raise SearchError(str(err)) from None
