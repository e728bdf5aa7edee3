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


def resolve_root(data_dir=None, flag: str = "--data-dir") -> Path:
    """The ImageNet root, or a TrainingError saying what was expected and where it was looked for
    (``flag``: what the caller's user gives ``data_dir`` with)."""
    for value, how in ((data_dir, flag), (os.environ.get(ENV_VAR), f"${ENV_VAR}")):
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
                        f"give {flag}, set ${ENV_VAR}, or put it at {root}")


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


def list_files(data_dir=None, allow_val_only: bool = False, flag: str = "--data-dir") -> ImageNetFiles:
    root = resolve_root(data_dir, flag).resolve()  # absolute paths: workers run in other folders
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
    """RandomResizedCrop and flip to uint8 [3, r, r]; normalised on the training device."""
    from torchvision import transforms as T
    return T.Compose([T.RandomResizedCrop(resolution), T.RandomHorizontalFlip(), T.PILToTensor()])


def eval_transform(resolution: int):
    """Resize to ``resolution / 0.875``, centre crop, uint8 [3, r, r]."""
    from torchvision import transforms as T
    return T.Compose([T.Resize(int(round(resolution / CROP_RATIO))), T.CenterCrop(resolution), T.PILToTensor()])


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


class RawFiles:
    """A torch Dataset of (file bytes as a uint8 array, class): decoding is left to the device.
    Arrays, not tensors: a batch of tensors crosses from a worker as one file descriptor each."""

    def __init__(self, files):
        self.files = list(files)

    def __len__(self):
        return len(self.files)

    def __getitem__(self, index):
        path, label = self.files[index]
        return np.fromfile(path, dtype=np.uint8), label


def _as_lists(batch):
    return [item[0] for item in batch], [item[1] for item in batch]


DECODERS = ("auto", "workers", "device")


@dataclass
class FolderData:
    """ImageNet files batched for :func:`training.trainer.fit` (and the supernet's evaluation):
    ``train`` with RandomResizedCrop and flip, ``val`` and ``test`` resized to ``resolution / 0.875``
    and centre-cropped. ``decode``: ``workers`` decodes and augments with PIL in loader processes;
    ``device`` has the workers only read the files and decodes the JPEGs in batches on the
    training device (``torchvision.io.decode_jpeg``), cropping and resizing there; ``auto`` is
    ``device`` on CUDA and ``workers`` elsewhere. ``batch_size`` is the global batch."""
    train: list
    val: list
    test: list
    resolution: int
    batch_size: int
    eval_batch_size: int = 200
    seed: int = 0
    workers: int = 4
    decode: str = "auto"
    channels_last: bool = True

    def __post_init__(self):
        if self.decode not in DECODERS:
            raise TrainingError(f"decode must be one of {', '.join(DECODERS)}, got {self.decode!r}")

    def loader(self, device, rank: int = 0, world: int = 1) -> "FolderLoader":
        import torch
        return FolderLoader(self, torch.device(device), rank, world)


