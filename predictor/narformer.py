"""NAR-Former: tokenized architectures, a multi-stage fusion transformer, and
MSE + sequence-ranking + architecture-consistency losses with
information-flow-consistency augmentation.

Stage 1 is a stack of pre-norm transformer blocks over [depth token, node tokens,
end token]. Each fusion stage shrinks the sequence with learned queries (4, then 2,
then 1 tokens): a cross-attention block (no residual: the length changes), a
feed-forward block and optional self-attention blocks; between stages, the previous
stage's queries re-read the stage-1 memory. A final layer norm and a sigmoid
regression head on the last token give the score.

``attention="graph"`` is our addition, not the paper's: stage-1 attention then follows the
cell's edges (plus the depth and end tokens, which stay global), so the wiring need not be
recovered from the summed source codes alone. It raises tau on both NB101 and NB201 (README).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .augment import twins
from .base import TorchPredictor, TrainConfig, check_choice, take
from .errors import PredictorError
from .graphs import GraphBatch, batch_graphs, neighbour_mask
from .registry import register_predictor
from .tokenizer import code_table, has_layer_attributes, sincos_code, tokenize, tokenize_layers
from .transformer import Attention, DropPath, FeedForward, SelfAttentionBlock


@dataclass
class NARFormerConfig(TrainConfig):
    """Defaults are the CPU recipe measured in the README (about 5 min for 781 NB201 archs on
    2 cores). The paper's GPU recipe: d_model=192, heads=6, ffn=768, depth=6, lr=1e-4,
    epochs=4000, augment=2."""

    num_freqs: int = 32  # L: each code part is 2L wide, a token 6L
    d_model: int = 64
    heads: int = 4
    ffn: int = 256
    depth: int = 3  # blocks of the first stage
    fusion_stages: int = 3  # queries of 2^(k-1), ..., 2, 1 tokens
    fusion_depth: int = 1  # blocks per fusion stage (the first is the cross-attention)
    dropout: float = 0.1
    drop_path: float = 0.0
    pool: str = "fusion"  # or "mean": masked mean of stage 1 (the ablation)
    # "full": every token attends to every token (the paper); "graph": in the first stage a
    # node attends to itself, its graph neighbours and the depth and end tokens only
    attention: str = "full"
    lambda_sr: float = 0.1  # sequence-ranking loss weight
    lambda_ac: float = 0.5  # architecture-consistency loss weight (needs augment > 0)
    sr_loss: str = "l1"  # or "l2"
    augment: int = 0  # twins per training arch (the paper: 2); see the README for the trade-off
    epochs: int = 300
    lr: float = 3e-3

    def validate(self):
        super().validate()
        check_choice("pool", self.pool, ("fusion", "mean"))
        check_choice("attention", self.attention, ("full", "graph"))
        check_choice("sr_loss", self.sr_loss, ("l1", "l2"))
        if self.d_model % self.heads:
            raise PredictorError(f"d_model {self.d_model} is not divisible by heads {self.heads}")


class FusionStage(nn.Module):
    """Learned queries cross-attend to the previous tokens (no residual), then FFN and
    optional self-attention blocks."""

    def __init__(self, cfg, num_queries, drop_paths):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(1, num_queries, cfg.d_model) * 0.02)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.cross = Attention(cfg.d_model, cfg.heads, cfg.dropout)
        self.drop_path = DropPath(drop_paths[0])
        self.ff = FeedForward(cfg, drop_paths[0])
        self.blocks = nn.ModuleList(SelfAttentionBlock(cfg, p) for p in drop_paths[1:])

    def forward(self, tokens, mask=None):
        q = self.queries.expand(tokens.shape[0], -1, -1)
        x = self.ff(self.drop_path(self.cross(q, self.norm(tokens), mask)))
        for block in self.blocks:
            x = block(x)
        return x


class Refuse(nn.Module):
    """The previous stage's queries re-read the stage-1 memory before the next stage."""

    def __init__(self, cfg):
        super().__init__()
        self.norm_q, self.norm_kv = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg.d_model, cfg.heads, cfg.dropout)
        self.ff = FeedForward(cfg, 0.0)

    def forward(self, memory, q, mask=None):
        return self.ff(self.attn(self.norm_q(q), self.norm_kv(memory), mask))


