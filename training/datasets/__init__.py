"""Image classification datasets held as uint8 arrays, split into train / validation / test.

A dataset module loads its files into a :class:`Dataset`; the trainer only calls
``prepare`` (uint8 images -> normalised float tensors) and, through the recipe, the
module's batch augmentation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Split:
    x: np.ndarray  # uint8 [N, H, W, 3]
    y: np.ndarray  # int64 [N]

    def __len__(self):
        return len(self.y)


@dataclass
class Dataset:
    train: Split
    val: Split  # held out of the training set: the search signal
    test: Split  # reported, never selected on
    source: str
    num_classes: int
    mean: np.ndarray  # per-channel, of images scaled to [0, 1]
    std: np.ndarray

    def prepare(self, images: np.ndarray):
        """uint8 [N, H, W, 3] -> normalised float32 tensor [N, 3, H, W]."""
        import torch
        x = (images.astype(np.float32) / 255.0 - self.mean) / self.std
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
