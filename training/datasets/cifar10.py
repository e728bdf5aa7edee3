"""CIFAR-10 from the standard python batches folder (``cifar-10-batches-py``).

The folder is found from ``--data-dir``, then ``$NARNAS_CIFAR10_DIR``, then
``$NARNAS_DATA/cifar-10-batches-py`` (default ``~/.cache/narnas``). Where the machine has
internet and the folder is missing, torchvision downloads it there. Checksums are checked
against torchvision's list and only warned about: copies re-encoded from other sources
are legitimate inputs that cannot match them.

The search signal is a held-out validation split of the training set (the last
``val_size`` images of a fixed permutation); the test set is reported, never selected on.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from narnas.files import default_data_dir

from ..errors import TrainingError
from . import Dataset, Split

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
ENV_VAR = "NARNAS_CIFAR10_DIR"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
# torchvision's md5s of the official batches.
MD5 = {"data_batch_1": "c99cafc152244af753f735de768cd75f", "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
       "data_batch_3": "54ebc095f3ab1f0389bbae665268c751", "data_batch_4": "634d18415352ddfa80567beed471001a",
       "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb", "test_batch": "40351d587109b95175f43aff81a1287e"}
MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32)
STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32)


@dataclass
class CIFAR10(Dataset):
    num_classes: int = 10
    mean: np.ndarray = field(default_factory=lambda: MEAN)
    std: np.ndarray = field(default_factory=lambda: STD)


def resolve_dir(data_dir=None, download: bool = True, flag: str = "--data-dir") -> Path:
    """The python batches folder; ``flag`` is what the caller's user gives ``data_dir`` with."""
    candidates = [(flag, data_dir), (f"${ENV_VAR}", os.environ.get(ENV_VAR))]
    for how, value in candidates:
        if value:
            path = Path(value).expanduser()
            folder = path / FOLDER if (path / FOLDER).is_dir() else path
            if not folder.is_dir():
                what = "is a file, not a folder" if folder.exists() else "does not exist"
                raise TrainingError(f"CIFAR-10 folder {folder} (from {how}) {what}")
            return folder
    folder = default_data_dir() / FOLDER
    if not folder.is_dir() and download:
        _download(folder.parent)
    if not folder.is_dir():
        raise TrainingError(f"CIFAR-10 not found: expected the python batches folder {FOLDER}/ (from {URL}) "
                          f"given by {flag}, ${ENV_VAR} or at {folder}")
    return folder


def _download(root: Path) -> None:
    try:
        from torchvision.datasets import CIFAR10 as TV
        TV(str(root), train=True, download=True)
    except Exception as err:  # no network: the caller reports where the data should be
        print(f"warning: could not download CIFAR-10 ({type(err).__name__}: {str(err).splitlines()[0][:100]})",
              file=sys.stderr)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.exists():
        raise TrainingError(f"CIFAR-10 file {path} is missing (the folder must hold {', '.join(TRAIN_FILES)}, {TEST_FILE})")
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
        x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    except Exception as err:
        raise TrainingError(f"CIFAR-10 file {path} is unreadable ({type(err).__name__}: {err})") from None
    if len(x) != len(labels) or labels.min() < 0 or labels.max() > 9:
        raise TrainingError(f"CIFAR-10 file {path} is corrupt: {len(x)} images, {len(labels)} labels")
    return np.ascontiguousarray(x), labels


def check_md5(folder: Path) -> list[str]:
    """Names of the batches whose md5 is not torchvision's (a warning, not an error)."""
    differ = []
    for name, want in MD5.items():
        path = folder / name
        if path.exists() and hashlib.md5(path.read_bytes()).hexdigest() != want:
            differ.append(name)
    return differ


def load(data_dir=None, val_size: int = 5000, fraction: float = 1.0, split_seed: int = 0,
         download: bool = True, warn=None, flag: str = "--data-dir") -> CIFAR10:
    """Train / validation / test splits; ``fraction`` < 1 keeps a class-balanced share of
    each (for smoke runs)."""
    folder = resolve_dir(data_dir, download, flag)
    differ = check_md5(folder) if warn is not None else []  # hashing 180 MB: only for a listener
    if differ:
        warn(f"warning: {', '.join(differ)} in {folder} differ from the official CIFAR-10 checksums "
             "(a re-encoded copy?); using them anyway")
    parts = [_read_batch(folder / name) for name in TRAIN_FILES]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    test = Split(*_read_batch(folder / TEST_FILE))
    if not 0 <= val_size < len(y):
        raise TrainingError(f"val_size must be in [0, {len(y)}), got {val_size}")
    order = np.random.default_rng(split_seed).permutation(len(y))
    train, val = Split(x[order[val_size:]], y[order[val_size:]]), Split(x[order[:val_size]], y[order[:val_size]])
    if fraction < 1:
        train, val, test = (_subset(s, fraction) for s in (train, val, test))
    return CIFAR10(train, val, test, str(folder))


def _subset(split: Split, fraction: float) -> Split:
    """The first ``fraction`` of each class, in order (class-balanced, deterministic)."""
    keep = np.concatenate([np.flatnonzero(split.y == c)[:max(1, int(round(fraction * np.sum(split.y == c))))]
                           for c in range(10)])
    keep.sort()
    return Split(split.x[keep], split.y[keep])


def write_batches(folder: Path, train: Split, test: Split) -> None:
    """Write images in the standard python batches layout (5 train batches + test)."""
    folder.mkdir(parents=True, exist_ok=True)
    chunks = np.array_split(np.arange(len(train)), len(TRAIN_FILES))
    for name, rows in zip(TRAIN_FILES, chunks):
        _write_batch(folder / name, train.x[rows], train.y[rows], name)
    _write_batch(folder / TEST_FILE, test.x, test.y, TEST_FILE)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer", "dog",
                                                          "frog", "horse", "ship", "truck")]}, f)


def _write_batch(path: Path, x: np.ndarray, y: np.ndarray, name: str) -> None:
    data = x.transpose(0, 3, 1, 2).reshape(len(x), -1)
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": name.encode(), b"labels": [int(v) for v in y], b"data": data,
                     b"filenames": [f"{i}.png".encode() for i in range(len(x))]}, f)
