"""python -m search.run end to end on NB201 look-ups: kill and resume, config checks,
state corruption, the Ray executor."""
import json
import os
import re
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
    assert config["seed"] == 5 and config["config"]["strategy"]["budget"] == 40 and "torch" in config["versions"]
    assert config["config"]["predictor"] == {"name": "mlp", "config": config["config"]["predictor"]["config"]}
    assert config["config"]["predictor"]["config"]["epochs"] == 40  # the whole predictor config, checked
    assert config["config"]["evaluator"]["name"] == "benchmark" and config["evaluator"]["metric"] == "c10valid_val_200_mean"
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
    # a resume announces itself (before its rounds), in a log as on a terminal
    assert re.search(rf"^resuming {re.escape(str(out))} at \d+/40 evaluations, round \d( \(\d+ to evaluate again\))?$",
                     done.stderr, re.M), done.stderr
    assert summary(out)["best"] == summary(reference)["best"]
    assert len({e["key"] for e in journal(out)}) == len(journal(out)) == 40


def test_a_rebuilt_state_keeps_its_counters(tmp_path):
    """Each journal record says which process wrote it and at what wall time: a state rebuilt
    from the journal knows how often the run was resumed and how long it has run."""
    out = tmp_path / "run"
    first = [a if a != "40" else "20" for a in FAST]  # FAST with --budget 20
    assert search(*first, "--out", str(out)).returncode == 0
    assert search("--resume", str(out), "--budget", "30", "--force", "--quiet").returncode == 0
    state = out / "state.json"
    before = json.loads(state.read_text())["payload"]
    assert before["resumed"] == 1 and [e["process"] for e in journal(out)] == [0] * 20 + [1] * 10
    state.write_text("garbage")
    done = search("--resume", str(out), "--budget", "40", "--force", "--quiet")
    assert done.returncode == 0 and "rebuilding the state from the journal" in done.stderr, done.stderr
    assert summary(out)["resumed"] == 2 and summary(out)["wall_seconds"] >= before["wall_seconds"] > 0


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


