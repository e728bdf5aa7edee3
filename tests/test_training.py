"""CIFAR-10 reading and DARTS training on the mini CIFAR set converted to the standard layout."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import spaces
from search import cifar10, training
from search.errors import SearchError

TINY = ["--set", "channels=4", "--set", "layers=3", "--set", "val_size=200", "--set", "fraction=0.25",
        "--set", "batch_size=50", "--set", "eval_batch_size=200"]


@pytest.fixture(scope="module")
def cifar_dir(shared_data, tmp_path_factory):
    z = np.load(shared_data / "cifar10" / "cifar10_mini_decoded.npz")
    train, test = z["split"] == 0, z["split"] == 1
    folder = tmp_path_factory.mktemp("cifar") / cifar10.FOLDER
    cifar10.write_batches(folder, cifar10.Split(z["x"][train], z["y"][train].astype(np.int64)),
                          cifar10.Split(z["x"][test], z["y"][test].astype(np.int64)))
    return folder


def test_reads_the_standard_layout_with_a_checksum_warning(cifar_dir, shared_data):
    warnings = []
    data = cifar10.load(cifar_dir.parent, val_size=300, warn=warnings.append)
    assert (len(data.train), len(data.val), len(data.test)) == (1700, 300, 1000)
    assert len(warnings) == 1 and "differ from the official CIFAR-10 checksums" in warnings[0]
    z = np.load(shared_data / "cifar10" / "cifar10_mini_decoded.npz")
    train_x = z["x"][z["split"] == 0]
    assert np.array_equal(np.sort(np.concatenate([data.train.y, data.val.y])), np.sort(z["y"][z["split"] == 0]))
    assert any(np.array_equal(data.val.x[0], img) for img in train_x)  # pixels survive the round trip
    half = cifar10.load(cifar_dir, val_size=300, fraction=0.5)
    assert np.bincount(half.test.y).tolist() == [50] * 10


def test_missing_or_corrupt_data_is_reported(tmp_path, cifar_dir, monkeypatch):
    monkeypatch.delenv(cifar10.ENV_VAR, raising=False)
    with pytest.raises(SearchError, match="does not exist"):
        cifar10.load(tmp_path / "nowhere")
    with pytest.raises(SearchError, match=r"CIFAR-10 not found.*--data-dir, \$NARNAS_CIFAR10_DIR"):
        cifar10.load(download=False)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in cifar10.TRAIN_FILES + (cifar10.TEST_FILE,):
        (broken / name).write_bytes((cifar_dir / name).read_bytes()[:100])
    with pytest.raises(SearchError, match="data_batch_1 is unreadable"):
        cifar10.load(broken)


def test_smoke_training_lowers_the_training_loss(cifar_dir):
    space = spaces.get_space("darts")
    data = cifar10.load(cifar_dir, val_size=200, fraction=0.5)
    config = training.preset("smoke", epochs=4, channels=4, layers=3, val_size=200, fraction=0.5, batch_size=50,
                             lr=0.05, threads=2)
    result = training.train(space.from_json(spaces.darts.DARTS_V2), space, data, config)
    losses = [h["train_loss"] for h in result["history"]]
    assert len(losses) == 4 and losses[-1] < losses[0] - 0.05, losses
    assert 0 <= result["val"] <= 100 and 0 <= result["test"] <= 100 and result["params"] > 0


def test_augmentation_keeps_shapes_and_is_seeded():
    import torch
    x = torch.randn(8, 3, 32, 32)
    a = training.augment(x, torch.Generator().manual_seed(0), 16)
    b = training.augment(x, torch.Generator().manual_seed(0), 16)
    assert a.shape == x.shape and torch.equal(a, b)
    no_cutout = training.augment(x, torch.Generator().manual_seed(0), 0)  # same crops and flips
    hole = ((a == 0) & (no_cutout != 0)).all(1).sum((1, 2))  # a 16x16 square, clipped at the border
    assert (hole > 0).all() and (hole <= 256).all() and (hole == 256).any()
    padding = (no_cutout == 0).all(1).sum((1, 2))  # random crops of the 4-padded image
    assert (padding > 0).any()


def test_killed_training_continues_from_its_last_epoch(cifar_dir, tmp_path):
    args = [sys.executable, "-m", "search.train", "--arch", "darts_v2", "--preset", "smoke", "--data-dir",
            str(cifar_dir), "--set", "epochs=3", *TINY, "--quiet"]
    whole = subprocess.run(args + ["--out", str(tmp_path / "whole")], capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen(args + ["--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (out / "checkpoint.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "result.json").exists()
    again = subprocess.run(args + ["--out", str(out)], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "resuming training from epoch" in again.stderr
    got = json.loads((out / "result.json").read_text())
    want = json.loads((tmp_path / "whole" / "result.json").read_text())
    assert [h["epoch"] for h in got["history"]] == [1, 2, 3]
    np.testing.assert_allclose([h["train_loss"] for h in got["history"]],
                               [h["train_loss"] for h in want["history"]], rtol=1e-5)
    assert got["val"] == want["val"] and got["test"] == want["test"]


def test_bad_training_input(cifar_dir):
    cases = [(["--arch", "nope"], "neither a file, a genotype nor a known name"),
             (["--arch", "darts_v2", "--preset", "huge"], "unknown preset 'huge'; valid: final, search, smoke"),
             (["--arch", "darts_v2", "--set", "epoch=3"], "unknown training key(s) epoch"),
             (["--arch", "{\"normal\": [], \"reduce\": []}"], "normal has 0 edges")]
    for extra, message in cases:
        done = subprocess.run([sys.executable, "-m", "search.train", "--data-dir", str(cifar_dir), *extra],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_darts_search_trains_its_candidates(cifar_dir, tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "search.run", "--space", "darts", "--preset", "smoke", "--budget", "4", "--init", "2",
            "--batch", "2", "--data-dir", str(cifar_dir), "--executor", "inline", "--predictor", "mlp",
            "--predictor-set", "epochs=10", "--quiet", "--out", str(out)]
    for item in TINY[1::2]:
        args += ["--train-set", item]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["evaluations"] == 4 and summary["failed"] == 0 and summary["metric"] == "cifar10_val_acc"
    space = spaces.get_space("darts")
    best = space.from_json(json.loads((out / "best.json").read_text()))
    assert space.key(best) == summary["best"]["key"]
    assert len(list((out / "checkpoints").iterdir())) == 4  # one checkpoint folder per trained arch
    config = json.loads((out / "config.json").read_text())
    assert config["evaluator"]["kind"] == "training" and config["evaluator"]["training"]["channels"] == 4
