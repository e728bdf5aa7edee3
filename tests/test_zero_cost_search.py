"""Zero-cost proxies in a search: the zero-cost strategy, proxies as a predictor's inputs and
as its first round, and their bad input."""
import json
import subprocess
import sys

import numpy as np
import pytest

import spaces

COMMON = ["--space", "nb201", "--batch", "5", "--init", "5", "--quiet", "--no-plots",
          "--set", "proxies.batch_size=8"]


def search(tmp_path, name, *args):
    out = tmp_path / name
    done = subprocess.run([sys.executable, "-m", "search.run", *COMMON, "--out", str(out),
                           "--set", f"proxies.cache={tmp_path / 'proxies.jsonl'}", *args],
                          capture_output=True, text=True, timeout=600)
    return out, done


def entries(folder):
    return [json.loads(line) for line in (folder / "journal.jsonl").read_text().splitlines()]


def params_of(archs):
    space = spaces.get_space("nb201")
    return np.array([sum(p.numel() for p in space.build_model(space.from_json(a)).parameters()) for a in archs])


def test_the_zero_cost_strategy_trains_what_its_proxy_ranks_first(tmp_path, cifar_dir):
    # the parameter count: a proxy with NB201 rank correlation 0.65 (bench.zero_cost), computed in milliseconds
    common = ["--budget", "20", "--seed", "3", "--set", f"proxies.data_dir={cifar_dir}"]
    zc, done = search(tmp_path, "zc", "--strategy", "zero-cost", "--proxies", "params", *common,
                      "--set", "strategy.config.candidates=20")
    assert done.returncode == 0, done.stderr
    rnd, done = search(tmp_path, "random", "--strategy", "random", *common)
    assert done.returncode == 0, done.stderr
    chosen, drawn = entries(zc), entries(rnd)
    assert len(chosen) == len(drawn) == 20
    # each round, the 5 of 20 random archs with the most parameters: far above random archs' sizes and values
    assert params_of([e["arch"] for e in chosen]).min() > np.median(params_of([e["arch"] for e in drawn]))
    assert np.mean([e["val"] for e in chosen]) > np.mean([e["val"] for e in drawn]) + 1
    config = json.loads((zc / "config.json").read_text())["config"]
    assert config["proxies"]["names"] == ["params"]


def test_proxies_feed_the_predictor_and_pick_its_first_round(tmp_path, cifar_dir):
    out, done = search(tmp_path, "guided", "--strategy", "narformer", "--predictor", "mlp", "--budget", "10",
                       "--predictor-set", "epochs=20", "--predictor-set", "hidden=(16,)", "--candidates", "30",
                       "--proxies", "params,flops", "--first-round", "proxies", "--set", "proxies.pool=30",
                       "--set", f"proxies.data_dir={cifar_dir}")
    assert done.returncode == 0, done.stderr
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["predictor"]["config"]["graph_inputs"] == ["params", "flops"]
    first = [e for e in entries(out) if e["round"] == 1]
    space = spaces.get_space("nb201")
    random_sizes = params_of([space.to_json(space.sample(np.random.default_rng(i))) for i in range(30)])
    assert np.median(params_of([e["arch"] for e in first])) > np.percentile(random_sizes, 60)
    state = (out / "predictor").glob("*")
    assert any(True for _ in state)  # a predictor was fitted on the graphs with their proxies


@pytest.mark.parametrize("args, message", [
    (["--strategy", "zero-cost", "--proxies", "synflw"], "unknown zero-cost proxy 'synflw'; valid: "),
    (["--strategy", "narformer", "--first-round", "proxies"], "needs proxies: give --proxies NAMES"),
    (["--strategy", "narformer", "--proxies", "params", "--first-round", "best"],
     "proxies.first_round must be 'random' or 'proxies', got 'best'"),
    (["--strategy", "zero-cost", "--set", "proxies.network.chanels=8"],
     "proxies.network: unknown config key(s) chanels in nb201 build config; valid: cells_per_stage, channels,"),
    (["--strategy", "zero-cost", "--set", "proxies.data_dir=/nonexistent/cifar"],
     "the proxies' minibatch: CIFAR-10 folder /nonexistent/cifar (from --set proxies.data_dir=PATH) does not exist"),
    # the evaluator's dataset folder is the proxies' too
    (["--proxies", "params", "--evaluator", "cifar10-train", "--preset", "smoke", "--data-dir", "/nonexistent/c"],
     "the proxies' minibatch: CIFAR-10 folder /nonexistent/c (from --data-dir) does not exist"),
])
def test_bad_proxy_settings_are_one_line(tmp_path, args, message):
    out, done = search(tmp_path, "bad", "--budget", "10", *args)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (out / "journal.jsonl").exists()
