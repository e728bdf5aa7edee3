"""The latency dataset: networks measured on this machine, and the reader of NNLQP's layout.

A dataset folder::

    manifest.json    what the build measured with (seed, batch size, threads, runs) - fixed
    platforms.json   platform id -> CPU, runtime and its version, threads, batch size
    journal.jsonl    one line per measured network (append-only, flushed): its family, draw,
                     latency statistics, static features and ONNX path
    gt.txt           NNLQP's table, one network per line:
                     ``<id> <onnx path> <batch size> <latency ms> <family> <platform id>``
    onnx/<family>/<family>_<index>.onnx   the network without its weight values (shapes kept)

``gt.txt`` is rewritten from the journal (atomically) after every network, so the reader sees
the same table whether the build finished or was killed. NNLQP's released ``gt.txt`` has the
same first six columns (plus a train/test column in some splits), so :func:`read_table` reads
both; its ONNX paths are relative to the folder that holds its ``onnx`` tree.

Building: variants are drawn per (seed, family, index) (:mod:`.families`), exported to ONNX in
parallel worker processes, then timed one at a time with nothing else running (timing two
networks at once on shared cores measures the contention). A second build with the same
settings skips every network already in the journal.

Restoring: the ONNX files are not committed with a table (its ``gt.txt``, ``manifest.json`` and
``platforms.json`` are); :func:`restore` redraws each listed network from (seed, family, index)
and exports it again, without timing it: the table's latencies are kept, so a fresh checkout
benches on the measured dataset in the minutes the exports take instead of an hour of timing.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from narnas.files import append_jsonl, atomic_write_bytes, read_jsonl, writable_folder

from predictor.errors import PredictorError

FORMAT = "narnas-latency/1"
MANIFEST, PLATFORMS, JOURNAL, TABLE = "manifest.json", "platforms.json", "journal.jsonl", "gt.txt"
#: Manifest fields that a resumed build must share: a latency measured otherwise is another dataset.
FIXED_FIELDS = ("seed", "batch_size", "threads", "warmup", "repeats", "min_seconds", "opset")


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    families: tuple[str, ...]
    per_family: int
    seed: int = 0
    batch_size: int = 1
    threads: int = 1
    warmup: int = 10
    repeats: int = 30
    #: Keep timing past ``repeats`` until this much was timed (fast networks get more runs).
    min_seconds: float = 1.0
    opset: int = 17
    export_workers: int = 0  # 0: one per core
    chunk: int = 16

    def __post_init__(self):
        from .families import check_families
        check_families(self.families)
        for name in ("per_family", "batch_size", "threads", "repeats", "chunk"):
            if getattr(self, name) < 1:
                raise PredictorError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.warmup < 0 or self.min_seconds < 0 or self.export_workers < 0:
            raise PredictorError("--warmup, --min-seconds and --export-workers cannot be negative")


@dataclasses.dataclass(frozen=True)
class Record:
    """One row of a ``gt.txt`` table."""

    id: str
    onnx: str  # as written in the table (relative to the table's root)
    batch_size: int
    latency_ms: float
    family: str
    platform: int
    stage: str | None = None  # NNLQP's train/test column, where a split file has one


def network_id(family: str, index: int) -> str:
    return f"{family}_{index:04d}"


def onnx_relpath(family: str, index: int) -> str:
    return f"onnx/{family}/{network_id(family, index)}.onnx"


def read_journal(folder: Path) -> list[dict]:
    """The journal's entries; a torn last line (a kill mid-write) is dropped."""
    return read_jsonl(Path(folder) / JOURNAL)


def write_table(folder: Path, entries) -> None:
    """gt.txt from journal entries (NNLQP's columns), written atomically."""
    lines = [f"{e['id']} {e['onnx']} {e['batch_size']} {e['latency_ms']:.6f} {e['family']} {e['platform']}"
             for e in entries]
    atomic_write_bytes(Path(folder) / TABLE, ("\n".join(lines) + ("\n" if lines else "")).encode())


def read_table(path) -> list[Record]:
    """Rows of a gt.txt (this package's or NNLQP's), or a PredictorError naming the bad line."""
    path = Path(path)
    if path.is_dir():
        path = path / TABLE
    if not path.is_file():
        raise PredictorError(f"latency table {path} does not exist (build one with python -m latency "
                             "build --out DIR, or point --data at NNLQP's dataset folder or its gt.txt)")
    records = []
    for k, line in enumerate(path.read_text().splitlines(), 1):
        items = line.split()
        if not items:
            continue
        if len(items) < 6:
            raise PredictorError(f"{path} line {k}: expected '<id> <onnx path> <batch size> <latency ms> <family> "
                                 f"<platform id> [stage]', got {line.strip()[:80]!r}")
        try:
            records.append(Record(items[0], items[1], int(items[2]), float(items[3]), items[4], int(items[5]),
                                  items[6] if len(items) > 6 else None))
        except ValueError:
            raise PredictorError(f"{path} line {k}: batch size, latency and platform must be numbers, "
                                 f"got {' '.join(items[2:6])!r}") from None
    if not records:
        raise PredictorError(f"latency table {path} has no rows")
    return records


