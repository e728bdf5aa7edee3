"""Your own results as a benchmark of any space: a table with an ``arch`` column.

A table is a CSV file whose header names an ``arch`` column, a JSON-lines file (``.jsonl``)
of objects with an ``arch`` field, or a run folder (a search's ``journal.jsonl`` is such a
file). ``arch`` holds the architecture in the space's JSON form (a JSON text in a CSV cell) or
in its text form; every other column whose values are all numbers (empty cells: missing) is a
metric. Rows of a journal that did not end ``ok`` (failed, or stopped early at a lower
fidelity) are left out.

The search metric is ``val`` where the table has it (a journal's), else its only metric; the
reported one ``test``; the cost of an evaluation ``cost``. Two rows of one architecture (by the
space's key) and architectures the space refuses are an error naming their line numbers:
nothing is dropped or averaged behind the user's back.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from .benchmark import Benchmark
from .errors import DataFileError, SpacesError

JOURNAL = "journal.jsonl"  # the table inside a run folder
SHOWN = 5  # line numbers an error lists


def is_table(path) -> bool:
    """Whether ``path`` is a table of this module's form (not a benchmark's official file)."""
    path = Path(path)
    if path.is_dir():
        return (path / JOURNAL).is_file()
    if path.suffix == ".jsonl":
        return True
    if path.suffix == ".csv" and path.is_file():
        with open(path, newline="") as f:
            return "arch" in next(csv.reader(f), [])
    return False


def read_rows(path) -> tuple[Path, list[tuple[int, dict]]]:
    """(the file read, [(line number, row)]) of a table; a JSON line that is not an object is
    the architecture itself (``python -m spaces --sample``'s output)."""
    path = Path(path)
    if path.is_dir():
        if not (path / JOURNAL).is_file():
            raise DataFileError(f"{path} is a folder without a {JOURNAL} (a run folder holds one)")
        path = path / JOURNAL
    if not path.is_file():
        raise DataFileError(f"table {path} not found")
    rows = []
    if path.suffix == ".csv":
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if "arch" not in (reader.fieldnames or []):
                raise DataFileError(f"{path}: no 'arch' column (columns: {', '.join(reader.fieldnames or [])})")
            rows = [(number, row) for number, row in enumerate(reader, 2)]
        return path, rows
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            value = line.strip()  # an architecture in its text form
        if not (isinstance(value, dict) and "arch" in value):
            value = {"arch": value}
        rows.append((number, value))
    return path, rows


def not_a_table(path) -> str:
    """Why the existing file ``path`` is not a table, for a space that reads nothing else."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        return f"{path} is empty"
    if path.suffix == ".csv" and path.is_file():
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        return f"{path}: no 'arch' column (columns: {', '.join(header)})"
    return f"{path} is not a table (a .csv file with an 'arch' column, a .jsonl file or a run folder)"


def read_table(space, path) -> Benchmark:
    """The table at ``path`` as a :class:`Benchmark` of ``space``."""
    file, rows = read_rows(path)
    finished = [(n, r) for n, r in rows if r.get("status", "ok") == "ok"]
    if not finished:
        raise DataFileError(f"{file}: no rows" + (" that ended ok" if rows else "")
                            + " (a table has one row per architecture)")
    rows = finished
    archs, keys, lines, refused, first_line = [], [], [], [], {}
    duplicates = []
    for number, row in rows:
        try:
            arch = space.from_json(row["arch"])
        except SpacesError as err:
            refused.append((number, str(err)))
            continue
        key = space.key(arch)
        if key in first_line:
            duplicates.append((first_line[key], number))
            continue
        first_line[key] = number
        archs.append(arch)
        keys.append(key)
        lines.append(number)
    if refused:
        where = ", ".join(str(n) for n, _ in refused[:SHOWN]) + (" ..." if len(refused) > SHOWN else "")
        raise DataFileError(f"{file}: {len(refused)} rows hold no valid {space.name} architecture (lines {where}; "
                            f"line {refused[0][0]}: {refused[0][1]})")
    if duplicates:
        where = ", ".join(f"{b} repeats {a}" for a, b in duplicates[:SHOWN]) + (" ..." if len(duplicates) > SHOWN else "")
        raise DataFileError(f"{file}: {len(duplicates)} rows repeat an architecture of an earlier row (line {where}); "
                            "keep one row per architecture (average repeated trainings yourself)")
    by_line = dict(rows)
    columns = {}
    for name in dict.fromkeys(k for _, r in rows for k in r if k != "arch"):
        values = [_number(by_line[n].get(name)) for n in lines]
        if all(v is not None for v in values):
            columns[name] = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    default = "val" if "val" in columns else (next(iter(columns)) if len(columns) == 1 else None)
    return Benchmark(space, keys, columns, archs.__getitem__, str(file), default_metric=default,
                     test_metric="test" if "test" in columns else None,
                     expected_metric="val", cost_metric="cost" if "cost" in columns else None)


def _number(value):
    """A float, NaN for a missing cell, None for something that is not a number."""
    if value is None or value == "":
        return math.nan
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def write_table(rows: list[dict], path=None) -> None:
    """Rows (``arch`` first) as CSV or JSON lines by ``path``'s suffix; None: JSON lines on stdout."""
    import sys
    if path is None:
        for row in rows:
            print(json.dumps(row))
        return
    import io

    from narnas.files import atomic_write_bytes
    path = Path(path)
    text = io.StringIO(newline="")
    if path.suffix == ".csv":
        writer = csv.DictWriter(text, list(dict.fromkeys(k for r in rows for k in r)))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in row.items()})
    else:
        text.writelines(json.dumps(row) + "\n" for row in rows)
    atomic_write_bytes(path, text.getvalue().encode())
    print(f"wrote {len(rows)} rows to {path}", file=sys.stderr)
