"""The reinforce and bo strategies in arch2vec's latent space, on NB201's table (no Ray)."""
import copy
import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import norm

import spaces
from embeddings.model import Arch2VecConfig
from embeddings.pretrain import pretrain
from search.errors import SearchError
from search.latent import expected_improvement
from search.middleware import make_strategy
from search.strategies import StrategyConfig


@pytest.fixture(scope="module")
def nb201(tmp_path_factory):
    """The space, its validation accuracies by key, and a small arch2vec model of it."""
    space, bench = spaces.get_space("nb201"), spaces.get_benchmark("nb201")
    path = tmp_path_factory.mktemp("latent") / "nb201.pt"
    pretrain(space, Arch2VecConfig(epochs=1, latent_dim=4, hidden=16, gin_layers=2), path, archs=2000,
             held_out=10, prior_samples=0)
    values = dict(zip(bench.keys, bench.column("c10valid_val_200_mean")))
    return space, values, path


def make(name, nb201, seed=0, **config):
    space, _, path = nb201
    common = {k: config.pop(k) for k in ("budget", "batch", "init") if k in config}
    return make_strategy(space, StrategyConfig(name=name, **common, config=dict(config, embedding=str(path))), seed)


def drive(strategy, nb201, stop_after=None):
    space, values, _ = nb201
    told = 0
    while True:
        batch = strategy.pending() or strategy.ask()
        if not batch:
            return told
        for arch in batch:
            if stop_after is not None and told >= stop_after:
                return told
            strategy.tell(space.key(arch), values[space.key(arch)])
            told += 1


@pytest.mark.parametrize("name", ["reinforce", "bo"])
def test_budget_no_duplicates_and_determinism(name, nb201):
    s = make(name, nb201, 3, budget=47)
    drive(s, nb201)
    keys = [e["key"] for e in s.history]
    assert len(keys) == 47 and len(set(keys)) == 47 and s.done
    again = make(name, nb201, 3, budget=47)
    drive(again, nb201)
    assert [e["key"] for e in again.history] == keys
    other = make(name, nb201, 4, budget=47)
    drive(other, nb201)
    assert [e["key"] for e in other.history] != keys


@pytest.mark.parametrize("name", ["reinforce", "bo"])
def test_state_dict_round_trip_mid_round_continues_identically(name, nb201):
    whole = make(name, nb201, 2, budget=45)
    drive(whole, nb201)
    part = make(name, nb201, 2, budget=45)
    drive(part, nb201, stop_after=23)
    state = json.loads(json.dumps(copy.deepcopy(part.state_dict())))  # what the run folder keeps
    restored = make(name, nb201, 2, budget=45)
    restored.load_state_dict(state)
    assert len(restored.pending()) == 7
    drive(restored, nb201)
    assert restored.state_dict() == whole.state_dict()


def test_reinforce_steps_the_policy_by_the_policy_gradient(nb201):
    """Round 1 (random) sets the baseline; asking for round 3 learns from round 2: the mean
    moves by lr * mean(advantage * (point - mean)) / std^2 over the points drawn for round 2,
    the advantage being the values minus the baseline over their spread, so it moves towards
    the points whose archs beat the baseline."""
    s = make("reinforce", nb201, 0, budget=40, init=10, batch=10, lr=0.5, std=0.5)
    drive(s, nb201, stop_after=20)  # returns once round 3 is asked for
    policy = s
    rounds = [[e for e in policy.history if e["round"] == r] for r in (1, 2)]
    baseline = np.mean([e["value"] for e in rounds[0]])
    values = np.array([e["value"] for e in rounds[1]])
    x = np.array([policy.points[e["key"]] for e in rounds[1]])  # the drawn points: the policy's actions
    assert all(e["key"] not in policy.points for e in rounds[0])  # round 1 is random
    advantage = (values - baseline) / values.std()
    expected = 0.5 * (advantage[:, None] * x).mean(0) / 0.5 ** 2
    np.testing.assert_allclose(policy.mean, expected)
    assert policy.baseline == pytest.approx(0.9 * baseline + 0.1 * values.mean())
    assert policy.mean @ (advantage[:, None] * x).sum(0) > 0  # towards the better archs


