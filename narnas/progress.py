"""Progress with a time estimate, shared by predictor fits, search rounds, trainings and
benchmarks: a one-line bar redrawn in place on a terminal, nothing in a log file or under
``--quiet`` (where the tools print their own per-round or per-run lines instead)."""
from __future__ import annotations

import sys
import time


def interactive(quiet: bool = False, stream=None) -> bool:
    """Whether to draw bars: not ``--quiet`` and the stream is a terminal."""
    stream = stream or sys.stderr
    return not quiet and bool(getattr(stream, "isatty", lambda: False)())


def duration(seconds: float) -> str:
    """12s, 4m05s, 1h02m."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def eta(elapsed: float, done: float, total: float) -> float | None:
    """Seconds left at the rate so far; None before any progress."""
    return elapsed / done * (total - done) if done > 0 else None


class Progress:
    """``Progress(total, enabled, label)``; ``update(done, **info)`` redraws, ``close()`` ends the line.

    ``start`` counts work done before this process began (a resumed training): it is shown
    but left out of the rate, so the estimate is this process's speed.
    """

    width = 24
    interval = 0.1  # seconds between redraws: thousands of look-ups a second must not flood a terminal

    def __init__(self, total: int, enabled: bool, label: str, start: int = 0, stream=None):
        self.total, self.enabled, self.label = max(1, total), enabled, label
        self.first, self.began = start, time.time()
        self.stream = stream or sys.stderr
        self.drawn = False
        self.last_draw = 0.0
        self.done = start  # the last count given, kept when disabled too

    def update(self, done: int, **info) -> None:
        self.done = done
        if not self.enabled:
            return
        now = time.time()
        if now - self.last_draw < self.interval and done < self.total:
            return
        self.last_draw = now
        filled = int(self.width * min(done, self.total) / self.total)
        elapsed = now - self.began
        left = eta(elapsed, done - self.first, self.total - self.first)
        extra = " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in info.items())
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} "
                          f"{duration(elapsed)} eta {'-' if left is None else duration(left)} {extra}   ")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.enabled and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False
