"""The ImageNet training protocol shared by the spaces that train there (DARTS, OFA subnets):
its config (a :class:`~training.trainer.TrainerConfig` with the ImageNet fields and defaults)
and its splits (class subsets, the held-out part of train, the reported val images).

Class subsets keep the original class indices (the network keeps its 1,000 outputs), so a
supernet's classifier and a from-scratch network are treated alike. The search value is top-1
on the held-out subset of train (``val``); the official validation images are reported (``test``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from narnas.config import at_least

from ..datasets import imagenet
from ..errors import TrainingError
from ..trainer import TrainerConfig


@dataclass
class ImageNetTrainingConfig(TrainerConfig):
    epochs: int = 250
    batch_size: int = 128
    lr: float = 0.1
    weight_decay: float = 3e-5
    label_smoothing: float = 0.1
    schedule: str = "exponential"
    eval_batch_size: int = 200
    resolution: int = 0  # 0: the arch's own (ofa_mbv3's r), else 224
    classes: int = 0  # 0: every class; N: a fixed random N-class subset (the search proxy)
    images_per_class: int = 0  # 0: all
    holdout_images: int = 10_000
    val_images: int = 0  # official val images reported; 0: all
    workers: int = 4  # loader processes
    decode: str = "auto"  # JPEG decoding: device (on the GPU), workers (PIL), auto = device on CUDA
    allow_val_only: bool = False  # a val-only folder (the shared sample) for smoke runs

    def validate(self):
        super().validate()
        at_least(self, 1, "holdout_images", where="training")
        if self.classes < 0 or self.images_per_class < 0 or self.val_images < 0 or self.resolution < 0:
            raise TrainingError("training.classes, images_per_class, val_images and resolution cannot be negative")
        if self.decode not in imagenet.DECODERS:
            raise TrainingError(f"training.decode must be one of {', '.join(imagenet.DECODERS)}, got {self.decode!r}")
        return self


@dataclass
class ImageNetSplits:
    train: list
    holdout: list
    val: list
    num_classes: int
    root: str

    def batches(self, cfg: ImageNetTrainingConfig, resolution: int) -> imagenet.FolderData:
        """The splits batched for the trainer: the held-out subset is its ``val``, the official val its ``test``."""
        return imagenet.FolderData(self.train, self.holdout, self.val, resolution, cfg.batch_size,
                                   cfg.eval_batch_size, cfg.seed, cfg.workers, cfg.decode, cfg.channels_last)


def splits(data_dir, cfg: ImageNetTrainingConfig) -> ImageNetSplits:
    """The training files, the held-out subset and the reported val files for ``cfg``."""
    files = imagenet.list_files(data_dir, allow_val_only=cfg.allow_val_only)
    rng = np.random.default_rng(cfg.seed)
    keep = None
    if cfg.classes and cfg.classes < files.num_classes:
        keep = set(rng.choice(files.num_classes, cfg.classes, replace=False).tolist())
    train = [f for f in files.train if keep is None or f[1] in keep]
    val = [f for f in files.val if keep is None or f[1] in keep]
    if cfg.images_per_class:
        counts: dict[int, int] = {}
        capped = []
        for f in train:
            if counts.get(f[1], 0) < cfg.images_per_class:
                capped.append(f)
                counts[f[1]] = counts.get(f[1], 0) + 1
        train = capped
    rest, held = imagenet.holdout_split(train, min(cfg.holdout_images, max(1, len(train) // 2)), cfg.seed)
    if files.val_only:
        rest = train  # smoke: the sample stands in for the training images too
    if cfg.val_images:
        val = val[:cfg.val_images]
    return ImageNetSplits(rest, held, val, files.num_classes, str(files.root.resolve()))