class FolderLoader:
    """One process's batches of a :class:`FolderData` (the trainer's ``Loader``)."""

    def __init__(self, spec: FolderData, device, rank: int, world: int):
        import torch
        self.spec, self.device, self.rank, self.world = spec, device, rank, world
        cuda = device.type == "cuda"
        self.on_device = spec.decode == "device" or (spec.decode == "auto" and cuda)
        self.mean = torch.tensor(MEAN, device=device)[None, :, None, None] * 255
        self.inv_std = 1.0 / (torch.tensor(STD, device=device)[None, :, None, None] * 255)
        self.memory = torch.channels_last if cuda and spec.channels_last else torch.contiguous_format
        self.eval_batch = spec.eval_batch_size or (500 if cuda else 100)

    def size(self, split: str) -> int:
        files = getattr(self.spec, split)
        return len(files) // self.world if split == "train" else len(files)

    def _batches(self, files, transform, batch_size: int, seed: int, drop_last: bool):
        import torch
        from torch.utils.data import DataLoader
        cuda = self.device.type == "cuda"
        data = RawFiles(files) if self.on_device else ImageList(files, transform)
        return DataLoader(data, batch_size=batch_size, num_workers=self.spec.workers, pin_memory=cuda,
                          drop_last=drop_last, generator=torch.Generator().manual_seed(seed),
                          collate_fn=_as_lists if self.on_device else None)

    def _normalised(self, x):
        return (x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory).float()
                - self.mean) * self.inv_std

    def train(self, epoch: int):
        import torch

        from ..trainer import seed_of
        s = self.spec
        order = np.random.default_rng([s.seed, epoch]).permutation(len(s.train))  # the same on every replica
        if self.world > 1:
            order = order[:self.size("train") * self.world][self.rank::self.world]
        mine = [s.train[i] for i in order]
        per = max(1, s.batch_size // self.world)
        seed = seed_of(s.seed, epoch, self.rank)
        draws = np.random.default_rng(seed)  # device decoding: the crops and flips
        for x, y in self._batches(mine, train_transform(s.resolution), per, seed, drop_last=len(mine) > per):
            if self.on_device:
                x = random_resized_crops(decode(x, self.device), s.resolution, draws)
            yield self._normalised(x), torch.as_tensor(y).to(self.device, non_blocking=True)

    def evaluate(self, split: str):
        import torch
        s = self.spec
        for x, y in self._batches(getattr(s, split), eval_transform(s.resolution), self.eval_batch, 0, False):
            if self.on_device:
                x = centre_crops(decode(x, self.device), s.resolution)
            yield self._normalised(x), torch.as_tensor(y).to(self.device, non_blocking=True)


def decode(raws: list, device) -> list:
    """uint8 RGB [3, H, W] images from file bytes, decoded as one batch on ``device`` (a PNG or a
    JPEG the device decoder refuses, such as CMYK, is decoded on the host and moved there)."""
    import torch
    from torchvision.io import ImageReadMode, decode_image, decode_jpeg
    raws = [torch.from_numpy(raw) for raw in raws]
    try:
        return decode_jpeg(raws, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:
        images = []
        for raw in raws:
            try:
                images.append(decode_jpeg(raw, mode=ImageReadMode.RGB, device=device))
            except RuntimeError:
                images.append(decode_image(raw, mode=ImageReadMode.RGB).to(device))
        return images


def _resized(image, top: int, left: int, height: int, width: int, resolution: int):
    from torch.nn import functional as F
    crop = image[None, :, top:top + height, left:left + width].float()
    return F.interpolate(crop, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True)


def random_resized_crops(images: list, resolution: int, rng: np.random.Generator, scale=(0.08, 1.0),
                         ratio=(3 / 4, 4 / 3)):
    """torchvision's RandomResizedCrop (area share in ``scale``, log-uniform aspect ``ratio``,
    ten tries, then the centre) and a horizontal flip, per image, drawn from ``rng``; float [B, 3, r, r]."""
    import torch
    out = []
    for image in images:
        h, w = image.shape[-2:]
        box = None
        for _ in range(10):
            area = h * w * rng.uniform(*scale)
            aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
            cw, ch = int(round(np.sqrt(area * aspect))), int(round(np.sqrt(area / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                box = (int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw)
                break
        if box is None:  # the whole image, its aspect clamped into ``ratio``
            aspect = w / h
            cw, ch = (w, h) if ratio[0] <= aspect <= ratio[1] else \
                ((w, int(round(w / ratio[1]))) if aspect > ratio[1] else (int(round(h * ratio[0])), h))
            cw, ch = min(cw, w), min(ch, h)
            box = ((h - ch) // 2, (w - cw) // 2, ch, cw)
        crop = _resized(image, *box, resolution)
        out.append(crop.flip(3) if rng.random() < 0.5 else crop)
    return torch.cat(out)


def centre_crops(images: list, resolution: int):
    """The evaluation view, per image: the centre square that resizing the shorter side to
    ``resolution / 0.875`` and cropping ``resolution`` would keep, resized to it; float [B, 3, r, r]."""
    import torch
    out = []
    for image in images:
        h, w = image.shape[-2:]
        side = min(h, w) * CROP_RATIO
        ch, cw = min(h, int(round(side))), min(w, int(round(side)))
        out.append(_resized(image, (h - ch) // 2, (w - cw) // 2, ch, cw, resolution))
    return torch.cat(out)