#: ONNX element types of weights (float, float16, double, bfloat16): the values stripped.
WEIGHT_TYPES = frozenset({1, 10, 11, 16})


def strip_weights(model):
    """A copy of an ONNX model whose float initializers (the weights) keep their shapes and types
    but no values: what a layer graph needs, at a few kilobytes (NNLQP ships its graphs the
    same way). Integer initializers (shapes, axes of Reshape and Slice) keep their values, so a
    layer can still be rebuilt and timed alone (:mod:`.kernels`)."""
    import onnx
    stripped = onnx.ModelProto.FromString(model.SerializeToString())
    for t in stripped.graph.initializer:
        if t.data_type not in WEIGHT_TYPES:
            continue
        for field in ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data",
                      "string_data"):
            t.ClearField(field)
    return stripped


def _export_one(family: str, index: int, seed: int, batch_size: int, opset: int, pending: str) -> dict:
    """Worker: draw a variant, export it with weights to ``pending``; returns its description."""
    import torch
    torch.set_num_threads(1)
    from .families import draw
    from .graph import module_to_onnx
    start = time.perf_counter()
    variant = draw(family, seed, index)
    model = module_to_onnx(variant.module, (batch_size,) + tuple(variant.input_shape), opset=opset)
    atomic_write_bytes(Path(pending), model.SerializeToString())
    return {"family": family, "index": index, "spec": variant.spec,
            "input_shape": [batch_size] + list(variant.input_shape),
            "export_seconds": round(time.perf_counter() - start, 3), "pending": pending}


