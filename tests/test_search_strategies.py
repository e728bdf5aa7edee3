"""Strategies on a dummy space: no benchmark, no Ray, no training."""
import copy

import numpy as np
import pytest

import spaces

from search.errors import SearchError
from search.executors import ExecutorConfig, InlineExecutor
from search.middleware import FailureHandling, make_strategy
from search.registry import strategy_class
from search.strategies import PredictorGuided, StrategyConfig


COMMON = ("budget", "batch", "init", "constraints", "stop_if_first_round_fails")


def strategy_config(name="narformer", **values):
    """The shared settings by their names, the rest as the strategy's own."""
    common = {k: values.pop(k) for k in COMMON if k in values}
    return StrategyConfig(name=name, **common, config=values)


def make(name, space, seed=0, **config):
    """A registered strategy inside the standard middleware."""
    return make_strategy(space, strategy_config(name, **config), seed)


def oracle_guided(space, seed=0, **config):
    return OracleGuided(space, strategy_config(**config), seed, middleware=[FailureHandling()])


class LineSpace(spaces.Sampling, spaces.GraphEncoding):
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

    def fit(self, graphs, y, init_state=None, capacity=None):
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
    cfg = dict(budget=57, batch=10, init=10)
    s = make(name, space, 3, **cfg)
    drive(s, space)
    keys = [e["key"] for e in s.history]
    assert len(keys) == 57 and len(set(keys)) == 57 and s.done
    assert [e["round"] for e in s.history][-1] == 6  # 10 + 5 * 10 + 7
    again = make(name, space, 3, **cfg)
    drive(again, space)
    assert [e["key"] for e in again.history] == keys
    other = make(name, space, 4, budget=57)
    drive(other, space)
    assert [e["key"] for e in other.history] != keys


def test_rea_children_are_mutants_of_the_population():
    space = LineSpace()
    s = make("rea", space, 1, budget=40, population=10, tournament=3)
    drive(s, space)
    for e in s.history[10:]:
        population = [h["arch"] for h in s.history if h["round"] < e["round"]][-10:]
        # a mutation moves 1 or 2; a known child is mutated again, at most 10 steps in all
        assert min(abs(e["arch"] - a) for a in population) <= 20


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rea_takes_the_tournament_winner_of_the_youngest_members(seed):
    """With the tournament as large as the population, every child of a round descends from
    the best of the ``population`` most recently evaluated archs: not from an older arch
    (ageing) and not from a worse member (selection)."""
    space = LineSpace()
    s = make("rea", space, seed, budget=60, population=4, tournament=4, init=10, batch=10)
    drive(s, space)
    for r in range(2, 7):
        before = [h for h in s.history if h["round"] < r]
        winner = max(before[-4:], key=lambda h: h["value"])["arch"]
        older_best = max(before, key=lambda h: h["value"])["arch"]
        children = [h["arch"] for h in s.history if h["round"] == r]
        assert all(abs(c - winner) <= 20 for c in children), (r, winner, children)
        if abs(older_best - winner) > 40:  # a better but aged-out arch must have no children here
            assert all(abs(c - older_best) > 20 for c in children)


def test_the_order_of_results_does_not_change_the_search():
    space = LineSpace()
    forward, backward = make("rea", space, 7, budget=50), make("rea", space, 7, budget=50)
    drive(forward, space)
    drive(backward, space, order=lambda b: b[::-1])
    assert forward.state_dict() == backward.state_dict()


@pytest.mark.parametrize("name", ["random", "rea"])
def test_state_dict_round_trip_mid_round_continues_identically(name):
    space = LineSpace()
    whole = make(name, space, 2, budget=45)
    drive(whole, space)
    part = make(name, space, 2, budget=45)
    drive(part, space, stop_after=23)  # in the middle of round 3
    state = copy.deepcopy(part.state_dict())
    restored = make(name, space, 2, budget=45)
    restored.load_state_dict(state)
    assert len(restored.pending()) == 7
    drive(restored, space)
    assert restored.state_dict() == whole.state_dict()


