"""Batches of a :class:`~training.datasets.Dataset` held on the device (CIFAR-style arrays).

The uint8 images go to the device once per process; each epoch's order and augmentation
(random crop of the zero-padded image, horizontal flip, cutout) are drawn there by a
generator seeded with (seed, epoch, rank) as whole-epoch tensor operations on uint8, and a
batch becomes normalised floats only when it is used. Nothing waits for the device.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..trainer import seed_of
from . import Dataset


def augment(x: torch.Tensor, gen: torch.Generator, padding: int = 4, flip: bool = True, cutout: int = 0,
            fill: torch.Tensor | None = None) -> torch.Tensor:
    """Random crop of the ``padding``-padded images, horizontal flip and a ``cutout`` x ``cutout``
    square (centred anywhere, clipped at the border, set to ``fill``, a per-channel value) of a
    uint8 [B, C, H, W] batch, drawn from ``gen`` on the batch's device: the DARTS / ResNet CIFAR
    augmentation, a few whole-batch operations."""
    b, c, h, w = x.shape
    dev = x.device
    if padding:
        padded = F.pad(x, (padding,) * 4)
        dy = torch.randint(0, 2 * padding + 1, (b,), generator=gen, device=dev)
        dx = torch.randint(0, 2 * padding + 1, (b,), generator=gen, device=dev)
        rows = (dy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=dev))[:, None, None, :]
        x = padded[torch.arange(b, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None],
                   rows, cols]
    if flip:
        flipped = torch.rand(b, generator=gen, device=dev) < 0.5
        x = torch.where(flipped[:, None, None, None], x.flip(3), x)
    if cutout > 0:
        cy = torch.randint(0, h, (b,), generator=gen, device=dev)[:, None, None]
        cx = torch.randint(0, w, (b,), generator=gen, device=dev)[:, None, None]
        ys = torch.arange(h, device=dev)[None, :, None]
        xs = torch.arange(w, device=dev)[None, None, :]
        half = cutout // 2
        hole = (ys >= cy - half) & (ys < cy + cutout - half) & (xs >= cx - half) & (xs < cx + cutout - half)
        value = torch.zeros(c, dtype=x.dtype, device=dev) if fill is None else fill.to(dev, x.dtype)
        x = torch.where(hole[:, None], value[None, :, None, None], x)
    return x


@dataclass
class ArrayData:
    """``data`` batched for :func:`training.trainer.fit`: ``batch_size`` is the global batch
    (each of ``world`` replicas takes its share), evaluation in ``eval_batch_size`` batches."""
    data: Dataset
    batch_size: int
    eval_batch_size: int = 0  # 0: 2,000 on a GPU, 250 on a CPU (larger CPU batches leave the cache: slower)
    seed: int = 0
    cutout: int = 0
    padding: int = 4
    flip: bool = True
    channels_last: bool = True  # batches in channels-last memory on CUDA

    def loader(self, device: torch.device, rank: int = 0, world: int = 1) -> "ArrayLoader":
        return ArrayLoader(self, torch.device(device), rank, world)


class ArrayLoader:
    """One process's batches of an :class:`ArrayData` (the trainer's ``Loader``)."""

    def __init__(self, spec: ArrayData, device: torch.device, rank: int, world: int):
        self.spec, self.device, self.rank, self.world = spec, device, rank, world
        self.splits = spec.data.on_device(device)
        mean, std = (torch.as_tensor(v, dtype=torch.float32, device=device) * 255 for v in (spec.data.mean, spec.data.std))
        self.mean, self.inv_std = mean[None, :, None, None], 1.0 / std[None, :, None, None]
        # cutout covers with the mean colour: zero once normalised, as DARTS's cutout of the normalised tensor
        self.fill = mean.round().to(torch.uint8)
        cuda = device.type == "cuda"
        self.memory = torch.channels_last if cuda and spec.channels_last else torch.contiguous_format
        self.eval_batch = spec.eval_batch_size or (2000 if cuda else 250)

    def size(self, split: str) -> int:
        n = len(self.splits[split][1])
        return n // self.world if split == "train" else n

    def _normalised(self, x: torch.Tensor) -> torch.Tensor:
        return (x.contiguous(memory_format=self.memory).float() - self.mean) * self.inv_std

    def train(self, epoch: int):
        s, dev = self.spec, self.device
        images, labels = self.splits["train"]
        order = torch.randperm(len(labels), generator=torch.Generator(dev).manual_seed(seed_of(s.seed, epoch)),
                               device=dev)  # the same order on every replica: each takes its share
        if self.world > 1:
            order = order[:self.size("train") * self.world][self.rank::self.world]
        draws = torch.Generator(dev).manual_seed(seed_of(s.seed, epoch, self.rank, 1))
        x = augment(images[order], draws, s.padding, s.flip, s.cutout, self.fill)
        y = labels[order]
        per = max(1, s.batch_size // self.world)
        for i in range(0, len(y), per):
            yield self._normalised(x[i:i + per]), y[i:i + per]

    def evaluate(self, split: str):
        images, labels = self.splits[split]
        for i in range(0, len(labels), self.eval_batch):
            yield self._normalised(images[i:i + self.eval_batch]), labels[i:i + self.eval_batch]
