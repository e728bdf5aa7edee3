"""Latency predictors of whole networks: NAR-Former and the baselines it is compared with.

* ``narformer``: NAR-Former's multi-stage fusion transformer on the 480-wide layer tokens,
  with the static features (batch size, FLOPs, MACs, parameters, memory access) joining the
  fused token at the head (its supplement, section 1).
* ``gnn``: an NNLQP-style graph network: GraphSAGE layers (mean over neighbours, either
  direction) on one-hot op types and log-scaled attributes and shapes, sum and mean readout,
  the static features at the head.
* ``flops``: latency as a linear function of FLOPs, fitted by least squares (the papers'
  FLOPs baseline).
* ``lut``: the sum of each layer's latency measured alone (see :mod:`.kernels`), scaled by a
  least-squares fit (nn-Meter's kernel-level idea as a look-up table).

Neural predictors regress log latency (standardised), so the squared error is a relative
error, the quantity MAPE and Acc(10%) judge. Mini-batches group networks of similar size
(a 40-layer VGG is not padded to an 800-layer EfficientNet), in a seeded order.
"""
from __future__ import annotations

import abc
import functools
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from narnas import config as configs
from narnas.errors import ConfigError
from narnas.registry import Registry

from predictor.errors import PredictorError
from .encoding import (TOKEN_WIDTH, CompactGraph, gnn_batch, gnn_node_features, narformer_tokens, stack_tokens,
                       static_matrix, token_width)


LATENCY_PREDICTORS = Registry("latency predictor", error=lambda kind, name, valid: PredictorError(
    f"unknown {kind} {name!r}; valid: {', '.join(sorted(valid))}"))


def register_latency_predictor(name: str):
    return LATENCY_PREDICTORS.register(name, set_name=True)


class LatencyPredictor(abc.ABC):
    name: str
    config_class: type

    def __init__(self, config):
        self.config = config

    #: True when fit / predict need ``kernel_ms``: each network's layers timed alone (``lut``).
    needs_kernels = False

    @abc.abstractmethod
    def fit(self, graphs: list[CompactGraph], latency_ms, kernel_ms=None) -> "LatencyPredictor":
        ...

    @abc.abstractmethod
    def predict(self, graphs: list[CompactGraph], kernel_ms=None) -> np.ndarray:
        ...


def _check(graphs, y):
    y = np.asarray(y, dtype=np.float64)
    if len(graphs) == 0 or len(graphs) != len(y):
        raise PredictorError(f"need as many latencies as networks (got {len(graphs)} networks, {len(y)} latencies)")
    if not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise PredictorError("latencies must be positive finite numbers")
    return y


# --- linear baselines ------------------------------------------------------------------------
@dataclass
class LinearConfig:
    seed: int = 0  # accepted like every predictor's; the fit is deterministic


@register_latency_predictor("flops")
class FlopsPredictor(LatencyPredictor):
    """A line in FLOPs: latency = a * FLOPs + b."""

    config_class = LinearConfig

    def _x(self, graphs):
        return np.array([g.static[1] for g in graphs], dtype=np.float64)  # STATIC_FEATURES[1] is flops

    def fit(self, graphs, latency_ms, kernel_ms=None):
        y = _check(graphs, latency_ms)
        x = self._x(graphs)
        self.coef = np.polyfit(x, y, 1) if np.ptp(x) > 0 else np.array([0.0, y.mean()])
        return self

    def predict(self, graphs, kernel_ms=None):
        return np.polyval(self.coef, self._x(graphs))

    def state_dict(self) -> dict:
        return {"predictor": self.name, "config": asdict(self.config), "coef": list(map(float, self.coef))}

    def load_state_dict(self, state: dict) -> None:
        self.coef = np.array(state["coef"])