def test_predictor_guided_proposes_what_the_predictor_ranks_best():
    space = LineSpace()
    cfg = dict(budget=60, candidates=200, random_share=0.0)
    s = oracle_guided(space, **cfg)
    drive(s, space)
    best = max(e["value"] for e in s.history)
    rnd = make("random", space, budget=cfg["budget"])
    drive(rnd, space)
    assert best == 0.0 > max(e["value"] for e in rnd.history)  # found 1234 itself
    for e in s.history[10:]:
        assert e["predicted"] == pytest.approx(e["value"])


def test_misuse_is_reported():
    space = LineSpace()
    with pytest.raises(SearchError, match="budget \\(5\\) is smaller than the initial population"):
        make("random", space, budget=5, init=10)
    with pytest.raises(SearchError, match="unknown strategy 'nope'; valid: bo, narformer, random, rea, reinforce"):
        strategy_class("nope")
    s = make("random", space, budget=20)
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
    assert results[2] == {"status": "failed", "error": "RuntimeError: second line", "attempts": 3,
                          "cost": 0.0, "began": 0.0, "ended": 0.0}  # a failure takes no simulated time
    assert calls["bad"] == 3


def test_predictor_guided_goes_on_when_every_value_is_equal():
    """E.g. a first round of smoke trainings that all stay at chance level."""
    space = LineSpace()
    s = oracle_guided(space, budget=30)
    while True:
        batch = s.pending() or s.ask()
        if not batch:
            break
        for arch in batch:
            s.tell(space.key(arch), 10.0)
    assert len(s.history) == 30 and len({e["key"] for e in s.history}) == 30
    assert all(e["predicted"] is None for e in s.history)


# --- failures and middleware --------------------------------------------------------

def drive_with_failures(strategy, space, fails):
    """Drive to the end; archs for which ``fails(arch)`` holds are told as failed."""
    while True:
        batch = strategy.pending() or strategy.ask()
        if not batch:
            return
        for arch in batch:
            failed = fails(arch)
            strategy.tell(space.key(arch), None if failed else space.value(arch), error="boom" if failed else None)


@pytest.mark.parametrize("name", ["random", "rea", "narformer"])
def test_failed_evaluations_count_against_the_budget_and_are_never_best(name):
    space = LineSpace()
    fails = lambda a: a % 3 == 0
    s = oracle_guided(space, seed=4, budget=50) if name == "narformer" else make(name, space, 4, budget=50)
    drive_with_failures(s, space, fails)
    assert len(s.history) == 50 and len({e["key"] for e in s.history}) == 50
    failed = [e for e in s.history if e["value"] is None]
    assert failed and all(fails(e["arch"]) for e in failed)
    assert all(e["value"] is not None for e in s.evaluated_ok())


def test_a_failed_arch_is_never_a_parent():
    """One parent, no random candidates: round 2 must mutate the best arch that did not
    fail, although the one that failed lies next to the optimum."""
    space = LineSpace()
    s = oracle_guided(space, budget=20, parents=1, random_share=0.0, max_mutations=1)
    first = s.ask()
    best = max(first, key=space.value)
    for arch in first:
        failed = arch == best
        s.tell(space.key(arch), None if failed else space.value(arch), error="boom" if failed else None)
    runner_up = max((a for a in first if a != best), key=space.value)
    second = s.ask()
    assert all(abs(a - runner_up) <= 2 for a in second), (best, runner_up, second)


def test_a_first_round_that_failed_entirely_stops_the_search_or_goes_on_at_random():
    space = LineSpace()
    s = make("rea", space, budget=30)
    for arch in s.ask():
        s.tell(space.key(arch), None, error="RuntimeError: no data")
    with pytest.raises(SearchError, match="every evaluation of the first round failed .*RuntimeError: no data"):
        s.ask()
    going_on = make("rea", space, budget=30, stop_if_first_round_fails=False)
    drive_with_failures(going_on, space, lambda a: True)
    assert len(going_on.history) == 30 and len({e["key"] for e in going_on.history}) == 30
    # the error survives a state round trip, so a resumed run stops with it too
    restored = make("rea", space, budget=30)
    restored.load_state_dict(copy.deepcopy(s.state_dict()))
    with pytest.raises(SearchError, match="RuntimeError: no data"):
        restored.ask()


