"""Building the input-output dataset of arch2vec's extension (``embeddings.io_dataset`` says
what the folder holds): networks of a space trained on CIFAR-10, and what their
global-average-pooled features are on fixed image sets.

Each training is an evaluation of ``search.executors``: Ray tasks (an embedded local Ray, or
a cluster given an address; the folder must then be on storage every node sees) or inline. A killed build loses at most the networks in training.
"""
from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from embeddings.io_dataset import FORMAT, digest, read_journal, save_npz
from narnas.config import differences
from narnas.files import append_jsonl, atomic_write_bytes
from .errors import SearchError


@dataclass
class IOBuildConfig:
    space: str = "nb101"
    preset: str = "io-cpu"  # a preset of the space's training recipe (io-paper: the paper's Table 1)
    train: dict = field(default_factory=dict)  # training config fields over the preset's
    train_nets: int = 608
    val_nets: int = 77
    val_images: int = 1000  # CIFAR-10 training images held out of the networks' training
    test_images: int = 2000  # drawn from the test set (the paper's test_2k)
    seed: int = 0

    def validate(self):
        if self.train_nets < 1 or self.val_nets < 0 or self.val_images < 1 or self.test_images < 1:
            raise SearchError("train_nets, val_images and test_images must be >= 1 and val_nets >= 0")
        return self


def sample_networks(space, config: IOBuildConfig) -> list[dict]:
    """``train_nets`` + ``val_nets`` distinct archs drawn with the seed."""
    rng = np.random.default_rng([config.seed, 608])
    total, seen, nets = config.train_nets + config.val_nets, set(), []
    for _ in range(100 * total):
        if len(nets) == total:
            break
        arch = space.sample(rng)
        key = str(space.key(arch))
        if key in seen:
            continue
        seen.add(key)
        nets.append({"index": len(nets), "split": "train" if len(nets) < config.train_nets else "val",
                     "arch": space.to_json(arch), "key": key})
    if len(nets) < total:
        raise SearchError(f"{space.name} has fewer than {total} distinct archs to sample")
    return nets


class IOFeatureEvaluator:
    """Trains one network with the space's recipe and writes its features file; an evaluator
    for ``search.executors`` (picklable: the data is loaded once per worker)."""

    def __init__(self, space, config: IOBuildConfig, folder: Path, data_dir: str | None, test_rows: np.ndarray):
        from training.recipes import get_recipe
        # Absolute: a Ray worker may run in another working directory (another machine's).
        self.space, self.config, self.folder = space, config, Path(folder).resolve()
        self.recipe = get_recipe(space.name)
        self.training = self.recipe.preset(config.preset, **config.train)
        self.data_dir, self.test_rows = data_dir, np.asarray(test_rows)
        self._data = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_data"] = None
        return state

    def data(self):
        """Training images: ``fraction`` of the training split (class-balanced); validation:
        every held-out image; test: the chosen test rows."""
        if self._data is None:
            from training.datasets import Split, cifar10
            full = cifar10.load(self.data_dir, self.config.val_images, 1.0)
            fraction = getattr(self.training, "fraction", 1.0)
            train = cifar10._subset(full.train, fraction) if fraction < 1 else full.train
            test = Split(full.test.x[self.test_rows], full.test.y[self.test_rows])
            self._data = cifar10.CIFAR10(train, full.val, test, full.source)
        return self._data

    def evaluate(self, arch_json) -> dict:
        arch = self.space.from_json(arch_json)
        data = self.data()
        result, model = self.recipe.train_model(arch, self.space, data, self.training, log=lambda line: None)
        val_features = pooled_features(model, data, data.val.x, self.training.eval_batch_size or 250)
        test_features = pooled_features(model, data, data.test.x, self.training.eval_batch_size or 250)
        name = f"nets/{digest(str(self.space.key(arch)))}.npz"
        weight = model.classifier.weight.detach().cpu().numpy()
        bias = model.classifier.bias.detach().cpu().numpy()
        save_npz(self.folder / name, val_features=val_features, test_features=test_features, weight=weight,
                 bias=bias, val_labels=data.val.y.astype(np.int8), test_labels=data.test.y.astype(np.int8))
        return {"val": result["val"], "test": result["test"], "params": result["params"],
                "seconds": result["seconds"], "file": name}


