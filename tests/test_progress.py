"""Progress with a time estimate: bars on a terminal (a real pseudo-terminal here), per-round
lines in logs, nothing under --quiet."""
import io
import os
import pty
import re
import subprocess
import sys

from types import SimpleNamespace

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


def test_a_search_in_a_log_has_round_lines_only_and_quiet_has_none(tmp_path):
    logged = subprocess.run([sys.executable, "-m", "search.run", *LOUD, "--budget", "30", "--out", str(tmp_path / "log")],
                            capture_output=True, text=True, timeout=600)
    assert logged.returncode == 0, logged.stderr
    rounds = re.findall(r"^round +(\d+) +evaluations +(\d+)/30 .* eta (\S+)$", logged.stderr, re.M)
    assert [(r, n) for r, n, _ in rounds] == [("1", "10"), ("2", "20"), ("3", "30")] and rounds[-1][2] == "0s"
    assert "\r" not in logged.stderr
    code, _, shown = run_on_a_terminal([*FAST, "--budget", "30", "--out", str(tmp_path / "quiet")])
    assert code == 0 and not re.search("\r(?!\n)", shown) and "round" not in shown, shown  # the terminal ends lines in \r\n
