"""Warm starts: the evaluations of earlier runs (or any table of results) a search learns from.

``--prior RUN_OR_TABLE`` reads a run folder (its journal), a table with an ``arch`` column, or
a benchmark file (``spaces.table``, ``spaces.get_benchmark``); its search metric (a journal's
``val``) is each arch's value. Those evaluations join the predictor's training data and the
parents a predictor-guided strategy mutates; they never count against the budget and are
never evaluated again. A fresh run copies them into its folder (``prior.jsonl``), which a
resume reads, so a resume stays exact whatever happens to the source later.
"""
from __future__ import annotations

import math
from pathlib import Path

from narnas.files import atomic_write_bytes, read_jsonl

from .errors import SearchError

FILE = "prior.jsonl"


def read_source(space, source: str) -> tuple[list[dict], dict]:
    """(entries, a description for config.json) of the prior at ``source``."""
    import spaces
    path = Path(source).expanduser()
    if not path.exists():
        raise SearchError(f"--prior {source}: no such run folder or table")
    bench = spaces.get_benchmark(space, path)
    metric = bench.search_metric()
    values = bench.column(metric)
    test = bench.column(bench.test_metric) if bench.test_metric else None
    entries = []
    for row, value in enumerate(values):
        if math.isfinite(value):
            arch = bench.arch(row)
            entries.append({"key": str(space.key(arch)), "arch": space.to_json(arch), "value": float(value),
                            "test": None if test is None or not math.isfinite(test[row]) else float(test[row]),
                            "round": 0, "prior": True})
    if not entries:
        raise SearchError(f"--prior {source}: no architecture with a value of {metric!r}")
    return entries, {"source": str(path.resolve()), "metric": metric, "archs": len(entries)}


def write(folder: Path, entries: list[dict]) -> None:
    import json
    atomic_write_bytes(folder / FILE, "".join(json.dumps(e) + "\n" for e in entries).encode())


def load(folder: Path, space, source: str, resume: bool) -> tuple[list[dict], dict | None]:
    """(entries, description) for a run: a resume reads its folder's copy (the source is read
    again only where a kill came between the run's creation and the copy, before any result)."""
    if resume and (folder / FILE).exists():
        return read_jsonl(folder / FILE, repair=False), None
    entries, info = read_source(space, source)
    if resume:
        write(folder, entries)
    return entries, info
