"""ImageNet (ILSVRC-2012) from a folder: file lists, the held-out split, transforms, loaders.

The root is found from ``--data-dir``, then ``$NARNAS_IMAGENET_DIR``, then
``$NARNAS_DATA/imagenet``. It is either torchvision's ``ImageFolder`` layout
(``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG``) or a folder with the official archives
(``ILSVRC2012_img_train.tar``, ``ILSVRC2012_img_val.tar``, ``ILSVRC2012_devkit_t12.tar.gz``),
which torchvision's ``ImageNet`` unpacks into that layout once. Sorted wnids are the class
indices 0..999 (the standard order).

The search signal never touches the official validation set: a fixed 10,000-image subset of
the training set (OFA's practice; drawn from the sorted file list with a fixed seed) is held
out, and the official ``val`` is only reported. A root with ``val/`` alone (such as the shared
1,000-image sample) serves smoke runs: its images then stand in for the training set too
(``allow_val_only``), which is plumbing, not a measurement.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from narnas.files import default_data_dir

from ..errors import TrainingError

ENV_VAR = "NARNAS_IMAGENET_DIR"
FOLDER = "imagenet"
ARCHIVES = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar", "ILSVRC2012_devkit_t12.tar.gz")
EXTENSIONS = (".jpeg", ".jpg", ".png")
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
HOLDOUT = 10_000  # OFA's held-out subset of train
CROP_RATIO = 0.875  # evaluation: resize to resolution / 0.875, centre crop


def resolve_root(data_dir=None) -> Path:
    """The ImageNet root, or a TrainingError saying what was expected and where it was looked for."""
    for value, how in ((data_dir, "--data-dir"), (os.environ.get(ENV_VAR), f"${ENV_VAR}")):
        if value:
            root = Path(value).expanduser()
            if not root.is_dir():
                what = "is a file, not a folder" if root.exists() else "does not exist"
                raise TrainingError(f"ImageNet folder {root} (from {how}) {what}")
            return root
    root = default_data_dir() / FOLDER
    if root.is_dir():
        return root
    raise TrainingError(f"ImageNet not found: expected a folder with train/<wnid>/*.JPEG and val/<wnid>/*.JPEG "
                        f"(torchvision ImageFolder layout) or the official archives {', '.join(ARCHIVES)}; "
                        f"give --data-dir, set ${ENV_VAR}, or put it at {root}")


@dataclass
class ImageNetFiles:
    """Image paths and class indices of each split."""

    root: Path
    classes: list[str]  # wnids, sorted: index = class
    train: list[tuple[str, int]]
    val: list[tuple[str, int]]
    val_only: bool = False  # the training list is the val folder (smoke runs)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _scan(folder: Path) -> tuple[list[str], list[tuple[str, int]]]:
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    if not classes:
        raise TrainingError(f"{folder} has no class folders (expected {folder}/<wnid>/*.JPEG)")
    files = []
    for index, wnid in enumerate(classes):
        names = sorted(f.name for f in (folder / wnid).iterdir() if f.suffix.lower() in EXTENSIONS)
        files += [(str(folder / wnid / name), index) for name in names]
    if not files:
        raise TrainingError(f"{folder} has class folders but no images ({', '.join(EXTENSIONS)})")
    return classes, files


def _unpack_archives(root: Path) -> None:
    """torchvision's ImageNet unpacks the official archives into train/ and val/ (once)."""
    from torchvision.datasets import ImageNet
    for split in ("train", "val"):
        try:
            ImageNet(str(root), split=split)
        except Exception as err:
            raise TrainingError(f"cannot unpack the ImageNet archives in {root}: {err}") from None


def list_files(data_dir=None, allow_val_only: bool = False) -> ImageNetFiles:
    root = resolve_root(data_dir).resolve()  # absolute paths: workers run in other folders
    if not (root / "val").is_dir() and all((root / a).exists() for a in ARCHIVES):
        _unpack_archives(root)
    if not (root / "val").is_dir():
        raise TrainingError(f"{root} has no val/ folder (expected train/<wnid>/*.JPEG and val/<wnid>/*.JPEG, "
                            f"or the archives {', '.join(ARCHIVES)})")
    classes, val = _scan(root / "val")
    if (root / "train").is_dir():
        train_classes, train = _scan(root / "train")
        if train_classes != classes:
            missing = sorted(set(train_classes) ^ set(classes))[:3]
            raise TrainingError(f"{root}: train/ and val/ have different class folders (e.g. {', '.join(missing)})")
        return ImageNetFiles(root, classes, train, val)
    if not allow_val_only:
        raise TrainingError(f"{root} has val/ but no train/: training needs train/<wnid>/*.JPEG (a val-only folder "
                            "such as the shared 1,000-image sample serves the smoke preset only)")
    return ImageNetFiles(root, classes, list(val), val, val_only=True)


def holdout_split(train: list, size: int = HOLDOUT, seed: int = 0) -> tuple[list, list]:
    """(rest of train, held-out subset): a fixed draw from the sorted file list."""
    if not 0 < size < len(train):
        size = max(1, len(train) // 10) if len(train) > 1 else 0
    order = np.random.default_rng(seed).permutation(len(train))
    held = set(order[:size].tolist())
    return [f for i, f in enumerate(train) if i not in held], [train[i] for i in sorted(held)]


def train_transform(resolution: int):
    from torchvision import transforms as T
    return T.Compose([T.RandomResizedCrop(resolution), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)])


def eval_transform(resolution: int):
    from torchvision import transforms as T
    return T.Compose([T.Resize(int(round(resolution / CROP_RATIO))), T.CenterCrop(resolution), T.ToTensor(),
                      T.Normalize(MEAN, STD)])


class ImageList:
    """A torch Dataset of (path, class) pairs read with PIL."""

    def __init__(self, files, transform):
        self.files, self.transform = list(files), transform

    def __len__(self):
        return len(self.files)

    def __getitem__(self, index):
        from PIL import Image
        path, label = self.files[index]
        with Image.open(path) as image:
            return self.transform(image.convert("RGB")), label


def loader(files, transform, batch_size: int, *, workers: int = 0, shuffle: bool = False, seed: int = 0,
           device: str = "cpu", drop_last: bool = False):
    """A DataLoader over ``files``: worker processes, a seeded shuffle, pinned memory on GPUs."""
    import torch
    from torch.utils.data import DataLoader
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(ImageList(files, transform), batch_size=batch_size, shuffle=shuffle, generator=gen,
                      num_workers=workers, pin_memory=device.startswith("cuda"), drop_last=drop_last,
                      persistent_workers=workers > 0)
