"""The ``cifar10-train`` evaluator: each arch trained on CIFAR-10 with its space's training
recipe (``training.recipes``); validation accuracy is the search value, test accuracy is
reported."""
from __future__ import annotations

import hashlib
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import SearchError
from ..registry import register_evaluator
from . import Evaluator


@dataclass
class CIFAR10TrainingConfig:
    preset: str = "search"  # a preset of the space's recipe (DARTS: final, search or smoke)
    train: dict = field(default_factory=dict)  # training config fields over the preset's
    data_dir: str | None = None  # CIFAR-10 python batches; None: $NARNAS_CIFAR10_DIR, then the data folder
    #: epochs after which the validation accuracy is reported to a stopper (--stopper; e.g. [10, 30])
    rungs: list = field(default_factory=list)


@register_evaluator("cifar10-train")
class TrainingEvaluator(Evaluator):
    """Trains each arch on CIFAR-10 with its space's training recipe (a preset).

    Each arch checkpoints every epoch under ``RUN/checkpoints/<key digest>/``, so a
    retried or resumed trial continues from its last epoch instead of starting over."""

    config_class = CIFAR10TrainingConfig
    default_executor = "ray"

    def __init__(self, space, config=None, context=None):
        from training.datasets import cifar10
        from training.recipes import get_recipe
        super().__init__(space, config or CIFAR10TrainingConfig(), context)
        self.recipe = get_recipe(self.space_name)
        if self.recipe.dataset != "cifar10":
            raise SearchError(f"the {self.space_name} training recipe trains on {self.recipe.dataset}, not CIFAR-10")
        self.training = self.recipe.preset(self.config.preset, **self.config.train)  # bad presets / keys fail here
        if self.context.threads and not self.training.threads:
            self.training.threads = self.context.threads
        self.data_dir = str(cifar10.resolve_dir(self.config.data_dir))  # a missing folder fails in the driver
        self._data = None

    @property
    def metric(self) -> str:
        return "cifar10_val_acc"

    @property
    def test_metric(self) -> str:
        return "cifar10_test_acc"

    def metrics(self):
        return ["seconds", "params", "epochs", "train_loss", "threads", "precision"]

    def _load(self):
        if self._data is None:
            warn = lambda msg: print(msg, file=sys.stderr, flush=True)
            self._data = self.recipe.load_data(self.training, self.data_dir, warn=warn)
        return self._data

    def checkpoint_path(self, key: str):
        if self.context.run_dir is None:
            return None
        return Path(self.context.run_dir) / "checkpoints" / hashlib.sha1(key.encode()).hexdigest()[:16] / "checkpoint.pt"

    @property
    def reports(self) -> bool:
        return bool(self.config.rungs)

    def evaluate(self, arch_json, report=None) -> dict:
        space = self.space
        arch = space.from_json(arch_json)
        result = self.recipe.train(arch, space, self._load(), self.training,
                                   checkpoint=self.checkpoint_path(str(space.key(arch))),
                                   rungs=self.config.rungs if report else (), report=report)
        out = {k: result[k] for k in ("val", "test", "seconds", "params", "epochs", "train_loss", "threads",
                                      "precision")}
        if self.reports:
            out["curve"] = {str(h["epoch"]): h["val"] for h in result["history"] if "val" in h}
        if result.get("stopped"):
            out.update(stopped=True, fidelity=result["epochs"], cost=result["seconds"])
        return out

    def describe(self) -> dict:
        return dict(super().describe(), data_dir=self.data_dir, preset=self.config.preset,
                    training=asdict(self.training))

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_data"] = None  # each worker reads the data once
        return state
