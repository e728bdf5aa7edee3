"""The input-output dataset of arch2vec's extension: preprocessing and the resumable builder."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from predictor.arch2vec.io_dataset import load_io_dataset
from predictor.arch2vec.io_features import fit_normaliser, io_targets, normalise
from predictor.errors import PredictorError
from training.datasets import cifar10


def test_targets_are_scaled_sorted_by_the_class_weights_with_the_bias_and_multiplied():
    features = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])  # mean 2, std sqrt(2/3) over all six
    weight = np.array([[0.5, -1.0, 2.0], [3.0, 1.0, 0.0]])
    bias = np.array([0.25, -4.0])
    labels = np.array([0, 1])
    s = np.sqrt(2 / 3)
    # image 0, class 0: weights (0.5, -1, 2 | bias 0.25) sorted largest first: 2, 0.5, 0.25, -1
    #   -> features (3, 1, [bias: 1], 2) scaled: (1/s, -1/s, 1, 0)
    # image 1, class 1: weights (3, 1, 0 | -4): 3, 1, 0, -4 -> features (3, 2, 1, [1]) -> (1/s, 0, -1/s, 1)
    expected = np.array([[2 * (1 / s), 0.5 * (-1 / s), 0.25 * 1, -1.0 * 0],
                         [3 * (1 / s), 1 * 0, 0 * (-1 / s), -4 * 1]])
    np.testing.assert_allclose(io_targets(features, weight, bias, labels), expected, rtol=1e-6)
    # a network whose features are 10x larger gives the same targets (per-network scaling)
    np.testing.assert_allclose(io_targets(10 * features, weight, bias, labels), expected, rtol=1e-5)
    # permuting a network's features together with its dense weights changes nothing
    perm = [2, 0, 1]
    np.testing.assert_allclose(io_targets(features[:, perm], weight[:, perm], bias, labels), expected, rtol=1e-6)
    train = np.array([[1.0, 5.0], [3.0, 5.0]])
    norm = fit_normaliser(train)
    np.testing.assert_allclose(normalise(train, norm), [[-1.0, 0.0], [1.0, 0.0]])  # a constant feature stays 0
    with pytest.raises(PredictorError, match="do not match"):
        io_targets(features, weight[:, :2], bias, labels)


@pytest.fixture(scope="module")
def cifar_dir(shared_data, tmp_path_factory):
    z = np.load(shared_data / "cifar10" / "cifar10_mini_decoded.npz")
    train, test = z["split"] == 0, z["split"] == 1
    folder = tmp_path_factory.mktemp("cifar") / cifar10.FOLDER
    cifar10.write_batches(folder, cifar10.Split(z["x"][train], z["y"][train].astype(np.int64)),
                          cifar10.Split(z["x"][test], z["y"][test].astype(np.int64)))
    return folder


def _build_command(out, cifar_dir, *extra):
    return [sys.executable, "-m", "predictor.io_data", "build", "--space", "nb101", "--preset", "smoke",
            "--train-nets", "5", "--val-nets", "1", "--val-images", "200", "--test-images", "100",
            "--data-dir", str(cifar_dir), "--executor", "inline", "--out", str(out), *extra]


def test_a_killed_build_resumes_without_training_a_network_twice(tmp_path, cifar_dir):
    out = tmp_path / "io"
    journal = out / "networks.jsonl"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(_build_command(out, cifar_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and (not journal.exists() or not journal.read_text().strip()):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = journal.read_text().splitlines()
    assert 1 <= len(first) < 6, "the kill should land while networks are still training"
    again = subprocess.run(_build_command(out, cifar_dir), capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr
    assert f"{len(first)} of 6 networks done" in again.stdout
    lines = journal.read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert lines[:len(first)] == first  # append-only
    assert sorted(e["index"] for e in entries) == list(range(6))  # each network once
    assert [e["split"] for e in sorted(entries, key=lambda e: e["index"])] == ["train"] * 5 + ["val"]
    data = load_io_dataset(out)
    channels = 16  # smoke: an 8-channel stem doubled once
    assert data["val"].shape == (6, 200, channels + 1) and data["test"].shape == (6, 100, channels + 1)
    assert np.isfinite(data["val"]).all()
    manifest = json.loads((out / "build.json").read_text())
    assert len(manifest["test_rows"]) == 100 and manifest["training"]["epochs"] == 1
    assert {"torch", "numpy", "python"} <= set(manifest["versions"])
    other = subprocess.run(_build_command(out, cifar_dir, "--seed", "1"), capture_output=True, text=True, env=env)
    assert other.returncode == 2 and "other settings (seed differ)" in other.stderr


def test_missing_cifar_or_folder_is_one_line(tmp_path, monkeypatch):
    missing = subprocess.run(_build_command(tmp_path / "io", tmp_path / "nowhere"), capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.startswith("error:") and "does not exist" in missing.stderr
    assert not (tmp_path / "io" / "build.json").exists()  # nothing started
    info = subprocess.run([sys.executable, "-m", "predictor.io_data", "info", str(tmp_path)], capture_output=True,
                          text=True)
    assert info.returncode == 2 and "not an input-output dataset" in info.stderr


@pytest.mark.parametrize("space_name", ["nb101", "nb201"])
def test_cell_recipes_train_and_expose_pooled_features(space_name, cifar_dir):
    """The NB101 / NB201 recipes train the space's network (smoke preset) and the features
    the dataset stores are the classifier's input: the classifier applied to them gives the
    network's logits."""
    import torch

    import spaces
    from predictor.arch2vec.io_dataset import pooled_features
    from training.recipes import get_recipe
    space, recipe = spaces.get_space(space_name), get_recipe(space_name)
    config = recipe.preset("smoke", val_size=200, threads=1)
    data = recipe.load_data(config, cifar_dir)
    arch = space.sample(np.random.default_rng(0))
    result, model = recipe.train_model(arch, space, data, config, log=lambda line: None)
    assert {"val", "test", "params", "seconds"} <= set(result) and result["params"] > 0
    features = pooled_features(model, data, data.test.x[:50], 25)
    with torch.no_grad():
        logits = model(data.prepare(data.test.x[:50]))
        again = model.classifier(torch.from_numpy(features))
    np.testing.assert_allclose(again.numpy(), logits.numpy(), rtol=1e-4, atol=1e-5)
