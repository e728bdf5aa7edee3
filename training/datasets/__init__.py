"""Image classification datasets held as uint8 arrays, split into train / validation / test.

A dataset module loads its files into a :class:`Dataset`; :class:`~training.datasets.arrays.ArrayData`
batches it for the trainer on the device (``on_device``); ``prepare`` gives normalised float
tensors on the host for other readers.
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

    def on_device(self, device) -> dict:
        """{split: (uint8 [N, 3, H, W], int64 [N])} on ``device``, copied there once per process."""
        import torch
        cache = self.__dict__.setdefault("_on_device", {})
        if str(device) not in cache:
            cache[str(device)] = {name: (torch.from_numpy(split.x).to(device).permute(0, 3, 1, 2).contiguous(),
                                         torch.from_numpy(split.y).to(device))
                                  for name, split in (("train", self.train), ("val", self.val), ("test", self.test))}
        return cache[str(device)]

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_on_device"}  # device copies stay in their process

    def prepare(self, images: np.ndarray):
        """uint8 [N, H, W, 3] -> normalised float32 tensor [N, 3, H, W]."""
        import torch
        x = (images.astype(np.float32) / 255.0 - self.mean) / self.std
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