def _exported_chunks(jobs: list[tuple], workers: int, chunk: int):
    """Yield the exports of ``jobs`` chunk by chunk, each chunk exported in a spawned pool of
    ``workers`` (in this process when 1). The caller handles a chunk (times it alone, writes its
    journal) before the next is exported; closing the generator shuts the pool down."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) if workers > 1 else None
    try:
        for at in range(0, len(jobs), chunk):
            part = jobs[at: at + chunk]
            yield (list(pool.map(_export_one, *zip(*part))) if pool else [_export_one(*j) for j in part])
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


class Builder:
    """Builds (or resumes) a dataset folder."""

    def __init__(self, out, config: BuildConfig, log=None):
        self.out = writable_folder(out, "--out")
        self.config = config
        self.log = log or (lambda text: print(text, file=sys.stderr, flush=True))
        self._check_manifest()

    def _check_manifest(self):
        from .timing import platform_info
        path = self.out / MANIFEST
        c = self.config
        mine = {"format": FORMAT, **{k: getattr(c, k) for k in FIXED_FIELDS}}
        if path.exists():
            try:
                theirs = json.loads(path.read_text())
            except json.JSONDecodeError:
                raise PredictorError(f"{path} is not JSON: not a latency dataset folder") from None
            if theirs.get("format") != FORMAT:
                raise PredictorError(f"{self.out} holds {theirs.get('format')!r}, not a latency dataset ({FORMAT})")
            changed = [f"{k} {theirs.get(k)!r} -> {mine[k]!r}" for k in FIXED_FIELDS if theirs.get(k) != mine[k]]
            if changed:
                raise PredictorError(f"{self.out} was measured with other settings ({'; '.join(changed)}): "
                                     "build into a new --out, or rerun with the dataset's settings")
        else:
            atomic_write_bytes(path, json.dumps(mine, indent=2).encode())
        platforms_path = self.out / PLATFORMS
        platforms = json.loads(platforms_path.read_text()) if platforms_path.exists() else {}
        here = platform_info(c.threads, c.batch_size)
        for key, info in platforms.items():
            if info == here:
                self.platform = int(key)
                break
        else:  # another machine resuming the folder adds its own platform id
            self.platform = len(platforms)
            platforms[str(self.platform)] = here
            atomic_write_bytes(platforms_path, json.dumps(platforms, indent=2).encode())

    def todo(self, entries) -> list[tuple[str, int]]:
        """Networks still to measure, families interleaved (a partial build covers all)."""
        done = {(e["family"], e["index"]) for e in entries}
        return [(family, i) for i in range(self.config.per_family) for family in self.config.families
                if (family, i) not in done]

    def run(self) -> dict:
        entries = read_journal(self.out)
        write_table(self.out, entries)
        todo = self.todo(entries)
        self.log(f"latency dataset {self.out}: {len(entries)} measured, {len(todo)} to go")
        pending = self.out / ".pending"
        pending.mkdir(exist_ok=True)
        c = self.config
        workers = c.export_workers or os.cpu_count() or 1
        start = time.perf_counter()
        measured = 0
        jobs = [(f, i, c.seed, c.batch_size, c.opset, str(pending / f"{network_id(f, i)}.onnx")) for f, i in todo]
        # Export in parallel, then time alone: the pool is idle while a network is timed.
        with open(self.out / JOURNAL, "a") as journal, \
                contextlib.closing(_exported_chunks(jobs, workers, c.chunk)) as chunks:
            for exported in chunks:
                for item in exported:
                    entry = self._measure(item)
                    journal.write(json.dumps(entry) + "\n")
                    journal.flush()
                    os.fsync(journal.fileno())
                    entries.append(entry)
                    write_table(self.out, entries)
                    measured += 1
                self.log(f"  {len(entries)} measured ({measured} this run, {time.perf_counter() - start:.0f} s)")
        if not any(pending.iterdir()):
            pending.rmdir()
        return {"networks": len(entries), "measured_now": measured, "seconds": time.perf_counter() - start}

    def _measure(self, item: dict) -> dict:
        import onnx
        from .timing import measure
        c = self.config
        model = onnx.load(item["pending"])
        stats = measure(model, threads=c.threads, warmup=c.warmup, repeats=c.repeats, seed=c.seed,
                        min_seconds=c.min_seconds)
        return {**_store(self.out, item, model), "batch_size": c.batch_size, "platform": self.platform,
                "latency_ms": stats.median_ms, "stats": stats.to_dict(),
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _store(out: Path, item: dict, model=None) -> dict:
    """Keep an exported network (``item`` from :func:`_export_one`) in ``out`` without its
    weight values and drop its pending file; returns the journal fields it fixes."""
    import onnx
    from .graph import onnx_graph, static_features
    pending = Path(item["pending"])
    model = model if model is not None else onnx.load(str(pending))
    graph = onnx_graph(model)
    rel = onnx_relpath(item["family"], item["index"])
    atomic_write_bytes(out / rel, strip_weights(model).SerializeToString())
    pending.unlink(missing_ok=True)
    return {"id": network_id(item["family"], item["index"]), "family": item["family"], "index": item["index"],
            "onnx": rel, "input_shape": item["input_shape"], "num_nodes": graph.num_nodes,
            "static": static_features(graph), "spec": item["spec"], "export_seconds": item["export_seconds"]}


def _drawn_network(record: Record, table: Path, row: int) -> tuple[str, int]:
    """(family, index) of a table row this package's build drew, or a PredictorError."""
    from .families import FAMILIES
    family, _, index = record.id.rpartition("_")
    if family not in FAMILIES or not index.isdigit() or record.onnx != onnx_relpath(family, int(index)):
        raise PredictorError(f"{table} row {row}: {record.id} ({record.onnx}) is not a network this package "
                             "draws (<family>_<index> with its onnx/<family>/ path): only tables written by "
                             "python -m latency build can be restored")
    return family, int(index)


