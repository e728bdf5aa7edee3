"""Simple predictors to compare NAR-Former with.

* ``mlp``: a multilayer perceptron on the flattened upper-triangular adjacency and
  one-hot operations (the simplest baseline).
* ``ridge``: ridge regression on the same features, its penalty chosen by exact
  leave-one-out error (closed form; fits in milliseconds). On whole networks this is the
  one-hot-per-block linear model of OFA-style work; ``features="edge_ops"`` codes each edge
  with the operation it feeds instead (on DARTS cells: the one-hot (op, input) code of every
  node's two edges).

Both place nodes by ``graphs.node_slots``: on ``ofa_mbv3`` a block's feature is the same
column in every subnet.
* ``gin``: a graph-isomorphism network (the Neural Predictor family): one-hot operations,
  sum aggregation over predecessors and successors, mean readout, MLP head.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from .base import Predictor, TorchPredictor, TrainConfig, check_training_data
from .errors import PredictorError
from .graphs import GraphBatch, batch_graphs, edge_op_encoding, flat_encoding
from .registry import register_predictor


def one_hot_ops(batch: GraphBatch, num_ops: int) -> np.ndarray:
    """float32 [B, N, num_ops]; padding rows are zero."""
    out = np.zeros((*batch.ops.shape, num_ops), dtype=np.float32)
    b, n = np.nonzero(batch.mask)
    out[b, n, batch.ops[b, n]] = 1.0
    return out


@dataclass
class MLPConfig(TrainConfig):
    hidden: tuple = (256, 256, 256)
    dropout: float = 0.1


class MLPNet(nn.Module):
    """Per-graph inputs (``extra``) join the flat encoding: an MLP is all head."""

    def __init__(self, in_features, hidden, dropout):
        super().__init__()
        layers, width = [], in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, features, extra=None):
        if extra is not None:
            features = torch.cat([features, extra], dim=-1)
        return torch.sigmoid(self.net(features)).squeeze(-1)


@register_predictor("mlp")
class MLPPredictor(TorchPredictor):
    """An MLP on the flattened adjacency and one-hot ops."""

    config_class = MLPConfig
    fixed_width = True

    def _features(self):
        n = self.meta["max_nodes"]
        return n * (n - 1) // 2 + n * self.meta["num_ops"]

    def build_model(self):
        if not self.config.hidden:
            raise PredictorError("mlp needs at least one hidden layer")
        return MLPNet(self._features() + self.num_graph_inputs, list(self.config.hidden), self.config.dropout)

    def encode(self, batch):
        return self.with_graph_inputs({"features": torch.from_numpy(flat_encoding(batch, self.meta["num_ops"]))}, batch)


@dataclass
class RidgeConfig:
    alphas: tuple = tuple(float(a) for a in np.logspace(-3, 4, 29))  # penalties tried
    features: str = "adjacency_ops"  # or "edge_ops": see RIDGE_FEATURES
    seed: int = 0  # accepted like every predictor's; the fit is deterministic
    quiet: bool = True

    def validate(self):
        if not self.alphas or min(self.alphas) <= 0:
            raise PredictorError(f"alphas must be positive numbers, got {self.alphas}")
        if self.features not in RIDGE_FEATURES:
            raise PredictorError(f"unknown ridge features {self.features!r}; valid: {', '.join(RIDGE_FEATURES)}")


# The ridge's encodings: the adjacency and one-hot ops apart (the MLP's), or each edge with the op it feeds.
RIDGE_FEATURES = {"adjacency_ops": flat_encoding, "edge_ops": edge_op_encoding}


@register_predictor("ridge")
class RidgePredictor(Predictor):
    """Ridge regression on the MLP's features (or ``features="edge_ops"``), the penalty chosen by
    exact leave-one-out error.

    Standardised features, the penalty with the smallest leave-one-out squared error
    (from one SVD: the LOO residual is r_i / (1 - h_ii)); ``val`` and ``init_state`` are
    not needed and ignored."""

    config_class = RidgeConfig
    fixed_width = True

    def __init__(self, config):
        super().__init__(config)
        config.validate()
        self.state: dict | None = None

    def _features(self, graphs, width):
        encode = RIDGE_FEATURES[self.config.features]
        return encode(batch_graphs(graphs, width), self.state["num_ops"]).astype(np.float64)

    def fit(self, graphs, y, val=None, init_state=None, capacity=None):
        y = check_training_data(graphs, y)
        width = max(batch_graphs(graphs).max_nodes, int(capacity or 0))
        self.state = {"num_ops": len(graphs[0].vocab), "max_nodes": width}
        x = self._features(graphs, width)
        mean, scale = x.mean(0), x.std(0)
        scale[scale == 0] = 1.0
        z, centred = (x - mean) / scale, y - y.mean()
        u, s, vt = np.linalg.svd(z, full_matrices=False)
        uty = u.T @ centred
        best = None
        for alpha in self.config.alphas:
            shrink = s ** 2 / (s ** 2 + alpha)
            fitted = u @ (shrink * uty)
            leverage = (u ** 2) @ shrink
            loo = np.mean(((centred - fitted) / (1 - leverage)) ** 2)
            if best is None or loo < best[0]:
                best = (loo, alpha, vt.T @ (s / (s ** 2 + alpha) * uty))
        self.selected = f"alpha={best[1]:.3g}"
        self.state.update(mean=mean, scale=scale, weights=best[2], intercept=float(y.mean()), alpha=best[1])
        return self

    def predict(self, graphs):
        if self.state is None:
            raise PredictorError("ridge predictor is not fitted: call fit() or load_state_dict() first")
        if len(graphs) == 0:
            return np.zeros(0)
        z = (self._features(graphs, self.state["max_nodes"]) - self.state["mean"]) / self.state["scale"]
        return z @ self.state["weights"] + self.state["intercept"]

    def state_dict(self):
        if self.state is None:
            raise PredictorError("ridge predictor is not fitted")
        return {"predictor": self.name, "config": asdict(self.config),
                **{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.state.items()}}

    def load_state_dict(self, state):
        if state.get("predictor") != self.name:
            raise PredictorError(f"state is of predictor {state.get('predictor')!r}, not {self.name!r}")
        from .registry import make_config
        self.config = make_config(RidgeConfig, state["config"], self.name)
        self.state = {k: (np.asarray(v) if k in ("mean", "scale", "weights") else v) for k, v in state.items()
                      if k not in ("predictor", "config")}


@dataclass
class GINConfig(TrainConfig):
    hidden: int = 128
    layers: int = 4
    dropout: float = 0.0


class GINLayer(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.eps = nn.Parameter(torch.zeros(1))
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, width))

    def forward(self, h, adjacency, mask):
        # Messages flow both ways along the edges: a cell's node depends on what feeds it
        # and on what it feeds.
        agg = (1 + self.eps) * h + adjacency @ h + adjacency.transpose(1, 2) @ h
        b, n, d = agg.shape
        out = self.mlp(agg.reshape(b * n, d)).reshape(b, n, d)
        return torch.relu(out) * mask[..., None]


class GINNet(nn.Module):
    def __init__(self, num_ops, cfg: GINConfig, num_extra: int = 0):
        super().__init__()
        self.embed = nn.Linear(num_ops, cfg.hidden)
        self.layers = nn.ModuleList(GINLayer(cfg.hidden) for _ in range(cfg.layers))
        self.head = nn.Sequential(nn.Linear(cfg.hidden + num_extra, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout),
                                  nn.Linear(cfg.hidden, 1))

    def forward(self, ops, adjacency, mask, extra=None):
        m = mask.to(ops.dtype)
        h = self.embed(ops) * m[..., None]
        for layer in self.layers:
            h = layer(h, adjacency, m)
        pooled = h.sum(1) / m.sum(1, keepdim=True)
        if extra is not None:
            pooled = torch.cat([pooled, extra], dim=-1)
        return torch.sigmoid(self.head(pooled)).squeeze(-1)


@register_predictor("gin")
class GINPredictor(TorchPredictor):
    """A graph isomorphism network on one-hot ops, messages along both edge directions."""

    config_class = GINConfig

    def build_model(self):
        if self.config.layers < 1:
            raise PredictorError("gin needs at least one layer")
        return GINNet(self.meta["num_ops"], self.config, self.num_graph_inputs)

    def encode(self, batch):
        return self.with_graph_inputs({"ops": torch.from_numpy(one_hot_ops(batch, self.meta["num_ops"])),
                                       "adjacency": torch.from_numpy(batch.adjacency),
                                       "mask": torch.from_numpy(batch.mask)}, batch)