def test_deduplication_is_the_strategys_own_behaviour():
    """Even without any middleware, no arch is proposed twice: on a 30-arch space, 25
    evaluations are 25 distinct archs, and the 31st cannot be had."""
    space = LineSpace(n=30)
    bare = strategy_class("random")(space, StrategyConfig(name="random", budget=25), 0)
    drive(bare, space)
    assert len(bare.history) == 25 and len({e["key"] for e in bare.history}) == 25
    everything = strategy_class("random")(space, StrategyConfig(name="random", budget=40, init=10), 0)
    drive(everything, space)
    assert len({e["key"] for e in everything.history}) == len(everything.history) == 30


def test_constraints_keep_every_proposal_within_the_limit_and_resume_exactly():
    space = spaces.get_space("nb201")
    limit = 0.5e6  # parameters; the largest NB201 cell has 1.53 M
    cfg = dict(budget=30, constraints={"params": limit})
    value = lambda arch: float(np.sum(arch.ops))  # any deterministic stand-in for accuracy
    measure = lambda arch: sum(p.numel() for p in space.build_model(arch).parameters())
    states = []

    def run(strategy):
        while True:
            batch = strategy.pending() or strategy.ask()
            if not batch:
                return strategy
            for arch in batch:
                strategy.tell(space.key(arch), value(arch))
            states.append(copy.deepcopy(strategy.state_dict()))

    s = run(make("rea", space, 0, **cfg))
    half = states[0]
    assert len(s.history) == 30
    assert all(measure(space.from_json(e["arch"])) <= limit for e in s.history)
    assert sum(s.state_dict()["middleware"]["constraints"]["rejected"].values()) > 0
    unconstrained = run(make("rea", space, 0, budget=30))
    assert max(measure(space.from_json(e["arch"])) for e in unconstrained.history) > limit  # the limit mattered
    restored = make("rea", space, 0, **cfg)
    restored.load_state_dict(half)
    assert run(restored).state_dict() == s.state_dict()


def test_unknown_constraints_are_refused():
    with pytest.raises(SearchError, match="unknown constraint measure 'energy'; this run offers: latency, params"):
        make("rea", LineSpace(), budget=20, constraints={"energy": 5})
    with pytest.raises(Exception, match="for --latency measured"):  # a space without networks cannot be timed
        make("rea", LineSpace(), budget=20, constraints={"latency": 5})


def test_an_infeasible_constraint_is_a_clear_error_not_an_empty_search():
    space = LineSpace()
    strategy = make_strategy(space, strategy_config("random", budget=20, constraints={"params": 1000}), 0,
                             measures={"params": lambda arch: 5000.0})  # every arch is larger than the limit
    with pytest.raises(SearchError, match=r"no arch within the constraints was found in round 1 after 2,000 "
                                          r"tries: params<=1000 \(turned away 2,000\)"):
        strategy.ask()


def test_constraint_values_take_suffixes():
    from search.config import parse_constraints
    got = parse_constraints(["macs<=400M", "params<=1.5k", "latency_note10<=25", "x<=2G"])
    assert got == {"macs": 4e8, "params": 1500.0, "latency_note10": 25.0, "x": 2e9}
    with pytest.raises(SearchError, match="NAME<=VALUE with an optional k/M/G suffix"):
        parse_constraints(["macs<=400X"])


class FlakyOnDisk:
    """Fails 'bad' always and 'flaky' on its first attempt; counts attempts in files, since
    Ray runs each attempt in a worker process."""

    def __init__(self, folder):
        self.folder = str(folder)

    def evaluate(self, arch):
        import pathlib
        counter = pathlib.Path(self.folder) / f"{arch}.attempts"
        attempt = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(attempt))
        if arch == "bad" or (arch == "flaky" and attempt == 1):
            raise RuntimeError(f"cannot evaluate {arch} (attempt {attempt})")
        return {"val": 1.0, "test": 2.0, "attempt_seen": attempt}


def test_ray_executor_retries_failed_trials_and_counts_the_attempts(tmp_path):
    import sys
    from ray import cloudpickle
    from search.executors import RayExecutor
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import tests/
    results = {}
    config = ExecutorConfig(name="ray", max_failures=2, cpus_per_trial=1)
    with RayExecutor(config) as executor:
        executor.run(["ok", "flaky", "bad"], FlakyOnDisk(tmp_path), lambda i, r: results.setdefault(i, r))
    attempts = {name: int((tmp_path / f"{name}.attempts").read_text()) for name in ("ok", "flaky", "bad")}
    assert attempts == {"ok": 1, "flaky": 2, "bad": 3}  # max_failures=2: the first try and two retries
    assert results[0]["status"] == "ok" and results[0]["attempts"] == 1
    assert results[1]["status"] == "ok" and results[1]["attempts"] == 2 and results[1]["attempt_seen"] == 2
    assert results[2]["status"] == "failed" and results[2]["attempts"] == 3
    assert "cannot evaluate bad (attempt 3)" in results[2]["error"]


