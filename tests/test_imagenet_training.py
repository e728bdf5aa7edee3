"""The imagenet training evaluator: presets, class subsets, checkpoints, a smoke search."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from training.recipes.imagenet import ImageNetTrainingConfig, splits
from training.trainer import fit

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "imagenet_sample"


def test_class_subset_and_splits_of_the_sample():
    cfg = ImageNetTrainingConfig(classes=20, holdout_images=5, val_images=12, allow_val_only=True)
    data = splits(SAMPLE, cfg)
    classes = {label for _, label in data.train}
    assert len(classes) == 20 and data.num_classes == 1000
    assert {label for _, label in data.val} <= classes and len(data.val) == 12 and len(data.holdout) == 5
    assert splits(SAMPLE, cfg).train == data.train  # fixed by the seed
    with pytest.raises(Exception, match="no train/"):
        splits(SAMPLE, ImageNetTrainingConfig())


def test_a_training_killed_mid_way_resumes_to_the_uninterrupted_result(tmp_path):
    """Killed after epoch 1 of 2 (the checkpoint of epoch 1 written), the resumed training
    re-trains nothing and ends as the uninterrupted one: model, optimiser, scheduler and the
    RNG of the crops, flips and drop-outs all come back."""
    import spaces
    space = spaces.get_space("darts")
    arch = space.sample(__import__("numpy").random.default_rng(0))
    build = {"dataset": "imagenet", "channels": 8, "layers": 5, "num_classes": 1000}
    cfg = ImageNetTrainingConfig(epochs=2, batch_size=8, lr=0.05, schedule="cosine", classes=10, holdout_images=4,
                                 val_images=10, eval_batch_size=10, workers=0, allow_val_only=True,
                                 threads=2)  # pinned: the compared trainings must not pick threads from the load
    data = splits(SAMPLE, cfg).batches(cfg, 64)
    model = lambda: space.build_model(arch, build)  # noqa: E731
    whole, _ = fit(model, data, cfg, checkpoint=tmp_path / "whole.pt", extra_state={"arch": "a"})
    ckpt, logs = tmp_path / "imagenet.pt", []

    def kill_at_epoch_2(net, epoch):
        if epoch == 1:
            raise KeyboardInterrupt("killed")
    with pytest.raises(KeyboardInterrupt):
        fit(model, data, cfg, checkpoint=ckpt, extra_state={"arch": "a"}, on_epoch=kill_at_epoch_2)
    resumed, _ = fit(model, data, cfg, checkpoint=ckpt, extra_state={"arch": "a"}, progress=True, log=logs.append)
    assert any("resuming training from epoch 1 of 2" in line for line in logs)
    assert [line for line in logs if line.startswith("epoch ")][0].startswith("epoch 2/2")  # epoch 1 not again
    assert resumed["history"] == whole["history"] and resumed["val"] == whole["val"]
    assert resumed["test"] == whole["test"]
    with pytest.raises(Exception, match="another arch"):
        fit(model, data, cfg, checkpoint=ckpt, extra_state={"arch": "b"})


@pytest.mark.parametrize("space", ["darts", "ofa_mbv3"])
def test_smoke_search_trains_on_the_shared_images(tmp_path, space):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "search.run", "--space", space, "--evaluator", "imagenet", "--preset",
                           "smoke", "--data-dir", str(SAMPLE), "--budget", "2", "--batch", "2", "--init", "2",
                           "--strategy", "random", "--executor", "inline", "--quiet", "--no-plots", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    entries = [json.loads(x) for x in (out / "journal.jsonl").read_text().splitlines()]
    assert len(entries) == 2 and all(e["status"] == "ok" for e in entries)
    assert all(e["train_images"] == 20 and e["epochs"] == 1 and e["params"] > 1e5 for e in entries)
    assert len(list((out / "checkpoints").glob("*/imagenet.pt"))) == 2


def test_unknown_preset_and_space():
    import spaces
    from search.errors import SearchError
    from search.evaluators.imagenet_training import ImageNetTrainingEvaluator, ImageNetTrainingEvaluatorConfig
    with pytest.raises(SearchError, match="valid: final, search, smoke"):
        ImageNetTrainingEvaluator(spaces.get_space("darts"), ImageNetTrainingEvaluatorConfig(preset="fast"))
    with pytest.raises(SearchError, match="not nb201"):
        ImageNetTrainingEvaluator(spaces.get_space("nb201"), ImageNetTrainingEvaluatorConfig())


def test_an_arch_trains_as_two_data_parallel_workers(tmp_path):
    """--workers-per-trial 2: Ray Train DDP workers (gloo on the CPU), the same per-epoch checkpoint."""
    import torch
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "search.run", "--space", "darts", "--evaluator", "imagenet",
                           "--preset", "smoke", "--data-dir", str(SAMPLE), "--budget", "1", "--batch", "1", "--init",
                           "1", "--strategy", "random", "--executor", "ray", "--workers-per-trial", "2", "--train-set",
                           "epochs=2", "--quiet", "--no-plots", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    entries = [json.loads(x) for x in (out / "journal.jsonl").read_text().splitlines()]
    assert [e["status"] for e in entries] == ["ok"] and entries[0]["workers"] == 2
    for path in (out / "checkpoints").glob("*/imagenet.pt"):
        state = torch.load(path, weights_only=False)
        assert state["epoch"] == 2 and state["workers"] == 2 and len(state["history"]) == 2
    inline = subprocess.run([sys.executable, "-m", "search.run", "--space", "darts", "--evaluator", "imagenet",
                             "--data-dir", str(SAMPLE), "--preset", "smoke", "--executor", "inline",
                             "--workers-per-trial", "2"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert inline.returncode == 2 and "use --executor ray" in inline.stderr
    cifar = subprocess.run([sys.executable, "-m", "search.run", "--space", "nb201", "--workers-per-trial", "2"],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert cifar.returncode == 2 and "needs an evaluator that trains data-parallel" in cifar.stderr


def test_device_decoding_gives_the_images_of_the_pil_pipeline():
    """decode=device (torchvision.io.decode_jpeg on the training device, here the CPU) shows the
    network the same evaluation views as PIL in loader workers, and seeded training crops."""
    import torch

    from training.datasets import imagenet
    files = imagenet.list_files(SAMPLE, allow_val_only=True).val[:8]
    spec = lambda decode: imagenet.FolderData(files, files, files, 64, 4, 8, seed=3, workers=0,  # noqa: E731
                                              decode=decode)
    pil, labels = next(spec("workers").loader("cpu").evaluate("val"))
    dev, same_labels = next(spec("device").loader("cpu").evaluate("val"))
    assert pil.shape == dev.shape == (8, 3, 64, 64) and torch.equal(labels, same_labels)
    assert (pil - dev).abs().mean() < 0.15 and torch.corrcoef(torch.stack([pil.flatten(), dev.flatten()]))[0, 1] > 0.97
    other = torch.roll(pil, 1, 0)  # another image's view is far: the comparison can fail
    assert (other - dev).abs().mean() > 0.5
    first = [x for x, _ in spec("device").loader("cpu").train(0)]
    again = [x for x, _ in spec("device").loader("cpu").train(0)]
    later = [x for x, _ in spec("device").loader("cpu").train(1)]
    assert [x.shape for x in first] == [(4, 3, 64, 64)] * 2
    assert all(torch.equal(a, b) for a, b in zip(first, again)) and not torch.equal(first[0], later[0])
