"""Strategy middleware: deduplication, failure handling and constraints as wrappers
around a strategy (as NNI composes its strategies).

A wrapper delegates ``ask`` / ``tell`` / ``state_dict`` to the strategy inside it and
adds one concern. Wrappers that decide which new archs may be proposed add an admission
check to the base strategy's ``filters``, which it consults wherever it draws a new arch
(so a rejected arch costs no evaluation and the random draws stay where they were).
A wrapper with state of its own keeps it under ``state["middleware"][name]``, so resume
stays exact. ``make_strategy`` builds the standard chain.
"""
from __future__ import annotations

import math

from .errors import SearchError
from .registry import MEASURES, register_measure, strategy_class
from .strategies import PredictorSection, StrategyConfig


class Middleware:
    """Wraps a strategy (or another wrapper); everything it does not change is delegated."""

    name = "middleware"

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, attr):  # history, in_flight, round, key(), pending(), ...
        if attr == "inner":
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def ask(self) -> list:
        return self.inner.ask()

    def tell(self, key, value, test=None, error=None) -> None:
        self.inner.tell(key, value, test, error=error)

    # --- state: the inner one, plus this wrapper's own under "middleware" ---------------
    def own_state(self) -> dict | None:
        return None

    def load_own_state(self, state: dict) -> None:
        pass

    def state_dict(self) -> dict:
        state = self.inner.state_dict()
        own = self.own_state()
        if own is not None:
            state = dict(state, middleware=dict(state.get("middleware", {}), **{self.name: own}))
        return state

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state)
        own = state.get("middleware", {}).get(self.name)
        if own is not None:
            self.load_own_state(own)


class Deduplicate(Middleware):
    """Never propose an arch whose canonical key was evaluated or is in flight (isomorphic
    cells share a key, so they are one arch)."""

    name = "deduplicate"

    def __init__(self, inner):
        super().__init__(inner)
        base = self.base
        base.filters.append(lambda key, arch: key not in base.seen)


class FailureHandling(Middleware):
    """Failed evaluations count against the budget and are never parents (the strategies
    see value None). A search whose whole first round failed has nothing to search
    from: with ``stop_if_first_round_fails`` the next ``ask`` stops it with the first error,
    instead of spending the budget on evaluations that fail the same way."""

    name = "failure_handling"

    def __init__(self, inner, stop_if_first_round_fails: bool = True):
        super().__init__(inner)
        self.stop = stop_if_first_round_fails

    def ask(self) -> list:
        first = [e for e in self.history + self.in_flight if e["round"] == 1]
        if (self.stop and self.round == 1 and first and all(e["done"] and e["value"] is None for e in first)):
            error = next((e["error"] for e in first if e.get("error")), "unknown")
            raise SearchError(f"every evaluation of the first round failed ({len(first)} of {len(first)}), "
                              f"so there is nothing to search from; the first error: {error}")
        return self.inner.ask()


class Constrained(Middleware):
    """Propose only archs whose measures stay within limits (``{"macs": 400e6}``: at most
    400 M multiply-accumulates). Measures are computed from the arch alone, before any
    evaluation, and cached by key; the number of archs each limit turned away is kept in the
    state. A round that finds no feasible arch although budget is left is an error."""

    name = "constraints"

    def __init__(self, inner, limits: dict, measures: dict):
        super().__init__(inner)
        self.limits = dict(limits)
        self.measures = {name: measures[name] for name in self.limits}
        self.values: dict[str, dict[str, float]] = {}
        self.rejected = {name: 0 for name in self.limits}
        self.base.filters.append(self.accept)

    def measure(self, key: str, arch) -> dict[str, float]:
        if key not in self.values:
            self.values[key] = {name: float(fn(arch)) for name, fn in self.measures.items()}
        return self.values[key]

    def accept(self, key: str, arch) -> bool:
        values = self.measure(key, arch)
        for name, limit in self.limits.items():
            if not values[name] <= limit:
                self.rejected[name] += 1
                return False
        return True

    def ask(self) -> list:
        before = sum(self.rejected.values())
        batch = self.inner.ask()
        base = self.base
        if not batch and base.evaluated < base.config.budget and sum(self.rejected.values()) > before:
            limits = ", ".join(f"{n}<={v:g} (turned away {self.rejected[n]:,})" for n, v in self.limits.items())
            raise SearchError(f"no arch within the constraints was found in round {base.round + 1} after "
                              f"{sum(self.rejected.values()) - before:,} tries: {limits}; loosen a limit")
        return batch

    def own_state(self):
        return {"rejected": dict(self.rejected)}

    def load_own_state(self, state):
        self.rejected = {name: int(state.get("rejected", {}).get(name, 0)) for name in self.limits}


def find_middleware(strategy, kind: type):
    """The wrapper of type ``kind`` in a strategy's chain, or None."""
    while isinstance(strategy, Middleware):
        if isinstance(strategy, kind):
            return strategy
        strategy = strategy.inner
    return None


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
                  measures: dict | None = None):
    """The registered strategy ``config.name`` inside the standard middleware: deduplication,
    then constraints (when any; ``measures`` from :func:`measure_functions`, by default the
    space's and the registered ones), then failure handling."""
    check_limits(config.constraints)
    strategy = Deduplicate(strategy_class(config.name)(space, config, seed=seed, predictor=predictor))
    if config.constraints:
        measures = measures if measures is not None else measure_functions(space, config.constraints)
        strategy = Constrained(strategy, config.constraints, measures)
    return FailureHandling(strategy, config.stop_if_first_round_fails)


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
