"""A plugin in its own module: a tiny search space and an evaluator for it, registered with the
engine's decorators, searched without editing the package.

  PYTHONPATH=examples python -m search.run --plugin line_plugin --space line --strategy rea --budget 30

Archs are the integers 0..999; a mutation moves a few steps; the evaluator's value peaks at 617.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import spaces
from search.evaluators import Evaluator
from search.registry import register_evaluator

SIZE, PEAK = 1000, 617


@spaces.register_space("line")
class LineSpace(spaces.SearchSpace, spaces.Sampling):
    name = "line"
    evaluators = ("line-distance",)

    def count(self):
        return SIZE

    def key(self, arch):
        return f"a{arch}"

    def to_json(self, arch):
        return arch

    def from_json(self, obj):
        value = json.loads(obj) if isinstance(obj, str) else obj
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < SIZE:
            raise spaces.InvalidArchError(f"a line arch is an integer in 0..{SIZE - 1}, got {obj!r}")
        return value

    def sample(self, rng):
        return int(rng.integers(SIZE))

    def mutate(self, arch, rng):
        step = int(rng.choice([-3, -2, -1, 1, 2, 3]))
        return arch + step if 0 <= arch + step < SIZE else arch - step


@dataclass
class DistanceConfig:
    peak: int = PEAK


@register_evaluator("line-distance")
class LineDistance(Evaluator):
    config_class = DistanceConfig
    metric = "minus_distance"
    test_metric = None

    def evaluate(self, arch_json):
        return {"val": -abs(int(arch_json) - self.config.peak), "test": None}