def test_pareto_front_of_a_hand_made_set():
    from search.report import pareto_front, pareto_mask
    # (value: higher is better, cost: lower is better)
    entries = [{"key": k, "arch": k, "value": v, "test": None} for k, v in
               [("a", 70.0), ("b", 75.0), ("c", 72.0), ("d", 80.0), ("e", 75.0), ("f", None), ("g", 80.0)]]
    cost = {"macs": [100, 200, 250, 400, 200, 50, 500]}
    front = pareto_front(entries, cost)
    # c is dominated by b (cheaper and better), e ties b (neither dominates), g is d at a higher cost,
    # f failed and is left out however cheap
    assert [r["key"] for r in front] == ["a", "b", "e", "d"]
    assert front[1] == {"key": "b", "arch": "b", "val": 75.0, "test": None, "macs": 200}
    assert pareto_mask(np.array([[1, 1], [1, 1], [0, 2], [2, 0], [2, 2]])).tolist() == [True, True, True, True, False]
    three = pareto_front(entries[:5], {"macs": [100, 200, 250, 400, 200], "latency": [9, 9, 1, 9, 10]})
    assert [r["key"] for r in three] == ["a", "b", "c", "d"]  # c is cheapest in latency now; e loses to b


def test_a_benchmark_column_is_a_constraint_measure_and_the_space_comes_first():
    from search.evaluators.benchmark import BenchmarkConfig, BenchmarkEvaluator
    from search.middleware import measure_functions
    space = spaces.get_space("nb201")
    evaluator = BenchmarkEvaluator(space)
    fns = measure_functions(space, {"c10valid_params_mb": 0.5, "params": 5e5}, evaluator)
    bench = spaces.get_benchmark("nb201")
    arch = bench.arch(6111)
    assert fns["c10valid_params_mb"](arch) == bench.query(arch, "c10valid_params_mb")
    assert fns["params"](arch) == sum(p.numel() for p in space.build_model(arch).parameters())  # the registry's
    with pytest.raises(SearchError, match="unknown constraint measure 'macs'; this run offers: .*c10valid_val_12.*params"):
        measure_functions(space, {"macs": 1}, evaluator)
    # a test value never steers a search: it is not offered, and naming it is refused with the reason
    offered = evaluator.measure_names()
    assert "c10_test_200" not in offered and "c10_test_12" not in offered and "c10valid_params_mb" in offered
    for test_column in ("c10_test_200", "c10_test_12"):
        with pytest.raises(SearchError, match=f"constraint {test_column} is a test metric: a test value must never"):
            measure_functions(space, {test_column: 90}, evaluator)
    with pytest.raises(SearchError, match="--metric c10_test_200 is a test metric"):
        BenchmarkEvaluator(space, BenchmarkConfig(metric="c10_test_200"))
    ofa = spaces.get_space("ofa_mbv3")
    arch = ofa.sample(np.random.default_rng(0))
    assert measure_functions(ofa, {"params": 1})["params"](arch) == ofa.params(arch)  # analytic, no network built


def test_evolution_proposals_are_the_predictors_best_new_archs():
    """proposal="evolution": each round sends the best-predicted new archs the evolution met."""
    space = LineSpace()
    s = oracle_guided(space, budget=40, proposal="evolution", evolution_population=20, evolution_generations=30)
    drive(s, space)
    assert len(s.history) == 40 and len({e["key"] for e in s.history}) == 40
    later = [e for e in s.history if e["round"] > 1]
    for r in range(2, 5):
        predicted = [e["predicted"] for e in s.history if e["round"] == r]
        assert predicted == sorted(predicted, reverse=True) and None not in predicted
    assert max(e["value"] for e in later) == 0.0  # the oracle predictor leads it to the peak (1234)
    with pytest.raises(SearchError, match="proposal must be 'mutation' or 'evolution', got 'genetic'"):
        make("narformer", space, proposal="genetic")
    with pytest.raises(SearchError, match="evolution_population must be >= 2"):
        make("narformer", space, evolution_population=1)


