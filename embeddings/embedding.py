"""A pretrained arch2vec model as a file: what it was trained on, and graphs -> embeddings.

The file (``torch.save`` of a plain dict, written atomically) holds the model's weights
and config, the space and graph vocabulary it was pretrained on, the padded graph size,
the training history and, while pretraining, the optimiser state for resuming.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from narnas.config import build
from narnas.errors import ConfigError

from predictor.errors import PredictorError
from predictor.graphs import batch_graphs
from .model import Arch2Vec, Arch2VecConfig

FORMAT = "narnas-arch2vec/1"
POOLS = ("mean", "flat")


def graph_arrays(graphs: Sequence, max_nodes: int, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """(op classes int64 [B, max_nodes] with ``pad`` on padding, adjacency uint8 [B, N, N])."""
    batch = batch_graphs(graphs, max_nodes)
    ops = np.where(batch.ops >= 0, batch.ops, pad)
    return ops, batch.adjacency.astype(np.uint8)


@dataclass
class PretrainedArch2Vec:
    """An arch2vec model with what it needs to embed graphs of its space."""

    model: Arch2Vec
    config: Arch2VecConfig
    space: str
    vocab: tuple[str, ...]
    max_nodes: int
    history: list = field(default_factory=list)
    epochs_done: int = 0

    @property
    def pad(self) -> int:
        return len(self.vocab)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def check_graphs(self, graphs: Sequence, what: str = "these graphs") -> None:
        """A PredictorError when ``graphs`` are not of the space this model knows."""
        if len(graphs) == 0:
            return
        vocab = tuple(graphs[0].vocab)
        if vocab != self.vocab:
            raise PredictorError(f"the arch2vec model was pretrained on {self.space} graphs (vocabulary "
                                 f"{', '.join(self.vocab)}); {what} have vocabulary {', '.join(vocab)}")
        largest = max(len(g.ops) for g in graphs)
        if largest > self.max_nodes:
            raise PredictorError(f"the arch2vec model was fitted for at most {self.max_nodes} nodes; "
                                 f"{what} include one of {largest}")

    def arrays(self, graphs: Sequence) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_graphs(graphs)
        ops, adjacency = graph_arrays(graphs, self.max_nodes, self.pad)
        return torch.from_numpy(ops), torch.from_numpy(adjacency)

    @torch.inference_mode()
    def embed(self, graphs: Sequence, pool: str = "mean", chunk: int = 8192) -> np.ndarray:
        """float32 embeddings: ``mean`` - the posterior means averaged over a graph's real
        nodes ([B, latent_dim], arch2vec's vector); ``flat`` - the whole mean matrix
        ([B, max_nodes * latent_dim], what the input-output model reads)."""
        if pool not in POOLS:
            raise PredictorError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
        width = self.latent_dim * (1 if pool == "mean" else self.max_nodes)
        if len(graphs) == 0:
            return np.zeros((0, width), np.float32)
        ops, adjacency = self.arrays(graphs)
        return self.embed_arrays(ops, adjacency, pool, chunk)

    @torch.inference_mode()
    def embed_arrays(self, ops: torch.Tensor, adjacency: torch.Tensor, pool: str = "mean",
                     chunk: int = 8192) -> np.ndarray:
        self.model.eval()
        device = next(self.model.parameters()).device
        out = []
        for i in range(0, len(ops), chunk):
            o = ops[i:i + chunk].to(device)
            one_hot = torch.nn.functional.one_hot(o, self.model.num_classes).float()
            mean, _ = self.model.encoder(one_hot, adjacency[i:i + chunk].to(device).float())
            if pool == "flat":
                out.append(mean.reshape(len(o), -1))
            else:
                real = (o != self.pad).float()[..., None]
                out.append((mean * real).sum(1) / real.sum(1).clamp_min(1))
        return torch.cat(out).cpu().numpy().astype(np.float32)

    def to_dict(self, optimizer_state: dict | None = None, extra: dict | None = None) -> dict:
        return {"format": FORMAT, "space": self.space, "vocab": list(self.vocab), "max_nodes": self.max_nodes,
                "config": asdict(self.config), "model": self.model.state_dict(), "history": self.history,
                "epochs_done": self.epochs_done, "optimizer": optimizer_state, **(extra or {})}

    @classmethod
    def from_dict(cls, state: dict, source: str = "state") -> "PretrainedArch2Vec":
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise PredictorError(f"{source} is not an arch2vec model (made by python -m embeddings pretrain)")
        try:
            config = build(Arch2VecConfig, state["config"], path="arch2vec config")
        except ConfigError as err:
            raise PredictorError(f"{source}: {err}") from None
        vocab = tuple(state["vocab"])
        model = Arch2Vec(len(vocab) + 1, int(state["max_nodes"]), config)
        model.load_state_dict(state["model"])
        return cls(model.eval(), config, state["space"], vocab, int(state["max_nodes"]), list(state["history"]),
                   int(state["epochs_done"]))

    @classmethod
    def new(cls, config: Arch2VecConfig, space: str, vocab: Sequence[str], max_nodes: int) -> "PretrainedArch2Vec":
        torch.manual_seed(config.seed)
        return cls(Arch2Vec(len(vocab) + 1, max_nodes, config), config, space, tuple(vocab), max_nodes)


def read_state(path) -> dict:
    """The raw dict of an arch2vec file; clear errors for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise PredictorError(f"arch2vec model file {path} not found; make one with "
                             f"python -m embeddings pretrain --space SPACE --out {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds on a file that is not its own
        raise PredictorError(f"cannot read arch2vec model {path}: {type(err).__name__}: {err}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise PredictorError(f"{path} is not an arch2vec model (made by python -m embeddings pretrain)")
    return state


def load_arch2vec(path) -> PretrainedArch2Vec:
    return PretrainedArch2Vec.from_dict(read_state(path), str(path))
