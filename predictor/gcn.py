"""``gcn``: the graph convolutional network of Neural Predictor (NP, Wen et al. 2020), the GCN
baseline of NAR-Former's ablation (its Table 5 rows 2, 5, 7, 8).

As NP describes it: node features pass three graph convolutions of 144 units, each averaging
the convolution along the edges and the one against them (a cell's node depends on what feeds
it and on what it feeds), with self-loops and row-normalised adjacency; the node features are
averaged, then a 128-unit hidden layer and a regression output.

``encoder="onehot"`` gives the nodes NP's one-hot operations; ``encoder="tokenizer"``
NAR-Former's node tokens (``self_id`` "concat" or "add"). NAR-Former's training aids (twins,
SR and AC losses) are available as on NAR-Former (``augment``, ``lambda_ac``, ``lambda_sr``).
The optimisation is the engine's shared recipe (AdamW, warm-up, EMA), not NP's.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .aids import AidsConfig, TwinTraining
from .base import TorchPredictor, TrainConfig, check_choice
from .baselines import one_hot_ops
from .errors import PredictorError
from .graphs import GraphBatch
from .registry import register_predictor
from .tokenizer import SELF_ID, node_tokens


@dataclass
class GCNConfig(TrainConfig, AidsConfig):
    hidden: int = 144
    layers: int = 3
    fc: int = 128
    dropout: float = 0.1
    encoder: str = "onehot"  # or "tokenizer"
    self_id: str = "concat"  # encoder="tokenizer": own position beside ("concat") or added to the op code
    num_freqs: int = 32  # encoder="tokenizer": L, each code 2L wide
    epochs: int = 300

    def validate(self):
        super().validate()
        self.validate_aids()
        check_choice("encoder", self.encoder, ("onehot", "tokenizer"))
        check_choice("self_id", self.self_id, SELF_ID)
        if self.hidden < 1 or self.layers < 1 or self.fc < 1 or self.num_freqs < 1:
            raise PredictorError("hidden, layers, fc and num_freqs must be positive")


def _row_normalised(adjacency: torch.Tensor) -> torch.Tensor:
    """D^-1 (A + I) per graph (padding rows keep their self-loop, so none is empty)."""
    a = adjacency + torch.eye(adjacency.shape[-1], dtype=adjacency.dtype, device=adjacency.device)
    return a / a.sum(-1, keepdim=True)


class BidirectionalGraphConv(nn.Module):
    def __init__(self, width_in, width_out):
        super().__init__()
        self.forward_lin = nn.Linear(width_in, width_out, bias=False)
        self.backward_lin = nn.Linear(width_in, width_out, bias=False)
        self.bias = nn.Parameter(torch.zeros(width_out))

    def forward(self, h, along, against):
        return 0.5 * (along @ self.forward_lin(h) + against @ self.backward_lin(h)) + self.bias


class GCNNet(nn.Module):
    def __init__(self, width_in: int, cfg: GCNConfig, num_extra: int = 0):
        super().__init__()
        widths = [width_in] + [cfg.hidden] * cfg.layers
        self.convs = nn.ModuleList(BidirectionalGraphConv(a, b) for a, b in zip(widths, widths[1:]))
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Sequential(nn.Linear(cfg.hidden + num_extra, cfg.fc), nn.ReLU(), nn.Dropout(cfg.dropout),
                                  nn.Linear(cfg.fc, 1))

    def forward(self, features, adjacency, mask, extra=None):
        # row i of `along` averages node i's sources (and itself); of `against`, its consumers
        along = _row_normalised(adjacency.transpose(1, 2))
        against = _row_normalised(adjacency)
        m = mask.to(features.dtype)[..., None]
        h = features
        for conv in self.convs:
            h = self.drop(torch.relu(conv(h, along, against))) * m
        pooled = h.sum(1) / m.sum(1)
        if extra is not None:
            pooled = torch.cat([pooled, extra], dim=-1)
        return torch.sigmoid(self.head(pooled)).squeeze(-1)


@register_predictor("gcn")
class GCNPredictor(TwinTraining, TorchPredictor):
    """Neural Predictor's GCN (Wen et al. 2020): convolutions along and against the edges."""

    config_class = GCNConfig

    def _width(self):
        cfg = self.config
        if cfg.encoder == "onehot":
            return self.meta["num_ops"]
        return (6 if cfg.self_id == "concat" else 4) * cfg.num_freqs

    def build_model(self):
        return GCNNet(self._width(), self.config, self.num_graph_inputs)

    def encode(self, batch: GraphBatch) -> dict[str, torch.Tensor]:
        cfg = self.config
        if cfg.encoder == "onehot":
            if batch.ops.max() >= self.meta["num_ops"]:
                raise PredictorError(f"operation index {batch.ops.max()} is outside the fitted vocabulary "
                                     f"of {self.meta['num_ops']}")
            features = one_hot_ops(batch, self.meta["num_ops"])
        else:
            features = node_tokens(batch, cfg.num_freqs, cfg.self_id)
        return self.with_graph_inputs({"features": torch.from_numpy(features),
                                       "adjacency": torch.from_numpy(batch.adjacency),
                                       "mask": torch.from_numpy(batch.mask)}, batch)
