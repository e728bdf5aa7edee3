"""Search strategies: ask/tell objects with explicit, JSON-serialisable state.

A strategy proposes architectures (``ask``) and is told each one's result (``tell``). It
never runs anything itself: executors do. Values are maximised; a failed evaluation has
value ``None``, counts against the budget and is never a parent. Two schedules:

* rounds: ``ask()`` proposes a batch; results come in any order, and the finished batch is
  committed in the order it was proposed, so the search does not depend on the order
  evaluations finish in. Round 1 proposes ``init`` random archs; every later round
  ``batch`` archs (fewer at the end of the budget).
* streaming (``streaming=True``): ``ask(n)`` proposes n archs for the free slots; each
  result joins the history as it arrives (the order results arrived is the history's). A
  round is what one predictor ranks: round 1 (random archs) lasts until ``init`` results
  arrived, every later round until ``refit_every`` more did; ``advance()`` begins the next
  round when it is due (the driver calls it after filling the free slots, so a refit runs
  while every slot is busy).
"""
from __future__ import annotations

import time

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from narnas import config as configs
from spaces.base import GraphEncoding, Sampling, require

from .errors import SearchError
from .registry import register_strategy

# Tags the evolution proposal's random stream apart from the strategy's own (seed, round, attempt, tag).
EVOLUTION_STREAM = 7


@dataclass
class StrategyConfig:
    """What every strategy shares; ``config`` holds the chosen strategy's own settings (the
    fields of its ``config_class``: ``--set strategy.config.population=50``)."""

    name: str = "narformer"  # narformer, rea, random, reinforce or bo (any registered strategy)
    budget: int = 100  # evaluations, failed ones included
    #: >0: no new evaluation starts once the finished ones cost this much (seconds of the
    #: evaluator's cost: training seconds; a table's training time), those in flight finish
    cost_budget: float = 0.0
    #: a run folder or table whose evaluations a predictor-guided strategy learns from (search.prior)
    prior: str | None = None
    batch: int = 10  # archs per round after the first
    init: int = 10  # random archs of the first round
    config: dict = field(default_factory=dict)  # the strategy's own settings
    # middleware (search.middleware)
    constraints: dict = field(default_factory=dict)  # measure name -> the largest value allowed
    stop_if_first_round_fails: bool = True  # nothing to search from when every first evaluation failed

    def validate(self):
        for name in ("budget", "batch", "init"):
            if getattr(self, name) < 1:
                raise SearchError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.cost_budget < 0:
            raise SearchError(f"cost_budget must be >= 0 (0: none), got {self.cost_budget}")
        return self

    def check_budget(self):
        """Budget against the first round: checked after every name and file of a config (an
        unknown space is the error to show first, not the budget it was given)."""
        if self.budget < self.init:
            raise SearchError(f"budget ({self.budget}) is smaller than the initial population (init {self.init})")
        return self


@dataclass
class NoSettings:
    """A strategy without settings of its own."""


@dataclass
class REASettings:
    population: int = 20  # the most recently evaluated archs that compete
    tournament: int = 5  # members drawn per child; the best is its parent

    def validate(self):
        if self.population < 1 or self.tournament < 1:
            raise SearchError(f"population and tournament must be >= 1, got {self.population}, {self.tournament}")
        if self.tournament > self.population:
            raise SearchError(f"tournament ({self.tournament}) cannot be larger than the population "
                              f"({self.population})")


@dataclass
class PredictorGuidedSettings:
    parents: int = 10  # the top-k evaluated archs that are mutated
    candidates: int = 500  # new archs ranked by the predictor each round
    random_share: float = 0.1  # of the candidates, sampled at random instead of mutated
    max_mutations: int = 2  # a candidate is 1..max_mutations mutations away from its parent
    warm_start: bool = False  # start each round's predictor from the previous round's weights
    # How the archs it ranks are made: "mutation" (``candidates`` mutants of the top ``parents``)
    # or "evolution" (OFA's evolutionary search on the predictor's scores, seeded with every
    # evaluated arch, as NAR-Former's MobileNet search runs it; search.evolution)
    proposal: str = "mutation"
    evolution_population: int = 100
    evolution_generations: int = 100

    def validate(self):
        for name in ("parents", "candidates", "max_mutations"):
            if getattr(self, name) < 1:
                raise SearchError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.proposal not in ("mutation", "evolution"):
            raise SearchError(f"proposal must be 'mutation' or 'evolution', got {self.proposal!r}")
        if self.evolution_population < 2 or self.evolution_generations < 1:
            raise SearchError("evolution_population must be >= 2 and evolution_generations >= 1")
        if not 0 <= self.random_share <= 1:
            raise SearchError(f"random_share must be in [0, 1], got {self.random_share}")


