"""Progress with a time estimate: bars on a terminal (a real pseudo-terminal here), per-round
lines in logs, nothing under --quiet."""
import io
import os
import pty
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

from narnas import progress
from narnas.progress import Progress, duration, eta
from test_search_run import FAST

LOUD = [a for a in FAST if a != "--quiet"]


def test_durations_and_estimates():
    assert [duration(s) for s in (0, 12.4, 245, 3720)] == ["0s", "12s", "4m05s", "1h02m"]
    assert eta(10.0, 0, 5) is None and eta(10.0, 2, 5) == 15.0


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_bar_estimates_from_this_processes_rate_and_is_silent_when_disabled(monkeypatch):
    clock = iter([100.0, 110.0, 120.0, 130.0])  # the start, then one reading per redraw
    monkeypatch.setattr(progress, "time", SimpleNamespace(time=lambda: next(clock)))
    out = Terminal()
    bar = Progress(10, True, "train", start=4, stream=out)  # 4 of 10 steps done before a resume
    bar.update(6)
    bar.update(8, loss=0.5)
    bar.close()
    lines = out.getvalue().split("\r")[1:]
    assert lines[0].startswith("train [##############..........] 6/10 10s eta 20s")  # 2 steps in 10 s, 4 left
    assert lines[1].startswith("train [###################.....] 8/10 20s eta 10s loss 0.5000")
    assert out.getvalue().endswith("\n")
    quiet = Terminal()
    silent = Progress(10, False, "train", stream=quiet)
    silent.update(5)
    silent.close()
    assert quiet.getvalue() == ""


def run_on_a_terminal(args):
    """search.run with its stderr on a pseudo-terminal; (exit code, stdout, what the terminal showed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "search.run", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    shown = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown.append(chunk)
    os.close(master)
    out = proc.stdout.read().decode()
    proc.wait()
    return proc.returncode, out, b"".join(shown).decode(errors="replace")


def test_a_search_on_a_terminal_shows_bars_and_estimates(tmp_path):
    code, out, shown = run_on_a_terminal([*LOUD, "--budget", "30", "--out", str(tmp_path / "tty")])
    assert code == 0, shown
    assert re.search(r"\rfit mlp \[[#.]+\] \d+/40 \S+ eta \S+ loss", shown)  # each predictor refit
    assert re.search(r"\rround 2 evaluations \[#+\] 10/10 ", shown)  # each round's evaluations
    assert re.search(r"round +3 +evaluations +30/30 +best [0-9.]+ .*\S+ eta 0s", shown)  # the round line
    assert '"evaluations": 30' in out and "\r" not in out


def test_the_estimate_counts_the_refits_to_come_or_says_it_does_not_know():
    from search.loop import RoundTiming, estimate_left
    # a scripted run: 60 evaluations in rounds of 10, a refit costing 2 s + 0.05 s per known result,
    # an evaluation 0.1 s; the estimate after each round against what the rest really costs
    refit = lambda known: 2 + 0.05 * known  # noqa: E731
    timings = [RoundTiming(0.01, 0, 10, 1.0)]
    assert estimate_left(timings, 10, 60, 10, refits=True) is None  # no refit timed yet: unknown, not "0s"
    assert estimate_left(timings, 10, 60, 10, refits=False) > 0  # random search needs no refit
    for known in range(10, 60, 10):
        timings.append(RoundTiming(refit(known), known, 10, 1.0))
        done = known + 10
        truth = sum(refit(k) + 1.0 for k in range(done, 60, 10))
        got = estimate_left(timings, done, 60, 10, refits=True)
        assert abs(got - truth) <= 0.5 * truth + 1e-9, (done, got, truth)
    assert estimate_left(timings, 60, 60, 10, refits=True) == 0


@pytest.mark.alone
def test_a_search_in_a_log_speaks_through_refits_and_its_estimate_holds_and_quiet_says_nothing(tmp_path):
    """The default NAR-Former search on NB201, its stderr a log: no bars, a line per round, a line
    when each refit starts and ends (table look-ups get no line each), "eta ?" until a refit was
    timed, then an estimate within 50% of what the rest took. --quiet on a terminal: nothing."""
    logged = subprocess.run([sys.executable, "-m", "search.run", "--space", "nb201", "--budget", "50", "--seed", "1",
                             "--executor", "inline", "--no-plots", "--out", str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=600)
    assert logged.returncode == 0, logged.stderr
    assert "\r" not in logged.stderr and ": evaluated |" not in logged.stderr
    assert "round 2: fitting the narformer predictor on 10 results" in logged.stderr
    assert re.search(r"^round 2: narformer fitted in \d+s$", logged.stderr, re.M)
    rounds = re.findall(r"^round +(\d+) +evaluations +(\d+)/50 .* (\S+) eta (\S+)$", logged.stderr, re.M)
    assert [(r, n) for r, n, _, _ in rounds] == [(str(i), str(10 * i)) for i in range(1, 6)]
    seconds = lambda text: sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in re.findall(r"(\d+)([hms])", text))  # noqa: E731
    assert rounds[0][3] == "?" and rounds[-1][3] == "0s"
    truth = seconds(rounds[-1][2]) - seconds(rounds[1][2])
    assert abs(seconds(rounds[1][3]) - truth) <= 0.5 * max(truth, 2), rounds
    code, _, shown = run_on_a_terminal([*FAST, "--budget", "30", "--out", str(tmp_path / "quiet")])
    assert code == 0 and not re.search("\r(?!\n)", shown) and "round" not in shown, shown  # the terminal ends lines in \r\n


def test_a_long_phase_beats_and_slow_evaluations_get_lines(tmp_path, monkeypatch):
    import time

    from search import loop
    beats = []
    monkeypatch.setattr(loop, "HEARTBEAT_SECONDS", 0.05)
    with loop.Heartbeat(True, beats.append, lambda: "round 3: 2/10 evaluations done"):
        time.sleep(0.3)
    assert len(beats) >= 2 and beats[0].startswith("round 3: 2/10 evaluations done (")
    with loop.Heartbeat(False, beats.append, lambda: "never"):
        time.sleep(0.1)
    assert "never" not in " ".join(beats)
    # every finished evaluation gets a line once the last line is old enough (trainings, not look-ups)
    monkeypatch.setattr(loop, "EVALUATION_LINE_GAP", 0.0)
    from search import config as search_config
    lines = []
    config = search_config.build({"space": {"name": "nb201"}, "seed": 2, "run": {"plots": False},
                                  "strategy": {"name": "random", "budget": 12, "batch": 6, "init": 6},
                                  "executor": {"name": "inline"}})
    loop.Search(config, tmp_path / "run", log=lines.append).run()
    evaluated = [line for line in lines if ": evaluated |" in line]
    assert len(evaluated) == 12 and "c10valid_val_200_mean" in evaluated[0], lines
