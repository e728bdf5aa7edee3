"""A run folder: config.json, journal.jsonl, state.json, predictor weights, summary, plots.

* ``journal.jsonl`` is append-only: one line per finished evaluation, flushed and fsynced
  before the state that includes it is written. A line cut short by a kill is ignored.
* ``state.json`` is replaced atomically after every change of state and carries a SHA-256
  of its payload, so a truncated or edited file is detected, never half-read.
* ``.lock`` holds an exclusive OS lock (``flock``) for as long as a search works in the
  folder, and that search's PID: a second search on the folder is refused instead of
  interleaving its journal. The OS drops the lock when the process dies, however it dies,
  so a killed run can be resumed at once.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
from pathlib import Path

import torch

from narnas.files import atomic_torch_save, atomic_write_bytes, outermost_missing, read_jsonl

from .errors import SearchError, StateError

CONFIG, JOURNAL, STATE, SUMMARY, BEST = "config.json", "journal.jsonl", "state.json", "summary.json", "best.json"
DECISIONS = "decisions.jsonl"  # the stopper's answers to intermediate reports, in order
PARETO = "pareto.json"
LOCK = ".lock"


def dumps(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


class RunLock:
    """The exclusive lock of a run folder; released by ``release()``, when garbage-collected,
    or by the OS when the process ends."""

    def __init__(self, path: Path):
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.pread(self.fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(self.fd)
            self.fd = None
            if err.errno in (errno.EAGAIN, errno.EACCES):
                raise SearchError(f"{path.parent} is in use by another search (pid {holder}); wait for it to "
                                  "end or stop it, then --resume") from None
            raise SearchError(f"cannot lock the run folder {path.parent}: {err.strerror or err}") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None

    def __del__(self):
        self.release()


class RunDir:
    def __init__(self, path):
        self.path = Path(path).resolve()
        self._lock: RunLock | None = None
        self._made: Path | None = None  # the outermost folder this run created

    def lock(self, create: bool) -> None:
        """Take the folder's exclusive lock (creating the folder for a new run); a SearchError
        naming the holder's PID when another search has it."""
        if self._lock is not None:
            return
        try:
            if create:
                self._made = outermost_missing(self.path)
                self.path.mkdir(parents=True, exist_ok=True)
            elif not self.path.is_dir():
                what = "a file, not a run folder" if self.path.exists() else "no such folder"
                raise SearchError(f"{self.path} holds no run ({what})")
            self._lock = RunLock(self.path / LOCK)
        except OSError as err:
            raise SearchError(f"cannot write the run folder {self.path}: {err.strerror or err}") from None

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def discard_new(self) -> None:
        """Remove what a fresh start wrote (its config, lock, Ray folder; the folders it made),
        so the corrected command can start again; a folder that was there before is kept, only
        emptied of this run's files."""
        import shutil
        self.unlock()
        if self._made is not None:
            shutil.rmtree(self._made, ignore_errors=True)
        else:
            for name in (CONFIG, JOURNAL, STATE, DECISIONS, LOCK):
                (self.path / name).unlink(missing_ok=True)
            shutil.rmtree(self.path / "ray", ignore_errors=True)

    def holds_run(self) -> bool:
        return any((self.path / name).exists() for name in (CONFIG, JOURNAL, STATE))

    def create(self, config: dict) -> None:
        if self.holds_run():
            raise SearchError(f"{self.path} already holds a run: use --resume {self.path} to continue it, "
                              "or choose another --out")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            write_json(self.path / CONFIG, config)
        except OSError as err:
            raise SearchError(f"cannot write the run folder {self.path}: {err.strerror or err}") from None

    def read_config(self) -> dict:
        path = self.path / CONFIG
        if not path.exists():
            raise SearchError(f"{self.path} holds no run (no {CONFIG})")
        try:
            saved = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise StateError(f"{path} is not valid JSON ({err})") from None
        if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
            raise StateError(f"{path} is not a run's config (an object with a 'config' tree, as search.run "
                             "writes it); was it edited by hand?")
        return saved

    # --- state ----------------------------------------------------------------------
    def write_state(self, payload: dict) -> None:
        body = dumps(payload)
        digest = hashlib.sha256(body.encode()).hexdigest()
        atomic_write_bytes(self.path / STATE, f'{{"sha256":"{digest}","payload":{body}}}\n'.encode())

    def read_state(self) -> dict:
        """The saved payload; StateError when the file is missing, truncated or corrupt."""
        path = self.path / STATE
        if not path.exists():
            raise StateError(f"{path} is missing")
        text = path.read_text(errors="replace")
        try:
            outer = json.loads(text)
            body = dumps(outer["payload"])
            ok = hashlib.sha256(body.encode()).hexdigest() == outer["sha256"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise StateError(f"{path} is truncated or corrupt ({type(err).__name__}: {err})") from None
        if not ok:
            raise StateError(f"{path} is corrupt: its checksum does not match its contents")
        return outer["payload"]

    # --- journal --------------------------------------------------------------------
    def append_journal(self, record: dict, name: str = JOURNAL) -> None:
        with open(self.path / name, "a") as f:
            f.write(dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def append_decision(self, line: dict) -> None:
        self.append_journal(line, DECISIONS)

    def read_decisions(self) -> list[dict]:
        return read_jsonl(self.path / DECISIONS)

    def read_journal(self) -> list[dict]:
        """Every complete line; a last line cut short by a kill is dropped from the file (its
        evaluation is redone), so later appends start on a fresh line."""
        return evaluation_records(read_jsonl(self.path / JOURNAL), self.path / JOURNAL)

    # --- predictor weights ---------------------------------------------------------
    def predictor_path(self, round_: int) -> Path:
        return self.path / "predictor" / f"round_{round_:03d}.pt"


def evaluation_records(entries: list, path: Path) -> list[dict]:
    """``entries`` of a journal, checked: StateError naming the line when one is not an
    evaluation record."""
    for number, record in enumerate(entries, 1):
        if not isinstance(record, dict) or not isinstance(record.get("key"), str) or "arch" not in record:
            raise StateError(f"{path}: line {number} is not an evaluation record (it needs 'key' and 'arch')")
    return entries


class PredictorStore:
    """dict-like: round -> predictor state, kept as files in the run folder (the warm start
    of a resumed run reads the previous round's weights from there)."""

    def __init__(self, run: RunDir):
        self.run = run

    def get(self, round_: int, default=None):
        path = self.run.predictor_path(round_)
        return torch.load(path, weights_only=False) if path.exists() else default

    def __setitem__(self, round_: int, state: dict):
        atomic_torch_save(self.run.predictor_path(round_), state)
