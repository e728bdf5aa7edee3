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
recovered from the summed source codes alone. It raises tau on both NB101 and NB201 (docs).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .aids import AidsConfig, TwinTraining
from .base import TorchPredictor, TrainConfig, check_choice
from .errors import PredictorError
from .graphs import GraphBatch, neighbour_mask
from .registry import register_predictor
from .tokenizer import SELF_ID, code_table, has_layer_attributes, sincos_code, tokenize, tokenize_layers, with_self_id
from .transformer import Attention, DropPath, FeedForward, SelfAttentionBlock, attention_dropout


@dataclass
class NARFormerConfig(TrainConfig, AidsConfig):
    """Defaults are the CPU recipe measured in the docs (about 5 min for 781 NB201 archs on
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
    augment: int = 0  # twins per training arch (the paper: 2); see docs/results.md for the trade-off
    augment_kind: str = "flow"  # "flow" (the paper's) or "isomorphism" (GI Aug, its Table 5 rows 10-11)
    self_id: str = "concat"  # own-position code beside the op code, or "add"ed to it (Table 5 row 3)
    epochs: int = 300
    lr: float = 3e-3

    def validate(self):
        super().validate()
        check_choice("pool", self.pool, ("fusion", "mean"))
        check_choice("attention", self.attention, ("full", "graph"))
        check_choice("self_id", self.self_id, SELF_ID)
        self.validate_aids()
        if self.d_model % self.heads:
            raise PredictorError(f"d_model {self.d_model} is not divisible by heads {self.heads}")


class FusionStage(nn.Module):
    """Learned queries cross-attend to the previous tokens (no residual), then FFN and
    optional self-attention blocks."""

    def __init__(self, cfg, num_queries, drop_paths):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(1, num_queries, cfg.d_model) * 0.02)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.cross = Attention(cfg.d_model, cfg.heads, attention_dropout(cfg))
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
        self.attn = Attention(cfg.d_model, cfg.heads, attention_dropout(cfg))
        self.ff = FeedForward(cfg, 0.0)

    def forward(self, memory, q, mask=None):
        return self.ff(self.attn(self.norm_q(q), self.norm_kv(memory), mask))


class NARFormerNet(nn.Module):
    """``token_width`` defaults to the cell tokens' 6L. Whole networks (latency) pass their
    480-wide layer tokens, ``num_static`` static features that join the fused token at the head
    (the supplement, section 1), and ``squash=False`` for an unbounded output. ``depth_width``:
    the depth code's width where it differs from the tokens' (Self_ID added: tokens of 4L).
    ``sum_readout``: the sum of the layers' states (signed log) joins the fused token at the
    head, as a GNN's sum readout does: a whole network's latency adds up over its layers, and a
    sum extrapolates to deeper networks where an attention-weighted mean cannot.

    ``pool="layer_sum"`` (whole networks only) goes further: each token's stage-1 state (with the
    static features) predicts that layer's own log latency, and the output is the log of their
    sum, ``logsumexp(scale * t_i) / scale`` in units of the target's standard deviation ``scale``
    (the target's mean cancels). A network's latency is then a sum of per-layer costs, in
    context: nn-Meter's and a look-up table's structure, learnt from whole-network timings."""

    def __init__(self, cfg: NARFormerConfig, token_width: int | None = None, num_static: int = 0,
                 squash: bool = True, depth_width: int | None = None, sum_readout: bool = False,
                 layer_sum_scale: float | None = None):
        super().__init__()
        token_width = token_width or 6 * cfg.num_freqs
        self.squash = squash
        self.pool = cfg.pool
        if (cfg.pool == "layer_sum") != (layer_sum_scale is not None):
            raise PredictorError("pool='layer_sum' needs the target's scale (whole networks' latency only)")
        self.embed = nn.Identity() if token_width == cfg.d_model else nn.Linear(token_width, cfg.d_model)
        self.depth_map = nn.Linear(depth_width or token_width, cfg.d_model)
        stages = cfg.fusion_stages if cfg.pool == "fusion" else 0
        if cfg.pool == "layer_sum":
            self.register_buffer("layer_sum_scale", torch.tensor(float(layer_sum_scale)))
            width = cfg.d_model * (1 + bool(num_static))
            self.layer_head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, cfg.d_model), nn.GELU(),
                                            nn.Linear(cfg.d_model, 1))
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
        self.sum_readout = sum_readout
        head_width = cfg.d_model * (1 + bool(num_static) + sum_readout)
        self.head = None if cfg.pool == "layer_sum" else nn.Linear(head_width, 1)

    def forward(self, tokens, mask, depth_code, neighbours=None, static=None):
        x = self.embed(tokens)
        depth = F.relu(self.depth_map(depth_code))[:, None]
        x = torch.cat([depth, x], dim=1)
        mask = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
        if bool(mask.all()):
            mask = None  # no padding: let attention take its unmasked fast path
        for block in self.blocks:
            x = block(x, mask if neighbours is None else neighbours)
        if self.pool == "layer_sum":
            return self._layer_sum(x[:, 1:], None if mask is None else mask[:, 1:], static)
        if self.pool == "mean" or not self.stages:
            pooled = x.mean(1) if mask is None else (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        else:
            memory, q = x, self.stages[0](x, mask)
            for refuse, stage in zip(self.refuse, self.stages[1:]):
                q = stage(refuse(memory, q, mask))
            pooled = q[:, -1]
        fused = self.norm(pooled)
        if self.sum_readout:  # the layer tokens and the end token (not the depth token), padding left out
            layers = x[:, 1:] if mask is None else x[:, 1:] * mask[:, 1:, None]
            total = layers.sum(1)
            fused = torch.cat([fused, torch.sign(total) * torch.log1p(total.abs())], dim=-1)
        if self.static is not None:
            fused = torch.cat([fused, self.static(static)], dim=-1)
        out = self.head(fused).squeeze(-1)
        return torch.sigmoid(out) if self.squash else out

    def _layer_sum(self, layers, mask, static):
        """log(sum of the layers' latencies) from each layer's state (the end token's too: a
        per-network overhead), padding left out."""
        if self.static is not None:
            layers = torch.cat([layers, self.static(static)[:, None].expand(-1, layers.shape[1], -1)], dim=-1)
        scores = self.layer_head(layers).squeeze(-1) * self.layer_sum_scale
        if mask is not None:
            scores = scores.masked_fill(~mask.bool(), float("-inf"))
        return torch.logsumexp(scores, dim=1) / self.layer_sum_scale


@register_predictor("narformer")
class NARFormerPredictor(TwinTraining, TorchPredictor):
    """NAR-Former: sine/cosine node tokens, transformer blocks, multi-stage fusion, ranking losses."""

    config_class = NARFormerConfig

    def build_model(self):
        width = (6 if self.config.self_id == "concat" else 4) * self.config.num_freqs
        return NARFormerNet(self.config, token_width=width, depth_width=6 * self.config.num_freqs,
                            num_static=self.num_graph_inputs)

    def encode(self, batch: GraphBatch) -> dict[str, torch.Tensor]:
        if has_layer_attributes(batch):
            if self.config.self_id != "concat":
                raise PredictorError("self_id='add' is for cell tokens; a network's layer tokens have no op code")
            # Whole networks (ofa_mbv3): layer tokens, and the input resolution coded where a
            # cell's depth is (NAR-Former's supplement, sec. 2.4).
            tokens, mask = tokenize_layers(batch, self.config.num_freqs)
            size = (batch.graph_features or {}).get("resolution")
            depth = sincos_code(batch.num_nodes if size is None else size, 3 * self.config.num_freqs)
        else:
            tokens, mask = tokenize(batch, self.config.num_freqs)
            tokens = with_self_id(tokens, self.config.num_freqs, self.config.self_id, batch.num_nodes)
            depth = code_table(0, batch.max_nodes + 1, 3 * self.config.num_freqs)[batch.num_nodes]
        inputs = {"tokens": torch.from_numpy(tokens), "mask": torch.from_numpy(mask),
                  "depth_code": torch.from_numpy(depth.astype(np.float32))}
        if self.config.attention == "graph":
            inputs["neighbours"] = torch.from_numpy(graph_attention_mask(batch, mask))
        return self.with_graph_inputs(inputs, batch, "static")  # per-graph inputs join at the head


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
