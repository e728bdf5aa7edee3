"""Training NB101 networks on CIFAR-10 (``search.train --space nb101``, the ``cifar10-train``
evaluator, the input-output dataset of arch2vec)."""
from __future__ import annotations

from dataclasses import dataclass

from narnas.config import at_least
from . import register_recipe
from .cell import CellRecipe, CellTrainingConfig


@dataclass
class NB101TrainingConfig(CellTrainingConfig):
    stem_channels: int = 128
    num_stacks: int = 3
    cells_per_stack: int = 3

    def validate(self):
        super().validate()
        at_least(self, 1, "stem_channels", "num_stacks", "cells_per_stack", where="training")
        return self


@register_recipe("nb101")
class NB101Recipe(CellRecipe):
    """NAS-Bench-101's training on CIFAR-10, and presets for the IO dataset and smoke runs."""

    config_class = NB101TrainingConfig
    presets = {
        # The input-output paper's pretraining (its Table 1): the NB101 network, 12 epochs,
        # batch 128, SGD 0.025 -> 0 (cosine), momentum 0.9, weight decay 1e-4, clipping at 5,
        # 1,000 validation images.
        "io-paper": dict(epochs=12, batch_size=128, lr=0.025, momentum=0.9, weight_decay=1e-4, grad_clip=5.0),
        # The same schedule scaled for a CPU: a 16-channel stem, one cell per stack, 3 epochs
        # on a fifth of the training images (NB101's channel doubling and pooling kept).
        "io-cpu": dict(epochs=3, batch_size=128, lr=0.05, momentum=0.9, weight_decay=1e-4, grad_clip=5.0,
                       stem_channels=16, cells_per_stack=1, fraction=0.2),
        # Seconds: a tiny network on 2% of the data for one epoch.
        "smoke": dict(epochs=1, batch_size=64, stem_channels=8, num_stacks=2, cells_per_stack=1, fraction=0.02),
    }

    def build_config(self, space, config, num_classes: int = 10):
        return space.build_config(dict(num_classes=num_classes, stem_channels=config.stem_channels,
                                       num_stacks=config.num_stacks, cells_per_stack=config.cells_per_stack))
