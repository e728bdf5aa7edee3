"""The ``benchmark`` evaluator: look-ups in a space's tabular benchmark."""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..registry import register_evaluator
from . import Evaluator


@dataclass
class BenchmarkConfig:
    data: str | None = None  # a benchmark file; None: the space's default table
    metric: str | None = None  # the search signal; None: the table's validation metric
    test_metric: str | None = None  # reported, never used for selection; None: the table's test metric


@register_evaluator("benchmark")
class BenchmarkEvaluator(Evaluator):
    """Looks archs up in the space's benchmark (opened lazily, once per process)."""

    config_class = BenchmarkConfig

    def __init__(self, space, config=None, context=None):
        super().__init__(space, config or BenchmarkConfig(), context)
        self._bench = None
        self.check()  # fail in the driver, with a clear message, not in every trial

    def _open(self):
        if self._bench is None:
            import spaces
            self._bench = spaces.get_benchmark(self.space, self.config.data)
        return self.space, self._bench

    @property
    def table(self):
        """The opened benchmark."""
        return self._open()[1]

    def check(self):
        _, bench = self._open()
        for m in (self.metric, self.test_metric):
            bench.column(m)  # unknown metrics list the valid ones

    @property
    def metric(self) -> str:
        return self.config.metric or self._open()[1].search_metric()

    @property
    def test_metric(self) -> str:
        return self.config.test_metric or self._open()[1].report_metric()

    def metrics(self):
        return ["seconds"]

    def evaluate(self, arch_json) -> dict:
        start = time.perf_counter()
        space, bench = self._open()
        arch = space.from_json(arch_json)
        return {"val": bench.query(arch, self.metric), "test": bench.query(arch, self.test_metric),
                "seconds": time.perf_counter() - start}

    def measure(self, name: str):
        space, bench = self._open()
        if name not in bench.metrics:
            return None
        return lambda arch: bench.query(arch, name)

    def measure_names(self) -> list[str]:
        return self._open()[1].metrics

    def describe(self) -> dict:
        return dict(super().describe(), data=self._bench.source if self._bench else self.config.data)

    def __getstate__(self):  # workers reopen the table from its file
        state = dict(self.__dict__)
        state["_bench"] = None
        return state
