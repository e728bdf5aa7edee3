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
    """Propose only archs whose measures stay within limits (``{"params": 1.0}``: at most
    1.0 M parameters). Measures are computed from the arch alone, before any evaluation,
    and cached by key; the number of archs each limit turned away is kept in the state."""

    name = "constraints"

    def __init__(self, inner, limits: dict, space):
        super().__init__(inner)
        self.limits = dict(limits)
        self.measures = {name: MEASURES.get(name)(space) for name in self.limits}
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

    def own_state(self):
        return {"rejected": dict(self.rejected)}

    def load_own_state(self, state):
        self.rejected = {name: int(state.get("rejected", {}).get(name, 0)) for name in self.limits}


def check_limits(limits: dict) -> None:
    for name, limit in limits.items():
        MEASURES.get(name)  # unknown names list the valid ones
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or math.isnan(limit):
            raise SearchError(f"constraint {name} needs a number (its largest allowed value), got {limit!r}")


def make_strategy(space, config: StrategyConfig, seed: int = 0, predictor: PredictorSection | None = None):
    """The registered strategy ``config.name`` inside the standard middleware: deduplication,
    then constraints (when any), then failure handling."""
    check_limits(config.constraints)
    strategy = Deduplicate(strategy_class(config.name)(space, config, seed=seed, predictor=predictor))
    if config.constraints:
        strategy = Constrained(strategy, config.constraints, space)
    return FailureHandling(strategy, config.stop_if_first_round_fails)


# --- built-in measures -------------------------------------------------------------------

@register_measure("params")
def parameters_in_millions(space):
    """Parameters (millions) of the network ``space.build_model(arch)`` builds (its defaults)."""
    from spaces import ModelBuilding, require
    require(space, ModelBuilding, "for the params constraint")

    def measure(arch) -> float:
        model = space.build_model(arch)
        return sum(p.numel() for p in model.parameters()) / 1e6
    return measure
