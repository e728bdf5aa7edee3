"""Pre-norm transformer blocks shared by the attention predictors (NAR-Former, TNASP).

``cfg`` is any predictor config with ``d_model``, ``heads``, ``ffn`` and ``dropout``; a config
with ``attention_dropout`` sets the attention weights' dropout apart (else ``dropout``).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class DropPath(nn.Module):
    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = torch.rand(x.shape[0], *([1] * (x.ndim - 1)), device=x.device) >= self.p
        return x * keep / (1 - self.p)


def attention_dropout(cfg) -> float:
    """Dropout on the attention weights. On long sequences (whole networks, hundreds of layers)
    it is most of a training step's cost on a CPU: an N x N random mask per head, and the
    fused attention kernels do not take it."""
    return getattr(cfg, "attention_dropout", cfg.dropout)


class Attention(nn.Module):
    """Multi-head attention with one fused input projection (one matrix product for q, k
    and v in self-attention, one for k and v in cross-attention)."""

    def __init__(self, d, heads, dropout):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.in_proj = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, query, memory, key_mask=None):
        b, lq, d = query.shape
        if query is memory:
            q, k, v = self.in_proj(query).chunk(3, dim=-1)
        else:
            w, bias = self.in_proj.weight, self.in_proj.bias
            q = F.linear(query, w[:d], bias[:d])
            k, v = F.linear(memory, w[d:], bias[d:]).chunk(2, dim=-1)
        split = lambda t: t.reshape(b, t.shape[1], self.heads, d // self.heads).transpose(1, 2)
        # key_mask: [B, L] (keys each query may read) or [B, Lq, L] (per query, e.g. graph edges)
        mask = None if key_mask is None else (key_mask[:, None] if key_mask.ndim == 3 else key_mask[:, None, None, :])
        x = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(x.transpose(1, 2).reshape(b, lq, d))


class FeedForward(nn.Module):
    """x + FFN(norm(x))"""

    def __init__(self, cfg, drop_path):
        super().__init__()
        self.norm = nn.LayerNorm(cfg.d_model)
        self.net = nn.Sequential(nn.Linear(cfg.d_model, cfg.ffn), nn.GELU(), nn.Dropout(cfg.dropout),
                                 nn.Linear(cfg.ffn, cfg.d_model))
        self.drop_path = DropPath(drop_path)

    def forward(self, x):
        return x + self.drop_path(self.net(self.norm(x)))


class SelfAttentionBlock(nn.Module):
    """x + Attn(norm(x)), then the feed-forward block."""

    def __init__(self, cfg, drop_path):
        super().__init__()
        self.norm = nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg.d_model, cfg.heads, attention_dropout(cfg))
        self.drop_path = DropPath(drop_path)
        self.ff = FeedForward(cfg, drop_path)

    def forward(self, x, mask=None):
        h = self.norm(x)
        return self.ff(x + self.drop_path(self.attn(h, h, mask)))
