"""Search in arch2vec's latent space, as arch2vec searches: a pool of candidate archs with
their embeddings, and two strategies that pick from it.

* ``reinforce``: a Gaussian policy over the (standardised) embedding space; each round
  draws ``batch`` points, takes the nearest new arch of the pool to each, and moves the
  policy's mean by REINFORCE (the drawn points are the actions) with the values' advantage
  over a moving baseline.
* ``bo``: Bayesian optimisation: a Gaussian process on the embeddings of every evaluated
  arch, and the new archs of the pool with the highest expected improvement.

The pool is every arch of an enumerable space, or ``latent_pool`` distinct samples
otherwise, embedded with the arch2vec model named by ``embedding`` (a model file, or the
``.npz`` that ``python -m embeddings encode`` writes). Both are rebuilt identically on
resume; the state records a fingerprint of the pool so a changed model file is caught.
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spaces.base import Enumeration, GraphEncoding, require

from .errors import SearchError
from .registry import register_strategy
from .strategies import Strategy


@dataclass
class LatentPool:
    keys: list[str]
    archs: list  # the space's archs, row by row
    x: np.ndarray  # float64 [M, D] standardised embeddings
    fingerprint: str

    @property
    def size(self) -> int:
        return len(self.keys)


def build_pool(space, embedding: str, size: int, seed: int) -> LatentPool:
    """The candidate pool of ``space`` from an arch2vec model file or encoded .npz."""
    from predictor.errors import PredictorError
    if not embedding:
        raise SearchError("the latent-space strategies need an arch2vec model: pretrain one with "
                          "python -m embeddings pretrain --space SPACE --out FILE and pass "
                          "--embedding FILE (strategy.config.embedding; or the .npz of its encode)")
    path = Path(embedding)
    if not path.is_file():
        raise SearchError(f"embedding file {path} not found (an arch2vec model from python -m embeddings "
                          "pretrain, or the .npz of its encode)")
    try:
        if path.suffix == ".npz":
            keys, archs, x = _from_npz(space, path)
        else:
            keys, archs, x = _from_model(space, path, size, seed)
    except PredictorError as err:
        raise SearchError(str(err)) from None
    x = x.astype(np.float64)
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    digest = hashlib.sha1(np.ascontiguousarray(x[:1000]).tobytes() + str(len(x)).encode()).hexdigest()[:16]
    return LatentPool(keys, archs, x, digest)


def _from_npz(space, path: Path):
    with np.load(path) as data:
        if not {"embeddings", "archs", "space"} <= set(data.files):
            raise SearchError(f"{path} is not an embedding file of python -m embeddings encode")
        if str(data["space"]) != space.name:
            raise SearchError(f"{path} holds embeddings of space {data['space']}, not {space.name}")
        texts, x = [str(t) for t in data["archs"]], data["embeddings"]
    archs = [space.from_json(t) for t in texts]
    return [str(space.key(a)) for a in archs], archs, x


def _from_model(space, path: Path, size: int, seed: int):
    from embeddings.embedding import load_arch2vec
    model = load_arch2vec(path)
    if model.space != space.name:
        raise SearchError(f"{path} is an arch2vec model of space {model.space}, not {space.name}")
    require(space, GraphEncoding, "to embed its archs")
    if isinstance(space, Enumeration) and space.count() <= size:
        archs = list(space.enumerate())
    else:
        rng = np.random.default_rng([seed, 2020])
        found: dict = {}
        for _ in range(20 * size):
            if len(found) == size:
                break
            arch = space.sample(rng)
            found.setdefault(str(space.key(arch)), arch)
        archs = list(found.values())
    return [str(space.key(a)) for a in archs], archs, model.embed([space.to_graph(a) for a in archs])


@dataclass
class LatentSettings:
    embedding: str = ""  # an arch2vec model file (python -m embeddings pretrain) or its encode .npz
    latent_pool: int = 100_000  # candidate archs drawn from a space that cannot be enumerated

    def validate(self):
        if self.latent_pool < 1:
            raise SearchError(f"latent_pool must be >= 1, got {self.latent_pool}")


@dataclass
class ReinforceSettings(LatentSettings):
    lr: float = 0.5  # step of the policy's mean, in standardised embedding units
    std: float = 0.5  # the policy's spread

    def validate(self):
        super().validate()
        if not self.lr > 0 or not self.std > 0:
            raise SearchError(f"lr and std must be > 0, got {self.lr}, {self.std}")


class LatentStrategy(Strategy):
    """Shared: the pool, and which of its archs may still be proposed."""

    config_class = LatentSettings

    def __init__(self, space, config, seed=0, predictor=None, middleware=(), **schedule):
        super().__init__(space, config, seed, predictor, middleware, **schedule)
        self.pool = build_pool(space, self.settings.embedding, self.settings.latent_pool, seed)
        self.row = {k: i for i, k in enumerate(self.pool.keys)}

    def state_dict(self):
        return {**super().state_dict(), "pool": self.pool.fingerprint}

    def load_state_dict(self, state):
        if state.get("pool") != self.pool.fingerprint:
            raise SearchError("the search was made on other embeddings (its embedding file or latent_pool "
                              "changed); resume with the same ones")
        super().load_state_dict(state)

    def pool_arch(self, i: int):
        return self.pool.archs[i]

    def open_rows(self) -> np.ndarray:
        """Pool rows not evaluated, not in flight, not proposed yet."""
        taken = {self.row[k] for k in self.seen | self.proposing if k in self.row}
        mask = np.ones(self.pool.size, bool)
        mask[list(taken)] = False
        return np.flatnonzero(mask)

    def take(self, rows, n: int, score=None) -> list[tuple]:
        """The first n admissible archs of ``rows`` (in that order)."""
        out = []
        for i in rows:
            key, arch = self.pool.keys[i], self.pool_arch(int(i))
            if not self.admissible(key, arch):
                continue
            self.proposing.add(key)
            self._archs[key] = arch
            out.append((key, arch, None if score is None else float(score[i])))
            if len(out) == n:
                break
        return out

    def evaluated_rows(self):
        """(pool rows, values) of the successfully evaluated archs that are in the pool."""
        ok = [e for e in self.evaluated_ok() if e["key"] in self.row]
        return np.array([self.row[e["key"]] for e in ok], dtype=np.int64), np.array([e["value"] for e in ok])

    def first_round(self, n):
        """Random archs of the pool (so every evaluated arch has an embedding)."""
        rows = self.open_rows()
        return self.take(self.rng.permutation(rows), n)


@register_strategy("reinforce")
class LatentReinforce(LatentStrategy):
    """REINFORCE with a Gaussian policy over arch2vec's latent space."""

    config_class = ReinforceSettings
    streams = False  # a policy step per whole round

    def __init__(self, space, config, seed=0, predictor=None, middleware=(), **schedule):
        super().__init__(space, config, seed, predictor, middleware, **schedule)
        self.mean = np.zeros(self.pool.x.shape[1])
        self.baseline: float | None = None
        self.told_rounds = 0  # rounds whose rewards updated the policy
        self.points: dict[str, list] = {}  # key -> the point the policy drew for it (its action)

    def propose(self, n):
        self._learn()
        if self.round == 1:
            return self.first_round(n)
        cfg = self.settings
        open_rows = self.open_rows()
        if not len(open_rows):
            return []
        out = []
        for _ in range(n * 20):
            if len(out) == n or not len(open_rows):
                break
            point = self.mean + cfg.std * self.rng.standard_normal(len(self.mean))
            nearest = open_rows[np.argmin(((self.pool.x[open_rows] - point) ** 2).sum(1))]
            open_rows = open_rows[open_rows != nearest]
            taken = self.take([nearest], 1)
            for key, _, _ in taken:
                self.points[key] = point.tolist()
            out += taken
        return out

    def _learn(self):
        """One REINFORCE step per committed round not learned from yet: the action is the
        point the policy drew (the arch is the pool's nearest to it), so (point - mean) / std^2
        is the log-likelihood's gradient; rewards are the values minus a moving baseline,
        scaled by their spread. The random first round only sets the baseline."""
        cfg = self.settings
        rounds = sorted({e["round"] for e in self.history})
        for r in rounds[self.told_rounds:]:
            batch = [e for e in self.history if e["round"] == r and e["value"] is not None]
            self.told_rounds += 1
            if not batch:
                continue
            values = np.array([e["value"] for e in batch])
            if self.baseline is None:
                self.baseline = float(values.mean())
                continue
            drawn = [e for e in batch if e["key"] in self.points]
            if not drawn:
                continue
            values = np.array([e["value"] for e in drawn])
            x = np.array([self.points[e["key"]] for e in drawn])
            spread = values.std() if values.std() > 0 else 1.0
            advantage = (values - self.baseline) / spread
            self.mean = self.mean + cfg.lr * (advantage[:, None] * (x - self.mean)).mean(0) \
                / cfg.std ** 2
            self.baseline = 0.9 * self.baseline + 0.1 * float(values.mean())

    def state_dict(self):
        return {**super().state_dict(), "policy_mean": self.mean.tolist(), "baseline": self.baseline,
                "told_rounds": self.told_rounds, "points": dict(self.points)}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.mean = np.array(state["policy_mean"])
        self.baseline, self.told_rounds = state["baseline"], state["told_rounds"]
        self.points = dict(state["points"])


