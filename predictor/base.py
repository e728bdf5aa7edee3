"""The predictor interface and the training recipe shared by the neural predictors.

A predictor sees only graphs (``spaces.ArchGraph``-like objects with ``ops``,
``adjacency`` and ``vocab``) and numbers; it never imports a search space.
"""
from __future__ import annotations

import abc
import copy
import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from narnas.progress import Progress, interactive

from .errors import PredictorError
from .graph_inputs import check_names, fit_scaling, scale
from .graphs import GraphBatch, batch_graphs
from .metrics import kendall_tau


def check_choice(name: str, value, choices: tuple) -> None:
    """A PredictorError naming the valid values when ``value`` is not one of ``choices``."""
    if value not in choices:
        names = [repr(c) for c in choices]
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        raise PredictorError(f"{name} must be {listed}, got {value!r}")


def check_device(device: str) -> None:
    """A PredictorError unless ``device`` names a torch device of type cpu or cuda."""
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        kind = None
    if kind not in ("cpu", "cuda"):
        raise PredictorError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")


@dataclass
class TrainConfig:
    """The optimisation recipe (AdamW, linear warm-up then linear decay, EMA, model selection)."""

    epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.01  # not applied to norms and biases
    warmup: float = 0.1  # fraction of the steps
    ema_decay: float = 0.99  # 0 disables the EMA
    # How targets are mapped into (0, 1) for the sigmoid head: "rank" (their empirical
    # quantiles: every pair counts equally, as in Kendall's tau) or "minmax" (affine).
    target_transform: str = "rank"
    val_every: int = 10  # epochs between validation checks (model selection)
    seed: int = 0
    device: str = "cpu"  # "cuda", "cuda:1", ... where there is a GPU
    threads: int = 0  # torch CPU threads; 0 = all cores
    quiet: bool = True  # no progress bar
    #: per-graph numbers the head takes beside the graph, by name (the graphs' graph_features,
    #: e.g. zero-cost proxies: ("synflow", "jacov")); see predictor.graph_inputs
    graph_inputs: tuple = ()

    def validate(self):
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise PredictorError(f"{name} must be >= 1, got {getattr(self, name)}")
        check_choice("target_transform", self.target_transform, ("rank", "minmax"))
        check_names(self.graph_inputs)
        if not 0 <= self.ema_decay < 1:
            raise PredictorError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not self.lr > 0 or not self.weight_decay >= 0 or not 0 <= self.warmup <= 1:
            raise PredictorError(f"lr must be > 0, weight_decay >= 0 and warmup in [0, 1]; got lr {self.lr}, "
                                 f"weight_decay {self.weight_decay}, warmup {self.warmup}")
        for name in ("dropout", "drop_path"):  # the fields of the predictors that have them
            value = getattr(self, name, 0.0)
            if not 0 <= value < 1:
                raise PredictorError(f"{name} is a probability in [0, 1), got {value}")
        check_device(self.device)


class Predictor(abc.ABC):
    """fit(graphs, y, val=None) -> self; predict(graphs) -> scores; state_dict round trip."""

    name: str
    config_class: type

    def __init__(self, config):
        self.config = config

    @abc.abstractmethod
    def fit(self, graphs: Sequence, y, val: tuple | None = None, init_state: dict | None = None,
            capacity: int | None = None) -> "Predictor":
        """Train on (graphs, y); ``val`` = (graphs, y) selects the model; ``init_state``
        (a ``state_dict()`` of the same predictor) warm-starts the weights; ``capacity`` is the
        most nodes a graph given to ``predict`` later may have (default: the most seen here)."""

    @abc.abstractmethod
    def predict(self, graphs: Sequence) -> np.ndarray:
        ...

    @abc.abstractmethod
    def state_dict(self) -> dict:
        ...

    @abc.abstractmethod
    def load_state_dict(self, state: dict) -> None:
        ...


