"""python -m search.run end to end on NB201 look-ups: kill and resume, config checks,
state corruption, the Ray executor."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

# A fast predictor keeps each round short; the equivalence does not depend on it.
FAST = ["--space", "nb201", "--budget", "40", "--batch", "10", "--seed", "5", "--predictor", "mlp",
        "--predictor-set", "epochs=40", "--predictor-set", "hidden=(64,)", "--candidates", "200", "--quiet",
        "--no-plots"]


def search(*args, **kw):
    return subprocess.run([sys.executable, "-m", "search.run", *args], capture_output=True, text=True,
                          timeout=600, **kw)


def journal(folder):
    path = folder / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def summary(folder):
    return json.loads((folder / "summary.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    done = search(*FAST, "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def kill_when(args, folder, lines):
    """Start a search and SIGKILL it once its journal holds at least ``lines`` lines."""
    proc = subprocess.Popen([sys.executable, "-m", "search.run", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        path = folder / "journal.jsonl"
        if path.exists() and path.read_text().count("\n") >= lines:
            break
        time.sleep(0.01)
    killed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return killed


def test_summary_files_and_best(reference):
    s = summary(reference)
    assert s["evaluations"] == 40 and s["rounds"] == 4 and s["resumed"] == 0 and s["failed"] == 0
    entries = journal(reference)
    assert len(entries) == 40 and len({e["key"] for e in entries}) == 40
    best = max(entries, key=lambda e: e["val"])
    assert s["best"]["key"] == best["key"] and s["best"]["test"] == best["test"]
    assert json.loads((reference / "best.json").read_text()) == best["arch"]
    config = json.loads((reference / "config.json").read_text())
    assert config["seed"] == 5 and config["config"]["budget"] == 40 and "torch" in config["versions"]
    assert sorted(p.name for p in (reference / "predictor").iterdir()) == [f"round_{r:03d}.pt" for r in (2, 3, 4)]


def test_killed_search_resumes_to_the_same_result(reference, tmp_path):
    out = tmp_path / "run"
    kills = 0
    for lines in (3, 14, 27):  # in the first round, in a predictor round, near the end
        args = FAST + ["--out", str(out)] if not out.exists() else ["--resume", str(out), "--quiet"]
        kills += kill_when(args, out, lines)
    assert kills >= 2  # the kills landed while the search ran
    done = search("--resume", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    entries = journal(out)
    assert len(entries) == 40 and len({e["key"] for e in entries}) == 40  # nothing lost, nothing twice
    got, want = summary(out), summary(reference)
    assert got["best"] == want["best"] and got["evaluations"] == want["evaluations"] == 40
    assert got["resumed"] >= 1
    assert [e["key"] for e in entries] == [e["key"] for e in journal(reference)]


def test_corrupt_state_is_rebuilt_from_the_journal(reference, tmp_path):
    out = tmp_path / "run"
    assert kill_when(FAST + ["--out", str(out)], out, 25)
    state = out / "state.json"
    state.write_text(state.read_text()[: len(state.read_text()) // 2])  # truncated
    done = search("--resume", str(out))
    assert done.returncode == 0, done.stderr
    assert "state.json is truncated or corrupt" in done.stderr and "rebuilding the state from the journal" in done.stderr
    assert summary(out)["best"] == summary(reference)["best"]
    assert len({e["key"] for e in journal(out)}) == len(journal(out)) == 40


def test_resume_with_another_config_is_refused(reference, tmp_path):
    out = tmp_path / "run"
    assert kill_when(FAST + ["--out", str(out)], out, 12)
    refused = search("--resume", str(out), "--budget", "50", "--seed", "6")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: the resume's config differs from the saved one in: budget, seed (saved: budget=40, seed=5); "
        "--force accepts the change"]
    forced = search("--resume", str(out), "--budget", "50", "--force", "--quiet")
    assert forced.returncode == 0, forced.stderr
    assert summary(out)["evaluations"] == 50


def test_bad_command_lines_give_one_line(tmp_path, reference):
    cases = [
        (["--strategy", "nope"], "unknown strategy 'nope'; valid: narformer, random, rea"),
        (["--space", "nope"], "unknown space 'nope'"),
        (["--predictor", "nope"], "unknown predictor 'nope'; valid:"),
        (["--budget", "5"], "budget (5) is smaller than the initial population (init 10)"),
        (["--batch", "-1"], "batch must be >= 1"),
        (["--out", str(reference)], "already holds a run: use --resume"),
        (["--metric", "nope"], "unknown metric 'nope'"),
        (["--executor", "nope"], "unknown executor 'nope'; valid: inline, ray"),
    ]
    for args, message in cases:
        out = search(*args, **({} if "--out" in args else {"cwd": tmp_path}))
        assert out.returncode == 2, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr, (args, out.stderr)


def ray_processes(marker):
    """PIDs of processes whose command line mentions ``marker``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
        except OSError:
            continue
        if marker in cmd:
            found.append(int(pid))
    return found


def test_ray_executor_gives_the_inline_search_and_cleans_up(tmp_path):
    args = ["--space", "nb201", "--budget", "20", "--seed", "1", "--predictor", "mlp", "--predictor-set",
            "epochs=20", "--candidates", "100", "--quiet", "--no-plots"]
    inline = search(*args, "--out", str(tmp_path / "inline"))
    assert inline.returncode == 0, inline.stderr
    before = set(ray_processes("narnas-ray-"))
    on_ray = search(*args, "--executor", "ray", "--out", str(tmp_path / "ray"))
    assert on_ray.returncode == 0, on_ray.stderr
    assert summary(tmp_path / "ray")["best"] == summary(tmp_path / "inline")["best"]
    assert sorted(e["key"] for e in journal(tmp_path / "ray")) == sorted(e["key"] for e in journal(tmp_path / "inline"))
    time.sleep(2)
    assert set(ray_processes("narnas-ray-")) - before == set()


def test_warm_start_reads_the_previous_rounds_weights(tmp_path):
    out = tmp_path / "warm"
    done = search(*FAST, "--budget", "30", "--warm-start", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "config.json").read_text())["config"]["warm_start"] is True
    assert sorted(p.name for p in (out / "predictor").iterdir()) == ["round_002.pt", "round_003.pt"]
    assert summary(out)["evaluations"] == 30