@register_latency_predictor("lut")
class LUTPredictor(FlopsPredictor):
    """Look-up table: c times the sum of the layers' latencies, each measured alone.

    c is the geometric mean of
    latency / sum over the training networks (one scale for the runtime's fusions and the
    measurement's per-layer overhead, fitted on relative error: a line in milliseconds
    would be fitted to the largest networks only)."""

    needs_kernels = True

    def _x(self, graphs, kernel_ms=None):
        if kernel_ms is None or len(kernel_ms) != len(graphs):
            raise PredictorError("the lut predictor needs each network's layers timed alone (kernel_ms)")
        return np.maximum(np.asarray(kernel_ms, dtype=np.float64), 1e-6)

    def fit(self, graphs, latency_ms, kernel_ms=None):
        y = _check(graphs, latency_ms)
        self.coef = np.array([float(np.exp(np.mean(np.log(y / self._x(graphs, kernel_ms))))), 0.0])
        return self

    def predict(self, graphs, kernel_ms=None):
        return np.polyval(self.coef, self._x(graphs, kernel_ms))


# --- neural predictors -------------------------------------------------------------------------
@dataclass
class NeuralConfig:
    epochs: int = 60
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.1
    dropout: float = 0.1
    seed: int = 0
    threads: int = 0  # torch threads (0: torch's default)
    device: str = "cpu"
    quiet: bool = True
    # members trained from their own seeds; a prediction is the mean of their log latencies
    # (member 0 is the single model's: ensemble=1 is the plain predictor)
    ensemble: int = 1
    # the network's layer count (log10) beside the static features: a runtime pays a fixed cost
    # per layer, which FLOPs and memory access do not show (small networks of many layers)
    layer_count: bool = False

    def validate(self):
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.ensemble < 1:
            raise PredictorError("epochs, batch_size, lr and ensemble must be positive")


@dataclass
class NARFormerLatencyConfig(NeuralConfig):
    """CPU-sized defaults (the paper's GPU models are wider: d_model 192 on its cells). ``attention="graph"`` lets a layer attend to its graph neighbours
    (and the global tokens) only in the first stage."""

    num_freqs: int = 16  # unused by the layer tokens (fixed 32 per code); kept for NARFormerNet
    d_model: int = 64
    heads: int = 4
    ffn: int = 256
    depth: int = 2
    fusion_stages: int = 3
    fusion_depth: int = 1
    drop_path: float = 0.0
    # "fusion" (the paper's), "mean", or "layer_sum": latency as the sum of per-layer latencies,
    # each predicted from its layer's stage-1 state (see NARFormerNet)
    pool: str = "fusion"
    attention: str = "full"
    # none on the attention weights: with hundreds of layers per network the N x N dropout masks
    # were a third of a training step on the CPU (the other dropouts stay)
    attention_dropout: float = 0.0
    # two more codes per layer: its MACs and memory access (beyond the supplement's token)
    cost_codes: bool = False
    # the layer's values also as plain log2 numbers beside their codes (codes do not order magnitudes)
    raw_values: bool = False
    # the signed-log sum of the layers' states beside the fused token at the head (GNN-like readout)
    sum_readout: bool = False

    def validate(self):
        super().validate()
        if not 0 <= self.attention_dropout < 1:
            raise PredictorError(f"attention_dropout must be in [0, 1), got {self.attention_dropout}")
        if self.pool not in ("fusion", "mean", "layer_sum") or self.attention not in ("full", "graph"):
            raise PredictorError(f"pool is fusion|mean|layer_sum (got {self.pool!r}) and attention full|graph "
                                 f"(got {self.attention!r})")
        if self.pool == "layer_sum" and self.sum_readout:
            raise PredictorError("sum_readout joins the fused token: it has no use with pool='layer_sum'")
        if self.d_model % self.heads:
            raise PredictorError(f"d_model {self.d_model} is not divisible by heads {self.heads}")


@dataclass
class GNNLatencyConfig(NeuralConfig):
    hidden: int = 128
    layers: int = 3


