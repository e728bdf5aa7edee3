"""``arch2vec``: frozen arch2vec embeddings and a regressor on them (as arch2vec's paper
predicts accuracy: a Gaussian process; the input-output paper: a random forest).

``model`` names a file made by ``python -m embeddings pretrain``. Without one, the
predictor pretrains a VAE on the graphs it is given (training, validation and, in a
search, nothing else): a fallback that sees far fewer architectures than the real thing.
"""
from __future__ import annotations

import pickle
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from predictor.base import Predictor, check_choice, check_training_data
from predictor.errors import PredictorError
from predictor.registry import make_config, register_predictor
from .embedding import POOLS, PretrainedArch2Vec, load_arch2vec
from .model import Arch2VecConfig

REGRESSORS = ("rf", "gp", "mlp")


@dataclass
class Arch2VecPredictorConfig:
    model: str = ""  # a pretrained arch2vec file; "" pretrains on the graphs given to fit
    regressor: str = "rf"  # rf: random forest, gp: Gaussian process, mlp: a small network
    pool: str = "mean"  # the embedding: mean of the node vectors, or "flat": all of them
    trees: int = 500  # rf
    pretrain_epochs: int = 100  # the fallback's VAE training
    seed: int = 0
    threads: int = 0  # rf's parallel jobs and torch's threads; 0 = all cores
    quiet: bool = True

    def validate(self):
        check_choice("regressor", self.regressor, REGRESSORS)
        check_choice("pool", self.pool, POOLS)
        if self.trees < 1 or self.pretrain_epochs < 1:
            raise PredictorError(f"trees and pretrain_epochs must be >= 1, got {self.trees}, {self.pretrain_epochs}")


def make_regressor(kind: str, seed: int, trees: int, threads: int, dims: int):
    """An unfitted scikit-learn regressor on standardised embeddings."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "rf":
        model = RandomForestRegressor(n_estimators=trees, random_state=seed, n_jobs=threads or -1)
    elif kind == "gp":
        # One length scale on standardised embeddings: per-dimension scales (16+ hyperparameters)
        # cost 50x the time for a worse fit at a few hundred archs (measured on NB201-300).
        kernel = ConstantKernel() * RBF(length_scale=np.sqrt(dims), length_scale_bounds=(1e-2, 1e3)) \
            + WhiteKernel(noise_level=0.1, noise_level_bounds=(1e-6, 1e1))
        model = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=1, random_state=seed)
    else:
        model = MLPRegressor(hidden_layer_sizes=(128, 128), alpha=1e-3, learning_rate_init=1e-3, max_iter=2000,
                             early_stopping=True, n_iter_no_change=50, random_state=seed)
    return make_pipeline(StandardScaler(), model)


@register_predictor("arch2vec")
class Arch2VecPredictor(Predictor):
    """A random forest, GP or MLP on frozen arch2vec embeddings."""

    config_class = Arch2VecPredictorConfig
    fixed_width = True  # the VAE is sized for the graphs it was pretrained on

    def __init__(self, config):
        super().__init__(config)
        config.validate()
        self.encoder: PretrainedArch2Vec | None = None
        self.regressor = None
        self.target_scale = (0.0, 1.0)
        self.selected = None

    def _encoder_for(self, graphs, capacity):
        if self.config.model:
            encoder = load_arch2vec(self.config.model)
            encoder.check_graphs(graphs, "the training graphs")
            return encoder
        from .pretrain import make_corpus, pretrain
        width = max(max(len(g.ops) for g in graphs), int(capacity or 0))
        corpus = make_corpus(list(graphs), f"{len(graphs)} graphs given to fit", 0, self.config.seed, width)
        vae = Arch2VecConfig(epochs=self.config.pretrain_epochs, seed=self.config.seed, threads=self.config.threads)
        return pretrain(_NoSpace(), vae, None, prior_samples=0, quiet=self.config.quiet, corpus=corpus)

    def fit(self, graphs, y, val=None, init_state=None, capacity=None):
        from sklearn.exceptions import ConvergenceWarning
        y = check_training_data(graphs, y)
        if self.config.threads:
            import torch
            torch.set_num_threads(self.config.threads)
        everything = list(graphs) + (list(val[0]) if val is not None else [])
        self.encoder = self._encoder_for(everything, capacity)
        x = self.encoder.embed(graphs, self.config.pool)
        # Targets standardised so the regressors' defaults (GP noise, MLP step) fit any scale.
        mean, std = float(y.mean()), float(y.std()) or 1.0
        self.target_scale = (mean, std)
        regressor = make_regressor(self.config.regressor, self.config.seed, self.config.trees, self.config.threads,
                                   x.shape[1])
        with warnings.catch_warnings():  # GP length scales at a bound, MLP iterations: fits, not failures
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.regressor = regressor.fit(x, (y - mean) / std)
        if self.config.regressor == "rf":
            # Trees fit in parallel, but predict on one thread: parallel prediction sums the
            # trees in a varying order, and a search must rank the same way every run.
            self.regressor[-1].set_params(n_jobs=1)
        self.selected = f"{self.config.regressor} on {x.shape[1]}-d embeddings"
        return self

    def predict(self, graphs):
        if self.regressor is None:
            raise PredictorError("arch2vec predictor is not fitted: call fit() or load_state_dict() first")
        if len(graphs) == 0:
            return np.zeros(0)
        mean, std = self.target_scale
        return self.regressor.predict(self.encoder.embed(graphs, self.config.pool)) * std + mean

    def state_dict(self):
        if self.regressor is None:
            raise PredictorError("arch2vec predictor is not fitted")
        return {"predictor": self.name, "config": asdict(self.config), "encoder": self.encoder.to_dict(),
                "regressor": pickle.dumps(self.regressor), "target_scale": list(self.target_scale)}

    def load_state_dict(self, state):
        if state.get("predictor") != self.name:
            raise PredictorError(f"state is of predictor {state.get('predictor')!r}, not {self.name!r}")
        self.config = make_config(Arch2VecPredictorConfig, state["config"], self.name)
        self.encoder = PretrainedArch2Vec.from_dict(state["encoder"], "the arch2vec predictor's state")
        self.regressor = pickle.loads(state["regressor"])
        self.target_scale = tuple(state["target_scale"])


class _NoSpace:
    """Stands for the space when the fallback pretrains on bare graphs (nothing to decode)."""

    name = "graphs"

    def from_graph(self, graph):
        raise PredictorError("no space to decode graphs into")
