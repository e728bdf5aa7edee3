"""Simple predictors to compare NAR-Former with.

* ``mlp``: a multilayer perceptron on the flattened upper-triangular adjacency and
  one-hot operations (the simplest baseline).
* ``gin``: a graph-isomorphism network (the Neural Predictor family): one-hot operations,
  sum aggregation over predecessors and successors, mean readout, MLP head.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .base import TorchPredictor, TrainConfig
from .errors import PredictorError
from .graphs import GraphBatch
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
    def __init__(self, in_features, hidden, dropout):
        super().__init__()
        layers, width = [], in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, features):
        return torch.sigmoid(self.net(features)).squeeze(-1)


@register_predictor("mlp")
class MLPPredictor(TorchPredictor):
    config_class = MLPConfig
    fixed_width = True

    def _features(self):
        n = self.meta["max_nodes"]
        return n * (n - 1) // 2 + n * self.meta["num_ops"]

    def build_model(self):
        if not self.config.hidden:
            raise PredictorError("mlp needs at least one hidden layer")
        return MLPNet(self._features(), list(self.config.hidden), self.config.dropout)

    def encode(self, batch):
        n = batch.max_nodes
        rows, cols = np.triu_indices(n, 1)
        edges = batch.adjacency[:, rows, cols]
        ops = one_hot_ops(batch, self.meta["num_ops"]).reshape(len(edges), -1)
        return {"features": torch.from_numpy(np.concatenate([edges, ops], axis=1))}


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
    def __init__(self, num_ops, cfg: GINConfig):
        super().__init__()
        self.embed = nn.Linear(num_ops, cfg.hidden)
        self.layers = nn.ModuleList(GINLayer(cfg.hidden) for _ in range(cfg.layers))
        self.head = nn.Sequential(nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout),
                                  nn.Linear(cfg.hidden, 1))

    def forward(self, ops, adjacency, mask):
        m = mask.to(ops.dtype)
        h = self.embed(ops) * m[..., None]
        for layer in self.layers:
            h = layer(h, adjacency, m)
        pooled = h.sum(1) / m.sum(1, keepdim=True)
        return torch.sigmoid(self.head(pooled)).squeeze(-1)


@register_predictor("gin")
class GINPredictor(TorchPredictor):
    config_class = GINConfig

    def build_model(self):
        if self.config.layers < 1:
            raise PredictorError("gin needs at least one layer")
        return GINNet(self.meta["num_ops"], self.config)

    def encode(self, batch):
        return {"ops": torch.from_numpy(one_hot_ops(batch, self.meta["num_ops"])),
                "adjacency": torch.from_numpy(batch.adjacency), "mask": torch.from_numpy(batch.mask)}