def strategy_settings(cls: type, values: dict):
    """The strategy class ``cls``'s own settings from ``values``; a key it does not have is a
    ConfigError listing the ones it has."""
    return configs.build(cls.config_class, values, path=f"strategy {cls.name}'s config")


@dataclass
class PredictorSection:
    """The predictor of predictor-guided strategies: a registered name and its own config
    (the fields of that predictor's config dataclass; the seed is set per round)."""

    name: str = "narformer"
    config: dict = field(default_factory=dict)


class Strategy:
    """The shared bookkeeping: history, in-flight batch, rounds and the RNG."""

    name: str
    #: whether it can run with the asynchronous schedule (ask for a few archs at any time)
    streams = True
    #: the dataclass of this strategy's own settings (``StrategyConfig.config``)
    config_class: type = NoSettings
    #: how many distinct archs a proposal may try before it gives up (small spaces run out)
    attempts_per_arch = 200

    def __init__(self, space, config: StrategyConfig, seed: int = 0, predictor: PredictorSection | None = None,
                 middleware=(), streaming: bool = False, refit_every: int = 0, proxies=None, prior=()):
        require(space, Sampling, "to search it")
        self.space, self.config, self.seed = space, config.validate().check_budget(), seed
        if streaming and not self.streams:
            raise SearchError(f"strategy {self.name} learns from whole rounds: it cannot run asynchronously")
        self.streaming = streaming
        self.refit_every = refit_every or config.batch
        self.settings = strategy_settings(type(self), config.config)
        # The chain of search.middleware links (constraints, failure handling), in order.
        self.middleware = list(middleware)
        self.predictor_section = predictor or PredictorSection()
        self.proxies = proxies  # search.proxies.Proxies, or None: no zero-cost proxies
        if prior and not self.learns_from_prior:
            raise SearchError(f"strategy {self.name} does not learn from earlier evaluations: --prior is for "
                              "predictor-guided strategies (narformer)")
        self.prior = [dict(e) for e in prior]  # earlier evaluations (search.prior): known, never proposed
        self.rng = np.random.default_rng(seed)
        self.round = 0
        self.round_start = 0  # results in the history when the current round began (its predictor's data)
        self.history: list[dict] = []  # committed: key, arch (JSON), value, round, predicted
        self.in_flight: list[dict] = []  # the current batch, same fields; value set by tell
        self.seen: set[str] = {e["key"] for e in self.prior}  # keys evaluated, in flight or in the prior
        self.proposing: set[str] = set()  # keys taken by the proposal being made
        self._archs: dict[str, object] = {}  # key -> arch, a cache rebuilt from JSON
        self.say = None  # one-line notes for a log (refits): the driver sets it

    #: whether each round's ask fits a model on the results (its time grows with them)
    refits = False
    #: whether it learns from a prior's evaluations (--prior)
    learns_from_prior = False

    def link(self, kind: type):
        """The middleware link of type ``kind`` in the chain, or None."""
        return next((m for m in self.middleware if isinstance(m, kind)), None)

    def attach(self, predictor_store, quiet: bool, say=None) -> None:
        """Where the run keeps each round's predictor weights, whether fits may show a
        progress bar, and ``say(line)`` for notes in a log; strategies without a predictor
        ignore the first two."""
        self.say = say

    # --- the interface -------------------------------------------------------------
    def ask(self, n: int | None = None) -> list:
        """Rounds: the next batch (empty when the budget is spent); commits the finished batch.
        Streaming: up to ``n`` archs for free slots (empty when the budget is taken)."""
        if self.streaming:
            if n is None:
                raise SearchError("a streaming strategy is asked for a number of archs")
        elif self.pending():
            raise SearchError(f"{len(self.pending())} evaluations of round {self.round} are still running")
        for link in self.middleware:
            link.before_ask(self)
        batch = self._ask_stream(n) if self.streaming else self._ask()
        for link in self.middleware:
            link.after_ask(self, batch)
        return batch

    def _ask_stream(self, n: int) -> list:
        n = min(n, self.config.budget - len(self.history) - len(self.in_flight))
        if n <= 0 or self.round == 0:
            return []
        proposals = self._proposal(n)
        self.in_flight.extend(self._entry(k, a, p) for k, a, p in proposals)
        return [a for _, a, _ in proposals]

    def advance(self) -> bool:
        """Streaming: begin the next round when it is due (round 1 at the start; then after
        ``init`` results, then every ``refit_every``) and budget is left to propose; True when
        a round began."""
        if not self.streaming or len(self.history) + len(self.in_flight) >= self.config.budget:
            return False
        arrived = len(self.history)
        due = self.round == 0 or (self.round == 1 and arrived >= self.config.init) or \
            (self.round > 1 and arrived - self.round_start >= self.refit_every)
        if not due:
            return False
        self.round += 1
        self.round_start = arrived
        self.begin_round()
        return True

    def begin_round(self) -> None:
        """What a strategy does when a streaming round begins (a predictor refits)."""

    def entry(self, key: str) -> dict:
        """The in-flight entry of ``key``."""
        for e in self.in_flight:
            if e["key"] == key and not e["done"]:
                return e
        raise SearchError(f"{key} is not an unfinished evaluation of round {self.round}")

    def _ask(self) -> list:
        self._commit()
        n = self.config.init if self.round == 0 else min(self.config.batch, self.config.budget - len(self.history))
        if n <= 0:
            return []
        self.round += 1
        self.round_start = len(self.history)
        proposals = self._proposal(n)
        if not proposals:  # the space has no new arch left near the search
            self.round -= 1
            return []
        self.in_flight = [self._entry(k, a, p) for k, a, p in proposals]
        return [a for _, a, _ in proposals]

    def _proposal(self, n: int) -> list[tuple]:
        self.proposing = set()
        proposals = self.propose(n)
        self.seen.update(k for k, _, _ in proposals)
        return proposals

    def _entry(self, key, arch, predicted) -> dict:
        return {"key": key, "arch": self.space.to_json(arch), "value": None, "test": None, "done": False,
                "round": self.round, "predicted": predicted}

    def tell(self, key: str, value: float | None, test: float | None = None, error: str | None = None,
             stopped: dict | None = None) -> None:
        """The result of an in-flight arch: its search value (None = failed, with its
        ``error``) and, for the record only, its test value. An evaluation a stopper ended has
        value None and ``stopped``: its ``fidelity`` and the final value its partial one
        predicts (``imputed``, or None), which teaches the predictor but never makes a parent."""
        entry = self.entry(key)
        entry["value"] = None if value is None else float(value)
        entry["test"] = None if test is None else float(test)
        if value is None and error:
            entry["error"] = error
        if stopped is not None:
            entry["stopped"], entry["imputed"] = stopped["fidelity"], stopped.get("imputed")
        entry["done"] = True
        if self.streaming:  # the history in the order results arrived
            self.in_flight.remove(entry)
            self.history.append(entry)

    def pending(self) -> list:
        """Archs of the current batch without a result (re-queued after a resume)."""
        return [self.arch(e["key"], e["arch"]) for e in self.in_flight if not e["done"]]

    @property
    def evaluated(self) -> int:
        return len(self.history) + sum(e["done"] for e in self.in_flight)

    @property
    def done(self) -> bool:
        return self.evaluated >= self.config.budget and not self.pending()

    def state_dict(self) -> dict:
        state = {"strategy": self.name, "round": self.round, "round_start": self.round_start,
                 "rng": self.rng.bit_generator.state,
                 "history": [dict(e) for e in self.history], "in_flight": [dict(e) for e in self.in_flight]}
        links = {link.name: link.state_dict() for link in self.middleware}
        links = {name: own for name, own in links.items() if own is not None}
        return dict(state, middleware=links) if links else state

    def load_state_dict(self, state: dict) -> None:
        if state.get("strategy") != self.name:
            raise SearchError(f"state is of strategy {state.get('strategy')!r}, not {self.name!r}")
        self.round = state["round"]
        self.history = [dict(e) for e in state["history"]]
        self.round_start = state.get("round_start", len(self.history))
        self.rng.bit_generator.state = state["rng"]
        self.in_flight = [dict(e) for e in state["in_flight"]]
        self.seen = {e["key"] for e in self.prior + self.history + self.in_flight}
        for link in self.middleware:
            own = state.get("middleware", {}).get(link.name)
            if own is not None:
                link.load_state_dict(own)

    # --- helpers for subclasses ----------------------------------------------------
    def propose(self, n: int) -> list[tuple]:
        """n new (key, arch, predicted score or None) triples."""
        raise NotImplementedError

    def key(self, arch) -> str:
        return str(self.space.key(arch))

    def arch(self, key: str, obj):
        if key not in self._archs:
            self._archs[key] = self.space.from_json(obj)
        return self._archs[key]

    def evaluated_ok(self) -> list[dict]:
        return [e for e in self.history if e["value"] is not None]

    def known_ok(self) -> list[dict]:
        """The results known when the current round began that can teach a predictor: the
        successful ones and the stopped ones with an imputed final value (``target``)."""
        return self.prior + [e for e in self.history[:self.round_start] if target(e) is not None]

    def _commit(self):
        # In the order proposed, whatever order the results came in.
        self.history.extend(self.in_flight)
        self.in_flight = []

    def admissible(self, key: str, arch) -> bool:
        """A new arch may join the proposal: not in it yet, never evaluated nor in flight (its
        canonical key: isomorphic cells are one arch), and every middleware link admits it."""
        return key not in self.proposing and key not in self.seen and all(link.admit(key, arch)
                                                                          for link in self.middleware)

    def _new(self, make: Callable[[], object], n: int) -> list[tuple]:
        """Up to n admissible archs from ``make()`` (taken into the proposal)."""
        out = []
        for _ in range(n * self.attempts_per_arch):
            if len(out) == n:
                break
            arch = make()
            key = self.key(arch)
            if not self.admissible(key, arch):
                continue
            self.proposing.add(key)
            self._archs[key] = arch
            out.append((key, arch))
        return out

    def _fresh_mutant(self, parent, max_steps: int = 10):
        """A mutant of ``parent``; when it is not admissible (known already, or outside a
        constraint), mutate it further (a short random walk), so a crowded neighbourhood
        does not stall the search."""
        child = self.space.mutate(parent, self.rng)
        for _ in range(max_steps - 1):
            if self.admissible(self.key(child), child):
                break
            child = self.space.mutate(child, self.rng)
        return child

    def _mutant(self, parent, steps: int = 1):
        for _ in range(steps):
            parent = self.space.mutate(parent, self.rng)
        return parent

    def _by_vote(self, found: list[tuple], n: int) -> list[tuple]:
        """The n of ``found`` (key, arch) pairs the proxies' vote ranks highest, with their vote."""
        if not found:
            return []
        votes = self.proxies.vote([a for _, a in found])
        order = np.argsort(-votes, kind="stable")[:n]
        return [(found[i][0], found[i][1], float(votes[i])) for i in order]

    def _mutants_or_random(self, parents: list, random_share: float, max_mutations: int):
        """A candidate maker: a random arch with probability ``random_share``, else a mutant
        (1..max_mutations steps) of one of ``parents``."""
        def candidate():
            if not parents or self.rng.random() < random_share:
                return self.space.sample(self.rng)
            parent = parents[self.rng.integers(len(parents))]
            return self._mutant(parent, int(self.rng.integers(1, max_mutations + 1)))
        return candidate

    def _best_parents(self, k: int) -> list:
        ranked = sorted(self.prior + self.evaluated_ok(), key=lambda e: -e["value"])  # stable: ties keep order
        return [self.arch(e["key"], e["arch"]) for e in ranked[:k]]


