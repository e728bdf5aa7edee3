"""NAS-Bench-201 benchmark readers: compact CSV tables and the official files.

* compact CSV (``.csv`` / ``.csv.gz``): an ``arch_str`` column plus numeric metric
  columns; the CIFAR-10 table ships inside the package (``spaces/nb201/tables``).
* the official NAS-Bench-201 ``.pth`` (read through ``nas_201_api``);
* NATS-Bench topology files (``NATS-tss-*.pickle.pbz2`` or the ``-simple`` folder,
  read through ``nats_bench``).

Official files are converted once into a compact CSV in the data folder, so later
opens take milliseconds instead of minutes.
"""
from __future__ import annotations

import csv
import gzip
import io
import math
import os
from pathlib import Path

import numpy as np

from narnas.files import atomic_write_bytes

from ..benchmark import Benchmark
from ..errors import DataFileError
from ..files import cache_path, resolve_data_file
from .space import parse_arch_str, to_arch_str
from ..registry import get_space, register_benchmark

PACKAGED_TABLE = Path(__file__).parent / "tables" / "nb201_cifar10.csv.gz"
ENV_VAR = "NARNAS_NB201_PATH"
WHERE = ("the NAS-Bench-201 / NATS-Bench release (NAS-Bench-201-v1_1-096897.pth or "
         "NATS-tss-v1_0-3ffb9-simple, linked from github.com/D-X-Y/NATS-Bench)")
DEFAULT_METRIC = "c10valid_val_200_mean"
TEST_METRIC = "c10_test_200"
#: seconds of the 200-epoch training behind one row (NAS-Bench-201's train-all-time)
COST_METRIC = "c10valid_train_time_s"
#: the validation accuracy of the 12-epoch training (NAS-Bench-201's hp=12): a low fidelity
LOW_FIDELITY = "c10valid_val_12"
_NON_METRIC_COLUMNS = {"index", "arch_str", "ops"}

#: metric column -> (dataset, hp, field of get_more_info) for the official files.
#: Names follow the packaged table; accuracies are in percent.
OFFICIAL_METRICS = {
    "c10valid_val_200_mean": ("cifar10-valid", "200", "valid-accuracy"),
    "c10valid_test_200": ("cifar10-valid", "200", "test-accuracy"),
    "c10valid_val_12": ("cifar10-valid", "12", "valid-accuracy"),
    "c10_test_200": ("cifar10", "200", "test-accuracy"),
    "c10_test_12": ("cifar10", "12", "test-accuracy"),
    "c100_val_200": ("cifar100", "200", "valid-accuracy"),
    "c100_test_200": ("cifar100", "200", "test-accuracy"),
    "in16_val_200": ("ImageNet16-120", "200", "valid-accuracy"),
    "in16_test_200": ("ImageNet16-120", "200", "test-accuracy"),
    "c10valid_train_time_s": ("cifar10-valid", "200", "train-all-time"),
}


@register_benchmark("nb201")
def open_nb201(path=None, *, cache: bool = True) -> Benchmark:
    """Open an NB201 benchmark: the official .pth, NATS-Bench, or a compact table.

    ``None``: ``$NARNAS_NB201_PATH``, else the packaged CIFAR-10 table."""
    if path is None and not os.environ.get(ENV_VAR):
        file = PACKAGED_TABLE
    else:
        file = resolve_data_file(path, env_var=ENV_VAR, default_names=(), what="NAS-Bench-201 file",
                                 where=WHERE)
    name = file.name
    if name.endswith((".csv", ".csv.gz")):
        return _from_table(*read_compact_table(file), str(file))
    if name.endswith(".pth") or ".pickle" in name or file.is_dir():
        return _open_official(file, cache)
    raise DataFileError(f"{file}: not a known NB201 format (.csv[.gz] compact table, official .pth, "
                        f"NATS-tss .pickle.pbz2 or -simple folder)")


