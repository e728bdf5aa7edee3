"""CIFAR-10 reading and DARTS training on the mini CIFAR set converted to the standard layout."""
import hashlib
import json
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import spaces
from training import TrainingError
from training.datasets import cifar10
from training.recipes import get_recipe

DARTS = get_recipe("darts")

# threads pinned: a training compared with another must not pick its thread count from the load
TINY = ["--set", "threads=2", "--set", "channels=4", "--set", "layers=3", "--set", "val_size=200",
        "--set", "fraction=0.25", "--set", "batch_size=50", "--set", "eval_batch_size=200"]


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
    with pytest.raises(TrainingError, match="does not exist"):
        cifar10.load(tmp_path / "nowhere")
    with pytest.raises(TrainingError, match=r"CIFAR-10 not found.*--data-dir, \$NARNAS_CIFAR10_DIR"):
        cifar10.load(download=False)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in cifar10.TRAIN_FILES + (cifar10.TEST_FILE,):
        (broken / name).write_bytes((cifar_dir / name).read_bytes()[:100])
    with pytest.raises(TrainingError, match="data_batch_1 is unreadable"):
        cifar10.load(broken)


def test_smoke_training_lowers_the_training_loss(cifar_dir):
    space = spaces.get_space("darts")
    data = cifar10.load(cifar_dir, val_size=200, fraction=0.5)
    config = DARTS.preset("smoke", epochs=4, channels=4, layers=3, val_size=200, fraction=0.5, batch_size=50,
                             lr=0.05, threads=2)
    result = DARTS.train(space.from_json(spaces.darts.DARTS_V2), space, data, config)
    losses = [h["train_loss"] for h in result["history"]]
    assert len(losses) == 4 and losses[-1] < losses[0] - 0.05, losses
    # chance is 10%; measured 26.5 / 21.2 (about 100 validation and 500 test images)
    assert result["val"] > 15 and result["test"] > 15 and result["params"] > 0, result


def test_a_training_stops_at_a_rung_when_told_and_a_resume_after_the_rung_asks_again(cifar_dir, tmp_path):
    space = spaces.get_space("darts")
    data = cifar10.load(cifar_dir, val_size=200, fraction=0.25)
    config = DARTS.preset("smoke", epochs=3, channels=4, layers=3, val_size=200, fraction=0.25, batch_size=50,
                          threads=2)
    arch = space.from_json(spaces.darts.DARTS_V2)
    asked = []

    def stop_at_2(epoch, val, seconds):
        asked.append((epoch, val))
        return epoch < 2
    stopped = DARTS.train(arch, space, data, config, rungs=[1, 2], report=stop_at_2)
    assert [e for e, _ in asked] == [1, 2] and stopped["stopped"] and stopped["epochs"] == 2
    assert stopped["test"] is None and stopped["val"] == asked[-1][1] == stopped["history"][-1]["val"]

    class Killed(Exception):
        pass

    def killed_at_1(epoch, val, seconds):  # the process dies after the rung's checkpoint, before an answer
        raise Killed
    checkpoint = tmp_path / "checkpoint.pt"
    with pytest.raises(Killed):
        DARTS.train(arch, space, data, config, checkpoint=checkpoint, rungs=[1], report=killed_at_1)
    asked.clear()
    again = DARTS.train(arch, space, data, config, checkpoint=checkpoint, rungs=[1],
                        report=lambda epoch, val, seconds: asked.append(epoch) or False)
    assert asked == [1] and again["stopped"] and again["epochs"] == 1  # asked again, before any training
    whole = DARTS.train(arch, space, data, config, rungs=[1, 2])  # no report: no rung is measured
    assert "stopped" not in whole and whole["epochs"] == 3 and all("val" not in h for h in whole["history"])


