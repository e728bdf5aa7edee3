"""The ``ofa-acc-predictor`` evaluator: OFA's published accuracy predictor as a surrogate of
the ImageNet top-1 accuracy of ``ofa_mbv3`` subnets (thousands of archs per second).

Its value is a *surrogate*, named ``ofa_surrogate_top1`` everywhere it is reported; there is
no test value. Each result also carries the subnet's parameters and MACs, and its Note10
latency when the space's tables cover it (width_mult 1.2 at 160..224 px).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from spaces import SpacesError

from ..registry import register_evaluator
from . import Evaluator


@dataclass
class OFASurrogateConfig:
    weights: str | None = None  # OFA's acc_predictor.pth; None: the copy packaged with the space


@register_evaluator("ofa-acc-predictor")
class OFASurrogateEvaluator(Evaluator):
    """OFA's released accuracy predictor as a surrogate of ImageNet top-1 (no training)."""

    config_class = OFASurrogateConfig

    def __init__(self, space, config=None, context=None):
        super().__init__(space, config or OFASurrogateConfig(), context)
        from spaces.ofa_mbv3 import SMALLEST
        from spaces.ofa_mbv3.surrogate import WEIGHTS, predict_top1
        self.weights = self.config.weights or str(WEIGHTS)
        smallest = space.from_json(dict(SMALLEST, r=space.resolutions[0]))
        predict_top1([smallest], self.weights)  # a bad weights file fails here, not in trials
        try:
            space.check_measure("latency_note10")
            self.latency = True
        except SpacesError:  # another width or resolutions: the tables do not cover this space
            self.latency = False

    @property
    def metric(self) -> str:
        return "ofa_surrogate_top1"

    @property
    def test_metric(self) -> None:
        return None

    def metrics(self):
        return ["params", "macs", *(["latency_note10"] if self.latency else []), "seconds"]

    def evaluate(self, arch_json) -> dict:
        from spaces.ofa_mbv3.surrogate import predict_top1
        start = time.perf_counter()
        arch = self.space.from_json(arch_json)
        out = {"val": float(predict_top1([arch], self.weights)[0]), "test": None,
               "params": self.space.params(arch), "macs": self.space.macs(arch)}
        if self.latency:
            out["latency_note10"] = self.space.latency_note10(arch)
        out["seconds"] = time.perf_counter() - start
        return out

    def describe(self) -> dict:
        return dict(super().describe(), weights=self.weights, surrogate=True,
                    note="OFA's published accuracy predictor: a surrogate of ImageNet top-1 (%), not a measurement")
