"""Evaluators turn an architecture (in JSON form) into its result.

``evaluate(arch_json)`` returns ``{"val": search metric, "test": reported metric or None,
...}`` or raises; it must be picklable, since Ray ships it to its workers.
"""
from __future__ import annotations

import sys
import time


class BenchmarkEvaluator:
    """Look-ups in a space's tabular benchmark (opened lazily, once per process)."""

    def __init__(self, space: str, data: str | None = None, metric: str | None = None,
                 test_metric: str | None = None):
        self.space_name, self.data = space, data
        self._metric, self._test_metric = metric, test_metric
        self._space = self._bench = None
        self.check()  # fail in the driver, with a clear message, not in every trial

    def _open(self):
        if self._bench is None:
            import spaces
            self._space = spaces.get_space(self.space_name)
            self._bench = spaces.get_benchmark(self.space_name, self.data)
        return self._space, self._bench

    def check(self):
        _, bench = self._open()
        for m in (self.metric, self.test_metric):
            bench.column(m)  # unknown metrics list the valid ones

    @property
    def metric(self) -> str:
        return self._metric or self._open()[1].default_metric

    @property
    def test_metric(self) -> str:
        return self._test_metric or self._open()[1].test_metric

    def evaluate(self, arch_json) -> dict:
        start = time.perf_counter()
        space, bench = self._open()
        arch = space.from_json(arch_json)
        return {"val": bench.query(arch, self.metric), "test": bench.query(arch, self.test_metric),
                "seconds": time.perf_counter() - start}

    def describe(self) -> dict:
        return {"kind": "benchmark", "data": self._bench.source if self._bench else self.data,
                "metric": self.metric, "test_metric": self.test_metric}

    def __getstate__(self):  # workers reopen the table from its file
        state = dict(self.__dict__)
        state["_space"] = state["_bench"] = None
        state["_metric"], state["_test_metric"] = self.metric, self.test_metric
        return state


class TrainingEvaluator:
    """Trains each arch on CIFAR-10 (``search.training``) and reports validation accuracy
    as the search value and test accuracy for the record.

    Each arch checkpoints every epoch under ``checkpoints/<key digest>/``, so a retried or
    resumed trial continues from its last epoch instead of starting over.
    """

    def __init__(self, space: str, preset: str = "search", overrides: dict | None = None,
                 data_dir: str | None = None, checkpoints: str | None = None, threads: int = 0):
        from . import cifar10, training
        self.space_name, self.preset, self.overrides = space, preset, dict(overrides or {})
        self.config = training.preset(preset, **self.overrides)  # unknown presets / keys fail here
        if threads and not self.config.threads:
            self.config.threads = threads
        self.data_dir = str(cifar10.resolve_dir(data_dir))  # a missing folder fails in the driver
        self.checkpoints = checkpoints
        self._data = None

    @property
    def metric(self) -> str:
        return "cifar10_val_acc"

    @property
    def test_metric(self) -> str:
        return "cifar10_test_acc"

    def _load(self):
        if self._data is None:
            from . import cifar10
            warn = lambda msg: print(msg, file=sys.stderr, flush=True)
            self._data = cifar10.load(self.data_dir, self.config.val_size, self.config.fraction, warn=warn)
        return self._data

    def checkpoint_path(self, key: str):
        import hashlib
        from pathlib import Path
        if self.checkpoints is None:
            return None
        return Path(self.checkpoints) / hashlib.sha1(key.encode()).hexdigest()[:16] / "checkpoint.pt"

    def evaluate(self, arch_json) -> dict:
        import spaces
        from . import training
        space = spaces.get_space(self.space_name)
        arch = space.from_json(arch_json)
        result = training.train(arch, space, self._load(), self.config,
                                checkpoint=self.checkpoint_path(str(space.key(arch))))
        return {k: result[k] for k in ("val", "test", "seconds", "params", "epochs", "train_loss")}

    def describe(self) -> dict:
        from dataclasses import asdict
        return {"kind": "training", "data_dir": self.data_dir, "preset": self.preset,
                "training": asdict(self.config), "metric": self.metric, "test_metric": self.test_metric}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_data"] = None  # each worker reads the data once
        return state
