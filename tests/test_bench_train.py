"""python -m bench.train: training throughput of the trainer's own step and pipeline, on this CPU."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "imagenet_sample"


def bench(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "bench.train", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.alone
def test_a_network_s_images_per_second_and_step_split(tmp_path, cifar_dir):
    out = tmp_path / "darts.json"
    done = bench("--what", "darts-search", "--batch-size", "32", "--steps", "3", "--warmup", "1", "--threads", "2",
                 "--data-dir", str(cifar_dir), "--json", str(out))
    assert done.returncode == 0, done.stderr
    r = json.loads(out.read_text())
    assert r["network"].startswith("DARTS V2, 8 cells, 16 channels") and r["data"] == "cifar10"
    assert r["batch_size"] == 32 and r["precision"] == "float32" and r["device"].startswith("cpu")
    assert r["images_per_second"] > 0 and abs(r["step_ms"] * r["images_per_second"] / (1000 * 32) - 1) < 1e-3
    phases = r["phase_ms_synchronised"]
    assert set(phases) == {"data", "forward", "backward", "optimizer"} and min(phases.values()) > 0
    # the synchronised split adds up to about the unsynchronised step (a CPU has nothing to overlap)
    assert 0.5 < sum(phases.values()) / r["step_ms"] < 2, r
    assert phases["backward"] > phases["optimizer"]
    assert r["peak_memory_mib"] > 0 and r["torch"] and r["seed"] == 0


def test_imagenet_input_with_each_decoder_and_bad_input(tmp_path):
    for decode in ("device", "workers"):
        done = bench("--what", "imagenet-input", "--data-dir", str(SAMPLE), "--decode", decode, "--batch-size", "16",
                     "--steps", "2", "--warmup", "1", "--workers", "1")
        assert done.returncode == 0, done.stderr
        r = json.loads(done.stdout)
        assert r["decode"] == decode and r["images_per_second"] > 0 and r["resolution"] == 224
    missing = bench("--what", "ofa-eval", "--json", str(tmp_path / "x.json"))
    assert missing.returncode == 2 and "needs --data-dir" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.json").exists()
    nowhere = bench("--what", "imagenet-input", "--data-dir", str(tmp_path / "none"))
    assert nowhere.returncode == 2 and "does not exist" in nowhere.stderr
    unknown = bench("--what", "resnet")
    assert unknown.returncode == 2 and "darts-search" in unknown.stderr
    for args, message in [(("--precision", "fp8"), "invalid choice: 'fp8'"), (("--decode", "gpu"), "invalid choice"),
                          (("--threads", "-1"), "--threads and --workers >= 0"), (("--steps", "0"), "must be >= 1")]:
        bad = bench("--what", "darts-search", *args)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr, (args, bad.stderr)