class NeuralLatencyPredictor(LatencyPredictor):
    """Shared training: AdamW, linear warm-up and decay, MSE on standardised log latency."""

    def build_model(self, num_static: int):
        raise NotImplementedError

    def inputs(self, graphs: list[CompactGraph]) -> dict:
        raise NotImplementedError

    def _static(self, graphs):
        return (self._static_raw(graphs) - self.static_mean) / self.static_std

    def _static_raw(self, graphs):
        s = static_matrix(graphs)
        if self.config.layer_count:
            s = np.concatenate([s, np.log10([[float(g.num_nodes)] for g in graphs])], axis=1)
        return s

    def _per_graph(self, graph, encode):
        """``encode(graph)``, kept for the length of a fit (every epoch re-batches the same
        networks; their encodings do not change)."""
        cache = getattr(self, "_cache", None)
        if cache is None:
            return encode(graph)
        key = id(graph)
        if key not in cache:
            cache[key] = encode(graph)
        return cache[key]

    def _batches(self, sizes: np.ndarray, rng=None):
        """Index lists of similar-sized networks; shuffled (within and across) when rng is given."""
        if rng is None:
            order = np.argsort(sizes, kind="stable")
        else:  # sort by size with noise, so batches mix neighbours in size but differ per epoch
            order = np.argsort(sizes * np.exp(rng.normal(0, 0.1, len(sizes))), kind="stable")
        batches = [order[i:i + self.config.batch_size] for i in range(0, len(order), self.config.batch_size)]
        if rng is not None:
            rng.shuffle(batches)
        return batches

    def fit(self, graphs, latency_ms, kernel_ms=None):
        cfg = self.config
        y = np.log(_check(graphs, latency_ms))
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        s = self._static_raw(graphs)
        self.static_mean, self.static_std = s.mean(0), s.std(0) + 1e-6
        self.y_mean, self.y_std = float(y.mean()), float(y.std() + 1e-6)
        target = torch.tensor((y - self.y_mean) / self.y_std, dtype=torch.float32)
        sizes = np.array([g.num_nodes for g in graphs])
        self.typical_layers = float(np.median(sizes)) + 1  # with the end token
        self.history, self.models = [], []
        self._cache = {}  # the networks' encodings, shared by the members
        try:
            for member in range(cfg.ensemble):
                seed = cfg.seed if member == 0 else int(np.random.default_rng([cfg.seed, member]).integers(2 ** 31))
                self.models.append(self._fit_member(graphs, sizes, target, s.shape[1], seed, member))
        finally:
            self._cache = None
        return self

    def _fit_member(self, graphs, sizes, target, num_static, seed, member):
        from predictor.base import param_groups, warmup_linear
        cfg = self.config
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        device = torch.device(cfg.device)
        model = self.build_model(num_static).to(device)
        opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr)
        steps = cfg.epochs * len(self._batches(sizes))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_linear(steps, cfg.warmup))
        self._train(model, opt, sched, graphs, sizes, target, rng, device, member)
        return model.eval()

    def _train(self, model, opt, sched, graphs, sizes, target, rng, device, member=0):
        cfg = self.config
        start = time.perf_counter()
        for epoch in range(cfg.epochs):
            model.train()
            total = 0.0
            for index in self._batches(sizes, rng):
                batch = self._to(self.inputs([graphs[i] for i in index]), device)
                loss = torch.nn.functional.mse_loss(model(**batch), target[index].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(index)
            self.history.append({"member": member, "epoch": epoch + 1, "loss": total / len(graphs),
                                 "seconds": round(time.perf_counter() - start, 1)})
            if not cfg.quiet:
                print(f"fit {self.name} epoch {epoch + 1}/{cfg.epochs} loss {total / len(graphs):.4f}", flush=True)

    @staticmethod
    def _to(inputs, device):
        return {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v).to(device) for k, v in inputs.items()}

    def predict(self, graphs, kernel_ms=None):
        if not getattr(self, "models", None):
            raise PredictorError(f"latency predictor {self.name} is not fitted")
        out = np.zeros(len(graphs))
        sizes = np.array([g.num_nodes for g in graphs])
        with torch.inference_mode():
            for index in self._batches(sizes):
                batch = self._to(self.inputs([graphs[i] for i in index]), torch.device(self.config.device))
                out[index] = np.mean([m(**batch).double().cpu().numpy() for m in self.models], axis=0)
        return np.exp(out * self.y_std + self.y_mean)

    def state_dict(self) -> dict:
        return {"predictor": self.name, "config": asdict(self.config),
                "norms": {"static_mean": self.static_mean.tolist(), "static_std": self.static_std.tolist(),
                          "y_mean": self.y_mean, "y_std": self.y_std},
                "models": [{k: v.detach().cpu().clone() for k, v in m.state_dict().items()} for m in self.models]}

    def load_state_dict(self, state: dict) -> None:
        norms = state["norms"]
        self.static_mean, self.static_std = np.array(norms["static_mean"]), np.array(norms["static_std"])
        self.y_mean, self.y_std = norms["y_mean"], norms["y_std"]
        self.models = []
        for weights in state["models"] if "models" in state else [state["model"]]:  # "model": one, before ensembles
            model = self.build_model(len(self.static_mean))
            model.load_state_dict(weights)
            self.models.append(model.eval())


