"""Tabular benchmarks: look up the measured metrics of an architecture.

Every reader of a space (official formats or the compact tables) produces the same
in-memory form: one row per architecture key and one float column per metric.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .errors import DataFileError, SpacesError, UnknownNameError


class ArchNotInBenchmarkError(SpacesError, KeyError):
    """The architecture is valid but the benchmark file holds no entry for it."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0])


class MissingMetricError(SpacesError, ValueError):
    """The table lacks the column a metric defaults to, and none was named."""


@dataclass(eq=False)
class Benchmark:
    """Metrics of the architectures of one space, read from ``source``.

    ``default_metric`` is the search signal (a validation accuracy); ``test_metric``
    the figure reported for the chosen architecture and never used for selection. Either
    is None when the table lacks the column it names by default (a table of another
    dataset): the metric must then be chosen by name.
    """

    space: object
    keys: Sequence  # one canonical key per row
    columns: dict[str, np.ndarray]
    make_arch: Callable[[int], object]  # row -> arch
    source: str
    default_metric: str | None
    test_metric: str | None
    #: the column the space expects as its search metric, named in the error when it is missing
    expected_metric: str | None = None
    #: whether ``test_metric`` was measured on the same trained networks as the search metric
    #: (NB101: one training run gives both), so predictors can be scored against it
    paired_test: bool = False
    #: the column of what evaluating an arch cost (the seconds its training took): a search's
    #: simulated clock and its training cost read it; None when the table has none
    cost_metric: str | None = None
    #: lower fidelities of the default search metric, cheapest first: (step, value column, the
    #: share of ``cost_metric`` an evaluation up to that step costs); NB201: its 12-epoch
    #: validation accuracy at 12/200 of the 200-epoch training time
    fidelities: tuple = ()
    #: whether the table holds every architecture of the space; None: as many rows as the space
    #: counts. A search over a partial table proposes only its archs (:mod:`spaces.subset`)
    complete: bool | None = None
    _row: dict = field(init=False, repr=False)

    def __post_init__(self):
        self._row = {k: i for i, k in enumerate(self.keys)}
        for name, col in self.columns.items():
            if len(col) != len(self.keys):
                raise DataFileError(f"{self.source}: column {name!r} has {len(col)} rows, expected {len(self.keys)}")

    def covers_space(self) -> bool:
        """Whether every architecture of the space has a row."""
        return self.complete if self.complete is not None else len(self) >= self.space.count()

    @property
    def metrics(self) -> list[str]:
        return sorted(self.columns)

    def __len__(self):
        return len(self.keys)

    def __contains__(self, arch):
        return self.space.key(arch) in self._row

    def row(self, arch) -> int:
        key = self.space.key(arch)
        try:
            return self._row[key]
        except KeyError:
            raise ArchNotInBenchmarkError(
                f"architecture {key} is not in {self.source} ({len(self)} entries)") from None

    def column(self, metric: str) -> np.ndarray:
        try:
            return self.columns[metric]
        except KeyError:
            if not self.columns:
                raise MissingMetricError(f"{self.source} has no metric columns, so no {metric!r} (a metric is a "
                                         "column of numbers beside 'arch')") from None
            raise UnknownNameError("metric", metric, self.columns) from None

    def search_metric(self) -> str:
        """The default search metric; an error naming the columns when the table has none."""
        return self._default(self.default_metric, f"column {self.expected_metric!r} (the default search metric)",
                             "search metric (--metric / --target)")

    def report_metric(self) -> str:
        """The default test metric; an error naming the columns when the table has none."""
        return self._default(self.test_metric, "default test metric column",
                             "reported metric (--test-metric / --test-target)")

    def _default(self, metric: str | None, missing: str, choose: str) -> str:
        if metric is None:
            raise MissingMetricError(f"{self.source} has no {missing}: name the {choose}; "
                                     f"columns: {', '.join(self.metrics) or 'none beside arch'}")
        return metric

    def query(self, arch, metric: str | None = None) -> float:
        """The value of ``metric`` (default: the search metric) for ``arch``."""
        col = self.column(metric or self.search_metric())
        return float(col[self.row(arch)])

    def arch(self, row: int):
        return self.make_arch(row)

    def archs(self) -> list:
        """Every architecture of the table, in row order."""
        return [self.make_arch(i) for i in range(len(self))]
