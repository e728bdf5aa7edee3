"""NAS-Bench-101 benchmark readers: the official tfrecord and compact npz tables.

* ``nasbench_only108.tfrecord`` / ``nasbench_full.tfrecord`` (the official release),
  read without TensorFlow. Each record is a JSON list ``[module_hash, epochs,
  adjacency digits, comma-separated ops, base64 ModelMetrics protobuf]``; a cell has
  one record per training run. Metrics are averaged over runs, as the official API's
  ``get_metrics_from_spec`` lists them: ``val_acc_E``, ``test_acc_E``, ``train_acc_E``,
  ``train_time_E`` for each epoch budget E, and ``params``. The parsed table is cached
  as a compact npz in the data folder.
* compact npz (the layout of ``nb101_subset_valacc.npz``): ``hash_md5``, ``n_vertices``,
  padded ``adjacency`` / ``ops`` and one 1-D array per metric.
"""
from __future__ import annotations

import base64
import binascii
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..benchmark import Benchmark
from ..errors import DataFileError, InvalidArchError
from ..files import cache_path, resolve_data_file, save_npz_cache
from .space import GRAPH_VOCAB, MAX_VERTICES, arch_from_codes, make_arch
from ..registry import get_space, register_benchmark
from ..tfrecord import RecordError, decode_message, read_records

ENV_VAR = "NARNAS_NB101_PATH"
#: NAS-Bench-101's unique cells (the paper's count, which the space's enumeration reproduces): a
#: file with fewer rows is a subset, and a search over it proposes only its cells
CELLS = 423_624
WHERE = ("the NAS-Bench-101 release (nasbench_only108.tfrecord, linked from "
         "github.com/google-research/nasbench)")
DEFAULT_NAMES = ("nasbench_only108.tfrecord", "nasbench_full.tfrecord", "nb101_subset_valacc.npz")
_LAYOUT_ARRAYS = {"hash_md5", "n_vertices", "adjacency", "ops", "ops_vocab", "cell_index"}

# ModelMetrics: 1 evaluation_data (repeated EvaluationData), 2 trainable_parameters.
# EvaluationData: 1 current_epoch, 2 training_time, 3 train_accuracy, 4 validation_accuracy,
# 5 test_accuracy. evaluation_data[2] is the end of training (0: init, 1: halfway).
_EVAL_FIELDS = {"train_time": 2, "train_acc": 3, "val_acc": 4, "test_acc": 5}


@register_benchmark("nb101")
def open_nb101(path=None, *, cache: bool = True) -> Benchmark:
    """Open an NB101 benchmark: an official tfrecord or a compact npz.

    ``None``: ``$NARNAS_NB101_PATH``, else the first of DEFAULT_NAMES in the data folder.
    """
    file = resolve_data_file(path, env_var=ENV_VAR, default_names=DEFAULT_NAMES,
                             what="NAS-Bench-101 file", where=WHERE)
    if file.name.endswith(".npz"):
        return _from_arrays(read_compact_npz(file), str(file))
    if file.name.endswith(".tfrecord"):
        cached = cache_path(file, ".compact.npz")
        if cache and cached.exists():
            return _from_arrays(read_compact_npz(cached), f"{file} (cached as {cached})")
        arrays = read_tfrecord(file)
        if cache:
            save_npz_cache(cached, arrays)
        return _from_arrays(arrays, str(file))
    raise DataFileError(f"{file}: not a known NB101 format (official .tfrecord or compact .npz)")