class NARFormerNet(nn.Module):
    """``token_width`` defaults to the cell tokens' 6L. Whole networks (latency) pass their
    480-wide layer tokens, ``num_static`` static features that join the fused token at the head
    (the supplement, section 1), and ``squash=False`` for an unbounded output."""

    def __init__(self, cfg: NARFormerConfig, token_width: int | None = None, num_static: int = 0,
                 squash: bool = True):
        super().__init__()
        token_width = token_width or 6 * cfg.num_freqs
        self.squash = squash
        self.pool = cfg.pool
        self.embed = nn.Identity() if token_width == cfg.d_model else nn.Linear(token_width, cfg.d_model)
        self.depth_map = nn.Linear(token_width, cfg.d_model)
        stages = cfg.fusion_stages if cfg.pool == "fusion" else 0
        total = cfg.depth + stages * cfg.fusion_depth
        rates = torch.linspace(0, cfg.drop_path, max(total, 1)).tolist()
        self.blocks = nn.ModuleList(SelfAttentionBlock(cfg, rates[i]) for i in range(cfg.depth))
        self.stages = nn.ModuleList(
            FusionStage(cfg, 2 ** (stages - 1 - s),
                        rates[cfg.depth + s * cfg.fusion_depth: cfg.depth + (s + 1) * cfg.fusion_depth])
            for s in range(stages))
        self.refuse = nn.ModuleList(Refuse(cfg) for _ in range(max(0, stages - 1)))
        self.norm = nn.LayerNorm(cfg.d_model)
        self.static = (nn.Sequential(nn.Linear(num_static, cfg.d_model), nn.ReLU(), nn.Linear(cfg.d_model, cfg.d_model))
                       if num_static else None)
        self.head = nn.Linear(cfg.d_model * (2 if num_static else 1), 1)

    def forward(self, tokens, mask, depth_code, neighbours=None, static=None):
        x = self.embed(tokens)
        depth = F.relu(self.depth_map(depth_code))[:, None]
        x = torch.cat([depth, x], dim=1)
        mask = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
        if bool(mask.all()):
            mask = None  # no padding: let attention take its unmasked fast path
        for block in self.blocks:
            x = block(x, mask if neighbours is None else neighbours)
        if self.pool == "mean" or not self.stages:
            pooled = x.mean(1) if mask is None else (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        else:
            memory, q = x, self.stages[0](x, mask)
            for refuse, stage in zip(self.refuse, self.stages[1:]):
                q = stage(refuse(memory, q, mask))
            pooled = q[:, -1]
        fused = self.norm(pooled)
        if self.static is not None:
            fused = torch.cat([fused, self.static(static)], dim=-1)
        out = self.head(fused).squeeze(-1)
        return torch.sigmoid(out) if self.squash else out


@register_predictor("narformer")
class NARFormerPredictor(TorchPredictor):
    config_class = NARFormerConfig

    def build_model(self):
        return NARFormerNet(self.config)

    def encode(self, batch: GraphBatch) -> dict[str, torch.Tensor]:
        if has_layer_attributes(batch):
            # Whole networks (ofa_mbv3): layer tokens, and the input resolution coded where a
            # cell's depth is (NAR-Former's supplement, sec. 2.4).
            tokens, mask = tokenize_layers(batch, self.config.num_freqs)
            size = (batch.graph_features or {}).get("resolution")
            depth = sincos_code(batch.num_nodes if size is None else size, 3 * self.config.num_freqs)
        else:
            tokens, mask = tokenize(batch, self.config.num_freqs)
            depth = code_table(0, batch.max_nodes + 1, 3 * self.config.num_freqs)[batch.num_nodes]
        inputs = {"tokens": torch.from_numpy(tokens), "mask": torch.from_numpy(mask),
                  "depth_code": torch.from_numpy(depth.astype(np.float32))}
        if self.config.attention == "graph":
            inputs["neighbours"] = torch.from_numpy(graph_attention_mask(batch, mask))
        return inputs

    def training_inputs(self, graphs, rng):
        cfg = self.config
        width = self.meta["max_nodes"]  # twins have the same sizes as their originals
        main = self.encode(batch_graphs(graphs, width))
        if cfg.augment <= 0:
            return {"main": main}
        if getattr(graphs[0], "node_features", None) is not None:
            raise PredictorError("augment (renumbered twins) is for cell graphs; a network's layer graph "
                                 "has one order: use augment=0")
        # Twin slot k of arch i is its k-th renumbering, or the original when it has fewer.
        slots = [[(g.ops, g.adjacency)] * cfg.augment for g in graphs]
        counts = np.zeros(len(graphs), dtype=np.int64)
        for i, g in enumerate(graphs):
            found = twins(np.asarray(g.ops), np.asarray(g.adjacency), rng, cfg.augment)
            counts[i] = len(found)
            slots[i][:len(found)] = found
        flat = [_Graph(ops, adj, graphs[0].vocab) for per_arch in slots for ops, adj in per_arch]
        twin = self.encode(batch_graphs(flat, width))
        twin = {k: v.view(len(graphs), cfg.augment, *v.shape[1:]) for k, v in twin.items()}
        return {"main": main, "twins": twin, "twin_counts": torch.from_numpy(counts)}

    def loss(self, model, inputs, index, y, gen):
        cfg = self.config
        n = len(index)
        if "twins" in inputs:
            counts = inputs["twin_counts"][index]
            slot = (torch.rand(n, generator=gen).to(counts.device) * counts.clamp(min=1)).long()
            twin = {k: v[index, slot] for k, v in inputs["twins"].items()}
            both = {k: torch.cat([inputs["main"][k][index], twin[k]]) for k in twin}
            pred_all = model(**both)
            pred, pred_twin = pred_all[:n], pred_all[n:]
            loss = 0.5 * (F.mse_loss(pred, y) + F.mse_loss(pred_twin, y))
            if cfg.lambda_ac:
                has_twin = counts > 0
                if has_twin.any():
                    loss = loss + cfg.lambda_ac * consistency_loss(pred[has_twin], pred_twin[has_twin])
        else:
            pred = model(**take(inputs["main"], index))
            loss = F.mse_loss(pred, y)
        if cfg.lambda_sr and n > 1:
            loss = loss + cfg.lambda_sr * sequence_ranking_loss(pred, y, torch.randperm(n, generator=gen).to(y.device),
                                                                cfg.sr_loss)
        return loss


def graph_attention_mask(batch: GraphBatch, token_mask: np.ndarray) -> np.ndarray:
    """bool [B, N+2, N+2] over [depth token, node tokens, end token, padding]: a node reads
    itself, its neighbours (edges either way) and the two global tokens, which read every
    real token; padding reads itself only, so no row is empty."""
    b, n = batch.ops.shape
    size = n + 2
    allowed = np.zeros((b, size, size), dtype=bool)
    allowed[:, 1:n + 1, 1:n + 1] = neighbour_mask(batch)
    allowed |= np.eye(size, dtype=bool)[None]
    real = np.concatenate([np.ones((b, 1), dtype=bool), token_mask], axis=1)
    is_global = np.zeros((b, size), dtype=bool)
    is_global[:, 0] = True
    is_global[np.arange(b), 1 + batch.num_nodes] = True
    allowed |= is_global[:, :, None] & real[:, None, :]
    allowed |= real[:, :, None] & is_global[:, None, :]
    return allowed


class _Graph:
    """A bare graph (ops, adjacency, vocab) for the twins."""

    __slots__ = ("ops", "adjacency", "vocab")

    def __init__(self, ops, adjacency, vocab):
        self.ops, self.adjacency, self.vocab = ops, adjacency, vocab


def sequence_ranking_loss(pred, target, perm, kind: str = "l1"):
    """Compare the differences of predictions and of targets between each sample and its
    partner ``perm[i]`` in the batch."""
    diff_pred, diff_true = pred - pred[perm], target - target[perm]
    return F.l1_loss(diff_pred, diff_true) if kind == "l1" else F.mse_loss(diff_pred, diff_true)


def consistency_loss(pred, pred_twin):
    """L1 distance between the predictions for an arch and for its augmented twin."""
    return F.l1_loss(pred, pred_twin)