def target(entry: dict) -> float | None:
    """What an entry teaches a predictor: its value, or a stopped evaluation's imputed one."""
    return entry["value"] if entry["value"] is not None else entry.get("imputed")


@register_strategy("random")
class RandomSearch(Strategy):
    """Uniform samples, never the same arch twice."""

    def propose(self, n):
        return [(k, a, None) for k, a in self._new(lambda: self.space.sample(self.rng), n)]


@register_strategy("rea")
class RegularizedEvolution(Strategy):
    """Regularized evolution (Real et al. 2019): tournaments, mutation, the oldest dies.

    The population is the ``population`` most recently evaluated archs; each child mutates
    the best of ``tournament`` members drawn at random."""

    config_class = REASettings

    def propose(self, n):
        if self.round == 1:
            return [(k, a, None) for k, a in self._new(lambda: self.space.sample(self.rng), n)]
        population = self.evaluated_ok()[-self.settings.population:]
        if not population:  # everything failed so far: start again from random archs
            return RandomSearch.propose(self, n)

        def child():
            size = min(self.settings.tournament, len(population))
            drawn = self.rng.choice(len(population), size=size, replace=False)
            best = max(drawn, key=lambda i: (population[i]["value"], -i))
            parent = population[best]
            return self._fresh_mutant(self.arch(parent["key"], parent["arch"]))
        return [(k, a, None) for k, a in self._new(child, n)]


