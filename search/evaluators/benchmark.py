"""The ``benchmark`` evaluator: look-ups in a space's tabular benchmark."""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import SearchError
from ..registry import register_evaluator
from . import ANY_SPACE, Evaluator


@dataclass
class BenchmarkConfig:
    data: str | None = None  # a benchmark file; None: the space's default table
    metric: str | None = None  # the search signal; None: the table's validation metric
    test_metric: str | None = None  # reported, never used for selection; None: the table's test metric
    #: the column of what one evaluation costs in seconds (the simulated clock, the training
    #: cost); None: the table's training-time column (NB201's 200-epoch train time), or one
    #: unit per evaluation where it has none
    cost: str | None = None
    #: >0: each arch's cost times a log-normal factor of this sigma (mean 1, seeded by the arch's
    #: key): the heavy-tailed durations of a real cluster (slow nodes, retries), simulated
    cost_spread: float = 0.0

    def validate(self):
        if self.cost_spread < 0:
            raise SearchError(f"cost_spread must be >= 0, got {self.cost_spread}")


@register_evaluator("benchmark")
class BenchmarkEvaluator(Evaluator):
    """Looks archs up in a table: the space's benchmark, or your own results (--data) for any space.

    The table is opened lazily, once per process."""

    config_class = BenchmarkConfig
    spaces = (ANY_SPACE,)

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
        for m in (self.metric, self.test_metric, self.config.cost):
            if m is not None:
                bench.column(m)  # unknown metrics list the valid ones
        if self.metric in self.test_columns():
            raise SearchError(f"--metric {self.metric} is a test metric: a test value is reported, never searched "
                              f"on; search on a validation column ({', '.join(self.search_columns())})")

    def test_columns(self) -> set[str]:
        """The table's test values (the reported metric, unless it is the search metric itself,
        and every column named ``*_test_*``): never a search value nor a constraint, so they
        cannot steer a search."""
        named = {m for m in self.table.metrics if "test" in m.lower().split("_")}
        return named | ({self.test_metric} if self.test_metric != self.metric else set())

    def search_columns(self) -> list[str]:
        return [m for m in self.table.metrics if m not in self.test_columns()]

    @property
    def metric(self) -> str:
        return self.config.metric or self._open()[1].search_metric()

    @property
    def test_metric(self) -> str:
        return self.config.test_metric or self._open()[1].report_metric()

    def metrics(self):
        return ["cost", "seconds"]

    def search_space(self):
        """The space, confined to the table's archs where it lists only some."""
        table = self.table
        if table.covers_space():
            return self.space
        from spaces.subset import restrict
        return restrict(self.space, table.archs())

    @property
    def reports(self) -> bool:
        """A table's lower fidelities are reported where the search metric is its default one."""
        return bool(self.table.fidelities) and self.metric == self.table.default_metric

    def evaluate(self, arch_json, report=None) -> dict:
        start = time.perf_counter()
        space, bench = self._open()
        arch = space.from_json(arch_json)
        cost = self.evaluate_cost(arch)
        out = {}
        if self.reports:
            out["curve"] = curve = {}
            for step, column, share in bench.fidelities:
                curve[str(step)] = value = bench.query(arch, column)
                if report is not None and not report(step, value, cost * share):
                    return dict(out, val=value, test=None, cost=cost * share, fidelity=step, stopped=True,
                                seconds=time.perf_counter() - start)
        return dict(out, val=bench.query(arch, self.metric), test=bench.query(arch, self.test_metric), cost=cost,
                    seconds=time.perf_counter() - start)

    def evaluate_cost(self, arch) -> float:
        """What evaluating ``arch`` costs: the cost column's value (scaled by its seeded spread)."""
        space, bench = self._open()
        column = self.config.cost or bench.cost_metric
        cost = bench.query(arch, column) if column else 1.0
        if self.config.cost_spread > 0:
            import hashlib

            import numpy as np
            seed = int.from_bytes(hashlib.sha256(str(space.key(arch)).encode()).digest()[:8], "little")
            sigma = self.config.cost_spread
            cost *= float(np.exp(np.random.default_rng(seed).normal(-sigma * sigma / 2, sigma)))
        return cost

    def cost(self, result: dict) -> float:
        return result["cost"]

    def measure(self, name: str):
        space, bench = self._open()
        if name not in bench.metrics:
            return None
        if name in self.test_columns():
            raise SearchError(f"constraint {name} is a test metric: a test value must never steer a search (it is "
                              f"reported, never selected on); constrain one of {', '.join(self.measure_names())}")
        return lambda arch: bench.query(arch, name)

    def measure_names(self) -> list[str]:
        return self.search_columns()

    def describe(self) -> dict:
        return dict(super().describe(), data=self._bench.source if self._bench else self.config.data)

    def __getstate__(self):  # workers reopen the table from its file
        state = dict(self.__dict__)
        state["_bench"] = None
        return state