@register_strategy("bo")
class LatentBayesOpt(LatentStrategy):
    """Bayesian optimisation (GP, expected improvement) over arch2vec's latent space."""

    def propose(self, n):
        rows, values = self.evaluated_rows()
        if self.round == 1 or len(rows) < 2 or np.ptp(values) == 0:  # nothing to model yet
            return self.first_round(n)
        open_rows = self.open_rows()
        if not len(open_rows):
            return []
        mean, std = self._posterior(rows, values, open_rows)
        best = values.max()
        ei = expected_improvement(mean, std, best)
        order = open_rows[np.argsort(-ei, kind="stable")]
        score = np.zeros(self.pool.size)
        score[open_rows] = mean
        return self.take(order, n, score)

    def _posterior(self, rows, values, candidates):
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
        dims = self.pool.x.shape[1]
        kernel = ConstantKernel() * RBF(np.sqrt(dims), (1e-2, 1e3)) + WhiteKernel(0.1, (1e-6, 1e1))
        gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=self.seed * 1000 + self.round)
        with warnings.catch_warnings():  # a length scale at its bound is a fit, not a failure
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(self.pool.x[rows], values)
        means, stds = [], []
        for i in range(0, len(candidates), 50_000):
            m, s = gp.predict(self.pool.x[candidates[i:i + 50_000]], return_std=True)
            means.append(m)
            stds.append(s)
        return np.concatenate(means), np.concatenate(stds)


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """E[max(f - best, 0)] under N(mean, std^2)."""
    from scipy.stats import norm
    std = np.maximum(std, 1e-12)
    z = (mean - best) / std
    return (mean - best) * norm.cdf(z) + std * norm.pdf(z)