@dataclass
class ZeroCostSettings:
    candidates: int = 100  # new archs the proxies rank per round
    random_share: float = 1.0  # of the candidates, random archs; the rest mutants of the best evaluated
    parents: int = 10  # random_share < 1: the top-k evaluated archs that are mutated
    max_mutations: int = 2

    def validate(self):
        for name in ("candidates", "parents", "max_mutations"):
            if getattr(self, name) < 1:
                raise SearchError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.random_share <= 1:
            raise SearchError(f"random_share must be in [0, 1], got {self.random_share}")


@register_strategy("zero-cost")
class ZeroCost(Strategy):
    """Zero-cost proxies rank the candidates; nothing is trained to choose (the baseline of
    every zero-cost paper: the best of ``candidates`` random archs by the proxies' vote).

    Each round the proxies (``--proxies``, by default a vote of synflow, naswot and jacov)
    rank ``candidates`` new archs, random or (``random_share`` < 1) mutants of the best
    evaluated ones, and the top ones are proposed."""

    config_class = ZeroCostSettings
    #: the vote when the search names no proxies: the three best on NB201 (bench.zero_cost)
    default_proxies = ("synflow", "naswot", "jacov")

    def __init__(self, space, config, seed=0, predictor=None, middleware=(), **schedule):
        super().__init__(space, config, seed, predictor, middleware, **schedule)
        if self.proxies is None:
            raise SearchError("the zero-cost strategy needs proxies (search.proxies.Proxies)")

    def propose(self, n):
        cfg = self.settings
        parents = self._best_parents(cfg.parents) if cfg.random_share < 1 else []
        found = self._new(self._mutants_or_random(parents, cfg.random_share, cfg.max_mutations), cfg.candidates)
        return self._by_vote(found, n)


