"""ImageNet folders: finding the root, file lists, the held-out split, transforms and loaders."""
from pathlib import Path

import numpy as np
import pytest
import torch

from training.datasets import imagenet
from training.errors import TrainingError

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet_sample"


def _folder(root: Path, classes=("n001", "n002", "n003"), per_class=4, splits=("train", "val")):
    from PIL import Image
    rng = np.random.default_rng(0)
    for split in splits:
        for wnid in classes:
            (root / split / wnid).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = rng.integers(0, 255, size=(40 + 8 * i, 56, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / wnid / f"{wnid}_{i}.JPEG")
    return root


def test_root_is_found_from_the_flag_the_variable_or_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(imagenet.ENV_VAR, raising=False)
    monkeypatch.setenv("NARNAS_DATA", str(tmp_path / "data"))
    with pytest.raises(TrainingError, match="train/<wnid>/\\*.JPEG.*--data-dir.*NARNAS_IMAGENET_DIR"):
        imagenet.resolve_root()
    with pytest.raises(TrainingError, match="from --data-dir"):
        imagenet.resolve_root(tmp_path / "nowhere")
    _folder(tmp_path / "data" / "imagenet")
    assert imagenet.resolve_root() == tmp_path / "data" / "imagenet"
    monkeypatch.setenv(imagenet.ENV_VAR, str(_folder(tmp_path / "env")))
    assert imagenet.resolve_root() == tmp_path / "env"


def test_file_lists_classes_and_layout_errors(tmp_path):
    files = imagenet.list_files(_folder(tmp_path / "a"))
    assert files.classes == ["n001", "n002", "n003"] and files.num_classes == 3
    assert len(files.train) == len(files.val) == 12 and not files.val_only
    assert [label for _, label in files.val[:5]] == [0, 0, 0, 0, 1]
    _folder(tmp_path / "b", classes=("n001", "n002"), splits=("train",))
    _folder(tmp_path / "b", classes=("n001", "n009"), splits=("val",))
    with pytest.raises(TrainingError, match="different class folders"):
        imagenet.list_files(tmp_path / "b")
    val_only = _folder(tmp_path / "c", splits=("val",))
    with pytest.raises(TrainingError, match="no train/"):
        imagenet.list_files(val_only)
    smoke = imagenet.list_files(val_only, allow_val_only=True)
    assert smoke.val_only and smoke.train == smoke.val
    (tmp_path / "d").mkdir()
    with pytest.raises(TrainingError, match="no val/ folder"):
        imagenet.list_files(tmp_path / "d")


def test_held_out_split_is_fixed_and_disjoint():
    train = [(f"f{i}", i % 7) for i in range(1000)]
    rest, held = imagenet.holdout_split(train, size=100, seed=0)
    assert len(held) == 100 and len(rest) == 900 and not set(rest) & set(held)
    assert imagenet.holdout_split(train, size=100, seed=0) == (rest, held)
    assert imagenet.holdout_split(train, size=100, seed=1)[1] != held


def test_transforms_and_loader_on_the_shared_sample():
    files = imagenet.list_files(SAMPLE, allow_val_only=True)
    assert files.num_classes == 1000 and len(files.val) == 1000
    view = imagenet.eval_transform(160)
    from PIL import Image
    with Image.open(files.val[0][0]) as image:
        assert view(image.convert("RGB")).dtype == torch.uint8  # normalised on the device, not in the workers
    spec = imagenet.FolderData(files.val[:4], files.val[:6], [], 128, batch_size=4, eval_batch_size=4, seed=3,
                               workers=1, decode="workers")
    x, y = next(spec.loader("cpu").evaluate("val"))
    assert tuple(x.shape) == (4, 3, 128, 128) and x.dtype == torch.float32
    assert y.tolist() == [label for _, label in files.val[:4]]
    assert abs(float(x.mean())) < 1.5 and 0.3 < float(x.std()) < 3  # normalised
    batches = [b for b, _ in spec.loader("cpu").train(0)]
    assert [tuple(b.shape) for b in batches] == [(4, 3, 128, 128)]
    assert torch.equal(batches[0], next(spec.loader("cpu").train(0))[0])  # the epoch's crops follow the seed
