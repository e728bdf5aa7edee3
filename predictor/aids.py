"""NAR-Former's training aids for any predictor of cells: renumbered twins (augmentation),
the sequence-ranking (SR) loss and the architecture-consistency (AC) loss.

A predictor takes them by listing :class:`TwinTraining` before ``TorchPredictor`` in its bases
and giving its config the fields of :class:`AidsConfig`. NAR-Former's ablation (its Table 5)
puts them on NP's GCN as well as on its own transformer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from .augment import ORDERS, twins
from .base import check_choice, take
from .errors import PredictorError
from .graphs import batch_graphs


@dataclass
class AidsConfig:
    lambda_sr: float = 0.0  # sequence-ranking loss weight
    lambda_ac: float = 0.0  # architecture-consistency loss weight (needs augment > 0)
    sr_loss: str = "l1"  # or "l2"
    augment: int = 0  # twins per training arch (NAR-Former: 2)
    augment_kind: str = "flow"  # "flow" (information-flow consistent) or "isomorphism" (GI Aug)

    def validate_aids(self):
        check_choice("sr_loss", self.sr_loss, ("l1", "l2"))
        check_choice("augment_kind", self.augment_kind, tuple(ORDERS))
        if self.augment < 0 or self.lambda_sr < 0 or self.lambda_ac < 0:
            raise PredictorError("augment, lambda_sr and lambda_ac cannot be negative")


class TwinTraining:
    """``training_inputs`` and ``loss`` with twins, SR and AC (a mixin of TorchPredictor)."""

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
        extras = [getattr(g, "graph_features", ()) for g in graphs]
        counts = np.zeros(len(graphs), dtype=np.int64)
        for i, g in enumerate(graphs):
            found = twins(np.asarray(g.ops), np.asarray(g.adjacency), rng, cfg.augment, kind=cfg.augment_kind)
            counts[i] = len(found)
            slots[i][:len(found)] = found
        flat = [_Graph(ops, adj, graphs[0].vocab, extra) for per_arch, extra in zip(slots, extras)
                for ops, adj in per_arch]
        twin = self.encode(batch_graphs(flat, width))
        twin = {k: v.view(len(graphs), cfg.augment, *v.shape[1:]) for k, v in twin.items()}
        return {"main": main, "twins": twin, "twin_counts": torch.from_numpy(counts)}

    def loss(self, model, inputs, index, y, gen):
        cfg = self.config
        n = len(index)
        if "twins" in inputs:
            counts = inputs["twin_counts"][index]
            slot = (torch.rand(n, generator=gen, device=gen.device) * counts.clamp(min=1)).long()
            twin = {k: v[index, slot] for k, v in inputs["twins"].items()}
            both = {k: torch.cat([inputs["main"][k][index], twin[k]]) for k in twin}
            pred_all = model(**both)
            pred, pred_twin = pred_all[:n], pred_all[n:]
            loss = 0.5 * (F.mse_loss(pred, y) + F.mse_loss(pred_twin, y))
            if cfg.lambda_ac:
                loss = loss + cfg.lambda_ac * consistency_loss(pred, pred_twin, counts > 0)
        else:
            pred = model(**take(inputs["main"], index))
            loss = F.mse_loss(pred, y)
        if cfg.lambda_sr and n > 1:
            loss = loss + cfg.lambda_sr * sequence_ranking_loss(pred, y, torch.randperm(n, generator=gen, device=gen.device),
                                                                cfg.sr_loss)
        return loss


class _Graph:
    """A bare graph (ops, adjacency, vocab) for the twins; a twin carries its original's
    per-graph numbers (the same network, renumbered)."""

    __slots__ = ("ops", "adjacency", "vocab", "graph_features")

    def __init__(self, ops, adjacency, vocab, graph_features=()):
        self.ops, self.adjacency, self.vocab, self.graph_features = ops, adjacency, vocab, graph_features


def sequence_ranking_loss(pred, target, perm, kind: str = "l1"):
    """Compare the differences of predictions and of targets between each sample and its
    partner ``perm[i]`` in the batch."""
    diff_pred, diff_true = pred - pred[perm], target - target[perm]
    return F.l1_loss(diff_pred, diff_true) if kind == "l1" else F.mse_loss(diff_pred, diff_true)


def consistency_loss(pred, pred_twin, has_twin):
    """Mean L1 distance between the predictions for an arch and for its augmented twin, over the
    archs that have one (0 when none has): a mask, not an index, so the GPU never waits for the host."""
    weight = has_twin.to(pred.dtype)
    return ((pred - pred_twin).abs() * weight).sum() / weight.sum().clamp(min=1)
