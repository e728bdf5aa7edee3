"""TNASP: a transformer over node operations with Laplacian-eigenvector position
encodings, a mean readout and a 2-layer MLP regressor, plus the optional
self-evolution stage.

Position encoding. A node's position is its row of the eigenvectors of the graph's
symmetric normalised Laplacian ``I - D^-1/2 A D^-1/2`` (A made undirected), columns in
order of increasing eigenvalue, padded or cut to ``pe_dim`` columns. Eigenvectors are
defined up to sign, and ``eigh`` picks signs that jump between similar graphs, so by default
(``pe_sign="canonical"``) each column's sign is fixed by the graph itself: the first node (in
topological order, so the input node first) with a non-zero entry gets a positive one.
``pe_sign="eigh"`` keeps ``eigh``'s signs; ``"flip"`` flips them at random in training (sign
invariance learned from data). Measured in the README.

Attention. ``attention="graph"`` (the default) lets a node attend only to itself and its
neighbours, in both directions, as in the graph transformer TNASP builds on; ``"full"``
attends to every node, so the structure enters through the position encoding alone (far
weaker on NB101's varying topologies; measured in the README).

Self-evolution. After the main training, each of ``evolution_rounds`` rounds keeps
training the same network with the validation results of the previous round as
constraints: validation arch i must not get worse than its previous error e_i,
``|f(v_i) - y_i| <= e_i``. The constraints enter the loss through Lagrange multipliers
lambda_i on a smooth surrogate, the squared distance to an auxiliary target
``a_i = f_prev(v_i) + step * (y_i - f_prev(v_i))`` (the previous prediction moved part of
the way to the truth, so each round asks for a bounded improvement); after the round the
multipliers take a dual-ascent step on the measured violation ``|f(v_i) - y_i| - e_i``.
This is our reading of the paper's description (its pseudocode was not at hand); the
validation archs become training signal, so the stage has no held-out model selection
and keeps the EMA weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .base import TorchPredictor, TrainConfig, check_choice, take
from .errors import PredictorError
from .graphs import GraphBatch, neighbour_mask
from .registry import register_predictor
from .transformer import SelfAttentionBlock


@dataclass
class TNASPConfig(TrainConfig):
    d_model: int = 64
    heads: int = 4
    ffn: int = 256
    depth: int = 3
    dropout: float = 0.1
    hidden: int = 128  # width of the regressor's hidden layer
    pe_dim: int = 0  # eigenvector columns; 0 = the largest training graph's node count
    pe_sign: str = "canonical"  # "canonical", "eigh" or "flip" (see the module docstring)
    attention: str = "graph"  # "graph": self and neighbours only; "full": every node
    epochs: int = 300
    lr: float = 3e-3
    self_evolution: bool = False
    evolution_rounds: int = 2
    evolution_epochs: int = 40
    evolution_lr_scale: float = 0.3  # the rounds' learning rate, relative to lr
    evolution_step: float = 0.5  # how far the auxiliary target moves from the last prediction to the truth
    evolution_lambda: float = 1.0  # initial Lagrange multiplier of every constraint
    evolution_dual_lr: float = 1.0  # dual-ascent step, relative to the mean previous error

    def validate(self):
        super().validate()
        if self.d_model % self.heads:
            raise PredictorError(f"d_model {self.d_model} is not divisible by heads {self.heads}")
        check_choice("attention", self.attention, ("graph", "full"))
        check_choice("pe_sign", self.pe_sign, ("canonical", "eigh", "flip"))
        if not 0 < self.evolution_step <= 1:
            raise PredictorError(f"evolution_step must be in (0, 1], got {self.evolution_step}")
        for name in ("evolution_rounds", "evolution_epochs", "pe_dim"):
            if getattr(self, name) < 0:
                raise PredictorError(f"{name} must be >= 0, got {getattr(self, name)}")


def laplacian_eigenvectors(batch: GraphBatch, width: int, canonical_sign: bool = True) -> np.ndarray:
    """float32 [B, N, width]: row i of graph b = node i's position encoding; zero for padding.

    One batched ``eigh`` per node count, no loop over graphs. With ``canonical_sign`` each
    column's first entry above 1e-6 in magnitude is made positive.
    """
    b, n = batch.ops.shape
    out = np.zeros((b, n, width), dtype=np.float32)
    for size in np.unique(batch.num_nodes):
        rows = np.flatnonzero(batch.num_nodes == size)
        adj = batch.adjacency[rows, :size, :size].astype(np.float64)
        adj = np.maximum(adj, adj.transpose(0, 2, 1))
        degree = adj.sum(-1)
        inv_sqrt = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1e-12)), 0.0)
        lap = np.eye(size) - inv_sqrt[:, :, None] * adj * inv_sqrt[:, None, :]
        _, vectors = np.linalg.eigh(lap)  # columns in order of increasing eigenvalue
        if canonical_sign:
            first = np.argmax(np.abs(vectors) > 1e-6, axis=1)  # [graphs, columns]: a row index
            sign = np.sign(np.take_along_axis(vectors, first[:, None, :], axis=1))
            vectors = vectors * np.where(sign == 0, 1.0, sign)
        k = min(size, width)
        out[rows[:, None], np.arange(size)[None, :], :k] = vectors[:, :, :k]
    return out


class TNASPNet(nn.Module):
    def __init__(self, num_ops: int, pe_dim: int, cfg: TNASPConfig):
        super().__init__()
        self.op_embed = nn.Embedding(num_ops, cfg.d_model)
        self.pe_embed = nn.Linear(pe_dim, cfg.d_model)
        self.blocks = nn.ModuleList(SelfAttentionBlock(cfg, 0.0) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Sequential(nn.Linear(cfg.d_model, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout),
                                  nn.Linear(cfg.hidden, 1))

    def forward(self, ops, pe, mask, neighbours=None):
        x = self.op_embed(ops.clamp(min=0)) + self.pe_embed(pe)
        if neighbours is not None:
            attn_mask = neighbours
        else:
            attn_mask = None if bool(mask.all()) else mask  # unpadded batches take the fast path
        for block in self.blocks:
            x = block(x, attn_mask)
        x = self.norm(x)
        m = mask.to(x.dtype)[..., None]
        pooled = (x * m).sum(1) / m.sum(1)
        return torch.sigmoid(self.head(pooled)).squeeze(-1)


@register_predictor("tnasp")
class TNASPPredictor(TorchPredictor):
    config_class = TNASPConfig

    def _set_meta(self, graphs):
        super()._set_meta(graphs)
        self.meta["pe_dim"] = self.config.pe_dim or self.meta["max_nodes"]

    def build_model(self):
        return TNASPNet(self.meta["num_ops"], self.meta["pe_dim"], self.config)

    def encode(self, batch: GraphBatch) -> dict[str, torch.Tensor]:
        if batch.ops.max() >= self.meta["num_ops"]:
            raise PredictorError(f"operation index {batch.ops.max()} is outside the fitted vocabulary "
                                 f"of {self.meta['num_ops']}")
        pe = laplacian_eigenvectors(batch, self.meta["pe_dim"], self.config.pe_sign == "canonical")
        inputs = {"ops": torch.from_numpy(batch.ops), "pe": torch.from_numpy(pe), "mask": torch.from_numpy(batch.mask)}
        if self.config.attention == "graph":
            inputs["neighbours"] = torch.from_numpy(neighbour_mask(batch))
        return inputs

    def loss(self, model, inputs, index, y, gen):
        batch = take(inputs["main"], index)
        if self.config.pe_sign != "flip":
            return nn.functional.mse_loss(model(**batch), y)
        signs = torch.randint(0, 2, (len(index), 1, batch["pe"].shape[-1]), generator=gen).to(y.device) * 2 - 1
        batch["pe"] = batch["pe"] * signs
        return nn.functional.mse_loss(model(**batch), y)

    def refine(self, model, inputs, target, gen, val_inputs, val_y):
        cfg = self.config
        self.evolution = []
        if not cfg.self_evolution or cfg.evolution_rounds == 0 or cfg.evolution_epochs == 0:
            return
        device = target.device
        truth = torch.tensor(self._map(val_y), dtype=torch.float32, device=device)
        n_val = len(truth)
        lam = torch.full((n_val,), float(cfg.evolution_lambda), device=device)
        for round_ in range(cfg.evolution_rounds):
            prev = torch.tensor(self._predict_inputs(model, val_inputs), dtype=torch.float32, device=device)
            error = (prev - truth).abs()
            aux = prev + cfg.evolution_step * (truth - prev)

            def constraint_loss(m, g, lam=lam, aux=aux):
                idx = torch.randint(n_val, (min(n_val, cfg.batch_size),), generator=g).to(device)
                return (lam[idx] * (m(**take(val_inputs, idx)) - aux[idx]) ** 2).mean()

            self._optimise(model, inputs, target, gen, cfg.evolution_epochs, cfg.lr * cfg.evolution_lr_scale,
                           extra_loss=constraint_loss, label=f" self-evolution {round_ + 1}")
            new = torch.tensor(self._predict_inputs(model, val_inputs), dtype=torch.float32, device=device)
            violation = (new - truth).abs() - error
            lam = (lam + cfg.evolution_dual_lr * violation / error.mean().clamp(min=1e-6)).clamp(min=0)
            self.evolution.append({"round": round_ + 1, "val_mae_before": float(error.mean()),
                                   "val_mae_after": float((new - truth).abs().mean()),
                                   "violated": float((violation > 0).float().mean()),
                                   "mean_lambda": float(lam.mean())})
        self.selected = f"{self.selected}+self-evolution"
