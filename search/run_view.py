"""A run folder read without touching it: what the report needs, from config.json,
journal.jsonl, state.json, summary.json and pareto.json.

Reading takes no lock and writes nothing, so a report can be made of a search that is still
running: the journal is append-only (a last line cut mid-write is left out) and the other
files are replaced atomically.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from narnas.files import read_jsonl

from .errors import SearchError, StateError
from .rundir import JOURNAL, PARETO, SUMMARY, RunDir, evaluation_records

#: Journal fields that are bookkeeping, not an evaluator's metrics.
RECORD_FIELDS = ("key", "arch", "round", "status", "attempts", "error", "val", "test", "process", "wall_seconds")


@dataclass
class RunView:
    path: Path
    saved: dict  # config.json: config tree, versions, seed, command, evaluator, plugins
    records: list[dict]  # journal lines, in the order the evaluations finished
    predicted: dict[str, float] = field(default_factory=dict)  # key -> the predictor's score when proposed
    state: dict | None = None  # the saved search state's bookkeeping (resumed, wall_seconds, ...)
    summary: dict | None = None
    pareto: dict | None = None

    @property
    def config(self) -> dict:
        return self.saved["config"]

    def entries(self) -> list[dict]:
        """One dict per evaluation in the form search.report's figures take (key, arch,
        round, value, test, predicted), plus status, error and the evaluator's other metrics."""
        out = []
        for r in self.records:
            ok = r.get("status", "ok") == "ok"
            extra = {k: v for k, v in r.items() if k not in RECORD_FIELDS}
            out.append({"key": r["key"], "arch": r["arch"], "round": r.get("round"),
                        "value": r.get("val") if ok else None, "test": r.get("test") if ok else None,
                        "predicted": self.predicted.get(r["key"]), "status": r.get("status", "ok"),
                        "error": r.get("error"), "metrics": extra})
        return out


def read_run(path) -> RunView:
    """The run in ``path``; a SearchError naming the file when it holds none or a file is broken."""
    run = RunDir(path)
    folder = run.path
    if not folder.is_dir():
        raise SearchError(f"{folder} holds no run ({'a file, not a run folder' if folder.exists() else 'no such folder'})")
    saved = run.read_config()
    records = _read_journal(folder / JOURNAL)
    state, predicted = None, {}
    try:
        payload = run.read_state()
        strategy = payload["strategy"]
        for entry in list(strategy["history"]) + list(strategy["in_flight"]):
            if entry.get("predicted") is not None:
                predicted[entry["key"]] = float(entry["predicted"])
        state = {k: payload[k] for k in ("resumed", "wall_seconds", "journal_lines") if k in payload}
    except (StateError, KeyError, TypeError, ValueError):
        pass  # predictions and bookkeeping are left out; the journal has every result
    return RunView(folder, saved, records, predicted, state,
                   _read_optional(folder / SUMMARY), _read_optional(folder / PARETO))


def _read_journal(path: Path) -> list[dict]:
    """Without cutting a partial last line off (the search may be writing it)."""
    return evaluation_records(read_jsonl(path, repair=False), path)


def _read_optional(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        value = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise SearchError(f"{path} is not valid JSON ({err})") from None
    return value if isinstance(value, dict) else None


def space_of(view: RunView):
    """The run's search space, built from its saved config (its plugins imported first)."""
    from narnas.plugins import load_plugins

    from . import config as search_config
    load_plugins(view.saved.get("plugins", []))
    return search_config.make_space(search_config.build(view.config).space)

