"""Strategies on a dummy space: no benchmark, no Ray, no training."""
import copy

import numpy as np
import pytest

from search.errors import SearchError
from search.executors import ExecutorConfig, InlineExecutor
from search.registry import strategy_class
from search.strategies import PredictorGuided, StrategyConfig


class LineSpace:
    """Archs are integers 0..n-1; a mutation moves to a neighbour; value = a smooth bump."""

    name = "line"

    def __init__(self, n=2000):
        self.n = n

    def sample(self, rng):
        return int(rng.integers(self.n))

    def mutate(self, arch, rng):
        step = int(rng.choice([-2, -1, 1, 2]))
        return arch + step if 0 <= arch + step < self.n else arch - step

    def key(self, arch):
        return f"a{arch}"

    def to_json(self, arch):
        return arch

    def from_json(self, obj):
        return int(obj)

    def to_graph(self, arch):
        return arch

    @staticmethod
    def value(arch):
        return float(-abs(arch - 1234) / 10)


class OraclePredictor:
    """Predicts the true value: the strategy must then propose the best candidates."""

    def fit(self, graphs, y, init_state=None):
        return self

    def predict(self, graphs):
        return np.array([LineSpace.value(g) for g in graphs])

    def state_dict(self):
        return {}


class OracleGuided(PredictorGuided):
    def make_predictor(self):
        return OraclePredictor()


def drive(strategy, space, order=None, stop_after=None):
    """Run a strategy to its end, telling each batch in ``order`` (reversed or not)."""
    told = 0
    while True:
        batch = strategy.pending() or strategy.ask()
        if not batch:
            return told
        items = list(batch) if order is None else order(list(batch))
        for arch in items:
            if stop_after is not None and told == stop_after:
                return told
            strategy.tell(space.key(arch), space.value(arch))
            told += 1


@pytest.mark.parametrize("name", ["random", "rea"])
def test_budget_no_duplicates_and_determinism(name):
    space = LineSpace()
    cfg = StrategyConfig(budget=57, batch=10, init=10, seed=3)
    s = strategy_class(name)(space, cfg)
    drive(s, space)
    keys = [e["key"] for e in s.history]
    assert len(keys) == 57 and len(set(keys)) == 57 and s.done
    assert [e["round"] for e in s.history][-1] == 6  # 10 + 5 * 10 + 7
    again = strategy_class(name)(space, cfg)
    drive(again, space)
    assert [e["key"] for e in again.history] == keys
    other = strategy_class(name)(space, StrategyConfig(budget=57, seed=4))
    drive(other, space)
    assert [e["key"] for e in other.history] != keys


def test_rea_children_are_mutants_of_the_population():
    space = LineSpace()
    s = strategy_class("rea")(space, StrategyConfig(budget=40, population=10, tournament=3, seed=1))
    drive(s, space)
    for e in s.history[10:]:
        population = [h["arch"] for h in s.history if h["round"] < e["round"]][-10:]
        # a mutation moves 1 or 2; a known child is mutated again, at most 10 steps in all
        assert min(abs(e["arch"] - a) for a in population) <= 20


def test_the_order_of_results_does_not_change_the_search():
    space = LineSpace()
    cfg = StrategyConfig(budget=50, seed=7)
    forward, backward = strategy_class("rea")(space, cfg), strategy_class("rea")(space, cfg)
    drive(forward, space)
    drive(backward, space, order=lambda b: b[::-1])
    assert forward.state_dict() == backward.state_dict()


@pytest.mark.parametrize("name", ["random", "rea"])
def test_state_dict_round_trip_mid_round_continues_identically(name):
    space = LineSpace()
    cfg = StrategyConfig(budget=45, seed=2)
    whole = strategy_class(name)(space, cfg)
    drive(whole, space)
    part = strategy_class(name)(space, cfg)
    drive(part, space, stop_after=23)  # in the middle of round 3
    state = copy.deepcopy(part.state_dict())
    restored = strategy_class(name)(space, cfg)
    restored.load_state_dict(state)
    assert len(restored.pending()) == 7
    drive(restored, space)
    assert restored.state_dict() == whole.state_dict()


def test_predictor_guided_proposes_what_the_predictor_ranks_best():
    space = LineSpace()
    cfg = StrategyConfig(budget=60, candidates=200, random_share=0.0, seed=0)
    s = OracleGuided(space, cfg)
    drive(s, space)
    best = max(e["value"] for e in s.history)
    rnd = strategy_class("random")(space, cfg)
    drive(rnd, space)
    assert best == 0.0 > max(e["value"] for e in rnd.history)  # found 1234 itself
    for e in s.history[10:]:
        assert e["predicted"] == pytest.approx(e["value"])


def test_misuse_is_reported():
    space = LineSpace()
    with pytest.raises(SearchError, match="budget \\(5\\) is smaller than the initial population"):
        strategy_class("random")(space, StrategyConfig(budget=5, init=10))
    with pytest.raises(SearchError, match="unknown strategy 'nope'; valid: narformer, random, rea"):
        strategy_class("nope")
    s = strategy_class("random")(space, StrategyConfig(budget=20))
    s.ask()
    with pytest.raises(SearchError, match="still running"):
        s.ask()
    with pytest.raises(SearchError, match="not an unfinished evaluation"):
        s.tell("zzz", 1.0)


def test_inline_executor_retries_then_records_the_failure():
    calls = {}

    class Flaky:
        def evaluate(self, arch):
            calls[arch] = calls.get(arch, 0) + 1
            if arch == "bad" or (arch == "flaky" and calls[arch] == 1):
                raise RuntimeError(f"cannot evaluate {arch}\nsecond line")
            return {"val": 1.0, "test": 2.0}

    results = {}
    InlineExecutor(ExecutorConfig(max_failures=2)).run(["ok", "flaky", "bad"], Flaky(),
                                                        lambda i, r: results.setdefault(i, r))
    assert results[0]["status"] == "ok" and results[0]["attempts"] == 1
    assert results[1]["status"] == "ok" and results[1]["attempts"] == 2
    assert results[2] == {"status": "failed", "error": "RuntimeError: second line", "attempts": 3}
    assert calls["bad"] == 3


def test_predictor_guided_goes_on_when_every_value_is_equal():
    """E.g. a first round of smoke trainings that all stay at chance level."""
    space = LineSpace()
    s = OracleGuided(space, StrategyConfig(budget=30, seed=0))
    while True:
        batch = s.pending() or s.ask()
        if not batch:
            break
        for arch in batch:
            s.tell(space.key(arch), 10.0)
    assert len(s.history) == 30 and len({e["key"] for e in s.history}) == 30
    assert all(e["predicted"] is None for e in s.history)
