"""Early stopping of evaluations from their intermediate results (multi-fidelity).

An evaluator that can report intermediate values (a benchmark's 12-epoch column before its
200-epoch one; ``Evaluator.steps``) calls ``report(step, value, cost)`` at each; the run's
stopper answers whether the evaluation goes on. A stopped evaluation is journaled with status
``stopped``, its ``fidelity`` (the step it reached), its value there and its cost so far,
and still teaches the predictor: with ``imputed``, the final value its partial one predicts.

* ``asha``: asynchronous successive halving (Li et al. 2020, as Ray Tune's ASHA decides): at a
  step, an evaluation goes on when its value is at least the (1 - 1/eta) quantile of the
  values evaluations reported there before it; the first always goes on.
* ``curve``: ours, a learning-curve extrapolation across archs: the final value is predicted
  from the value at the step by a line fitted to the evaluations that reported there and
  finished; an evaluation goes on while that prediction plus ``margin`` residual standard
  deviations could still reach the ``top``-th best final value so far (and while fewer than
  ``min_pairs`` finished evaluations have taught the line, or fewer than ``top`` finished).

Decisions depend only on the order of reports and results, and are kept per arch until its
result arrives, so a resumed run that sees an arch report again gets the same answer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import SearchError

STOPPERS = ("none", "asha", "curve")


@dataclass
class StopperSection:
    name: str = "none"  # none, asha or curve
    eta: float = 3.0  # asha: the share 1/eta of the evaluations at a step goes on
    top: int = 10  # curve: could the evaluation still enter the best `top` finished?
    margin: float = 1.0  # curve: residual standard deviations of optimism
    min_pairs: int = 5  # curve: finished evaluations with a value at the step before it stops any

    def validate(self):
        if self.name not in STOPPERS:
            raise SearchError(f"unknown stopper {self.name!r}; valid: {', '.join(STOPPERS)}")
        if self.eta <= 1:
            raise SearchError(f"stopper eta must be > 1, got {self.eta}")
        if self.top < 1 or self.min_pairs < 2 or self.margin < 0:
            raise SearchError("stopper top must be >= 1, min_pairs >= 2 and margin >= 0")
        return self


class Stopper:
    """The shared state: values reported at each step, (step value, final value) pairs of the
    finished evaluations, the final values, and each in-flight arch's decisions."""

    def __init__(self, config: StopperSection):
        self.config = config
        self.reported: dict[str, list[float]] = {}  # step -> values, in the order reported
        self.pairs: dict[str, list[list[float]]] = {}  # step -> [value there, final value]
        self.finals: list[float] = []
        self.decisions: dict[str, dict[str, bool]] = {}  # key -> step -> go on

    def decide(self, key: str, step, value: float) -> bool:
        """Whether the evaluation of ``key`` goes on after reporting ``value`` at ``step``."""
        step = str(step)
        known = self.decisions.setdefault(key, {})
        if step not in known:
            known[step] = bool(self.goes_on(step, float(value)))
            self.reported.setdefault(step, []).append(float(value))
        return known[step]

    def goes_on(self, step: str, value: float) -> bool:
        raise NotImplementedError

    def finished(self, key: str, record: dict) -> None:
        """A result arrived: a full one teaches the pairs and the finals."""
        self.decisions.pop(key, None)
        if record.get("status") != "ok" or not isinstance(record.get("val"), (int, float)):
            return
        self.finals.append(float(record["val"]))
        for step, value in (record.get("curve") or {}).items():
            self.pairs.setdefault(str(step), []).append([float(value), float(record["val"])])

    def line(self, step: str):
        """(slope, intercept, residual std) of final against the value at ``step``, or None."""
        pairs = np.array(self.pairs.get(step, []), dtype=float).reshape(-1, 2)
        if len(pairs) < 2 or np.ptp(pairs[:, 0]) == 0:
            return None
        slope, intercept = np.polyfit(pairs[:, 0], pairs[:, 1], 1)
        residual = pairs[:, 1] - (slope * pairs[:, 0] + intercept)
        return float(slope), float(intercept), float(residual.std())

    def impute(self, step, value: float) -> float | None:
        """The final value ``value`` at ``step`` predicts (None before two finished evaluations
        reported there)."""
        fitted = self.line(str(step))
        return None if fitted is None else round(fitted[0] * float(value) + fitted[1], 6)

    def state_dict(self) -> dict:
        return {"reported": self.reported, "pairs": self.pairs, "finals": self.finals, "decisions": self.decisions}

    def load_state_dict(self, state: dict) -> None:
        self.reported = {k: list(v) for k, v in state["reported"].items()}
        self.pairs = {k: [list(p) for p in v] for k, v in state["pairs"].items()}
        self.finals = list(state["finals"])
        self.decisions = {k: dict(v) for k, v in state["decisions"].items()}


class ASHA(Stopper):
    def goes_on(self, step, value):
        before = self.reported.get(step, [])
        if not before:
            return True
        return value >= float(np.quantile(before, 1 - 1 / self.config.eta))


class CurveStopper(Stopper):
    def goes_on(self, step, value):
        cfg = self.config
        fitted = self.line(step)
        if fitted is None or len(self.pairs.get(step, [])) < cfg.min_pairs or len(self.finals) < cfg.top:
            return True
        slope, intercept, spread = fitted
        threshold = sorted(self.finals, reverse=True)[cfg.top - 1]
        return slope * value + intercept + cfg.margin * spread >= threshold


def make_stopper(config: StopperSection) -> Stopper | None:
    """The stopper a config names; None for ``none``."""
    kinds = {"asha": ASHA, "curve": CurveStopper}
    return kinds[config.name](config) if config.name in kinds else None