@register_strategy("narformer")
class PredictorGuided(Strategy):
    """Predictor-guided evolution (NPENAS / NAR-Former's search): the predictor ranks mutants.

    Each round refits the predictor on everything evaluated, mutates the top ``parents``
    archs (plus a random share) into ``candidates`` new archs, and proposes the ones the
    predictor ranks highest."""

    config_class = PredictorGuidedSettings

    def __init__(self, space, config, seed=0, predictor=None, middleware=(), **schedule):
        require(space, GraphEncoding, "by a predictor")
        super().__init__(space, config, seed, predictor, middleware, **schedule)
        self._graphs: dict[str, object] = {}
        self.predictor = None  # the predictor of round ``fitted_round`` (None: none could be fitted)
        self.fitted_round = None
        # Where warm starts find the previous round's weights; the run folder replaces it.
        self.predictor_store: dict = {}
        # The predictor's progress bar is shown unless the run is quiet (the driver sets this).
        self.predictor_quiet = True
        self._ranking = None  # proposal="evolution": the current round's evolution (_round_ranking)

    refits = True
    learns_from_prior = True

    def attach(self, predictor_store, quiet: bool, say=None) -> None:
        self.predictor_store, self.predictor_quiet, self.say = predictor_store, quiet, say

    def graph(self, key: str, obj):
        if key not in self._graphs:
            self._graphs[key] = self.graphs([self.arch(key, obj)])[0]
        return self._graphs[key]

    def graphs(self, archs: list) -> list:
        """The predictor's graphs of ``archs``, carrying their proxies where the search has some."""
        graphs = [self.space.to_graph(a) for a in archs]
        return graphs if self.proxies is None or not archs else self.proxies.attach(graphs, archs)

    def make_predictor(self):
        import predictor as predictors
        # A seed per round: a resumed run refits exactly the predictor the original fitted.
        cfg = dict(self.predictor_section.config, seed=self.seed * 1000 + self.round)
        cfg.setdefault("quiet", self.predictor_quiet)  # graph_inputs (the proxies) come resolved in the config
        return predictors.get_predictor(self.predictor_section.name, **cfg)

    def begin_round(self) -> None:
        self.round_model()  # now, while the slots run

    def round_model(self):
        """The current round's predictor, fitted once per round (again after a resume: the same
        seed and data give the same model) on the results known when the round began; None
        when they cannot teach one (fewer than two, or all equal)."""
        if self.fitted_round != self.round:
            known = self.known_ok()
            values = [target(e) for e in known]
            learnable = len(known) >= 2 and max(values) > min(values)
            self.predictor = self.fit_predictor(known) if learnable else None
            self.fitted_round = self.round
        return self.predictor

    def fit_predictor(self, ok: list[dict]):
        from narnas.progress import duration
        graphs = [self.graph(e["key"], e["arch"]) for e in ok]
        y = np.array([target(e) for e in ok])
        model = self.make_predictor()
        init = self.predictor_store.get(self.round - 1) if self.settings.warm_start else None
        began = time.time()
        if self.say:
            self.say(f"round {self.round}: fitting the {model.name} predictor on {len(ok)} results")
        model.fit(graphs, y, init_state=init, capacity=self.space.max_graph_nodes)  # None: the graphs seen
        if self.say:
            self.say(f"round {self.round}: {model.name} fitted in {duration(time.time() - began)}")
        self.predictor_store[self.round] = model.state_dict()
        self.predictor = model
        return model

    def propose(self, n):
        cfg = self.settings
        if (self.round == 1 and not self.prior) or len(self.prior) + len(self.evaluated_ok()) < 2:
            if self.proxies is not None and self.proxies.section.first_round == "proxies":
                return self._by_vote(self._new(lambda: self.space.sample(self.rng), self.proxies.section.pool), n)
            return [(k, a, None) for k, a in self._new(lambda: self.space.sample(self.rng), n)]
        model = self.round_model()
        if model is not None and cfg.proposal == "evolution":
            return self._evolve(model, n)
        parents = self._best_parents(cfg.parents)
        found = self._new(self._mutants_or_random(parents, cfg.random_share, cfg.max_mutations), cfg.candidates)
        if not found:
            return []
        if model is None:  # keep the (random) order the candidates were made in
            chosen = [(k, a, None) for k, a in found[:n]]
        else:
            scores = model.predict(self.graphs([a for _, a in found]))
            order = np.argsort(-scores, kind="stable")[:n]
            chosen = [(found[i][0], found[i][1], float(scores[i])) for i in order]
        return chosen


    def _evolve(self, model, n):
        """The n best new archs of the round's evolution on the predictor's scores; the archs
        measured when the round began seed it with their values.

        One evolution per round and predictor, its ranking kept: an asynchronous search asks
        for one free slot at a time and takes the next best of it. A ranking used up starts
        the next attempt, which also shuns every arch of the attempts before. An attempt's
        random stream comes from (seed, round, attempt) and it shuns only archs known before
        the round or ranked by an earlier attempt, so a resumed run repeats it exactly and
        skips what was proposed since."""
        found = []
        while len(found) < n:
            ranking = self._round_ranking(model)
            archs = ranking["archs"]
            while ranking["next"] < len(archs) and len(found) < n:
                key, arch, value = archs[ranking["next"]]
                ranking["next"] += 1
                if self.admissible(key, arch):
                    self.proposing.add(key)
                    self._archs[key] = arch
                    found.append((key, arch, value))
            if len(found) < n:
                if not archs:
                    break  # the evolution met nothing new: the space is used up around the search
                shunned = ranking["shunned"] | {k for k, _, _ in archs}
                self._ranking = dict(ranking, attempt=ranking["attempt"] + 1, archs=None, shunned=shunned)
        return sorted(found, key=lambda item: -item[2])  # a later attempt may have met better ones

    def _round_ranking(self, model) -> dict:
        """The evolution of (this round's predictor, attempt): its new archs, best predicted first."""
        from .evolution import Evolution, EvolutionSettings
        state = self._ranking
        if state is None or state["model"] is not model:
            state = self._ranking = dict(model=model, attempt=0, archs=None, shunned=set())
        if state["archs"] is None:
            cfg = self.settings
            known = {e["key"] for e in self.prior + self.history + self.in_flight if e.get("round", 0) < self.round}
            shunned = known | state["shunned"]
            measured = [e for e in self.prior + self.history[:self.round_start] if e["value"] is not None]
            seeds = [(e["key"], self.arch(e["key"], e["arch"]), e["value"]) for e in measured]
            rng = np.random.default_rng([self.seed, self.round, state["attempt"], EVOLUTION_STREAM])
            admit = lambda key, arch: key not in shunned and all(link.admit(key, arch) for link in self.middleware)
            settings = EvolutionSettings(population=cfg.evolution_population, generations=cfg.evolution_generations)
            evolution = Evolution(self.space, lambda archs: model.predict(self.graphs(archs)), admit, rng, settings,
                                  describe="the constraints, new to the search")
            evolution.run(seeds)
            state["archs"] = sorted(((k, a, v) for k, (a, v) in evolution.scored.items() if k not in shunned),
                                    key=lambda item: -item[2])
            state["next"] = 0
        return state
