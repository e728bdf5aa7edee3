"""Warm starts: a search learns from an earlier run's evaluations (--prior)."""
import json
import shutil
import subprocess
import sys

import numpy as np

COMMON = ["--space", "nb201", "--batch", "5", "--init", "5", "--quiet", "--no-plots"]
GUIDED = ["--strategy", "narformer", "--predictor", "mlp", "--predictor-set", "epochs=40",
          "--predictor-set", "hidden=(64,)", "--candidates", "200"]


def search(*args):
    return subprocess.run([sys.executable, "-m", "search.run", *COMMON, *args], capture_output=True, text=True,
                          timeout=600)


def entries(folder):
    return [json.loads(line) for line in (folder / "journal.jsonl").read_text().splitlines()]


def test_a_search_learns_from_a_prior_run_and_never_repeats_it(tmp_path):
    first = tmp_path / "first"
    done = search("--strategy", "random", "--budget", "40", "--seed", "1", "--out", str(first))
    assert done.returncode == 0, done.stderr
    warm = tmp_path / "warm"
    done = search(*GUIDED, "--budget", "10", "--seed", "2", "--prior", str(first), "--out", str(warm))
    assert done.returncode == 0, done.stderr
    earlier, now = entries(first), entries(warm)
    assert len(now) == 10  # the prior's 40 do not count against the budget
    assert not {e["key"] for e in earlier} & {e["key"] for e in now}  # and are never evaluated again
    # round 1 is already ranked by a predictor fitted on the prior, not drawn at random
    first_round = [e for e in now if e["round"] == 1]
    history = json.loads((warm / "state.json").read_text())["payload"]["strategy"]["history"]
    assert all(e["predicted"] is not None for e in history if e["round"] == 1)
    assert np.mean([e["val"] for e in first_round]) > np.mean([e["val"] for e in earlier])
    config = json.loads((warm / "config.json").read_text())
    assert config["prior"]["archs"] == 40 and config["config"]["strategy"]["prior"] == str(first)
    assert len((warm / "prior.jsonl").read_text().splitlines()) == 40
    # a resume reads the run's own copy: the source may be gone
    shutil.rmtree(first)
    done = search("--resume", str(warm))
    assert done.returncode == 0, done.stderr
    assert entries(warm) == now


def test_bad_priors_are_one_line(tmp_path):
    for args, message in ((["--prior", str(tmp_path / "none")], "no such run folder or table"),
                          (["--strategy", "rea", "--prior", str(tmp_path)], "strategy rea does not learn from")):
        done = search("--budget", "10", "--out", str(tmp_path / "bad"), *args)
        assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1, \
            done.stderr
