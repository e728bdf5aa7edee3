"""The asynchronous schedule: streaming strategies, the simulated clock of the inline
executor, exact resume of a killed or state-less run, and slot utilisation against rounds."""
import json
import subprocess
import sys

import numpy as np
import pytest

from search.config import ScheduleSection
from search.errors import SearchError
from search.executors import SimulatedPool
from search.middleware import make_strategy
from search.report import schedule_figures
from test_search_run import kill_when
from test_search_strategies import LineSpace, strategy_config

# NB201 look-ups with a fast predictor; 6 slots so rounds of the predictor (every 10 results)
# and the slots do not line up.
ASYNC = ["--space", "nb201", "--budget", "40", "--batch", "10", "--seed", "5", "--predictor", "mlp",
         "--predictor-set", "epochs=40", "--candidates", "200", "--quiet", "--no-plots", "--schedule", "async",
         "--slots", "6"]


def search(*args):
    return subprocess.run([sys.executable, "-m", "search.run", *args], capture_output=True, text=True, timeout=600)


def journal(folder, drop=("process", "wall_seconds", "seconds")):
    """The journal without what differs between processes (which wrote a line, wall times)."""
    return [{k: v for k, v in json.loads(line).items() if k not in drop}
            for line in (folder / "journal.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("async") / "run"
    done = search(*ASYNC, "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def streaming(n_slots=4, **config):
    space = LineSpace()
    cfg = strategy_config("rea", **{"budget": 20, "batch": 5, "init": 6, "population": 10, "tournament": 3, **config})
    return make_strategy(space, cfg, seed=1, schedule=ScheduleSection(name="async", refit_every=5))


def test_a_streaming_strategy_keeps_arrival_order_and_begins_rounds_when_due():
    s = streaming()
    assert s.ask(4) == [] and s.advance() and s.round == 1  # nothing is proposed before round 1
    first = s.ask(4)
    assert len(first) == 4 and len(s.in_flight) == 4 and s.history == []
    keys = [s.key(a) for a in first]
    for key in reversed(keys):  # results arrive in the reverse order
        s.tell(key, float(len(key)))
        s.ask(1)
    assert [e["key"] for e in s.history] == keys[::-1]  # the history is the arrival order
    assert not s.advance()  # round 1 lasts until init (6) results arrived
    for entry in list(s.in_flight)[:2]:
        s.tell(entry["key"], 1.0)
    assert s.advance() and s.round == 2 and s.round_start == 6
    assert not s.advance()  # the next round needs refit_every (5) more results
    # the budget (20) bounds what is asked, in flight included
    while len(s.history) + len(s.in_flight) < 20:
        assert s.ask(3)
        for entry in list(s.in_flight):
            s.tell(entry["key"], 0.5)
            s.advance()
    assert s.ask(3) == [] and len(s.history) == 20 and len({e["key"] for e in s.history}) == 20
    assert {e["round"] for e in s.history} >= {1, 2, 3}


def test_a_streaming_state_round_trips():
    s = streaming()
    s.advance()
    for arch in s.ask(4):
        s.tell(s.key(arch), 1.0) if arch % 2 else None
    twin = streaming()
    twin.load_state_dict(json.loads(json.dumps(s.state_dict())))
    assert [twin.key(a) for a in twin.ask(3)] == [s.key(a) for a in s.ask(3)]
    assert twin.round_start == s.round_start and twin.history == s.history


def test_the_simulated_clock_orders_results_by_cost():
    class Costly:
        def evaluate(self, arch):
            return {"val": 1.0, "test": None, "seconds": float(arch)}  # cost: its seconds
    pool = SimulatedPool(Costly(), max_failures=0)
    for tag, cost in enumerate([5, 1, 3]):
        pool.submit(tag, cost)
    order = [pool.next() for _ in range(2)]
    assert [t for t, _ in order] == [1, 2] and pool.now == 3
    pool.submit(3, 1)  # starts at 3, ends at 4: before the first (5)
    assert [pool.next()[0] for _ in range(2)] == [3, 0]
    figures = schedule_figures([r for _, r in order] + [{"began": 3, "ended": 4}, {"began": 0, "ended": 5}], 3)
    assert figures["clock_seconds"] == 5 and figures["utilisation"] == pytest.approx((1 + 3 + 1 + 5) / 15, abs=1e-4)


@pytest.fixture(scope="module")
def with_asha(tmp_path_factory):
    out = tmp_path_factory.mktemp("asha") / "run"
    done = search(*ASYNC, "--stopper", "asha", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def test_a_killed_async_search_resumes_to_the_same_journal(with_asha, tmp_path):
    """With ASHA: the stopper's decisions come back too (the schedule without a stopper is
    the same path with fewer events)."""
    out = tmp_path / "run"
    kills = 0
    for lines in (3, 14, 27):  # round 1, a predictor round, near the end
        args = ASYNC + ["--stopper", "asha", "--out", str(out)] if not out.exists() else ["--resume", str(out), "--quiet"]
        kills += kill_when(args, out, lines)
    assert kills >= 2
    done = search("--resume", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    # same archs, same arrival order, same rounds, same simulated times, same stops
    assert journal(out) == journal(with_asha)
    records = journal(with_asha)
    assert [r["ended"] for r in records] == sorted(r["ended"] for r in records)  # arrival order = simulated end
    assert max(r["round"] for r in records) >= 3 and {r["slots"] for r in records} == {6}


def test_an_async_state_is_rebuilt_from_its_journal(with_asha, tmp_path):
    """The stopper's decisions come back from decisions.jsonl, each in its place."""
    out = tmp_path / "run"
    assert kill_when(ASYNC + ["--stopper", "asha", "--out", str(out)], out, 22)
    (out / "state.json").write_text("{")
    done = search("--resume", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "rebuilding the state from the journal" in done.stderr
    assert journal(out) == journal(with_asha)


def test_asha_stops_at_the_low_fidelity_and_the_stopped_still_teach(with_asha, reference):
    records = journal(with_asha)
    stopped = [r for r in records if r["status"] == "stopped"]
    full = [r for r in records if r["status"] == "ok"]
    assert len(records) == 40 and 8 <= len(stopped) <= 32
    summary = json.loads((with_asha / "summary.json").read_text())
    assert summary["stopped"] == len(stopped) and summary["failed"] == 0 and summary["stopper"] == "asha"
    for r in stopped:  # the value and cost at 12 of 200 epochs, no test value
        assert r["fidelity"] == 12 and r["test"] is None and r["val"] == r["curve"]["12"]
    for r in full:
        assert r["curve"]["12"] < r["val"] + 50 and r["cost"] > 0
    # a stop costs 12/200 of that arch's training: the run costs less than the reference
    costs = {r["key"]: r["cost"] for r in journal(reference)}
    assert all(r["cost"] == pytest.approx(costs[r["key"]] * 12 / 200) for r in stopped if r["key"] in costs)
    assert summary["cost_seconds"] < 0.8 * json.loads((reference / "summary.json").read_text())["cost_seconds"]
    # once two finished evaluations taught the line, a stopped one carries its imputed final value
    imputed = [r for r in stopped if r.get("imputed") is not None]
    assert imputed and all(60 < r["imputed"] < 95 for r in imputed)
    decisions = [json.loads(line) for line in (with_asha / "decisions.jsonl").read_text().splitlines()]
    assert len(decisions) == len([r for r in records if "12" in r.get("curve", {})])
    assert {d["key"] for d in decisions if not d["go_on"]} == {r["key"] for r in stopped}


def test_asha_decides_by_the_quantile_of_earlier_reports_and_keeps_its_answers():
    from search.fidelity import StopperSection, make_stopper
    asha = make_stopper(StopperSection(name="asha", eta=3))
    assert asha.decide("a", 12, 50.0)  # the first goes on
    assert not asha.decide("b", 12, 40.0)  # below the 2/3 quantile of [50]
    assert asha.decide("c", 12, 60.0)
    assert not asha.decide("d", 12, 52.0)  # the 2/3 quantile of [50, 40, 60] is 53.3
    assert asha.decide("d", 12, 99.0) is False  # asked again (a resubmitted arch): the same answer
    assert asha.reported["12"] == [50.0, 40.0, 60.0, 52.0]
    asha.finished("d", {"status": "stopped", "val": 52.0})
    assert "d" not in asha.decisions and asha.finals == []  # a stop teaches no final value


def test_the_curve_stopper_extrapolates_across_archs():
    from search.fidelity import StopperSection, make_stopper
    curve = make_stopper(StopperSection(name="curve", top=2, margin=1.0, min_pairs=3))
    for i, partial in enumerate([50.0, 55.0, 60.0, 65.0]):  # final = partial + 25, exactly
        assert curve.decide(f"k{i}", 12, partial)  # too little known yet: every one goes on
        curve.finished(f"k{i}", {"status": "ok", "val": partial + 25, "curve": {"12": partial}})
    assert curve.impute(12, 70.0) == pytest.approx(95.0)
    # the second best final is 85: a partial of 58 predicts 83, with no residual spread: stopped
    assert not curve.decide("low", 12, 58.0)
    assert curve.decide("high", 12, 61.0)
    state = json.loads(json.dumps(curve.state_dict()))
    twin = make_stopper(StopperSection(name="curve", top=2, margin=1.0, min_pairs=3))
    twin.load_state_dict(state)
    assert twin.decide("low", 12, 0.0) is False and twin.impute(12, 70.0) == pytest.approx(95.0)


def test_a_cost_budget_stops_starting_evaluations(reference, tmp_path):
    full = json.loads((reference / "summary.json").read_text())["cost_seconds"]
    out = tmp_path / "run"
    done = search(*ASYNC, "--cost-budget", str(full / 2), "--out", str(out))
    assert done.returncode == 0, done.stderr
    records = journal(out)
    spent = sum(r["cost"] for r in records)
    assert 15 < len(records) < 35 and full / 2 * 0.8 < spent < full / 2 * 1.3
    assert records == journal(reference)[:len(records)]  # the same search, ended early


def test_async_keeps_heavy_tailed_slots_busier_than_rounds(tmp_path):
    """Durations from the table's training time times a log-normal factor (sigma 1): a round
    waits for its slowest training, the asynchronous schedule does not."""
    figures = {}
    for schedule in ("rounds", "async"):
        out = tmp_path / schedule
        done = search("--space", "nb201", "--strategy", "rea", "--budget", "100", "--seed", "3", "--quiet",
                      "--no-plots", "--schedule", schedule, "--set", "evaluator.config.cost_spread=1.0",
                      "--out", str(out))
        assert done.returncode == 0, done.stderr
        figures[schedule] = json.loads((out / "summary.json").read_text())
    rounds, streamed = figures["rounds"], figures["async"]
    assert rounds["slots"] == streamed["slots"] == 10
    # (measured: 0.76 against 0.27; what async leaves idle is the drain after the last proposal)
    assert streamed["utilisation"] > 0.7 and streamed["utilisation"] > 2 * rounds["utilisation"]
    assert streamed["clock_seconds"] < rounds["clock_seconds"]
    # the same costs: the training cost is what the archs took, however they were scheduled
    assert streamed["cost_seconds"] == pytest.approx(sum(r["cost"] for r in journal(tmp_path / "async")))


@pytest.mark.parametrize("args, message", [
    (["--schedule", "later"], "unknown schedule 'later'; valid: rounds, async"),
    (["--schedule", "async", "--slots", "-1"], "slots and refit_every must be >= 0"),
    (["--schedule", "async", "--strategy", "reinforce", "--embedding", "x.pt"],
     "strategy reinforce learns from whole rounds: it runs with --schedule rounds; asynchronous strategies: bo, "),
    (["--set", "evaluator.config.cost=nope"], "unknown metric 'nope'"),
    (["--stopper", "asha"], "--stopper asha stops evaluations as their reports arrive: it needs --schedule async"),
    (["--schedule", "async", "--stopper", "asha", "--metric", "c10valid_val_12"],
     "evaluator benchmark reports none here"),
    (["--schedule", "async", "--stopper", "hyperband"], "unknown stopper 'hyperband'; valid: none, asha, curve"),
    (["--cost-budget", "-5"], "cost_budget must be >= 0"),
    (["--schedule", "async", "--stopper", "asha", "--eta", "1"], "stopper eta must be > 1, got 1.0"),
])
def test_bad_schedules_are_one_line(args, message, tmp_path):
    done = search("--space", "nb201", "--budget", "20", *args, "--out", str(tmp_path / "run"))
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, message", [
    (["--schedules", "async", "--stoppers", "nope"], "unknown stopper 'nope'; valid: none, asha, curve"),
    (["--schedules", "later"], "unknown schedule 'later'; valid: rounds, async"),
])
def test_bench_search_refuses_bad_schedules_in_one_line(args, message):
    done = subprocess.run([sys.executable, "-m", "bench.search", "--strategies", "rea", "--seeds", "1", *args],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.strip() == f"error: {message}", done.stderr


def test_streaming_refuses_a_round_based_strategy_directly():
    from search.latent import LatentReinforce
    with pytest.raises(SearchError, match="cannot run asynchronously"):
        LatentReinforce.__init__(object.__new__(LatentReinforce), LineSpace(), strategy_config("reinforce"),
                                 streaming=True)


def test_costs_spread_is_seeded_by_the_arch():
    import spaces
    from search.evaluators.benchmark import BenchmarkConfig, BenchmarkEvaluator
    space = spaces.get_space("nb201")
    plain = BenchmarkEvaluator(space, BenchmarkConfig())
    spread = BenchmarkEvaluator(space, BenchmarkConfig(cost_spread=1.0))
    archs = [space.sample(np.random.default_rng(i)) for i in range(200)]
    base = np.array([plain.evaluate_cost(a) for a in archs])
    scaled = np.array([spread.evaluate_cost(a) for a in archs])
    assert np.all(base > 0) and np.allclose(scaled, [spread.evaluate_cost(a) for a in archs])  # the same each time
    factor = scaled / base
    assert 0.7 < factor.mean() < 1.3 and factor.max() > 4 * np.median(factor)  # mean 1, a heavy tail


def test_asha_stops_ray_tasks_through_the_board(tmp_path):
    """On the embedded Ray each report waits in the task for the driver's answer."""
    out = tmp_path / "run"
    done = search("--space", "nb201", "--budget", "16", "--seed", "1", "--predictor", "mlp", "--predictor-set",
                  "epochs=20", "--quiet", "--no-plots", "--schedule", "async", "--stopper", "asha", "--executor", "ray",
                  "--out", str(out))
    assert done.returncode == 0, done.stderr
    records = journal(out)
    stopped = [r for r in records if r["status"] == "stopped"]
    decisions = [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]
    assert len(records) == 16 and len(decisions) == 16 and stopped
    assert {d["key"] for d in decisions if not d["go_on"]} == {r["key"] for r in stopped}
    assert all(r["fidelity"] == 12 and r["test"] is None for r in stopped)
    assert all(r["status"] == "ok" and r["test"] is not None for r in records if r not in stopped)


def test_an_evolution_proposal_streams_one_evolution_per_round_and_resumes_exactly(monkeypatch):
    """proposal="evolution" asked for one free slot at a time runs one evolution per round and
    takes its ranking best first; a state loaded mid-round proposes what the original does."""
    from search.evolution import Evolution
    from test_search_strategies import OracleGuided, OraclePredictor

    class Jumps(LineSpace):  # long mutations and a rough predictor below: which archs an
        def mutate(self, arch, rng):  # evolution meets decides what it proposes
            return int((arch + rng.integers(-300, 301)) % self.n)

    class Rough(OraclePredictor):  # the true value plus a fixed bump per arch
        def predict(self, graphs):
            return super().predict(graphs) + 5 * np.sin(np.asarray(graphs) * 12.9898)

    class RoughGuided(OracleGuided):
        def make_predictor(self):
            return Rough()

    runs = []
    run = Evolution.run
    monkeypatch.setattr(Evolution, "run", lambda self, seeds=(): runs.append(1) or run(self, seeds))
    space = Jumps()

    def make():
        cfg = strategy_config(budget=30, batch=10, init=6, proposal="evolution", evolution_population=20,
                              evolution_generations=10)
        return RoughGuided(space, cfg, 3, streaming=True, refit_every=10)

    def step(s):
        """The oldest evaluation in flight ends; its slot is refilled; the proposals made."""
        entry = s.in_flight[0]
        s.tell(entry["key"], space.value(s.arch(entry["key"], entry["arch"])))
        asked = [s.key(a) for a in s.ask(1)]
        s.advance()
        return asked

    s = make()
    s.advance()
    s.ask(3)
    while len(s.history) < 9:
        step(s)
    assert len(runs) == len({e["round"] for e in s.history + s.in_flight if e["round"] > 1}) == 1
    twin = make()
    twin.load_state_dict(json.loads(json.dumps(s.state_dict())))
    while s.in_flight:
        assert step(twin) == step(s)
    assert twin.history == s.history and len({e["key"] for e in s.history}) == 30
    # results arrive in the order proposed: each round's first ranking is taken best first
    predicted = [e["predicted"] for e in s.history if e["round"] == 2]
    assert len(predicted) == 10 and predicted == sorted(predicted, reverse=True)
