"""Strategy middleware: failure handling and constraints as links of a strategy's chain (as
NNI composes its strategies; deduplication is the strategy's own behaviour).

A link is told before each round is proposed (``before_ask``) and after (``after_ask``), and
is asked whether a new arch may join a proposal (``admit``), wherever the strategy draws
one, so a rejected arch costs no evaluation and the random draws stay where they were. A
link with state of its own keeps it under ``state["middleware"][name]`` of the strategy's
state, so resume stays exact. ``make_strategy`` builds the standard chain.
"""
from __future__ import annotations

import math

from .errors import SearchError
from .registry import MEASURES, register_measure, strategy_class
from .strategies import PredictorSection, StrategyConfig


class Middleware:
    """One link of a strategy's chain; every hook does nothing unless a link overrides it."""

    name = "middleware"

    def admit(self, key: str, arch) -> bool:
        """May this new arch join the proposal being made?"""
        return True

    def before_ask(self, strategy) -> None:
        """Before a round is proposed (a SearchError stops the search)."""

    def after_ask(self, strategy, batch: list) -> None:
        """After a round was proposed (``batch`` is empty when nothing could be)."""

    def state_dict(self) -> dict | None:
        return None

    def load_state_dict(self, state: dict) -> None:
        pass


class FailureHandling(Middleware):
    """Failed evaluations count against the budget and are never parents (the strategies
    see value None). A search whose whole first round failed has nothing to search
    from: with ``stop_if_first_round_fails`` the next ``ask`` stops it with the first error,
    instead of spending the budget on evaluations that fail the same way."""

    name = "failure_handling"

    def __init__(self, stop_if_first_round_fails: bool = True):
        self.stop = stop_if_first_round_fails

    def before_ask(self, strategy) -> None:
        first = [e for e in strategy.history + strategy.in_flight if e["round"] == 1]
        if strategy.streaming:  # the first ``init`` results to arrive, all failed
            first = strategy.history[:strategy.config.init]
            over = len(first) == strategy.config.init and all(e["round"] == 1 for e in strategy.history)
        else:
            over = strategy.round == 1 and first and all(e["done"] for e in first)
        if self.stop and over and all(e["value"] is None and not e.get("stopped") for e in first):
            error = next((e["error"] for e in first if e.get("error")), "unknown")
            raise SearchError(f"every evaluation of the first round failed ({len(first)} of {len(first)}), "
                              f"so there is nothing to search from; the first error: {error}")


class Constrained(Middleware):
    """Propose only archs whose measures stay within limits (``{"macs": 400e6}``: at most
    400 M multiply-accumulates). Measures are computed from the arch alone, before any
    evaluation, and cached by key; the number of archs each limit turned away is kept in the
    state. A round that finds no feasible arch although budget is left is an error."""

    name = "constraints"

    def __init__(self, limits: dict, measures: dict):
        self.limits = dict(limits)
        self.measures = {name: measures[name] for name in self.limits}
        self.values: dict[str, dict[str, float]] = {}
        self.rejected = {name: 0 for name in self.limits}
        self._rejected_before = 0

    def measure(self, key: str, arch) -> dict[str, float]:
        if key not in self.values:
            self.values[key] = {name: float(fn(arch)) for name, fn in self.measures.items()}
        return self.values[key]

    def admit(self, key: str, arch) -> bool:
        values = self.measure(key, arch)
        for name, limit in self.limits.items():
            if not values[name] <= limit:
                self.rejected[name] += 1
                return False
        return True

    def before_ask(self, strategy) -> None:
        self._rejected_before = sum(self.rejected.values())

    def after_ask(self, strategy, batch) -> None:
        tried = sum(self.rejected.values()) - self._rejected_before
        if not batch and strategy.evaluated < strategy.config.budget and tried > 0:
            limits = ", ".join(f"{n}<={v:g} (turned away {self.rejected[n]:,})" for n, v in self.limits.items())
            raise SearchError(f"no arch within the constraints was found in round {strategy.round + 1} after "
                              f"{tried:,} tries: {limits}; loosen a limit")

    def state_dict(self):
        return {"rejected": dict(self.rejected)}

    def load_state_dict(self, state):
        self.rejected = {name: int(state.get("rejected", {}).get(name, 0)) for name in self.limits}