def test_augmentation_keeps_shapes_and_is_seeded():
    import torch

    from training.datasets.arrays import augment
    x = torch.randint(1, 256, (8, 3, 32, 32), dtype=torch.uint8)
    fill = torch.tensor([7, 8, 9], dtype=torch.uint8)
    a = augment(x, torch.Generator().manual_seed(0), cutout=16, fill=fill)
    b = augment(x, torch.Generator().manual_seed(0), cutout=16, fill=fill)
    assert a.shape == x.shape and a.dtype == torch.uint8 and torch.equal(a, b)
    no_cutout = augment(x, torch.Generator().manual_seed(0))  # same crops and flips
    changed = (a != no_cutout).any(1)
    assert (a.permute(0, 2, 3, 1)[changed] == fill).all()  # what the cutout changed is the fill colour
    sizes = changed.sum((1, 2))  # a 16x16 square, clipped at the border
    assert (sizes > 0).all() and (sizes <= 256).all() and (sizes == 256).any()
    padding = (no_cutout == 0).all(1).sum((1, 2))  # x has no black pixel: these are the zero padding's
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
    loud = [a for a in args if a != "--quiet"]
    again = subprocess.run(loud + ["--out", str(out)], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "resuming training from epoch" in again.stderr
    # In a log (not a terminal) the progress is one line per epoch with a time estimate, no bar.
    assert re.search(r"^epoch 3/3 loss [0-9.]+ acc [0-9.]+% \S+ eta 0s$", again.stderr, re.M), again.stderr
    assert "\r" not in again.stderr
    got = json.loads((out / "result.json").read_text())
    want = json.loads((tmp_path / "whole" / "result.json").read_text())
    assert [h["epoch"] for h in got["history"]] == [1, 2, 3]
    np.testing.assert_allclose([h["train_loss"] for h in got["history"]],
                               [h["train_loss"] for h in want["history"]], rtol=1e-5)
    assert got["val"] == want["val"] and got["test"] == want["test"]

    # A folder holds one arch's training: another genotype is refused before anything is touched,
    # and the checkpoint refuses it too when arch.json is gone; export refuses weights of another
    # arch and files that are no checkpoint.
    arch_json = (out / "arch.json").read_text()
    other = [a if a != "darts_v2" else "darts_v1" for a in args]
    for folder_state in ("with arch.json", "without arch.json"):
        refused = subprocess.run(other + ["--out", str(out)], capture_output=True, text=True, timeout=600)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert "another arch" in refused.stderr
        if folder_state == "with arch.json":
            assert (out / "arch.json").read_text() == arch_json
            (out / "arch.json").unlink()
    exported = lambda arch, weights: subprocess.run(
        [sys.executable, "-m", "search.export", "--arch", arch, "--weights", str(weights), "--out",
         str(tmp_path / "export")], capture_output=True, text=True, timeout=600)
    foreign = exported("darts_v1", out / "checkpoint.pt")
    assert foreign.returncode == 2 and "belong to another arch" in foreign.stderr, foreign.stderr
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    junk = exported("darts_v2", tmp_path / "junk.pt")
    assert junk.returncode == 2 and "is not a PyTorch checkpoint" in junk.stderr, junk.stderr
    assert not list((tmp_path / "export").glob("model*"))


def test_bad_training_input(cifar_dir):
    cases = [(["--arch", "nope"], "is neither a file, a known name (darts_v1, darts_v2) nor a darts architecture"),
             (["--arch", "darts_v2", "--preset", "huge"], "unknown preset 'huge'; valid: final, search, smoke"),
             (["--arch", "darts_v2", "--set", "epoch=3"], "unknown config key(s) epoch in training"),
             (["--arch", "{\"normal\": [], \"reduce\": []}"], "normal has 0 edges"),
             (["--arch", "darts_v2", "--set", "precision=fp8"], "training.precision must be one of auto, fp32, bf16"),
             (["--arch", "darts_v2", "--set", "threads=-2"], "threads"),
             (["--arch", "darts_v2", "--set", "schedule=step"], "training.schedule must be one of cosine, exponential")]
    for extra, message in cases:
        done = subprocess.run([sys.executable, "-m", "search.train", "--data-dir", str(cifar_dir), *extra],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_darts_search_trains_its_candidates(cifar_dir, tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "search.run", "--space", "darts", "--preset", "smoke", "--budget", "4", "--init", "2",
            "--batch", "2", "--data-dir", str(cifar_dir), "--executor", "inline", "--predictor", "mlp",
            "--predictor-set", "epochs=10", "--keep-checkpoints", "2", "--quiet", "--out", str(out)]
    for item in TINY[1::2]:
        args += ["--train-set", item]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["evaluations"] == 4 and summary["failed"] == 0 and summary["metric"] == "cifar10_val_acc"
    space = spaces.get_space("darts")
    best = space.from_json(json.loads((out / "best.json").read_text()))
    assert space.key(best) == summary["best"]["key"]
    # each trained arch had its checkpoint folder; the two best finished ones keep theirs
    entries = [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]
    best_two = sorted(entries, key=lambda e: -e["val"])[:2]
    digest = lambda e: hashlib.sha1(e["key"].encode()).hexdigest()[:16]  # noqa: E731
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == sorted(digest(e) for e in best_two)
    config = json.loads((out / "config.json").read_text())
    assert config["evaluator"]["kind"] == "cifar10-train" and config["evaluator"]["training"]["channels"] == 4
    assert config["config"]["evaluator"]["name"] == "cifar10-train" and config["config"]["executor"]["name"] == "inline"


def test_an_async_darts_search_on_the_embedded_ray_stops_early_and_survives_a_kill(cifar_dir, tmp_path):
    """Two slots of smoke trainings as Ray tasks, each reporting its validation accuracy after
    epoch 1 of 2 to ASHA: SIGKILL once the first result is journaled, resume, and every
    evaluation is journaled once, with every field the evaluator gives; a stopped training
    trained one epoch."""
    out = tmp_path / "run"
    args = [sys.executable, "-m", "search.run", "--space", "darts", "--preset", "smoke", "--budget", "4", "--init", "2",
            "--batch", "2", "--data-dir", str(cifar_dir), "--executor", "ray", "--schedule", "async", "--slots", "2",
            "--stopper", "asha", "--set", "evaluator.config.rungs=[1]", "--train-set", "epochs=2",
            "--predictor", "mlp", "--predictor-set", "epochs=10", "--quiet", "--no-plots"]
    for item in TINY[1::2]:
        args += ["--train-set", item.replace("threads=2", "threads=1")]
    proc = subprocess.Popen(args + ["--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline and not (
            (out / "journal.jsonl").exists() and (out / "journal.jsonl").read_text().count("\n") >= 1):
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run([sys.executable, "-m", "search.run", "--resume", str(out), "--quiet"],
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    records = [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]
    assert len(records) == 4 == len({r["key"] for r in records})
    fields = {"val", "test", "seconds", "params", "epochs", "train_loss", "threads", "precision", "cost", "began",
              "ended", "attempts", "status", "round", "slots", "process", "wall_seconds", "key", "arch", "curve"}
    assert all(fields <= set(r) and r["cost"] == r["seconds"] for r in records)
    assert {r["process"] for r in records} == {0, 1}
    for r in records:  # the validation accuracy after epoch 1 was reported by each
        assert set(r["curve"]) == {"1"}
        if r["status"] == "stopped":
            assert r["epochs"] == r["fidelity"] == 1 and r["test"] is None and r["val"] == r["curve"]["1"]
        else:
            assert r["status"] == "ok" and r["epochs"] == 2 and r["test"] is not None
    decisions = [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]
    assert {d["key"] for d in decisions} == {r["key"] for r in records}
    assert {d["key"] for d in decisions if not d["go_on"]} == {r["key"] for r in records if r["status"] == "stopped"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schedule"] == "async" and summary["slots"] == 2 and summary["resumed"] == 1


def test_reads_a_batch_made_by_hand_in_the_documented_layout(tmp_path):
    """Each batch is a pickled dict: b"data" holds one row of 3,072 bytes per image (the
    1,024 red values row by row, then green, then blue), b"labels" the classes. Image i of
    these batches has red i, green 2i mod 256 and blue 255 - i everywhere, and label i mod 10."""
    import pickle
    folder = tmp_path / cifar10.FOLDER
    folder.mkdir()
    ids = {name: np.arange(k * 20, k * 20 + 20) for k, name in enumerate(cifar10.TRAIN_FILES + (cifar10.TEST_FILE,))}
    for name, rows in ids.items():
        data = np.concatenate([np.repeat(rows[:, None] % 256, 1024, 1), np.repeat((2 * rows[:, None]) % 256, 1024, 1),
                               np.repeat(255 - rows[:, None], 1024, 1)], axis=1).astype(np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": [int(i % 10) for i in rows], b"batch_label": name.encode()}, f)
    data = cifar10.load(folder, val_size=30)
    assert (len(data.train), len(data.val), len(data.test)) == (70, 30, 20)
    seen = []
    for split in (data.train, data.val, data.test):
        assert split.x.shape[1:] == (32, 32, 3)
        for image, label in zip(split.x, split.y):
            i = int(image[0, 0, 0])
            assert (image[..., 0] == i).all() and (image[..., 1] == (2 * i) % 256).all() and (image[..., 2] == 255 - i).all()
            assert label == i % 10
            seen.append(i)
    assert sorted(seen[:100]) == list(range(100)) and sorted(seen[100:]) == list(range(100, 120))


def test_training_fits_one_batch_far_above_chance():
    """40 images whose class sets their colour (random crops and flips keep it): a working
    training loop learns them within a few dozen steps; a broken one stays at chance (10%)."""
    rng = np.random.default_rng(0)
    y = np.arange(40, dtype=np.int64) % 10
    colour = np.stack([y * 25, 250 - y * 25, (y * 70) % 256], axis=1)[:, None, None, :]
    x = np.clip(colour + rng.integers(-20, 21, (40, 32, 32, 3)), 0, 255).astype(np.uint8)
    one = cifar10.Split(x, y)
    data = cifar10.CIFAR10(one, cifar10.Split(x[:0], y[:0]), one, "by hand")
    space = spaces.get_space("darts")
    config = DARTS.preset("smoke", epochs=30, channels=8, layers=3, batch_size=40, fraction=1.0, cutout=0,
                             auxiliary=False, drop_path=0.0, lr=0.05, weight_decay=0.0, val_size=0, threads=2)
    result = DARTS.train(space.from_json(spaces.darts.DARTS_V2), space, data, config)
    assert result["history"][-1]["train_loss"] < 0.5 * result["history"][0]["train_loss"], result["history"]
    assert result["test"] >= 80, result["test"]  # the same 40 images, evaluated without augmentation


def test_a_checkpoint_is_only_continued_by_its_own_config_and_network(tmp_path):
    import dataclasses

    from training.trainer import TrainerConfig, load_checkpoint, save_checkpoint
    path = tmp_path / "ckpt.pt"
    cfg = TrainerConfig(epochs=3)
    assert load_checkpoint(path, cfg, {"arch": "a"}, "cpu") is None  # nothing yet
    save_checkpoint(path, {"config": dataclasses.asdict(cfg), "arch": "a", "epoch": 2})
    assert load_checkpoint(path, cfg, {"arch": "a"}, "cpu")["epoch"] == 2
    with pytest.raises(TrainingError, match="another training config"):
        load_checkpoint(path, TrainerConfig(epochs=4), {"arch": "a"}, "cpu")
    with pytest.raises(TrainingError, match=r"belongs to another arch \(a\)"):
        load_checkpoint(path, cfg, {"arch": "b"}, "cpu")


def test_train_help_lists_every_recipe_and_its_presets():
    from training.recipes import RECIPES
    shown = subprocess.run([sys.executable, "-m", "search.train", "--help"], capture_output=True, text=True).stdout
    for space in RECIPES.names():
        line = next(line for line in shown.splitlines() if line.split()[:1] == [space])
        assert all(preset in line for preset in RECIPES.get(space).presets), line
    assert "--arch ARCH" in shown and "darts_v2" in shown
