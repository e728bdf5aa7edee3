"""Measured tables of ``ofa_mbv3`` subnets, for predictor work (``--data``).

The format is DyNAS-T's search logs (``ks0..ks19``, ``e0..e19``, ``d0..d4``, ``resolution``,
then numeric metric columns such as ``top1_imagenet``, ``macs``, ``params``); other
columns (``source_file``) are ignored. A subnet listed more than once (the logs repeat
some) is one row: its first entry is kept. The table is partial (a sample of the space),
so archs outside it are not in the benchmark. There is no default file: pass ``--data``.
"""
from __future__ import annotations

import csv
import gzip
import io
import math

import numpy as np

from ..benchmark import Benchmark
from ..errors import DataFileError, InvalidArchError
from ..files import resolve_data_file
from ..registry import get_space, register_benchmark
from .space import BLOCKS, STAGES

ENV_VAR = "NARNAS_OFA_MBV3_PATH"
WHERE = ("DyNAS-T's OFA MobileNetV3 search logs (github.com/IntelLabs/DyNAS-T, notebooks/data/mbnv3w10_evo*.csv), "
         "or any CSV with ks0..ks19, e0..e19, d0..d4, resolution and metric columns")
DEFAULT_METRIC = "top1_imagenet"
ARCH_COLUMNS = ([f"ks{i}" for i in range(BLOCKS)] + [f"e{i}" for i in range(BLOCKS)]
                + [f"d{i}" for i in range(STAGES)] + ["resolution"])
IGNORED = {"source_file"}


@register_benchmark("ofa_mbv3")
def open_ofa_table(path=None, *, cache: bool = True) -> Benchmark:
    """Open a measured OFA MobileNetV3 accuracy table (DyNAS-T's CSV layout)."""
    file = resolve_data_file(path, env_var=ENV_VAR, default_names=("ofa_mbv3w10_accuracy_dynast.csv.gz",),
                             what="ofa_mbv3 accuracy table", where=WHERE)
    try:
        raw = file.read_bytes()
        text = gzip.decompress(raw).decode() if raw[:2] == b"\x1f\x8b" else raw.decode()
        rows = list(csv.DictReader(io.StringIO(text)))
    except (OSError, UnicodeDecodeError, EOFError, csv.Error) as exc:
        raise DataFileError(f"{file}: cannot read as a CSV table ({exc})") from None
    if not rows:
        raise DataFileError(f"{file}: holds no rows")
    missing = [c for c in ARCH_COLUMNS if c not in rows[0]]
    if missing:
        raise DataFileError(f"{file}: not an ofa_mbv3 table, missing columns {', '.join(missing[:5])}"
                            f"{' ...' if len(missing) > 5 else ''}")
    metrics = [c for c in rows[0] if c not in ARCH_COLUMNS and c not in IGNORED]
    space = get_space("ofa_mbv3")
    archs, keys, values, seen = [], [], [], set()
    for number, row in enumerate(rows, start=2):
        try:
            arch = space.from_json({"ks": [int(row[f"ks{i}"]) for i in range(BLOCKS)],
                                    "e": [int(row[f"e{i}"]) for i in range(BLOCKS)],
                                    "d": [int(row[f"d{i}"]) for i in range(STAGES)], "r": int(row["resolution"])})
            numbers = [float(row[m]) if row[m] != "" else math.nan for m in metrics]
        except (ValueError, InvalidArchError) as exc:
            raise DataFileError(f"{file}: line {number} is not an ofa_mbv3 subnet ({exc})") from None
        key = space.key(arch)
        if key in seen:
            continue
        seen.add(key)
        archs.append(arch)
        keys.append(key)
        values.append(numbers)
    table = np.array(values, dtype=np.float64).reshape(len(keys), len(metrics))
    columns = {m: table[:, j] for j, m in enumerate(metrics)}
    default = DEFAULT_METRIC if DEFAULT_METRIC in columns else None
    return Benchmark(space, keys, columns, archs.__getitem__, str(file), default, None,
                     expected_metric=DEFAULT_METRIC)
