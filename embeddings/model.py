"""arch2vec: a variational graph autoencoder of cells (Yan et al., NeurIPS 2020).

Every graph is padded to ``max_nodes`` nodes; padding nodes carry an extra operation
class, ``pad`` (the last one), and no edges, so one fixed-size tensor holds any graph and
the decoder can say where a graph ends.

* Encoder: one-hot operations through ``gin_layers`` GIN layers on the adjacency made
  symmetric (A + Aᵀ, so information flows both ways), each an MLP of ``mlp_layers``
  Linear-BatchNorm-ReLU; then a mean and a log-variance of ``latent_dim`` per node.
* Decoders, from a sampled latent matrix Z (dropout first): operations by a dense layer and
  a softmax; the adjacency by the sigmoid of inner products, ZZᵀ, read on the strict upper
  triangle only (graphs are in topological order, so that triangle holds every edge).
* Loss: cross-entropy of the operations and binary cross-entropy of the adjacency (half
  weight each, as arch2vec) + ``kl_weight`` times the KL divergence to N(0, I), per node
  and divided by the node count (as VGAE).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from predictor.base import check_choice, check_device
from predictor.errors import PredictorError


@dataclass
class Arch2VecConfig:
    """The model and its training (defaults: the papers' settings)."""

    latent_dim: int = 16
    hidden: int = 128  # GIN MLP width
    gin_layers: int = 5
    mlp_layers: int = 2
    dropout: float = 0.3  # on the latent matrix before decoding
    # The KL term is weak, as in arch2vec: at weight 1 (KL per node / nodes, as VGAE) the
    # posteriors collapse onto the prior and nothing is reconstructed (NB201: ops 11%).
    kl_weight: float = 1 / 32
    # "ce": cross-entropy of the softmax; "bce": binary cross-entropy of the softmax against
    # the one-hot ops, as the papers write it - measured on NB201 (4 epochs) it leaves the
    # operations at chance (40%: only input and output right), where "ce" reaches 99%.
    ops_loss: str = "ce"
    lr: float = 1e-3
    batch_size: int = 32
    epochs: int = 8
    seed: int = 0
    device: str = "cpu"
    threads: int = 0  # torch CPU threads; 0 = all cores

    def validate(self):
        for name in ("latent_dim", "hidden", "gin_layers", "mlp_layers", "batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise PredictorError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise PredictorError(f"dropout is a probability in [0, 1), got {self.dropout}")
        if not self.lr > 0 or not self.kl_weight >= 0:
            raise PredictorError(f"lr must be > 0 and kl_weight >= 0; got lr {self.lr}, kl_weight {self.kl_weight}")
        check_choice("ops_loss", self.ops_loss, ("ce", "bce"))
        check_device(self.device)


def mlp(width_in: int, width: int, layers: int) -> nn.Sequential:
    parts = []
    for i in range(layers):
        parts += [nn.Linear(width_in if i == 0 else width, width), nn.BatchNorm1d(width), nn.ReLU()]
    return nn.Sequential(*parts)


class GINEncoder(nn.Module):
    def __init__(self, num_classes: int, cfg: Arch2VecConfig):
        super().__init__()
        widths = [num_classes] + [cfg.hidden] * cfg.gin_layers
        self.eps = nn.Parameter(torch.zeros(cfg.gin_layers))
        self.mlps = nn.ModuleList(mlp(widths[i], cfg.hidden, cfg.mlp_layers) for i in range(cfg.gin_layers))
        self.mean = nn.Linear(cfg.hidden, cfg.latent_dim)
        self.log_var = nn.Linear(cfg.hidden, cfg.latent_dim)

    def forward(self, ops: torch.Tensor, adjacency: torch.Tensor):
        """ops float [B, N, C] one-hot, adjacency float [B, N, N] directed -> (mean, log_var) [B, N, D]."""
        both_ways = adjacency + adjacency.transpose(1, 2)
        h = ops
        b, n, _ = ops.shape
        for k, layer in enumerate(self.mlps):
            h = (1 + self.eps[k]) * h + both_ways @ h
            h = layer(h.reshape(b * n, -1)).reshape(b, n, -1)
        return self.mean(h), self.log_var(h)


class Decoder(nn.Module):
    def __init__(self, num_classes: int, cfg: Arch2VecConfig):
        super().__init__()
        self.dropout = nn.Dropout(cfg.dropout)
        self.ops = nn.Linear(cfg.latent_dim, num_classes)

    def forward(self, z: torch.Tensor):
        """z [B, N, D] -> (operation logits [B, N, C], adjacency logits [B, N, N])."""
        z = self.dropout(z)
        return self.ops(z), z @ z.transpose(1, 2)


class Arch2Vec(nn.Module):
    """The VAE; ``num_classes`` = the space's vocabulary + 1 (padding)."""

    def __init__(self, num_classes: int, max_nodes: int, cfg: Arch2VecConfig):
        super().__init__()
        self.num_classes, self.max_nodes = num_classes, max_nodes
        self.ops_loss = cfg.ops_loss
        self.encoder = GINEncoder(num_classes, cfg)
        self.decoder = Decoder(num_classes, cfg)
        self.register_buffer("upper", torch.triu(torch.ones(max_nodes, max_nodes, dtype=torch.bool), 1),
                             persistent=False)

    def sample(self, ops: torch.Tensor, adjacency: torch.Tensor, gen: torch.Generator | None = None):
        """(mean, log_var, z) of a batch: z drawn from the posterior in training, its mean otherwise."""
        one_hot = nn.functional.one_hot(ops, self.num_classes).float()
        mean, log_var = self.encoder(one_hot, adjacency)
        if not self.training:
            return mean, log_var, mean
        noise = torch.randn(mean.shape, generator=gen, device=mean.device) if gen is not None \
            else torch.randn_like(mean)
        return mean, log_var, mean + noise * torch.exp(0.5 * log_var)

    def forward(self, ops: torch.Tensor, adjacency: torch.Tensor, gen: torch.Generator | None = None):
        """ops int64 [B, N] class indices; returns (op logits, adjacency logits, mean, log_var)."""
        mean, log_var, z = self.sample(ops, adjacency, gen)
        op_logits, adj_logits = self.decoder(z)
        return op_logits, adj_logits, mean, log_var

    def loss(self, ops, adjacency, gen=None, kl_weight: float = 1.0):
        """(total, parts) on a batch: the VAE loss and its reconstruction and KL terms."""
        return self.loss_from(ops, adjacency, *self(ops, adjacency, gen), kl_weight)

    def loss_from(self, ops, adjacency, op_logits, adj_logits, mean, log_var, kl_weight: float = 1.0):
        """The VAE loss of a batch from the model's outputs on it."""
        if self.ops_loss == "bce":
            target_ops = nn.functional.one_hot(ops, self.num_classes).float()
            ops_loss = nn.functional.binary_cross_entropy(torch.softmax(op_logits, -1), target_ops)
        else:
            ops_loss = nn.functional.cross_entropy(op_logits.reshape(-1, self.num_classes), ops.reshape(-1))
        adj_loss = nn.functional.binary_cross_entropy_with_logits(adj_logits[:, self.upper],
                                                                  adjacency[:, self.upper])
        kl = -0.5 * (1 + log_var - mean ** 2 - log_var.exp()).sum(-1).mean() / self.max_nodes
        total = 0.5 * ops_loss + 0.5 * adj_loss + kl_weight * kl
        return total, {"ops": float(ops_loss.detach()), "adj": float(adj_loss.detach()), "kl": float(kl.detach())}

    def decode(self, z: torch.Tensor):
        """Latent matrices [B, N, D] -> (op classes int64 [B, N], directed adjacency uint8 [B, N, N])."""
        op_logits, adj_logits = self.decoder(z)
        adjacency = (adj_logits > 0) & self.upper
        return op_logits.argmax(-1), adjacency.to(torch.uint8)


def reconstruction_accuracy(model: Arch2Vec, ops: torch.Tensor, adjacency: torch.Tensor,
                            chunk: int = 4096) -> dict:
    """Encode with the posterior means, decode, compare: accuracy of the operations (every
    node slot, padding included, as arch2vec counts), of the upper-triangle adjacency
    entries, and the share of graphs reconstructed exactly."""
    model.eval()
    hits_ops = hits_adj = exact = 0
    with torch.inference_mode():
        for i in range(0, len(ops), chunk):
            o, a = ops[i:i + chunk], adjacency[i:i + chunk]
            mean, _ = model.encoder(nn.functional.one_hot(o, model.num_classes).float(), a)
            got_ops, got_adj = model.decode(mean)
            same_ops = got_ops == o
            same_adj = (got_adj.bool() == (a > 0))[:, model.upper]
            hits_ops += int(same_ops.sum())
            hits_adj += int(same_adj.sum())
            exact += int((same_ops.all(1) & same_adj.all(1)).sum())
    n, slots = len(ops), int(model.upper.sum())
    return {"ops_accuracy": hits_ops / (n * model.max_nodes), "adj_accuracy": hits_adj / max(1, n * slots),
            "exact": exact / n}

