"""A plugin for the cluster test: the line space of examples/line_plugin.py with an evaluator
that takes a few seconds (as training would), so a node can be killed while a trial runs on it.
Each evaluation leaves ``ARCH.NODE.PID.start`` and ``.done`` files in ``marks``, NODE from the
node's ``$NARNAS_TEST_NODE``, so the test sees where a trial runs."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from line_plugin import PEAK, LineDistance

from search.registry import register_evaluator


@dataclass
class SlowConfig:
    peak: int = PEAK
    delay: float = 2.0
    marks: str = ""


@register_evaluator("line-slow")
class SlowLine(LineDistance):
    config_class = SlowConfig
    spaces = ("line",)
    default_executor = "ray"

    def evaluate(self, arch_json):
        stem = f"{int(arch_json)}.{os.environ.get('NARNAS_TEST_NODE', 'driver')}.{os.getpid()}"
        if self.config.marks:
            Path(self.config.marks, stem + ".start").touch()
        time.sleep(self.config.delay)
        if self.config.marks:
            Path(self.config.marks, stem + ".done").touch()
        return super().evaluate(arch_json)
