"""Training NB201 networks on CIFAR-10 (``search.train --space nb201``, the ``cifar10-train``
evaluator, the input-output dataset of arch2vec)."""
from __future__ import annotations

from dataclasses import dataclass

from narnas.config import at_least
from . import register_recipe
from .cell import CellRecipe, CellTrainingConfig


@dataclass
class NB201TrainingConfig(CellTrainingConfig):
    channels: int = 16
    cells_per_stage: int = 5

    def validate(self):
        super().validate()
        at_least(self, 1, "channels", "cells_per_stage", where="training")
        return self


@register_recipe("nb201")
class NB201Recipe(CellRecipe):
    """NAS-Bench-201's training on CIFAR-10, and presets for the IO dataset and smoke runs."""

    config_class = NB201TrainingConfig
    presets = {
        # NB201's schedule (200 epochs, batch 256, SGD 0.1 -> 0 cosine, Nesterov momentum 0.9,
        # weight decay 5e-4).
        "nb201": dict(epochs=200, batch_size=256, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4,
                      grad_clip=5.0),
        # The input-output paper's NB101 schedule on NB201's network (12 epochs, batch 128).
        "io-paper": dict(epochs=12, batch_size=128, lr=0.025, momentum=0.9, weight_decay=1e-4, grad_clip=5.0),
        # For a CPU: one cell per stage, 8 channels, 3 epochs on a fifth of the images.
        "io-cpu": dict(epochs=3, batch_size=128, lr=0.05, momentum=0.9, weight_decay=1e-4, grad_clip=5.0,
                       channels=8, cells_per_stage=1, fraction=0.2),
        "smoke": dict(epochs=1, batch_size=64, channels=8, cells_per_stage=1, fraction=0.02),
    }

    def build_config(self, space, config, num_classes: int = 10):
        return space.build_config(dict(num_classes=num_classes, channels=config.channels,
                                       cells_per_stage=config.cells_per_stage))