def test_bo_proposes_by_expected_improvement(nb201):
    assert expected_improvement(np.array([1.0]), np.array([1.0]), 1.0)[0] == pytest.approx(norm.pdf(0))
    assert expected_improvement(np.array([3.0]), np.array([1e-9]), 1.0)[0] == pytest.approx(2.0)
    s = make("bo", nb201, 1, budget=30)
    drive(s, nb201, stop_after=10)  # returns once round 2 is proposed
    round2 = s.in_flight
    assert len(round2) == 10 and all(e["round"] == 2 and e["predicted"] is not None for e in round2)
    # exactly the 10 new archs of highest expected improvement under the GP of round 1
    # under scikit-learn's GP fitted here on round 1 (RBF + noise, hyperparameters by marginal
    # likelihood), and EI written out: (m - best) Phi(z) + s phi(z), z = (m - best) / s
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
    bo = s
    rows, values = bo.evaluated_rows()
    open_rows = np.setdiff1d(np.arange(bo.pool.size), rows)
    dims = bo.pool.x.shape[1]
    gp = GaussianProcessRegressor(ConstantKernel() * RBF(np.sqrt(dims), (1e-2, 1e3)) + WhiteKernel(0.1, (1e-6, 1e1)),
                                  normalize_y=True, random_state=1 * 1000 + 2).fit(bo.pool.x[rows], values)
    mean, std = gp.predict(bo.pool.x[open_rows], return_std=True)
    z = (mean - values.max()) / np.maximum(std, 1e-12)
    ei = (mean - values.max()) * norm.cdf(z) + std * norm.pdf(z)
    top = open_rows[np.argsort(-ei)[:10]]
    assert {bo.pool.keys[i] for i in top} == {e["key"] for e in round2}


def test_bad_embeddings_are_reported(nb201, tmp_path):
    space, _, path = nb201
    with pytest.raises(SearchError, match="need an arch2vec model"):
        make_strategy(space, StrategyConfig(name="bo"), 0)
    with pytest.raises(SearchError, match="not found"):
        make_strategy(space, StrategyConfig(name="bo", config={"embedding": str(tmp_path / "none.pt")}), 0)
    with pytest.raises(SearchError, match="arch2vec model of space nb201, not nb101"):
        make_strategy(spaces.get_space("nb101"), StrategyConfig(name="bo", config={"embedding": str(path)}), 0)
    np.savez(tmp_path / "e.npz", embeddings=np.zeros((1, 4), np.float32), archs=np.array(["x"]),
             space=np.array("nb101"))
    with pytest.raises(SearchError, match="embeddings of space nb101, not nb201"):
        make_strategy(space, StrategyConfig(name="reinforce", config={"embedding": str(tmp_path / "e.npz")}), 0)
    s = make("bo", nb201, 0, budget=20)
    drive(s, nb201, stop_after=12)
    state = s.state_dict()
    state["pool"] = "something else"
    with pytest.raises(SearchError, match="other embeddings"):
        make("bo", nb201, 0, budget=20).load_state_dict(state)


def test_search_run_with_an_encoded_pool(nb201, tmp_path):
    """The CLI path: encode every arch once, then search over the .npz."""
    _, values, path = nb201
    enc = subprocess.run([sys.executable, "-m", "embeddings", "encode", "--model", str(path), "--all",
                          "--out", str(tmp_path / "all.npz")], capture_output=True, text=True)
    assert enc.returncode == 0, enc.stderr
    run = subprocess.run([sys.executable, "-m", "search.run", "--space", "nb201", "--strategy", "bo", "--embedding",
                          str(tmp_path / "all.npz"), "--budget", "30", "--out", str(tmp_path / "run"), "--quiet"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["evaluations"] == 30
    journal = [json.loads(line) for line in (tmp_path / "run" / "journal.jsonl").read_text().splitlines()]
    assert len(journal) == 30 and len({e["key"] for e in journal}) == 30
    assert all(abs(e["val"] - values[e["key"]]) < 1e-6 for e in journal)