def read_compact_table(file: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """(arch strings, metric columns) of a compact CSV table."""
    try:
        raw = file.read_bytes()
        text = gzip.decompress(raw).decode() if raw[:2] == b"\x1f\x8b" else raw.decode()
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        rows = list(reader)
    except (OSError, UnicodeDecodeError, EOFError, csv.Error) as exc:
        raise DataFileError(f"{file}: cannot read as a CSV table ({exc})") from None
    if header is None:
        raise DataFileError(f"{file} is empty")
    if "arch_str" not in header:
        raise DataFileError(f"{file}: no 'arch_str' column (columns: {', '.join(header)})")
    arch_col = header.index("arch_str")
    metric_cols = [i for i, h in enumerate(header) if h not in _NON_METRIC_COLUMNS]
    try:
        values = np.array([[float(r[i]) if r[i] != "" else math.nan for i in metric_cols] for r in rows],
                          dtype=np.float64).reshape(len(rows), len(metric_cols))
    except (ValueError, IndexError) as exc:
        raise DataFileError(f"{file}: a metric value is not a number ({exc})") from None
    return [r[arch_col] for r in rows], {header[i]: values[:, j] for j, i in enumerate(metric_cols)}


def _from_table(arch_strs, columns, source) -> Benchmark:
    space = get_space("nb201")
    try:
        archs = [parse_arch_str(s) for s in arch_strs]
    except ValueError as exc:
        raise DataFileError(f"{source}: {exc}") from None
    keys = [space.key(a) for a in archs]
    if len(set(keys)) != len(keys):
        raise DataFileError(f"{source}: an architecture appears twice")
    # A table without the default columns (e.g. CIFAR-100 only) has no default metric: the
    # search metric must then be named, never guessed from the columns.
    default = DEFAULT_METRIC if DEFAULT_METRIC in columns else None
    test = TEST_METRIC if TEST_METRIC in columns else None
    cost = COST_METRIC if COST_METRIC in columns else None
    fidelities = ((12, LOW_FIDELITY, 12 / 200),) if LOW_FIDELITY in columns and default and cost else ()
    return Benchmark(space, keys, columns, archs.__getitem__, source, default, test, expected_metric=DEFAULT_METRIC,
                     cost_metric=cost, fidelities=fidelities)


def _open_official(file: Path, cache: bool) -> Benchmark:
    cached = cache_path(file, ".compact.csv.gz")
    if cache and cached.exists():
        return _from_table(*read_compact_table(cached), f"{file} (cached as {cached})")
    arch_strs, columns = read_official(file)
    if cache:
        write_compact_table(cached, arch_strs, columns)
    return _from_table(arch_strs, columns, str(file))


def _official_api(file: Path):
    """The official API object for a .pth (nas_201_api) or a NATS-tss file/folder (nats_bench)."""
    try:
        if file.name.endswith(".pth"):
            import torch
            from nas_201_api import NASBench201API
            # Torch >= 2.6 loads weights only by default; this file holds plain Python objects.
            data = torch.load(file, map_location="cpu", weights_only=False)
            return NASBench201API(data, verbose=False)
        from nats_bench import create
        return create(str(file), "tss", fast_mode=file.is_dir(), verbose=False)
    except DataFileError:
        raise
    except Exception as exc:  # the official readers raise anything from AssertionError to EOFError
        raise DataFileError(f"{file}: not a readable NAS-Bench-201 / NATS-Bench file "
                            f"({type(exc).__name__}: {exc})") from None


def read_official(file: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """Extract every metric of OFFICIAL_METRICS (mean over seeds) from an official file."""
    api = _official_api(file)
    indexes = range(len(api))
    columns = {name: np.full(len(api), math.nan) for name in OFFICIAL_METRICS}
    columns["c10valid_params_mb"] = np.full(len(api), math.nan)
    for i in indexes:
        infos = {}
        for name, (dataset, hp, field) in OFFICIAL_METRICS.items():
            if (dataset, hp) not in infos:
                try:
                    infos[dataset, hp] = api.get_more_info(i, dataset, hp=hp, is_random=False)
                except Exception:  # this arch lacks that dataset / schedule: leave NaN
                    infos[dataset, hp] = {}
            value = infos[dataset, hp].get(field)
            if value is not None:
                columns[name][i] = float(value)
        try:
            columns["c10valid_params_mb"][i] = float(api.get_cost_info(i, "cifar10-valid", hp="200")["params"])
        except Exception:
            pass
    columns = {k: v for k, v in columns.items() if not np.all(np.isnan(v))}
    if not columns:
        raise DataFileError(f"{file}: no metrics found in the official file")
    return [to_arch_str(parse_arch_str(api.arch(i)).ops) for i in indexes], columns


def write_compact_table(file: Path, arch_strs, columns) -> None:
    """Write a compact CSV (atomically: temp file then rename)."""
    names = sorted(columns)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["index", "arch_str", *names])
    for i, arch in enumerate(arch_strs):
        writer.writerow([i, arch, *("" if math.isnan(columns[n][i]) else repr(float(columns[n][i])) for n in names)])
    data = buf.getvalue().encode()
    atomic_write_bytes(file, gzip.compress(data) if file.name.endswith(".gz") else data)
