"""Writing files so that a crash or a kill never leaves half a file: write a temp file in the
same folder, then rename it over the target (``os.replace`` is atomic on one file system)."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import DamagedFileError, OutputError


def default_data_dir() -> Path:
    """Where data files and caches live: ``$NARNAS_DATA``, else ``$XDG_CACHE_HOME/narnas``,
    else ``~/.cache/narnas``."""
    if os.environ.get("NARNAS_DATA"):
        return Path(os.environ["NARNAS_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "narnas"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def print_json(result, path=None) -> None:
    """Print ``result`` as indented JSON and, given ``path``, write the same text there atomically
    (the ``--json FILE`` of the benchmark CLIs)."""
    import json
    text = json.dumps(result, indent=2)
    if path is not None:
        atomic_write_bytes(Path(path), (text + "\n").encode())
    print(text)


def outermost_missing(path) -> Path | None:
    """The outermost of ``path`` and its parents that does not exist (what creating ``path``
    would make, and removing it would undo); None when ``path`` exists."""
    missing = [p for p in (Path(path), *Path(path).parents) if not p.exists()]
    return missing[-1] if missing else None


def writable_folder(path, flag: str) -> Path:
    """``path`` as a folder that exists and takes files; checked before any real work, so an
    output that cannot be written costs one line (naming ``flag``), not the finished work."""
    path = Path(path)
    probe = path / f".narnas-write-check-{os.getpid()}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise OutputError(f"cannot write {flag} {path}: {err.strerror or err}") from None
    return path


def writable_file(path, flag: str) -> Path:
    """``path`` as a file whose folder exists and takes files (see ``writable_folder``)."""
    path = Path(path)
    writable_folder(path.parent, flag + " folder")
    return path


def atomic_torch_save(path: Path, obj) -> None:
    """``torch.save`` to a temp file, then rename it over ``path``."""
    import torch
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def append_jsonl(path: Path, entry: dict) -> None:
    """One JSON line appended to a journal or cache, flushed to disk before returning (a kill
    loses at most the line being written)."""
    import json
    with open(path, "a") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: Path, repair: bool = True) -> list:
    """The entries of an append-only JSON-lines file ([] when there is none). A last line cut
    short by a kill is left out, and with ``repair`` dropped from the file too, so the next
    append starts on a fresh line (appended to the torn line, it would damage both); a reader
    that does not own the file (a report of a running search) passes ``repair=False``. A bad
    line before the last is a DamagedFileError naming the file and the line."""
    import json
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data[:data.rfind(b"\n") + 1]
    if repair and len(complete) != len(data):
        atomic_write_bytes(path, complete)
    entries = []
    for number, line in enumerate(complete.decode(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            raise DamagedFileError(f"{path}: line {number} is not JSON (the file is damaged; move it away to "
                                   f"start it again)") from None
    return entries