def restore(table, out, *, export_workers: int = 0, chunk: int = 16, log=None) -> dict:
    """Re-export the networks of a built dataset's table into ``out`` without timing them.

    ``table`` is a dataset folder or its ``gt.txt``, with the ``manifest.json`` (seed, batch
    size, opset) and ``platforms.json`` the build wrote beside it. Every row is redrawn from
    (seed, family, index), exported and stored weightless; its latency, batch size and platform
    are the table's. Resumable (rows already in ``out``'s journal are skipped), and ``out``
    must not hold another dataset. The exporter's version is kept in each journal entry: a
    different torch may export a network as a slightly different layer graph.
    """
    import torch
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    table = Path(table)
    table = table / TABLE if table.is_dir() else table
    source = table.parent
    records = read_table(table)
    if not (source / MANIFEST).is_file():
        raise PredictorError(f"restoring {table} needs the build's {MANIFEST} beside it (its seed, batch size "
                             "and opset fix the networks)")
    manifest = json.loads((source / MANIFEST).read_text())
    if manifest.get("format") != FORMAT:
        raise PredictorError(f"{source / MANIFEST} is not a latency dataset manifest ({FORMAT})")
    networks = [_drawn_network(r, table, k) for k, r in enumerate(records, 1)]
    if any(r.batch_size != manifest["batch_size"] for r in records):
        raise PredictorError(f"{table}: every row's batch size must be the manifest's {manifest['batch_size']}")
    out = writable_folder(out, "--out")
    for name in (MANIFEST, PLATFORMS):
        mine, theirs = source / name, out / name
        if not mine.is_file():
            continue
        if theirs.exists() and json.loads(theirs.read_text()) != json.loads(mine.read_text()):
            raise PredictorError(f"{out} holds another dataset ({name} differs from {mine}): restore into a new --out")
        if not theirs.exists():
            atomic_write_bytes(theirs, mine.read_bytes())
    entries = read_journal(out)
    done = {e["id"] for e in entries}
    todo = [(r, f, i) for r, (f, i) in zip(records, networks) if r.id not in done]
    log(f"restoring {table} into {out}: {len(done)} there, {len(todo)} to export")
    pending = out / ".pending"
    pending.mkdir(exist_ok=True)
    workers = export_workers or os.cpu_count() or 1
    start = time.perf_counter()
    versions = {"torch": torch.__version__.split("+")[0], "opset": manifest["opset"]}
    jobs = [(f, i, manifest["seed"], manifest["batch_size"], manifest["opset"],
             str(pending / f"{network_id(f, i)}.onnx")) for _, f, i in todo]
    record_of = {job[-1]: record for job, (record, _, _) in zip(jobs, todo)}
    with contextlib.closing(_exported_chunks(jobs, workers, chunk)) as chunks:
        for exported in chunks:
            for item in exported:
                record = record_of[item["pending"]]
                entry = {**_store(out, item), "batch_size": record.batch_size, "platform": record.platform,
                         "latency_ms": record.latency_ms, "restored_from": str(table), "exported_with": versions}
                append_jsonl(out / JOURNAL, entry)
                entries.append(entry)
            write_table(out, entries)
            log(f"  {len(entries)} of {len(records)} restored ({time.perf_counter() - start:.0f} s)")
    write_table(out, entries)
    if not any(pending.iterdir()):
        pending.rmdir()
    return {"networks": len(entries), "exported_now": len(todo), "seconds": round(time.perf_counter() - start, 1)}


def summary(folder) -> dict:
    """Per-family counts and latency ranges of a dataset folder (or an NNLQP table)."""
    import numpy as np
    records = read_table(folder)
    families: dict[str, list[float]] = {}
    for r in records:
        families.setdefault(r.family, []).append(r.latency_ms)
    out = {"networks": len(records), "families": {}}
    for name, lat in sorted(families.items()):
        a = np.asarray(lat)
        out["families"][name] = {"networks": len(a), "latency_ms_min": float(a.min()),
                                 "latency_ms_median": float(np.median(a)), "latency_ms_max": float(a.max())}
    platforms = Path(folder) / PLATFORMS if Path(folder).is_dir() else None
    if platforms is not None and platforms.exists():
        out["platforms"] = json.loads(platforms.read_text())
    return out


GRAPH_CACHE = "graphs.cache.pkl"


def load_graphs(data, onnx_root=None, *, log=None):
    """(records, compact layer graphs) of a dataset folder or a gt.txt (ours or NNLQP's).

    ONNX paths are relative to ``onnx_root`` (default: the table's folder). Extracted graphs
    are cached beside the table (``graphs.cache.pkl``, keyed by path, batch size, file size
    and time), so a second run reads them in a second.
    """
    import pickle

    from .encoding import compact
    from .graph import onnx_graph
    data = Path(data)
    table = data / TABLE if data.is_dir() else data
    records = read_table(table)
    root = Path(onnx_root) if onnx_root else table.parent
    cache_path = table.parent / GRAPH_CACHE
    cache = {}
    if cache_path.exists():
        try:
            cache = pickle.loads(cache_path.read_bytes())
        except Exception:  # a cache from another version: rebuild it
            cache = {}
    graphs, fresh = [], 0
    for r in records:
        path = root / r.onnx
        if not path.is_file():
            raise PredictorError(f"{table}: network {r.id}'s ONNX file {path} does not exist "
                                 "(--onnx-root points at the folder its paths are relative to)")
        st = path.stat()
        key = (r.onnx, r.batch_size, st.st_size, st.st_mtime_ns)
        if key not in cache:
            cache[key] = compact(onnx_graph(path, batch_size=r.batch_size))
            fresh += 1
            if log and fresh % 200 == 0:
                log(f"  {fresh} graphs extracted")
        graphs.append(cache[key])
    if fresh:
        try:
            atomic_write_bytes(cache_path, pickle.dumps(cache, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            pass  # a read-only dataset (NNLQP's on a shared disk) is read again next time
    return records, graphs
