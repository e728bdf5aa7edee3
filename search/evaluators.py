"""Evaluators turn an architecture (in JSON form) into its result.

``evaluate(arch_json)`` returns ``{"val": search metric, "test": reported metric or None,
...}`` or raises; it must be picklable, since Ray ships it to its workers.
"""
from __future__ import annotations

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
        state["data"] = self.data
        return state
