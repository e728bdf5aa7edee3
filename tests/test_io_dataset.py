"""The input-output dataset of arch2vec's extension: preprocessing and the resumable builder."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from embeddings.io_dataset import load_io_dataset
from embeddings.io_features import fit_normaliser, io_targets, normalise
from predictor.errors import PredictorError


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


def _build_command(out, cifar_dir, *extra):
    return [sys.executable, "-m", "search.io_data", "build", "--space", "nb101", "--preset", "smoke",
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
    assert data["images"]["val_x"].shape == (200, 32, 32, 3) and data["images"]["test_y"].shape == (100,)
    manifest = json.loads((out / "build.json").read_text())
    assert len(manifest["test_rows"]) == 100 and manifest["training"]["epochs"] == 1
    assert {"torch", "numpy", "python"} <= set(manifest["versions"])
    other = subprocess.run(_build_command(out, cifar_dir, "--seed", "1"), capture_output=True, text=True, env=env)
    assert other.returncode == 2 and "other settings (seed differ)" in other.stderr


def test_missing_cifar_or_folder_is_one_line(tmp_path, monkeypatch):
    missing = subprocess.run(_build_command(tmp_path / "io", tmp_path / "nowhere"), capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.startswith("error:") and "does not exist" in missing.stderr
    assert not (tmp_path / "io" / "build.json").exists()  # nothing started
    info = subprocess.run([sys.executable, "-m", "search.io_data", "info", str(tmp_path)], capture_output=True,
                          text=True)
    assert info.returncode == 2 and "not an input-output dataset" in info.stderr


@pytest.mark.parametrize("space_name", ["nb101", "nb201"])
def test_cell_recipes_train_and_expose_pooled_features(space_name, cifar_dir):
    """The NB101 / NB201 recipes train the space's network (smoke preset) and the features
    the dataset stores are the classifier's input: the classifier applied to them gives the
    network's logits."""
    import torch

    import spaces
    from search.io_build import pooled_features
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


def test_the_extended_model_refuses_a_device_it_would_not_use():
    from embeddings.io_model import IOModelConfig
    from predictor.errors import PredictorError
    with pytest.raises(PredictorError, match="CPU only"):
        IOModelConfig(device="cuda").validate()
    IOModelConfig().validate()


def test_every_labelled_block_is_followed_by_its_share_of_unlabelled_batches():
    """The 300:200 alternation keeps its ratio when an epoch is one block or ends on a short one
    (an epoch of exactly 300 labelled batches once trained the VAE on no unlabelled arch)."""
    from embeddings.io_model import alternation
    assert alternation(300, 300, 200) == [(300, 200)]
    assert alternation(750, 300, 200) == [(300, 200), (300, 200), (150, 100)]
    assert alternation(7, 300, 0) == [(7, 0)]
    assert sum(u for _, u in alternation(19_000, 300, 200)) == round(19_000 * 200 / 300)


@pytest.fixture(scope="module")
def small_io_dataset(cifar_dir, tmp_path_factory):
    from search.io_build import IOBuildConfig, build
    from search.executors import ExecutorConfig
    folder = tmp_path_factory.mktemp("io")
    build(folder, IOBuildConfig(preset="smoke", train_nets=8, val_nets=2, val_images=200, test_images=100,
                                train={"threads": 1}),
          ExecutorConfig(name="inline"), str(cifar_dir), log=lambda line: None)
    return folder


def test_the_extended_model_trains_and_its_file_serves_as_an_arch2vec_model(small_io_dataset, tmp_path):
    """Two short epochs: every validation loss and its mean-feature baseline are recorded and the
    model beats that baseline, the feature head depends on the network (two networks, one image:
    different features), and the file embeds archs like a plain arch2vec model."""
    import torch

    import predictor
    import spaces
    from embeddings.embedding import load_arch2vec
    from embeddings.io_model import IOModelConfig, IOTrainer
    from embeddings.pretrain import space_graphs
    space = spaces.get_space("nb101")
    dataset = load_io_dataset(small_io_dataset)
    unlabelled, _ = space_graphs(space, 500, 0)
    config = IOModelConfig(epochs=2, hidden=16, gin_layers=2, image_channels=(8, 16), network_dim=16, head_hidden=32,
                           labelled_batches=10, unlabelled_batches=5, pairs_per_epoch=640, eval_pairs=300)
    trainer = IOTrainer(space, dataset, config, unlabelled)
    assert len(trainer.splits.train) == 8 and len(trainer.splits.unseen_networks) == 2
    assert len(trainer.splits.unseen_images) == 1 and len(trainer.splits.test_networks) == 7
    trainer.fit(tmp_path / "io.pt")
    last = trainer.history[-1]
    for name in ("unseen_networks", "unseen_images", "unseen_both", "seen_networks_test_images"):
        assert np.isfinite(last[f"{name}_l1"]) and last[f"{name}_baseline"] > 0
    # the network's own features predicted better than the mean feature of the training networks, for
    # networks it trained on (test images) and networks it never saw (measured: 0.694 vs 0.708, 0.749 vs 0.761)
    for name in ("seen_networks_test_images", "unseen_networks"):
        assert last[f"{name}_l1"] < last[f"{name}_baseline"], (name, last)
    assert 0 <= last["reconstruction_ops_accuracy"] <= 1
    # 640 pairs = 20 labelled batches: two blocks of 10, each followed by its 5 unlabelled batches
    assert (last["labelled_batches"], last["unlabelled_batches"]) == (20, 10) and last["vae_unlabelled"] > 0
    model = trainer.model.eval()
    with torch.no_grad():
        one_hot = torch.nn.functional.one_hot(trainer.net_ops[:2], model.vae.num_classes).float()
        z, _ = model.vae.encoder(one_hot, trainer.net_adj[:2])
        image = trainer.images["val"][:1].expand(2, -1, -1, -1)
        features = model.predict_features(z, image)
    assert features.shape == (2, dataset["val"].shape[-1]) and not torch.allclose(features[0], features[1])
    loaded = load_arch2vec(tmp_path / "io.pt")
    graphs = [space.to_graph(space.from_json(n["arch"])) for n in dataset["networks"]]
    assert loaded.embed(graphs).shape == (10, 16) and loaded.epochs_done == 2
    p = predictor.get_predictor("arch2vec", model=str(tmp_path / "io.pt"), trees=10)
    assert np.isfinite(p.fit(graphs, [n["val"] for n in dataset["networks"]]).predict(graphs)).all()


def test_a_build_on_ray_with_a_relative_folder_keeps_its_files(tmp_path, cifar_dir):
    """Ray workers run in working directories of their own: the features must still land in
    the dataset folder given relative to where the command ran."""
    command = _build_command("io", cifar_dir)
    command[command.index("--executor") + 1] = "ray"
    command[command.index("--train-nets") + 1] = "2"
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr[-2000:]
    entries = [json.loads(line) for line in (tmp_path / "io" / "networks.jsonl").read_text().splitlines()]
    assert len(entries) == 3 and all((tmp_path / "io" / e["file"]).exists() for e in entries)
    assert load_io_dataset(tmp_path / "io")["val"].shape[0] == 3