def pooled_features(model, data, images: np.ndarray, batch: int) -> np.ndarray:
    """float32 [images, F]: the input of ``model.classifier`` (global average pooled features)."""
    import torch
    captured = []
    hook = model.classifier.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0].detach()))
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.inference_mode():
            for i in range(0, len(images), batch):
                model(data.prepare(images[i:i + batch]).to(device))
    finally:
        hook.remove()
    return torch.cat(captured).float().cpu().numpy()


def prepare_build(folder: Path, config: IOBuildConfig, space, test_size: int = 10_000) -> dict:
    """The build's manifest: read it (same settings) or write a new one."""
    manifest_path = folder / "build.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") != FORMAT:
            raise SearchError(f"{manifest_path} is not an input-output dataset manifest")
        changed = differences(manifest["config"], asdict(config))
        if changed:
            raise SearchError(f"{folder} was built with other settings ({', '.join(changed)} differ); "
                                 "use another --out or the same settings")
        return manifest
    import torch
    from training.recipes import get_recipe
    recipe = get_recipe(space.name)
    training = recipe.preset(config.preset, **config.train)
    if config.test_images > test_size:
        raise SearchError(f"--test-images {config.test_images} is more than the {test_size} test images")
    test_rows = np.sort(np.random.default_rng([config.seed, 2000]).choice(test_size, config.test_images,
                                                                         replace=False))
    manifest = {"format": FORMAT, "config": asdict(config), "training": asdict(training),
                "networks": sample_networks(space, config), "test_rows": test_rows.tolist(),
                "images": {"val": f"the {config.val_images} CIFAR-10 training images held out by the fixed split "
                                  "(training.datasets.cifar10, split seed 0)",
                           "test": "test_rows of the CIFAR-10 test batch"},
                "versions": {"python": platform.python_version(), "torch": str(torch.__version__),
                             "numpy": np.__version__},
                "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    atomic_write_bytes(manifest_path, (json.dumps(manifest, indent=1) + "\n").encode())
    return manifest


def build(folder, config: IOBuildConfig, executor_config=None, data_dir: str | None = None,
          chunk: int = 16, log=print) -> dict:
    """Build (or resume) the dataset in ``folder``; returns the manifest with ``done`` counts."""
    import spaces
    from .executors import ExecutorConfig, make_executor
    from training.datasets import cifar10

    config.validate()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    space = spaces.get_space(config.space)
    data_dir = cifar10.resolve_dir(data_dir)  # a missing folder fails here, before any work
    test_size = len(cifar10._read_batch(data_dir / cifar10.TEST_FILE)[1])
    data_dir = str(data_dir)
    manifest = prepare_build(folder, config, space, test_size)
    journal = folder / "networks.jsonl"
    done = read_journal(journal)
    todo = [n for n in manifest["networks"] if n["index"] not in done]
    log(f"{len(done)} of {len(manifest['networks'])} networks done; {len(todo)} to train")
    evaluator = IOFeatureEvaluator(space, config, folder, data_dir, np.array(manifest["test_rows"]))
    if not (folder / "images.npz").exists():  # the image sets, so the dataset stands on its own
        data = evaluator.data()
        save_npz(folder / "images.npz", val_x=data.val.x, val_y=data.val.y.astype(np.int8), test_x=data.test.x,
                 test_y=data.test.y.astype(np.int8))
    executor_config = executor_config or ExecutorConfig(name="ray")
    began, failed = time.time(), []
    with make_executor(executor_config, quiet=True) as executor:
        for start in range(0, len(todo), chunk):
            batch = todo[start:start + chunk]

            def on_result(i, result, batch=batch):
                net = batch[i]
                if result.get("status") == "ok" and not (folder / result["file"]).exists():
                    result = {"status": "failed", "error": f"its features file {folder / result['file']} is not "
                              "there (on a cluster the folder must be on storage every node sees)"}
                if result.get("status") != "ok":
                    log(f"network {net['index']} failed: {result.get('error')}")
                    failed.append(net["index"])
                    return
                entry = {"index": net["index"], "split": net["split"], "key": net["key"],
                         **{k: result[k] for k in ("val", "test", "params", "seconds", "file")}}
                append_jsonl(journal, entry)
                done[net["index"]] = entry
            executor.run([n["arch"] for n in batch], evaluator, on_result)
            log(f"{len(done)} of {len(manifest['networks'])} networks done ({time.time() - began:.0f}s)")
    return dict(manifest, done=len(done), failed=failed)
