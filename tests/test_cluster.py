"""A real two-node Ray cluster (a head and a worker started with `ray start`, as separate
processes): a search joins it by HOST:PORT, loses the worker mid-trial (the trial is retried
and its result is unchanged) and then its driver (the resume against the same cluster ends
as an uninterrupted run); everything the test started is gone at the end."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from test_search_run import journal, processes_with, search, summary

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.2"
RAY = os.path.join(os.path.dirname(sys.executable), "ray")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def kill_all(marker: str) -> None:
    for pid in processes_with(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


# Generous: on a loaded 2-core machine (the suite beside benchmark fits) `ray start --head` has
# taken over 120 s; the limit only stops a hung test.
def wait_for(condition, what: str, timeout: float = 300.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the driver ended ({proc.returncode}) before {what}: {proc.stderr.read()[-2000:]}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def cluster_cpus(port: int, env: dict) -> float:
    status = subprocess.run([RAY, "status", "--address", f"{HOST}:{port}"], env=env, capture_output=True,
                            text=True, timeout=60)
    found = re.search(r"/([0-9.]+) CPU", status.stdout)
    return float(found.group(1)) if found else 0.0


@pytest.mark.alone
def test_a_search_on_a_two_node_cluster_survives_a_lost_worker_and_a_killed_driver(tmp_path):
    port = free_port()
    scratch = tempfile.mkdtemp(prefix="narnas-cluster-", dir="/tmp")  # Ray's socket paths must stay short
    marks = tmp_path / "marks"
    marks.mkdir()
    marker = f"NARNAS_TEST_CLUSTER={scratch}"
    env = dict(os.environ, NARNAS_TEST_CLUSTER=scratch, PYTHONPATH=f"{ROOT / 'tests'}:{ROOT / 'examples'}")
    env.pop("RAY_AUTH_MODE", None)  # `ray start --head` turns token authentication on by itself
    # Ray turns 127.0.0.1 into the machine's network address; 127.0.0.2 keeps the cluster on loopback.
    node = ["--num-cpus", "1", "--node-ip-address", HOST, "--include-dashboard", "false", "--block"]
    try:
        # The head notices a dead node after 3 missed health checks a second apart (Ray's default:
        # 5 missed, 3 s apart), so the lost trial is retried sooner; nothing else changes.
        quick = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}
        head = subprocess.Popen([RAY, "start", "--head", "--port", str(port), "--temp-dir", f"{scratch}/ray", *node],
                                env=dict(env, NARNAS_TEST_NODE="head", **quick), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        token_env = dict(env, RAY_AUTH_MODE="token")  # a worker sends the head's token only when told to
        wait_for(lambda: cluster_cpus(port, token_env) >= 1, "the head")
        worker = subprocess.Popen([RAY, "start", "--address", f"{HOST}:{port}", *node[:-3], "--block"],
                                  env=dict(token_env, NARNAS_TEST_NODE="worker"), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: cluster_cpus(port, token_env) >= 2, "the worker to join")

        args = ["--plugin", "cluster_plugin", "--space", "line", "--strategy", "rea", "--budget", "16", "--batch", "4",
                "--seed", "2", "--evaluator", "line-slow", "--quiet", "--no-plots"]
        run = tmp_path / "run"
        driver = subprocess.Popen([sys.executable, "-m", "search.run", *args, "--set", "evaluator.config.delay=2",
                                   "--set", f"evaluator.config.marks={marks}", "--executor", "ray",
                                   "--ray-address", f"{HOST}:{port}", "--out", str(run)],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # A trial running on the worker: kill that node (its raylet and every process on it).
        started = wait_for(lambda: sorted(marks.glob("*.worker.*.start")), "a trial on the worker", proc=driver)
        kill_all("NARNAS_TEST_NODE=worker")
        worker.wait(timeout=60)
        lost = int(started[0].name.split(".")[0])
        assert not list(marks.glob(f"{lost}.worker.*.done"))
        # Once the retried trial is journaled, kill the driver too.
        record = wait_for(lambda: next((r for r in journal(run) if r["key"] == f"a{lost}"), None),
                          "the lost trial's retry", timeout=300, proc=driver)
        assert record["attempts"] >= 2 and record["status"] == "ok"
        assert list(marks.glob(f"{lost}.head.*.done"))  # the retry ran on the node that was left
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        assert driver.stdout.read() == ""  # Ray's notice of the dead node went to stderr, not into the result
        assert processes_with(marker) and head.poll() is None  # the cluster outlives its driver
        assert len(journal(run)) < 16

        resumed = search("--resume", str(run), env=env)
        assert resumed.returncode == 0, resumed.stderr
        assert json.loads(resumed.stdout)["evaluations"] == 16  # stdout is the result line alone

        inline = search(*args, "--set", "evaluator.config.delay=0", "--executor", "inline", "--out", str(tmp_path / "inline"), env=env)
        assert inline.returncode == 0, inline.stderr
        records = journal(run)
        assert len(records) == 16 == len({r["key"] for r in records})  # nothing lost, nothing run twice
        expected = {r["key"]: (r["round"], r["val"]) for r in journal(tmp_path / "inline")}
        assert {r["key"]: (r["round"], r["val"]) for r in records} == expected
        assert summary(run)["best"] == summary(tmp_path / "inline")["best"]
        assert summary(run)["resumed"] == 1
        assert next(r for r in records if r["key"] == f"a{lost}") == record
    finally:
        kill_all(marker)
        shutil.rmtree(scratch, ignore_errors=True)
    assert wait_for(lambda: not processes_with(marker), "every process of the cluster to end", timeout=30)
