"""A plugin for the cluster tests: the line space of examples/line_plugin.py with an evaluator
that takes a few seconds (as training would), so a node can be killed while a trial runs on it;
with ``spread``, each arch's delay is scaled by a log-normal factor seeded by the arch (mean 1:
heavy-tailed durations). Each evaluation leaves ``ARCH.NODE.PID.start`` and ``.done`` files in
``marks``, NODE from the node's ``$NARNAS_TEST_NODE`` (else its Ray node id), so the test sees
where a trial runs."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from line_plugin import PEAK, LineDistance

from search.registry import register_evaluator


@dataclass
class SlowConfig:
    peak: int = PEAK
    delay: float = 2.0
    spread: float = 0.0
    marks: str = ""


@register_evaluator("line-slow")
class SlowLine(LineDistance):
    config_class = SlowConfig
    spaces = ("line",)
    default_executor = "ray"

    def evaluate(self, arch_json):
        stem = f"{int(arch_json)}.{os.environ.get('NARNAS_TEST_NODE') or node_id()}.{os.getpid()}"
        if self.config.marks:
            Path(self.config.marks, stem + ".start").touch()
        time.sleep(self.delay(int(arch_json)))
        if self.config.marks:
            Path(self.config.marks, stem + ".done").touch()
        return super().evaluate(arch_json)

    def delay(self, arch: int) -> float:
        sigma = self.config.spread
        factor = np.exp(np.random.default_rng(arch).normal(-sigma * sigma / 2, sigma)) if sigma else 1.0
        return self.config.delay * float(factor)


def node_id() -> str:
    try:
        import ray
        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else "driver"
    except ImportError:
        return "driver"
