"""The input-output dataset of arch2vec's extension, as files: what a build folder holds and
how it is read for training (the build itself, which trains networks, is ``search.io_build``).

A build folder holds:

* ``build.json`` - the settings, the networks (index, split, arch, key), the image indices,
  versions; written first, so a second run resumes the same build (other settings are refused);
* ``images.npz`` - the two image sets (uint8 pixels and labels);
* ``networks.jsonl`` - one line per finished network (append-only, flushed): its accuracies,
  parameters, seconds and features file;
* ``nets/<key digest>.npz`` - per network: ``val_features`` [val images, F] on the CIFAR-10
  validation split held out of training (the paper's seen images), ``test_features``
  [test images, F] on a seeded subset of the test set (``test_2k``), the dense layer's
  ``weight`` [10, F] and ``bias`` [10].

Networks are ``train`` (the labelled training set) or ``val`` (unseen networks), as in the
paper (608 and 77 on NB101).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from narnas.files import atomic_write_bytes, read_jsonl
from predictor.errors import PredictorError

FORMAT = "narnas-io-dataset/1"


def digest(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def save_npz(path: Path, **arrays) -> None:
    import io
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def read_journal(path: Path) -> dict[int, dict]:
    """Finished networks by index; a torn last line (a kill mid-write) is dropped."""
    return {entry["index"]: entry for entry in read_jsonl(path)}


def load_io_dataset(folder) -> dict:
    """The finished networks' preprocessed targets, ready for training: ``networks`` (their
    journal entries with ``arch``), per network ``val`` / ``test`` targets [images, F + 1], and
    ``images`` (``val_x``, ``val_y``, ``test_x``, ``test_y``)."""
    from .io_features import io_targets
    folder = Path(folder)
    if not (folder / "build.json").exists():
        raise PredictorError(f"{folder} is not an input-output dataset (no build.json); build one with "
                             "python -m search.io_data build")
    manifest = json.loads((folder / "build.json").read_text())
    archs = {n["index"]: n["arch"] for n in manifest["networks"]}
    networks, targets = [], {"val": [], "test": []}
    for index, entry in sorted(read_journal(folder / "networks.jsonl").items()):
        with np.load(folder / entry["file"]) as z:
            for part in ("val", "test"):
                targets[part].append(io_targets(z[f"{part}_features"], z["weight"], z["bias"], z[f"{part}_labels"]))
        networks.append(dict(entry, arch=archs[index]))
    if not (folder / "images.npz").exists():
        raise PredictorError(f"{folder}/images.npz is missing; run python -m search.io_data build again on "
                             "the folder to write it")
    with np.load(folder / "images.npz") as z:
        images = {k: z[k] for k in z.files}
    return {"manifest": manifest, "networks": networks, "images": images,
            "val": np.stack(targets["val"]) if networks else None,
            "test": np.stack(targets["test"]) if networks else None}