def test_evolution_keeps_its_best_and_its_members_admissible():
    from search.evolution import Evolution, EvolutionSettings
    space = spaces.get_space("ofa_mbv3")
    limit = 250e6
    evolution = Evolution(space, lambda archs: [float(space.params(a)) for a in archs],
                          lambda key, arch: space.macs(arch) <= limit, np.random.default_rng(0),
                          EvolutionSettings(population=20, generations=15))
    final = evolution.run()
    assert all(space.macs(a) <= limit for a, _ in evolution.scored.values())
    assert evolution.curve == sorted(evolution.curve) and final[0][2] >= evolution.curve[-1]
    assert evolution.queries == 20 + 15 * 15 and len(final) <= 20
    assert final[0][2] > np.median([v for _, v in evolution.scored.values()])
    with pytest.raises(SearchError, match="no new arch within macs<=1"):
        Evolution(space, lambda archs: [0.0] * len(archs), lambda key, arch: False, np.random.default_rng(0),
                  EvolutionSettings(population=4, generations=1, max_tries=50), describe="macs<=1").run()


def test_the_predictor_shows_progress_only_when_the_driver_asks():
    space = spaces.get_space("nb201")
    s = PredictorGuided(space, StrategyConfig(), 0)
    assert s.make_predictor().config.quiet is True
    s.predictor_quiet = False
    assert s.make_predictor().config.quiet is False
    from search.strategies import PredictorSection
    explicit = PredictorGuided(space, StrategyConfig(), 0, PredictorSection(config={"quiet": True}))
    explicit.predictor_quiet = False
    assert explicit.make_predictor().config.quiet is True  # the user's own setting wins


def test_a_search_takes_the_spaces_measured_predictor_settings_and_the_users_win():
    from search import config as search_config
    predictor_of = lambda tree: search_config.resolve(search_config.build(tree))[0].predictor.config
    assert predictor_of({"space": {"name": "nb201"}})["epochs"] == 100  # the measured search setting
    assert predictor_of({"space": {"name": "nb201"}, "predictor": {"config": {"epochs": 7}}})["epochs"] == 7
    darts = predictor_of({"space": {"name": "darts"}})
    assert (darts["lr"], darts["batch_size"], darts["epochs"]) == (1e-3, 32, 1000)  # NAR-Former's DARTS schedule
    assert predictor_of({"space": {"name": "nb101"}})["attention"] == "graph"
    assert predictor_of({"space": {"name": "nb201"}, "predictor": {"name": "mlp"}})["epochs"] == 200  # mlp's own
    import predictor
    assert predictor.get_predictor("narformer").config.epochs == 300  # the predictor itself is unchanged
    assert "quiet" not in predictor_of({"space": {"name": "nb201"}})  # a display setting, not recorded


def test_each_strategy_takes_only_its_own_settings():
    """A setting of another strategy is refused, naming the ones this strategy has; the
    shared ones (budget, batch, init) belong to every strategy."""
    from narnas.errors import ConfigError
    space = LineSpace()
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) population in strategy random's config; "
                                          r"valid: none \(it has no settings\)"):
        make("random", space, population=50)
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) candidates in strategy rea's config; "
                                          r"valid: population, tournament"):
        make("rea", space, candidates=50)
    rea = make("rea", space, budget=30, population=7)
    assert rea.settings.population == 7 and rea.settings.tournament == 5
    assert make("narformer", space).settings.candidates == 500


def test_the_predictor_refits_short_when_evaluations_are_smoke_trainings():
    from search import config as search_config

    def resolved(preset, predictor=None):
        tree = {"space": {"name": "darts"}, "evaluator": {"name": "cifar10-train", "config": {"preset": preset}},
                "predictor": {"config": predictor or {}}}
        return search_config.resolve(search_config.build(tree))[0].predictor.config["epochs"]
    assert resolved("search") == 1000  # a real training: the paper's schedule (the space's default)
    assert resolved("smoke") == 100  # seconds per training: a short refit, recorded in config.json
    assert resolved("smoke", {"epochs": 700}) == 700  # the user's word wins
