"""ImageNet evaluation of OFA subnets: BatchNorm recalibration, top-1, the ofa-supernet evaluator."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from training.bn import recalibrate_bn

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "imagenet_sample"


def test_recalibrated_statistics_are_the_average_over_the_calibration_batches():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False), nn.BatchNorm2d(4), nn.Dropout(0.9))
    model[1].running_mean.fill_(7.0)
    batches = [torch.randn(8, 3, 5, 5) * (i + 1) + i for i in range(3)]
    used = recalibrate_bn(model, [(b, None) for b in batches], max_images=20)
    assert used == 20 and not model.training and model[1].momentum == 0.1  # momentum restored
    with torch.no_grad():
        feats = [model[0](b) for b in (batches[0], batches[1], batches[2][:4])]
    means = torch.stack([f.mean(dim=(0, 2, 3)) for f in feats]).mean(0)
    torch.testing.assert_close(model[1].running_mean, means)


def test_top1_counts_correct_predictions():
    from training.trainer import evaluate

    class Oracle(nn.Module):  # predicts the class written in the first pixel
        def forward(self, x):
            return nn.functional.one_hot(x[:, 0, 0, 0].long(), 5).float()

    x = torch.zeros(6, 3, 2, 2)
    x[:, 0, 0, 0] = torch.tensor([0, 1, 2, 3, 4, 0])
    y = torch.tensor([0, 1, 2, 3, 0, 1])

    class Batches:  # the trainer's loader interface
        def size(self, split):
            return 6

        def evaluate(self, split):
            return iter([(x[:3], y[:3]), (x[3:], y[3:])])
    assert evaluate(Oracle(), Batches(), "val") == pytest.approx(400 / 6)


@pytest.fixture(scope="module")
def supernet_file(tmp_path_factory):
    """A supernet state dict in the official file's layout ({"state_dict": ...}), random weights."""
    from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3
    net = OFAMobileNetV3(n_classes=1000, dropout_rate=0.1, width_mult=1.0, ks_list=[3, 5, 7],
                         expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4])
    path = tmp_path_factory.mktemp("ofa") / "ofa_mbv3_d234_e346_k357_w1.0"
    torch.save({"state_dict": net.state_dict()}, path)
    return path


def _search(*args):
    return subprocess.run([sys.executable, "-m", "search.run", "--space", "ofa_mbv3", "--space-set",
                           "resolutions=128,160", "--evaluator", "ofa-supernet", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)


def test_smoke_search_with_the_supernet_on_the_shared_images(tmp_path, supernet_file):
    out = tmp_path / "run"
    done = _search("--data-dir", str(SAMPLE), "--supernet", str(supernet_file), "--set",
                   "evaluator.config.calib_images=64", "--set", "evaluator.config.holdout_images=50", "--set",
                   "evaluator.config.val_images=100", "--set", "evaluator.config.workers=0", "--budget", "2",
                   "--batch", "2", "--init", "2", "--strategy", "random", "--executor", "inline", "--quiet",
                   "--no-plots", "--out", str(out))
    assert done.returncode == 0, done.stderr
    entries = [json.loads(x) for x in (out / "journal.jsonl").read_text().splitlines()]
    assert len(entries) == 2 and all(e["status"] == "ok" for e in entries)
    for e in entries:
        assert (e["calib_images"], e["holdout_images"], e["val_images"]) == (64, 50, 100)
        assert 0 <= e["val"] <= 100 and 0 <= e["test"] <= 100 and e["params"] > 1e6 and e["macs"] > 1e7
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metric"] == "imagenet_holdout_top1" and summary["test_metric"] == "imagenet_val_top1"


def test_the_evaluated_subnet_carries_the_supernets_weights(supernet_file):
    """What the evaluator builds (space.build_model on a space with --supernet) takes the
    trained supernet's tensors; without the file, the same arch has its own random ones."""
    import numpy as np

    import spaces
    supernet = torch.load(supernet_file, weights_only=False)["state_dict"]
    space = spaces.get_space("ofa_mbv3", supernet=str(supernet_file), resolutions=[128, 160])
    arch = space.sample(np.random.default_rng(0))
    taken = space.build_model(arch).state_dict()
    scratch = spaces.get_space("ofa_mbv3", resolutions=[128, 160]).build_model(arch).state_dict()
    for name in ("first_conv.conv.weight", "classifier.linear.weight", "final_expand_layer.conv.weight"):
        assert torch.equal(taken[name], supernet[name]) and not torch.equal(scratch[name], supernet[name]), name


def test_missing_supernet_or_images_are_one_line_errors(tmp_path, supernet_file, monkeypatch):
    monkeypatch.setenv("NARNAS_DATA", str(tmp_path))
    no_weights = _search("--data-dir", str(SAMPLE))
    assert no_weights.returncode == 2 and "needs the trained supernet's weights" in no_weights.stderr
    no_images = _search("--data-dir", str(tmp_path / "nowhere"), "--supernet", str(supernet_file))
    assert no_images.returncode == 2 and "does not exist" in no_images.stderr
    assert len(no_images.stderr.strip().splitlines()) == 1


def test_imagenet_bench_reports_a_failed_search_in_one_line(tmp_path):
    out = tmp_path / "smoke.json"
    done = subprocess.run([sys.executable, "-m", "bench.imagenet", "--data-dir", str(tmp_path / "nowhere"),
                           "--only", "darts_imagenet", "--json", str(out), "--quiet"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and not out.exists()
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "failed" in lines[0] and "nowhere" in lines[0], done.stderr
