"""The one minibatch every proxy of a space is computed on: fixed by a seed, named by a hash.

32-pixel spaces (NB101, NB201, DARTS) draw from CIFAR-10's training images, the others (OFA at
224 px) from the ImageNet folder's (the validation images of a folder that has only those,
such as the shared 1,000-image sample), centre-cropped to the space's input size. Images are
normalised as for training, without augmentation. The batch's name (``signature``) hashes its
pixels and labels, so cached values are never mixed between two batches.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from training.errors import TrainingError

from .errors import ZeroCostError


@dataclass(frozen=True)
class Minibatch:
    images: torch.Tensor  # float32 [N, C, H, W], normalised
    labels: torch.Tensor  # int64 [N]
    dataset: str
    seed: int

    @cached_property
    def signature(self) -> str:
        """``dataset-N-seed-hash``: what a cached value was computed on."""
        digest = hashlib.sha1(self.images.numpy().tobytes() + self.labels.numpy().tobytes()).hexdigest()[:10]
        return f"{self.dataset}-{len(self.labels)}-s{self.seed}-{digest}"

    def resized(self, size: int) -> "Minibatch":
        """The same images at ``size`` pixels (OFA subnets take their own resolution)."""
        if size == self.images.shape[-1]:
            return self
        from torch.nn import functional as F
        images = F.interpolate(self.images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return Minibatch(images, self.labels, self.dataset, self.seed)


def draw(space, size: int = 64, seed: int = 0, data_dir=None, flag: str = "--data-dir") -> Minibatch:
    """``size`` images of the dataset ``space``'s networks take, drawn with ``seed`` (``flag``:
    what the caller's user gives ``data_dir`` with, for the error when it is not found)."""
    if size < 2:
        raise ZeroCostError(f"the proxies' minibatch needs at least 2 images (jacov and naswot compare images), "
                            f"got {size}")
    pixels = _pixels(space)
    try:
        return _cifar10(size, seed, data_dir, flag) if pixels == 32 else _imagenet(size, seed, data_dir, pixels, flag)
    except TrainingError as err:
        raise ZeroCostError(f"the proxies' minibatch: {err}") from None


def find_data(space, data_dir=None, flag: str = "--data-dir") -> None:
    """A ZeroCostError, before any work, when the minibatch's dataset folder cannot be found."""
    from training.datasets import cifar10, imagenet
    try:
        if _pixels(space) == 32:
            cifar10.resolve_dir(data_dir, download=False, flag=flag)
        else:
            imagenet.resolve_root(data_dir, flag)
    except TrainingError as err:
        raise ZeroCostError(f"the proxies' minibatch: {err}") from None


def _pixels(space) -> int:
    return getattr(space, "input_shape", (3, 32, 32))[-1]


def _cifar10(size: int, seed: int, data_dir, flag: str) -> Minibatch:
    from training.datasets import cifar10
    data = cifar10.load(data_dir, val_size=0, download=False, flag=flag)
    rows = np.sort(np.random.default_rng(seed).choice(len(data.train), size, replace=False))
    return Minibatch(data.prepare(data.train.x[rows]), torch.from_numpy(data.train.y[rows]), "cifar10", seed)


def _imagenet(size: int, seed: int, data_dir, pixels: int, flag: str) -> Minibatch:
    from PIL import Image

    from training.datasets import imagenet
    files = imagenet.list_files(data_dir, allow_val_only=True, flag=flag)
    pool = files.train
    rows = np.sort(np.random.default_rng(seed).choice(len(pool), min(size, len(pool)), replace=False))
    transform = imagenet.eval_transform(pixels)
    images = torch.stack([transform(Image.open(pool[i][0]).convert("RGB")) for i in rows]).float() / 255.0
    mean, std = torch.tensor(imagenet.MEAN).view(1, 3, 1, 1), torch.tensor(imagenet.STD).view(1, 3, 1, 1)
    labels = torch.tensor([pool[i][1] for i in rows], dtype=torch.int64)
    return Minibatch((images - mean) / std, labels, "imagenet", seed)