def test_a_busy_run_folder_is_refused_and_a_killed_runs_lock_is_gone(reference, tmp_path):
    """One search per folder: a second start or resume while the first works is one line naming
    its PID and changes nothing; once the first is SIGKILLed the resume runs at once."""
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "search.run", *FAST, "--out", str(out)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while not (out / "journal.jsonl").exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        first.send_signal(signal.SIGSTOP)  # frozen mid-run, holding the folder
        assert first.poll() is None, "the first search ended before the test could race it"
        for args in (["--resume", str(out), "--quiet"], FAST + ["--out", str(out)]):
            second = search(*args)
            assert second.returncode == 2
            assert second.stderr.strip().splitlines() == [
                f"error: {out} is in use by another search (pid {first.pid}); wait for it to end or stop it, "
                "then --resume"]
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    done = search("--resume", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    entries = journal(out)
    assert [e["key"] for e in entries] == [e["key"] for e in journal(reference)]  # nothing twice, nothing lost


def _edit_config(folder, change):
    path = folder / "config.json"
    saved = json.loads(path.read_text())
    change(saved)
    path.write_text(json.dumps(saved))


def _drop_key_of_last_line(folder):
    lines = (folder / "journal.jsonl").read_text().splitlines()
    record = json.loads(lines[-1])
    del record["key"]
    (folder / "journal.jsonl").write_text("\n".join(lines[:-1] + [json.dumps(record)]) + "\n")
    (folder / "state.json").unlink()


@pytest.mark.parametrize("edit, message", [
    (lambda f: (f / "config.json").write_text('{"foo": 1}'), "config.json is not a run's config"),
    (lambda f: (f / "config.json").write_text("[1, 2]"), "config.json is not a run's config"),
    (lambda f: _edit_config(f, lambda c: c["config"]["strategy"].update(budget="40")),
     "strategy.budget must be a whole number, got '40'"),
    (lambda f: _edit_config(f, lambda c: c["config"].update(seed=9)),
     "config.json no longer matches the config the run's state was saved under: it was edited by hand"),
    (_drop_key_of_last_line, "journal.jsonl: line 40 is not an evaluation record"),
])
def test_hand_edited_run_files_are_one_line(reference, tmp_path, edit, message):
    import shutil
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    edit(out)
    done = search("--resume", str(out), "--quiet")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def test_a_state_of_the_wrong_shape_is_rebuilt_from_the_journal(reference, tmp_path):
    """A state.json whose checksum matches a payload that is no search state."""
    import hashlib
    import shutil
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    body = json.dumps({"x": 1}, sort_keys=True, separators=(",", ":"))
    (out / "state.json").write_text(f'{{"sha256":"{hashlib.sha256(body.encode()).hexdigest()}","payload":{body}}}\n')
    done = search("--resume", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "does not hold a search state" in done.stderr and "rebuilding it from the journal" in done.stderr
    assert summary(out)["best"] == summary(reference)["best"] and len(journal(out)) == 40


def test_a_deleted_journal_is_refused_and_a_killed_resume_still_counts(reference, tmp_path):
    import shutil
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    (out / "journal.jsonl").unlink()
    done = search("--resume", str(out), "--quiet")
    assert done.returncode == 2 and "journal.jsonl has 0 evaluations but the saved state has seen 40" in done.stderr
    # A resume killed before its first result is still counted.
    out = tmp_path / "killed"
    assert kill_when(FAST + ["--out", str(out)], out, 12)
    proc = subprocess.Popen([sys.executable, "-m", "search.run", "--resume", str(out), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = lambda: json.loads((out / "state.json").read_text())["payload"]
    deadline = time.time() + 120
    while state()["resumed"] == 0 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state()["resumed"] == 1
    assert search("--resume", str(out), "--quiet").returncode == 0
    assert summary(out)["resumed"] == 2 and summary(out)["best"] == summary(reference)["best"]


def test_an_out_folder_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    done = search("--space", "nb201", "--out", str(tmp_path / "file" / "run"), "--quiet")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "cannot write the run folder" in done.stderr


def test_bad_command_lines_give_one_line(tmp_path, reference):
    cases = [
        (["--strategy", "nope"], "unknown strategy 'nope'; valid: bo, narformer, random, rea, reinforce"),
        (["--space", "nope"], "unknown space 'nope'"),
        (["--predictor", "nope"], "unknown predictor 'nope'; valid:"),
        (["--budget", "5"], "budget (5) is smaller than the initial population (init 10)"),
        (["--batch", "-1"], "batch must be >= 1"),
        (["--out", str(reference)], "already holds a run: use --resume"),
        (["--metric", "nope"], "unknown metric 'nope'"),
        (["--executor", "nope"], "unknown executor 'nope'; valid: inline, ray"),
        (["--keep-checkpoints", "-1"], "run.keep_checkpoints cannot be negative, got -1"),
    ]
    for args, message in cases:
        out = search(*args, **({} if "--out" in args else {"cwd": tmp_path}))
        assert out.returncode == 2, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr, (args, out.stderr)


def processes_with(marker: str) -> list[int]:
    """PIDs of the processes whose environment holds ``marker`` (``NAME=value``): those a test
    started (Ray's workers and helpers inherit the driver's environment), never another search's."""
    return [int(pid) for pid in filter(str.isdigit, os.listdir("/proc")) if _environ_has(pid, marker.encode())]


def test_ray_executor_gives_the_inline_search_and_cleans_up(tmp_path):
    args = ["--space", "nb201", "--budget", "20", "--seed", "1", "--predictor", "mlp", "--predictor-set",
            "epochs=20", "--candidates", "100", "--quiet", "--no-plots"]
    inline = search(*args, "--out", str(tmp_path / "inline"))
    assert inline.returncode == 0, inline.stderr
    mark = f"{os.getpid()}-{tmp_path.name}"  # this test's search and whatever it starts
    on_ray = search(*args, "--executor", "ray", "--out", str(tmp_path / "ray"),
                    env=dict(os.environ, NARNAS_TEST_MARK=mark))
    assert on_ray.returncode == 0, on_ray.stderr
    assert [line.split()[:2] for line in on_ray.stderr.strip().splitlines()] == [["results", "in"]]  # Ray quiet too
    assert summary(tmp_path / "ray")["best"] == summary(tmp_path / "inline")["best"]
    assert sorted(e["key"] for e in journal(tmp_path / "ray")) == sorted(e["key"] for e in journal(tmp_path / "inline"))
    # the executors pass the evaluator's whole result on: the same fields reach the journal
    fields = lambda folder: {tuple(sorted(e)) for e in journal(folder)}
    assert fields(tmp_path / "ray") == fields(tmp_path / "inline") and "seconds" in journal(tmp_path / "ray")[0]
    deadline = time.time() + 10
    while processes_with(f"NARNAS_TEST_MARK={mark}") and time.time() < deadline:
        time.sleep(0.2)
    assert processes_with(f"NARNAS_TEST_MARK={mark}") == []  # Ray's processes ended with the search


def test_the_ray_a_killed_search_leaves_behind_is_reclaimed_at_the_next_start(tmp_path):
    """SIGKILL skips Ray's shutdown: its processes and temp folder stay until the next start
    of an embedded Ray cleans them (its own session is untouched)."""
    from search.executors import DRIVER_PID, ExecutorConfig, RayExecutor, session_processes
    args = ["--space", "nb201", "--budget", "30", "--seed", "1", "--predictor", "mlp", "--predictor-set",
            "epochs=20", "--candidates", "100", "--quiet", "--no-plots", "--executor", "ray"]
    proc = subprocess.Popen([sys.executable, "-m", "search.run", *args, "--out", str(tmp_path / "run")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (tmp_path / "run" / "journal.jsonl").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stale = [f"/tmp/{name}" for name in os.listdir("/tmp") if name.startswith("narnas-ray-")
             and open(f"/tmp/{name}/{DRIVER_PID}").read().strip() == str(proc.pid)]
    assert len(stale) == 1 and session_processes(stale[0]), "the killed search left no Ray behind to reclaim"
    with RayExecutor(ExecutorConfig(name="ray")) as executor:
        own = executor.temp_dir
        assert not os.path.exists(stale[0]) and os.path.isdir(own)
    time.sleep(1)
    assert session_processes(stale[0]) == [] and not os.path.exists(own)


@pytest.mark.alone
def test_ctrl_c_and_sigterm_under_ray_stop_cleanly_in_every_phase(tmp_path):
    """SIGINT while the predictor fits (after a Tune fit, whose handler used to swallow it) and
    SIGTERM while trials run: each stops the search with the resume hint and 130 / 143, and
    the resumed run ends as the uninterrupted one."""
    args = ["--space", "nb201", "--budget", "20", "--seed", "2", "--predictor", "mlp", "--predictor-set",
            "epochs=800", "--candidates", "100", "--no-plots"]
    whole = search(*args, "--quiet", "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    for signum, lines, code in ((signal.SIGINT, 10, 130), (signal.SIGTERM, 11, 143)):
        out = tmp_path / signum.name
        proc = subprocess.Popen([sys.executable, "-m", "search.run", *args, "--executor", "ray", "--out", str(out)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 300
        while len(journal(out)) < lines and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        if signum == signal.SIGINT:
            time.sleep(0.3)  # round 1 is journaled: the driver is fitting the predictor
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == code, err
        assert f"interrupted: continue with python -m search.run --resume {out}" in err
        assert "Tuner.restore" not in err and "Traceback" not in err
        assert "Token authentication" not in err  # Ray's start-up notice, at every start: noise
        assert len(journal(out)) < 20
        done = search("--resume", str(out), "--quiet", "--executor", "inline")  # the executor may change
        assert done.returncode == 0, done.stderr
        # Ray journals a round in the order its trials finish: the same archs, the same best.
        assert sorted(e["key"] for e in journal(out)) == sorted(e["key"] for e in journal(tmp_path / "whole"))
        assert summary(out)["best"] == summary(tmp_path / "whole")["best"]


def _environ_has(pid: str, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return marker in f.read().split(b"\0")
    except OSError:
        return False


def test_an_address_where_no_cluster_answers_is_one_line_within_seconds(tmp_path):
    """(Joining a real cluster by HOST:PORT, token authentication on: tests/test_cluster.py.)"""
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.time()
    nobody = search("--space", "nb201", "--executor", "ray", "--ray-address", f"127.0.0.1:{port}", "--quiet",
                    "--out", str(tmp_path / "nobody"))
    assert nobody.returncode == 2 and time.time() - start < 30
    assert nobody.stderr.strip().splitlines()[-1].startswith(f"error: no Ray cluster answers at 127.0.0.1:{port}")
    assert not (tmp_path / "nobody").exists()  # a refused start leaves nothing to refuse the next one


def test_a_refused_start_leaves_nothing_and_the_corrected_command_runs(tmp_path):
    """A trial that asks for more CPUs than the embedded Ray has: one line, no folder (nor the
    folder above it that the start made), and the same --out then starts; a folder that was
    there before keeps its own files."""
    out = tmp_path / "new" / "run"
    args = ["--space", "nb201", "--strategy", "random", "--budget", "10", "--executor", "ray", "--quiet", "--no-plots"]
    refused = search(*args, "--cpus-per-trial", "64", "--out", str(out))
    assert refused.returncode == 2 and "a trial needs 64 CPU(s) but the Ray cluster has" in refused.stderr
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("kept")
    assert search(*args, "--cpus-per-trial", "64", "--out", str(tmp_path / "mine")).returncode == 2
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]
    done = search(*args, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert summary(out)["evaluations"] == 10


def test_warm_start_reads_the_previous_rounds_weights(tmp_path):
    import torch
    out, cold = tmp_path / "warm", tmp_path / "cold"
    done = search(*FAST, "--budget", "30", "--warm-start", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert search(*FAST, "--budget", "30", "--out", str(cold)).returncode == 0
    assert json.loads((out / "config.json").read_text())["config"]["strategy"]["config"]["warm_start"] is True
    assert sorted(p.name for p in (out / "predictor").iterdir()) == ["round_002.pt", "round_003.pt"]
    assert summary(out)["evaluations"] == 30
    # round 2 has no earlier weights (the same fit as the cold run); round 3 starts from round 2's
    load = lambda folder, r: torch.load(folder / "predictor" / f"round_{r:03d}.pt", weights_only=False)["model"]
    same = lambda a, b: all(torch.equal(a[k], b[k]) for k in a)
    assert same(load(out, 2), load(cold, 2))
    assert not same(load(out, 3), load(cold, 3))


def write_table(path, rows, columns):
    import csv, gzip, io
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["arch_str", *columns])
    writer.writerows(rows)
    path.write_bytes(gzip.compress(buf.getvalue().encode()))
    return path


FAILING_PLUGIN = """# A benchmark evaluator that fails one arch in three (by its key), for the failure tests.
import hashlib

from search.evaluators.benchmark import BenchmarkEvaluator
from search.registry import register_evaluator


@register_evaluator("failing-benchmark")
class FailingBenchmark(BenchmarkEvaluator):
    def evaluate(self, arch_json, report=None):
        key = str(self.space.key(self.space.from_json(arch_json)))
        if int(hashlib.sha256(key.encode()).hexdigest(), 16) % 3 == 0:
            raise RuntimeError(f"{key} failed (one arch in three fails by design)")
        return super().evaluate(arch_json, report)
"""


def test_failed_evaluations_are_journaled_and_replayed_on_resume(tmp_path, monkeypatch):
    (tmp_path / "failing_plugin.py").write_text(FAILING_PLUGIN)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), root]))  # the killed run and its resume too
    args = FAST + ["--plugin", "failing_plugin", "--evaluator", "failing-benchmark", "--max-failures", "0"]
    whole = search(*args, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    entries = journal(tmp_path / "whole")
    failed = [e for e in entries if e["status"] == "failed"]
    assert len(entries) == 40 and failed and all("fails by design" in e["error"] for e in failed)
    s = summary(tmp_path / "whole")
    assert s["failed"] == len(failed) and s["best"]["key"] not in {e["key"] for e in failed}
    out = tmp_path / "killed"
    assert kill_when(args + ["--out", str(out)], out, 22)
    assert search("--resume", str(out), "--quiet").returncode == 0
    assert [(e["key"], e["status"]) for e in journal(out)] == [(e["key"], e["status"]) for e in entries]
    assert summary(out)["best"] == s["best"] and summary(out)["failed"] == s["failed"]


def test_a_table_without_the_default_metric_needs_one_named(tmp_path):
    import spaces
    bench = spaces.get_benchmark("nb201")
    table = write_table(tmp_path / "c100.csv.gz", [(k, 50.0 + i % 7, 1.0) for i, k in enumerate(bench.keys[:500])],
                        ["c100_val_200", "c100_nseeds"])
    done = search("--space", "nb201", "--data", str(table), "--out", str(tmp_path / "run"), "--quiet")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "has no column 'c10valid_val_200_mean'" in done.stderr and "c100_nseeds, c100_val_200" in done.stderr
    assert not (tmp_path / "run").exists()
    named = search("--space", "nb201", "--data", str(table), "--metric", "c100_val_200", "--test-metric",
                   "c100_val_200", "--strategy", "random", "--budget", "20", "--out", str(tmp_path / "named"), "--quiet",
                   "--no-plots")
    assert named.returncode == 0, named.stderr
    assert summary(tmp_path / "named")["metric"] == "c100_val_200"


@pytest.mark.parametrize("args, message", [
    (["--predictor-set", "epochs=abc"], "predictor mlp.epochs must be a whole number, got 'abc'"),
    (["--predictor-set", "epochs=2.5"], "predictor mlp.epochs must be a whole number, got 2.5"),
    (["--predictor-set", "bogus=1"], "unknown config key(s) bogus in predictor mlp"),
    (["--set", "strategy.budget=big"], "strategy.budget must be a whole number, got 'big'"),
    (["--set", "strategy.nope=1"], "unknown config key(s) nope in strategy"),
    (["--evaluator", "ofa-acc-predictor"],
     "evaluator 'ofa-acc-predictor' does not serve space 'nb201'; its evaluators: benchmark, cifar10-train"),
    (["--evaluator", "nope"], "unknown evaluator 'nope'; valid: benchmark, cifar10-train"),
    (["--preset", "smoke"], "unknown config key(s) preset in evaluator benchmark"),
    (["--constraint", "energy<=3"], "unknown constraint measure 'energy'; this run offers: "),
    (["--constraint", "params=3"], "--constraint takes NAME<=VALUE"),
    (["--data", "/nonexistent/nb201.csv"], "NAS-Bench-201 file not found (looked for /nonexistent/nb201.csv)"),
    (["--set", "strategy"], "--set takes KEY=VALUE, got 'strategy'"),
])
def test_every_part_is_checked_before_the_first_evaluation(args, message, tmp_path):
    out = tmp_path / "run"
    done = search("--space", "nb201", "--predictor", "mlp", *args, "--out", str(out), "--quiet")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert message in done.stderr, done.stderr
    assert not out.exists()  # nothing was evaluated, no folder is left to refuse a fresh start


@pytest.mark.parametrize("args, message", [
    (["--space", "foo"], "error: unknown space 'foo'; valid: darts, nb101, nb201, ofa_mbv3"),
    (["--strategy", "nope"], "error: unknown strategy 'nope'; valid: bo, narformer, random, rea, reinforce"),
    (["--predictor", "nope"], "error: unknown predictor 'nope'; valid: arch2vec, gcn, gin, mlp, narformer"),
    (["--data", "/nonexistent.csv"], "error: NAS-Bench-201 file not found (looked for /nonexistent.csv)"),
    ([], "error: budget (5) is smaller than the initial population (init 10)"),
])
def test_names_and_files_are_reported_before_the_values_that_depend_on_them(args, message, tmp_path):
    done = search(*args, "--budget", "5", "--quiet", "--out", str(tmp_path / "run"))
    assert done.returncode == 2 and done.stderr.startswith(message), done.stderr
    assert not (tmp_path / "run").exists()


def test_a_file_where_a_folder_is_expected_is_named_a_file(tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("x")
    resumed = search("--resume", str(file))
    assert resumed.returncode == 2 and resumed.stderr.strip() == f"error: {file} holds no run (a file, not a run folder)"
    report = subprocess.run([sys.executable, "-m", "search.report", str(file)], capture_output=True, text=True)
    assert report.returncode == 2 and "(a file, not a run folder)" in report.stderr
    trained = subprocess.run([sys.executable, "-m", "search.train", "--arch", "darts_v2", "--preset", "smoke",
                              "--data-dir", str(file), "--out", str(tmp_path / "t")], capture_output=True, text=True)
    assert trained.returncode == 2 and f"CIFAR-10 folder {file} (from --data-dir) is a file, not a folder" in trained.stderr