def read_compact_npz(file: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(file) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise DataFileError(f"{file}: cannot read as an npz file ({exc})") from None
    missing = {"hash_md5", "n_vertices", "adjacency", "ops"} - set(arrays)
    if missing:
        raise DataFileError(f"{file}: not a compact NB101 table, missing arrays {sorted(missing)}")
    return arrays


def _from_arrays(arrays: dict[str, np.ndarray], source: str) -> Benchmark:
    n = len(arrays["hash_md5"])
    columns = {k: v.astype(np.float64) for k, v in arrays.items()
               if k not in _LAYOUT_ARRAYS and v.ndim == 1 and len(v) == n and v.dtype.kind in "iuf"}
    if not columns:
        raise DataFileError(f"{source}: no metric arrays")
    keys = [h.tobytes().hex() for h in arrays["hash_md5"]]
    adjacency, ops, n_vertices = arrays["adjacency"], arrays["ops"], arrays["n_vertices"]

    def make(row: int):
        return arch_from_codes(adjacency[row], ops[row], n_vertices[row])

    default = "val_acc_108" if "val_acc_108" in columns else None
    test = "test_acc_108" if "test_acc_108" in columns else None
    return Benchmark(get_space("nb101"), keys, columns, make, source, default, test, expected_metric="val_acc_108",
                     paired_test=True, cost_metric="train_time_108" if "train_time_108" in columns else None,
                     complete=len(keys) >= CELLS)


def read_tfrecord(file: Path) -> dict[str, np.ndarray]:
    """Parse an official NB101 tfrecord into the compact layout (metrics averaged over runs)."""
    space = get_space("nb101")
    cells: dict[str, tuple] = {}
    runs: dict[tuple[str, int], list] = defaultdict(list)
    params: dict[str, int] = {}
    try:
        with open(file, "rb") as stream:
            for i, record in enumerate(read_records(stream)):
                try:
                    module_hash, epochs, raw_adjacency, raw_ops, raw_metrics = json.loads(record)
                    if module_hash not in cells:
                        dim = int(round(len(raw_adjacency) ** 0.5))
                        matrix = np.array([int(c) for c in raw_adjacency]).reshape(dim, dim)
                        cells[module_hash] = cell = make_arch(matrix, raw_ops.split(","))
                        # The key the rest of the engine looks cells up by must be the file's.
                        if space.key(cell) != module_hash:
                            raise ValueError(f"its module hash {module_hash} is not its cell's, {space.key(cell)}")
                    metrics = decode_message(base64.b64decode(raw_metrics))
                    final = decode_message(metrics[1][2])
                    runs[module_hash, int(epochs)].append(
                        {name: float(final.get(num, [np.nan])[-1]) for name, num in _EVAL_FIELDS.items()})
                    params[module_hash] = int(metrics.get(2, [0])[-1])
                except (ValueError, TypeError, KeyError, IndexError, binascii.Error, InvalidArchError) as exc:
                    raise DataFileError(f"{file}: record {i} is not an NB101 record ({exc})") from None
    except RecordError as exc:
        raise DataFileError(f"{file}: {exc}") from None
    except OSError as exc:
        raise DataFileError(f"{file}: cannot read ({exc})") from None
    if not cells:
        raise DataFileError(f"{file}: holds no records")
    return _to_compact(cells, runs, params)


def _to_compact(cells, runs, params) -> dict[str, np.ndarray]:
    hashes = sorted(cells)
    index = {h: i for i, h in enumerate(hashes)}
    n = len(hashes)
    arrays = {"hash_md5": np.array([np.frombuffer(bytes.fromhex(h), np.uint8) for h in hashes]),
              "n_vertices": np.array([cells[h].num_vertices for h in hashes], dtype=np.uint8),
              "adjacency": np.zeros((n, MAX_VERTICES, MAX_VERTICES), dtype=np.uint8),
              "ops": np.full((n, MAX_VERTICES), 255, dtype=np.uint8),
              "ops_vocab": np.array(GRAPH_VOCAB),
              "params": np.array([params[h] for h in hashes], dtype=np.int64)}
    for h, arch in cells.items():
        i, k = index[h], arch.num_vertices
        arrays["adjacency"][i, :k, :k] = arch.adjacency()
        arrays["ops"][i, :k] = [GRAPH_VOCAB.index(op) for op in arch.ops]
    for epochs in sorted({e for _, e in runs}):
        for name in _EVAL_FIELDS:
            column = np.full(n, np.nan)
            for (h, e), results in runs.items():
                if e == epochs:
                    column[index[h]] = np.mean([r[name] for r in results])
            arrays[f"{name}_{epochs}"] = column
    return arrays