def check_limits(limits: dict) -> None:
    for name, limit in limits.items():
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or math.isnan(limit):
            raise SearchError(f"constraint {name} needs a number (its largest allowed value), got {limit!r}")


def measure_functions(space, names, evaluator=None, latency=None, cache_dir=None) -> dict:
    """name -> ``arch -> float`` for each constrained metric, looked up in this order: the
    space's own measures (``space.measures``, e.g. ofa_mbv3's macs and latency_note10), the
    evaluator's (a benchmark's columns), the registered ones (``register_measure``). An
    unknown name lists every measure this run offers. ``latency`` is the one that
    ``latency`` (a :class:`search.latency.LatencySection`) names: measured here, predicted,
    or another measure's (``cache_dir`` keeps measured ones across a resume)."""
    out = {}
    for name in names:
        if name == "latency" and name not in getattr(space, "measures", ()):
            from .latency import LatencySection, latency_measure
            out[name] = latency_measure(space, latency or LatencySection(),
                                        lambda other: measure_functions(space, [other], evaluator)[other], cache_dir)
            continue
        if name in getattr(space, "measures", ()):
            check = getattr(space, "check_measure", None)
            if check is not None:
                check(name)  # e.g. a latency table that does not cover the space's archs
            out[name] = getattr(space, name)
            continue
        found = evaluator.measure(name) if evaluator is not None else None
        if found is not None:
            out[name] = found
        elif name in MEASURES.names():
            out[name] = MEASURES.get(name)(space)
        else:
            offered = set(getattr(space, "measures", ())) | set(MEASURES.names()) | {"latency"}
            if evaluator is not None:
                offered |= set(evaluator.measure_names())
            raise SearchError(f"unknown constraint measure {name!r}; this run offers: {', '.join(sorted(offered))}")
    return out


def make_strategy(space, config: StrategyConfig, seed: int = 0, predictor: PredictorSection | None = None,
                  measures: dict | None = None, schedule=None, proxies=None, prior=()):
    """The registered strategy ``config.name`` with the standard chain: constraints (when
    any; ``measures`` from :func:`measure_functions`, by default the space's and the
    registered ones), then failure handling; streaming when ``schedule`` (a
    ``search.config.ScheduleSection``) is asynchronous; ``proxies`` (a
    ``search.proxies.ProxiesSection``) naming some gives the strategy its zero-cost proxies;
    ``prior`` holds earlier evaluations it learns from (search.prior)."""
    check_limits(config.constraints)
    chain = []
    if config.constraints:
        measures = measures if measures is not None else measure_functions(space, config.constraints)
        chain.append(Constrained(config.constraints, measures))
    chain.append(FailureHandling(config.stop_if_first_round_fails))
    streaming = schedule is not None and schedule.name == "async"
    from .proxies import Proxies
    return strategy_class(config.name)(space, config, seed=seed, predictor=predictor, middleware=chain,
                                       streaming=streaming, refit_every=schedule.refit_every if streaming else 0,
                                       proxies=Proxies(space, proxies) if proxies is not None and proxies.names
                                       else None, prior=prior)


# --- built-in measures -------------------------------------------------------------------

@register_measure("params")
def parameters(space):
    """Parameters of the network the space builds (its default build config).

    Spaces that count them without building (ofa_mbv3) answer first."""
    from spaces import ModelBuilding, require
    require(space, ModelBuilding, "for the params constraint")

    def measure(arch) -> float:
        return float(sum(p.numel() for p in space.build_model(arch).parameters()))
    return measure
