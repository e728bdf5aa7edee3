"""Unsupervised pretraining of arch2vec on a space's architectures, resumable per epoch.

The corpus is every architecture of an enumerable space (NB101: 423,624 cells; NB201:
15,625) or, for the others, ``archs`` distinct samples. A seeded share is held out to
measure reconstruction; after every epoch the file at ``out`` is replaced (atomically) by
the model so far, with the optimiser state, so a killed pretraining continues from its last
epoch and ends with the same weights as an uninterrupted one (each epoch's shuffling and
noise are seeded by (seed, epoch)).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from narnas.config import differences
from narnas.files import atomic_torch_save
from narnas.progress import Progress, interactive

from predictor.errors import PredictorError
from .embedding import PretrainedArch2Vec, graph_arrays, read_state
from .model import Arch2VecConfig, reconstruction_accuracy

#: Distinct architectures drawn from a space that cannot be enumerated.
DEFAULT_SAMPLED = 100_000


@dataclass
class Corpus:
    """The pretraining graphs as arrays, split into training and held-out rows."""

    ops: torch.Tensor  # int64 [M, N]
    adjacency: torch.Tensor  # uint8 [M, N, N]
    train: np.ndarray
    held_out: np.ndarray
    vocab: tuple[str, ...]
    description: str


def space_graphs(space, archs: int | None, seed: int) -> tuple[list, str]:
    """The space's graphs to pretrain on, and how they were chosen: every arch of an enumerable
    space (or ``archs`` of them, uniformly), else ``archs`` distinct samples."""
    from spaces.base import Enumeration, GraphEncoding, Sampling, require
    require(space, GraphEncoding, "to pretrain arch2vec")
    if isinstance(space, Enumeration):
        everything = list(space.enumerate())
        if archs is None or archs >= len(everything):
            return [space.to_graph(a) for a in everything], f"all {len(everything)} archs of {space.name}"
        # Uniform over distinct archs (a space's sampler need not be: NB101's favours small cells).
        chosen = np.sort(np.random.default_rng([seed, 101]).choice(len(everything), archs, replace=False))
        return ([space.to_graph(everything[i]) for i in chosen],
                f"{archs} distinct archs drawn from {space.name}'s {len(everything)}")
    require(space, Sampling, "to draw archs for arch2vec")
    target = archs or DEFAULT_SAMPLED
    rng = np.random.default_rng([seed, 101])
    seen, graphs, draws = set(), [], 0
    while len(graphs) < target and draws < 20 * target:
        arch = space.sample(rng)
        draws += 1
        key = space.key(arch)
        if key not in seen:
            seen.add(key)
            graphs.append(space.to_graph(arch))
    return graphs, f"{len(graphs)} distinct archs sampled from {space.name}"


def make_corpus(graphs: list, description: str, held_out: int, seed: int, max_nodes: int | None = None) -> Corpus:
    if len(graphs) < 2:
        raise PredictorError(f"arch2vec needs at least 2 graphs to pretrain on, got {len(graphs)}")
    vocab = tuple(graphs[0].vocab)
    width = max_nodes or max(len(g.ops) for g in graphs)
    ops, adjacency = graph_arrays(graphs, width, len(vocab))
    order = np.random.default_rng([seed, 7]).permutation(len(graphs))
    held = min(held_out, len(graphs) // 2)
    return Corpus(torch.from_numpy(ops), torch.from_numpy(adjacency), np.sort(order[held:]), np.sort(order[:held]),
                  vocab, description)


def prior_validity(model: PretrainedArch2Vec, space, samples: int, seed: int) -> dict:
    """Decode ``samples`` latent matrices drawn from N(0, I): the share that are valid
    architectures of ``space`` and, of those, the share of distinct ones (by key)."""
    from spaces.errors import SpacesError
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(samples, model.max_nodes, model.latent_dim, generator=gen)
    model.model.eval()
    with torch.inference_mode():
        ops, adjacency = (t.cpu() for t in model.model.decode(z.to(next(model.model.parameters()).device)))
    keys = []
    for graph in graphs_from_decoded(ops.numpy(), adjacency.numpy(), model.pad, model.vocab):
        if graph is None:
            continue
        try:
            keys.append(space.key(space.from_graph(graph)))
        except SpacesError:
            continue
    return {"validity": len(keys) / samples, "uniqueness": len(set(keys)) / len(keys) if keys else 0.0}


def graphs_from_decoded(ops: np.ndarray, adjacency: np.ndarray, pad: int, vocab: tuple):
    """Decoded arrays -> ArchGraphs of their non-padding nodes (None where none are left)."""
    from spaces.base import ArchGraph
    out = []
    for o, a in zip(ops, adjacency):
        keep = np.flatnonzero(o != pad)
        out.append(ArchGraph(o[keep].astype(np.int64), a[np.ix_(keep, keep)].astype(np.uint8), vocab)
                   if len(keep) else None)
    return out


def can_decode(space) -> bool:
    from spaces.base import GraphEncoding
    return type(space).from_graph is not GraphEncoding.from_graph


def pretrain(space, config: Arch2VecConfig, out: Path | None, *, archs: int | None = None, held_out: int = 5000,
             prior_samples: int = 10_000, quiet: bool = True, log: Callable[[str], None] | None = None,
             corpus: Corpus | None = None) -> PretrainedArch2Vec:
    """Pretrain (or continue pretraining) arch2vec on ``space``; returns the model.

    With ``out`` set, the model is saved after every epoch, and an unfinished file there
    is resumed (its config must match; more ``epochs`` than it has done extend it).
    """
    log = log or (lambda text: None)
    if config.threads:
        torch.set_num_threads(config.threads)
    start_state = _resume_state(out, space.name, config)
    if corpus is None:
        graphs, how = space_graphs(space, archs, config.seed)
        corpus = make_corpus(graphs, how, held_out, config.seed, getattr(space, "max_graph_nodes", None))
    if start_state is not None:
        model = PretrainedArch2Vec.from_dict(start_state, str(out))
        model.config = config
        if model.max_nodes != corpus.ops.shape[1] or model.vocab != corpus.vocab:
            raise PredictorError(f"{out} was pretrained on graphs of another shape; use another --out")
        log(f"resuming {out} after epoch {model.epochs_done} of {config.epochs}")
    else:
        model = PretrainedArch2Vec.new(config, space.name, corpus.vocab, corpus.ops.shape[1])
    device = torch.device(config.device)
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise PredictorError(f"device {config.device!r} requested but CUDA is not available")
    net = model.model.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, betas=(0.9, 0.999), eps=1e-8)
    if start_state is not None and start_state.get("optimizer"):
        opt.load_state_dict(start_state["optimizer"])
    ops, adjacency = corpus.ops.to(device), corpus.adjacency.to(device)
    train = torch.from_numpy(corpus.train).to(device)
    held = torch.from_numpy(corpus.held_out).to(device)
    decodable = can_decode(space)
    steps = -(-len(train) // config.batch_size)
    progress = Progress(config.epochs * steps, interactive(quiet), "pretrain arch2vec",
                        start=model.epochs_done * steps)
    for epoch in range(model.epochs_done, config.epochs):
        began = time.time()
        net.train()
        torch.manual_seed(config.seed * 100_003 + epoch)  # dropout; the order and noise below
        gen = torch.Generator(device=device).manual_seed(config.seed * 100_003 + epoch)
        order = train[torch.randperm(len(train), generator=gen, device=device)]
        sums = {"loss": 0.0, "ops": 0.0, "adj": 0.0, "kl": 0.0}
        for step, first in enumerate(range(0, len(order), config.batch_size)):
            rows = order[first:first + config.batch_size]
            loss, parts = net.loss(ops[rows], adjacency[rows].float(), gen, config.kl_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums["loss"] += float(loss.detach()) * len(rows)
            for k, v in parts.items():
                sums[k] += v * len(rows)
            progress.update(epoch * steps + step + 1, epoch=epoch + 1, loss=sums["loss"] / (first + len(rows)))
        record = {"epoch": epoch + 1, **{k: v / len(order) for k, v in sums.items()}}
        if len(held):
            record.update({f"held_out_{k}": v for k, v in
                           reconstruction_accuracy(net, ops[held], adjacency[held].float()).items()})
        if decodable and prior_samples:
            record.update(prior_validity(model, space, prior_samples, config.seed))
        record["seconds"] = round(time.time() - began, 2)
        model.history.append(record)
        model.epochs_done = epoch + 1
        if out is not None:
            atomic_torch_save(out, model.to_dict(opt.state_dict(), {"corpus": corpus.description,
                                                                      "versions": _versions()}))
        log(_epoch_line(record, config.epochs))
    progress.close()
    net.eval()
    return model


def _resume_state(out: Path | None, space: str, config: Arch2VecConfig) -> dict | None:
    """The saved state to continue from, or None to start afresh."""
    if out is None or not Path(out).exists():
        return None
    state = read_state(out)
    if state["space"] != space:
        raise PredictorError(f"{out} holds an arch2vec model of space {state['space']}, not {space}; "
                             "use another --out")
    changed = differences(state["config"], asdict(config), ignore=("epochs", "device", "threads"))
    if changed:
        raise PredictorError(f"{out} was pretrained with other settings ({', '.join(changed)} differ); "
                             "use another --out or the same settings")
    return state


def _epoch_line(record: dict, epochs: int) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}", f"loss {record['loss']:.4f}"]
    for key, label in (("held_out_ops_accuracy", "ops acc"), ("held_out_adj_accuracy", "adj acc"),
                       ("validity", "validity"), ("uniqueness", "uniqueness")):
        if key in record:
            parts.append(f"{label} {record[key]:.4f}")
    parts.append(f"{record['seconds']:.0f}s")
    return ", ".join(parts)


def _versions() -> dict:
    import platform
    return {"python": platform.python_version(), "torch": str(torch.__version__), "numpy": np.__version__}