def check_training_data(graphs, y) -> np.ndarray:
    """Targets as float64; clear errors for empty, mismatched or non-finite data."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if len(graphs) == 0:
        raise PredictorError("cannot fit on an empty training set")
    if len(graphs) != len(y):
        raise PredictorError(f"{len(graphs)} graphs but {len(y)} targets")
    bad = np.flatnonzero(~np.isfinite(y))
    if len(bad):
        raise PredictorError(f"{len(bad)} targets are NaN or infinite (first at position {bad[0]})")
    if len(y) > 1 and np.ptp(y) == 0:
        raise PredictorError("all targets are equal: nothing to rank")
    return y


def param_groups(model: nn.Module, weight_decay: float):
    """Weight decay on weight matrices only; none on norms, biases and embeddings of size 1-D."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_linear(total_steps: int, warmup: float):
    warm = max(1, int(total_steps * warmup))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total_steps - step) / max(1, total_steps - warm))
    return factor


class TorchPredictor(Predictor):
    """A neural predictor trained with the shared recipe.

    Subclasses turn a GraphBatch into model inputs (``encode``), build the model
    (``build_model``), and may prepare extra training inputs (``training_inputs``) and
    loss terms (``loss``).
    """

    #: True when the model's input width depends on the node count (graphs larger than
    #: the training ones are then refused); attention and message passing are not.
    fixed_width = False

    def __init__(self, config):
        super().__init__(config)
        config.validate()
        self.model: nn.Module | None = None
        self.meta: dict = {}  # what the model's shape depends on (vocab size, max nodes, ...)
        self.target_map: dict = {}  # how scores map back to target values
        self.history: list[dict] = []

    # --- hooks ---------------------------------------------------------------------
    @abc.abstractmethod
    def encode(self, batch: GraphBatch) -> dict[str, torch.Tensor]:
        """Model inputs for a batch of graphs (computed once per fit / predict call)."""

    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        ...

    def training_inputs(self, graphs, rng: np.random.Generator) -> dict:
        """Inputs for the training set; the default is just ``encode`` (at the fitted width for
        fixed-width predictors, which may exceed the training graphs')."""
        return {"main": self.encode(batch_graphs(graphs, self.meta["max_nodes"] if self.fixed_width else None))}

    def loss(self, model, inputs: dict, index: torch.Tensor, y: torch.Tensor, gen: torch.Generator):
        pred = model(**take(inputs["main"], index))
        return nn.functional.mse_loss(pred, y)

    # --- shared recipe -------------------------------------------------------------
    def _device(self):
        if self.config.device.startswith("cuda") and not torch.cuda.is_available():
            raise PredictorError(f"device {self.config.device!r} requested but CUDA is not available")
        return torch.device(self.config.device)

    def _set_meta(self, graphs):
        batch = batch_graphs(graphs)
        self.meta = {"num_ops": len(graphs[0].vocab), "max_nodes": batch.max_nodes}
        if self.config.graph_inputs:
            self.meta["graph_inputs"] = fit_scaling(batch.graph_features, self.config.graph_inputs)

    @property
    def num_graph_inputs(self) -> int:
        return len(self.config.graph_inputs)

    def graph_input_tensor(self, batch: GraphBatch) -> torch.Tensor | None:
        """float32 [B, num_graph_inputs] for the head, scaled as the training graphs were; None without."""
        if not self.config.graph_inputs:
            return None
        return torch.from_numpy(scale(batch.graph_features, self.meta["graph_inputs"]))

    def with_graph_inputs(self, inputs: dict, batch: GraphBatch, key: str = "extra") -> dict:
        """``inputs`` plus the head's per-graph inputs under ``key`` where the config asks for some."""
        extra = self.graph_input_tensor(batch)
        return inputs if extra is None else {**inputs, key: extra}

    def _fit_target_map(self, y: np.ndarray) -> np.ndarray:
        """Set the target transform from the training targets; return them transformed."""
        if self.config.target_transform == "rank":
            sorted_y = np.sort(y)
            quantiles = (np.arange(len(y)) + 0.5) / len(y)
            self.target_map = {"kind": "rank", "quantiles": quantiles.tolist(), "values": sorted_y.tolist()}
        else:
            lo, hi = float(y.min()), float(y.max())
            margin = 0.1 * (hi - lo) if hi > lo else 1.0
            self.target_map = {"kind": "minmax", "lo": lo - margin, "hi": hi + margin}
        return self._map(y)

    def _map(self, y: np.ndarray) -> np.ndarray:
        """Target values -> the model's (0, 1) scale, by the map fitted on the training targets."""
        m = self.target_map
        if m["kind"] == "rank":
            return np.interp(y, m["values"], m["quantiles"])
        return (y - m["lo"]) / (m["hi"] - m["lo"])

    def _unmap(self, scores: np.ndarray) -> np.ndarray:
        m = self.target_map
        if m["kind"] == "rank":
            # Monotone, so the ranking is the model's. Beyond the training targets' range the
            # line continues at their mean slope: mutants of the best archs, scored above all of
            # them, keep values as far apart as their scores (not all the best training value).
            # Tied training values (accuracies on a few hundred images come in steps) make flat
            # stretches; a slope of 1e-9 keeps the model's order there, which ranking relies on.
            q, v = np.asarray(m["quantiles"]), np.asarray(m["values"])
            slope = (v[-1] - v[0]) / (q[-1] - q[0]) if len(q) > 1 and v[-1] > v[0] else 1e-6
            return np.interp(scores, q, v) + slope * (scores - np.clip(scores, q[0], q[-1])) + 1e-9 * scores
        return scores * (m["hi"] - m["lo"]) + m["lo"]

    def fit(self, graphs, y, val=None, init_state=None, capacity=None):
        y = check_training_data(graphs, y)
        cfg = self.config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        device = self._device()
        # draws on the fit's device: nothing crosses to the host inside an epoch (the same stream as before on a CPU)
        gen = torch.Generator(device).manual_seed(cfg.seed)
        self._set_meta(graphs)
        self.history = []
        if val is not None:
            self.meta["max_nodes"] = max(self.meta["max_nodes"], batch_graphs(val[0]).max_nodes)
        if capacity is not None:
            self.meta["max_nodes"] = max(self.meta["max_nodes"], int(capacity))
        target = torch.tensor(self._fit_target_map(y), dtype=torch.float32, device=device)
        inputs = to_device(self.training_inputs(graphs, rng), device)
        val_inputs = val_y = None
        if val is not None:
            val_y = check_training_data(val[0], val[1])
            val_width = self.meta["max_nodes"] if self.fixed_width else None
            val_inputs = to_device(self.encode(batch_graphs(val[0], val_width)), device)

        model = self.build_model()
        if init_state is not None:
            self._warm_start(model, init_state)
        model = model.to(device)
        self.selected = self._optimise(model, inputs, target, gen, cfg.epochs, cfg.lr,
                                       val=None if val_inputs is None else (val_inputs, val_y))
        if val_inputs is not None:
            self.refine(model, inputs, target, gen, val_inputs, val_y)
        self.model = model.eval()
        return self

    def _warm_start(self, model, state):
        if state.get("predictor") != self.name:
            raise PredictorError(f"cannot warm-start {self.name} from a {state.get('predictor')!r} state")
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as err:  # shapes differ: another vocabulary, size or width
            raise PredictorError(f"cannot warm-start {self.name}: the saved weights do not fit "
                                 f"({str(err).splitlines()[-1].strip()})") from None

    def refine(self, model, inputs, target, gen, val_inputs, val_y) -> None:
        """A stage after the main training that may use the validation set (TNASP's
        self-evolution); the default does nothing."""

    def _optimise(self, model, inputs, target, gen, epochs: int, lr: float, val=None, extra_loss=None,
                  label: str = "") -> str:
        """Train ``model`` in place with the shared recipe; load the best of last / EMA by
        validation tau (or the EMA without validation) and say which it was.

        ``extra_loss(model, gen)``, when given, is added to every step's loss.
        """
        cfg = self.config
        opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=lr)
        n = len(target)
        steps_per_epoch = math.ceil(n / cfg.batch_size)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_linear(epochs * steps_per_epoch, cfg.warmup))
        ema = copy.deepcopy(model).eval() if cfg.ema_decay > 0 else None
        best = (-math.inf, None, None)  # (val tau, which, state)
        progress = Progress(epochs, interactive(cfg.quiet), f"fit {self.name}{label}")
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(n, generator=gen, device=gen.device)
            total = torch.zeros((), device=target.device)
            for start in range(0, n, cfg.batch_size):
                index = order[start:start + cfg.batch_size]
                loss = self.loss(model, inputs, index, target[index], gen)
                if extra_loss is not None:
                    loss = loss + extra_loss(model, gen)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                if ema is not None:
                    _ema_update(ema, model, cfg.ema_decay)
                total += loss.detach() * len(index)
            info = {"loss": float(total) / n}
            last = epoch == epochs - 1
            if val is not None and ((epoch + 1) % cfg.val_every == 0 or last):
                for which, m in (("last", model), ("ema", ema)):
                    if m is None:
                        continue
                    tau = kendall_tau(self._predict_inputs(m, val[0]), val[1])
                    info[f"val_tau_{which}"] = tau
                    if tau > best[0]:
                        best = (tau, f"{which}@{epoch + 1}", copy.deepcopy(m.state_dict()))
            self.history.append({"epoch": epoch + 1, "stage": label.strip() or "main", **info})
            progress.update(epoch + 1, **info)
        progress.close()
        if best[2] is not None:
            model.load_state_dict(best[2])
            return best[1]
        if ema is not None:
            model.load_state_dict(ema.state_dict())
            return "ema"
        return "last"

    @torch.inference_mode()
    def _predict_inputs(self, model, inputs, chunk: int = 4096) -> np.ndarray:
        model.eval()
        n = len(next(iter(inputs.values())))
        out = [model(**{k: v[i:i + chunk] for k, v in inputs.items()}) for i in range(0, n, chunk)]
        return torch.cat(out).double().cpu().numpy()

    def predict(self, graphs) -> np.ndarray:
        if self.model is None:
            raise PredictorError(f"{self.name} predictor is not fitted: call fit() or load_state_dict() first")
        if len(graphs) == 0:
            return np.zeros(0)
        device = self._device()
        if self.fixed_width:
            batch = batch_graphs(graphs, self.meta["max_nodes"])
            return self._unmap(self._predict_inputs(self.model, to_device(self.encode(batch), device)))
        # One batch per node count: no padding, so attention needs no mask (its fast path)
        # and small cells cost less. The scores are those of a padded batch.
        sizes = np.array([len(g.ops) for g in graphs])
        scores = np.empty(len(graphs))
        for size in np.unique(sizes):
            rows = np.flatnonzero(sizes == size)
            batch = batch_graphs([graphs[i] for i in rows])
            scores[rows] = self._predict_inputs(self.model, to_device(self.encode(batch), device))
        return self._unmap(scores)

    def state_dict(self) -> dict:
        if self.model is None:
            raise PredictorError(f"{self.name} predictor is not fitted")
        return {"predictor": self.name, "config": asdict(self.config), "meta": dict(self.meta),
                "target_map": dict(self.target_map),
                "model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}}

    def load_state_dict(self, state: dict) -> None:
        if state.get("predictor") != self.name:
            raise PredictorError(f"state is of predictor {state.get('predictor')!r}, not {self.name!r}")
        from .registry import make_config
        self.config = make_config(self.config_class, state["config"], self.name)
        self.meta = dict(state["meta"])
        self.target_map = dict(state["target_map"])
        model = self.build_model()
        model.load_state_dict(state["model"])
        self.model = model.to(self._device()).eval()


def take(inputs: dict[str, torch.Tensor], index) -> dict[str, torch.Tensor]:
    return {k: v[index] for k, v in inputs.items()}


def to_device(tree, device):
    if isinstance(tree, torch.Tensor):
        return tree.to(device)
    if isinstance(tree, dict):
        return {k: to_device(v, device) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_device(v, device) for v in tree)
    return tree


@torch.no_grad()
def _ema_update(ema: nn.Module, model: nn.Module, decay: float):
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)