@register_latency_predictor("narformer")
class NARFormerLatencyPredictor(NeuralLatencyPredictor):
    """NAR-Former on whole networks: a token per layer, static features at the head."""

    config_class = NARFormerLatencyConfig

    def build_model(self, num_static):
        from predictor.narformer import NARFormerNet
        cfg = self.config
        model = NARFormerNet(cfg, token_width=token_width(cfg.cost_codes, cfg.raw_values), num_static=num_static,
                             squash=False, depth_width=TOKEN_WIDTH, sum_readout=cfg.sum_readout,
                             layer_sum_scale=self.y_std if cfg.pool == "layer_sum" else None)
        if cfg.pool == "layer_sum" and getattr(self, "typical_layers", None):
            # start each layer at an even share of the mean latency: the sum starts near the mean
            model.layer_head[-1].bias.data.fill_(-np.log(self.typical_layers) / self.y_std)
        return model

    def inputs(self, graphs):
        from predictor.tokenizer import sincos_code
        encode = functools.partial(_layer_tokens, cost_codes=self.config.cost_codes,
                                   raw_values=self.config.raw_values)
        tokens, mask, sizes = stack_tokens([self._per_graph(g, encode) for g in graphs])
        out = {"tokens": tokens, "mask": mask, "static": self._static(graphs).astype(np.float32),
               # the network's depth (layer count) where a cell's depth token is
               "depth_code": sincos_code(sizes, TOKEN_WIDTH // 2).astype(np.float32)}
        if self.config.attention == "graph":
            out["neighbours"] = _graph_attention(_adjacency(graphs, int(sizes.max())), mask, sizes)
        return out


def _layer_tokens(graph, cost_codes=False, raw_values=False):
    return narformer_tokens([graph], cost_codes=cost_codes, raw_values=raw_values)[0][0]


def _adjacency(graphs, n):
    adjacency = np.zeros((len(graphs), n, n), dtype=bool)
    for i, g in enumerate(graphs):
        adjacency[i, g.sources[0], g.sources[1]] = True
    return adjacency


def _graph_attention(adjacency, token_mask, sizes):
    """bool [B, N+2, N+2] over [depth token, layers, end token]: a layer reads itself, its
    graph neighbours and the two global tokens, which read every real token."""
    b, n, _ = adjacency.shape
    size = n + 2
    allowed = np.zeros((b, size, size), dtype=bool)
    adj = adjacency > 0
    allowed[:, 1:n + 1, 1:n + 1] = adj | adj.transpose(0, 2, 1)
    allowed |= np.eye(size, dtype=bool)[None]
    real = np.concatenate([np.ones((b, 1), dtype=bool), token_mask], axis=1)
    is_global = np.zeros((b, size), dtype=bool)
    is_global[:, 0] = True
    is_global[np.arange(b), 1 + sizes] = True
    allowed |= is_global[:, :, None] & real[:, None, :]
    allowed |= real[:, :, None] & is_global[:, None, :]
    return allowed


@register_latency_predictor("gnn")
class GNNLatencyPredictor(NeuralLatencyPredictor):
    """NNLQP's GNN: GraphSAGE layers on per-layer features, static features at the head."""

    config_class = GNNLatencyConfig

    def build_model(self, num_static):
        from .encoding import GNN_COLUMNS
        from .graph import OP_VOCAB
        return _SageNet(len(OP_VOCAB) + len(GNN_COLUMNS), num_static, self.config.hidden, self.config.layers,
                        self.config.dropout)

    def inputs(self, graphs):
        features, edges, graph = gnn_batch(graphs, [self._per_graph(g, gnn_node_features) for g in graphs])
        return {"features": features, "edges": edges, "graph": graph, "static": self._static(graphs).astype(np.float32)}


class _SageNet(nn.Module):
    def __init__(self, in_features, num_static, hidden, layers, dropout):
        super().__init__()
        self.inp = nn.Linear(in_features, hidden)
        self.self_lin = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers))
        self.nb_lin = nn.ModuleList(nn.Linear(hidden, hidden, bias=False) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.drop = nn.Dropout(dropout)
        self.static = nn.Sequential(nn.Linear(num_static, hidden), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, features, edges, graph, static):
        """Sparse message passing on the batch's disjoint graph: each node averages its
        producers and consumers (index_add over the edge list, not a padded N x N product)."""
        receiver = torch.cat([edges[1], edges[0]])
        sender = torch.cat([edges[0], edges[1]])
        degree = torch.zeros(len(features), 1, device=features.device).index_add_(
            0, receiver, torch.ones(len(receiver), 1, device=features.device)).clamp(min=1.0)
        h = torch.relu(self.inp(features))
        for lin_self, lin_nb, norm in zip(self.self_lin, self.nb_lin, self.norms):
            nb = torch.zeros_like(h).index_add_(0, receiver, h[sender]) / degree
            h = h + self.drop(torch.relu(norm(lin_self(h) + lin_nb(nb))))
        count = torch.bincount(graph, minlength=len(static)).clamp(min=1)[:, None].to(h.dtype)
        total = torch.zeros(len(static), h.shape[1], device=h.device, dtype=h.dtype).index_add_(0, graph, h)
        mean = total / count
        # the sum readout carries the network's size; a signed log keeps 800 layers in range
        signed_log = torch.sign(total) * torch.log1p(total.abs())
        return self.head(torch.cat([signed_log, mean, self.static(static)], dim=-1)).squeeze(-1)


def get_latency_predictor(name: str, **config) -> LatencyPredictor:
    cls = LATENCY_PREDICTORS.get(name)
    try:
        cfg = configs.build(cls.config_class, config, path=f"latency predictor {name}")
    except ConfigError as err:
        raise PredictorError(str(err)) from None
    if hasattr(cfg, "validate"):
        cfg.validate()
    return cls(cfg)


FILE_FORMAT = "narnas-latency-predictor/1"


def save_latency_predictor(predictor: LatencyPredictor, path, **info) -> None:
    """A fitted predictor as one file (atomic), with ``info`` (its data, platform) beside it."""
    from narnas.files import atomic_torch_save
    atomic_torch_save(path, {"format": FILE_FORMAT, **predictor.state_dict(), "info": info})


def load_latency_predictor(path) -> LatencyPredictor:
    """A predictor saved by :func:`save_latency_predictor`, or a PredictorError naming the file."""
    from pathlib import Path
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise PredictorError(f"{path} is not a latency predictor file ({type(err).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FILE_FORMAT:
        raise PredictorError(f"{path} is not a latency predictor file (python -m bench.latency --save)")
    predictor = get_latency_predictor(state["predictor"], **state["config"])
    predictor.load_state_dict(state)
    return predictor
