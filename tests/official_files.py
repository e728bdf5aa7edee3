"""Writers of small files in the official benchmark formats, for the reader tests."""
from __future__ import annotations

import base64
import bz2
import json
import pickle
import struct


def nb201_arch_results(index, arch_str, runs, epochs):
    """Official ArchResults state: ``runs`` = [(dataset, seed, {eval set: acc}, train_acc, params)]."""
    from nas_201_api.api_utils import ArchResults, ResultsCount

    results = ArchResults(index, arch_str)
    config = {"arch_str": arch_str, "channel": 16, "num_cells": 5, "class_num": 10}
    for dataset, seed, evals, train_acc, params in runs:
        per_epoch = {e: train_acc for e in range(epochs)}
        count = ResultsCount(dataset, None, per_epoch, {e: 0.5 for e in range(epochs)}, params, 10.0,
                             config, seed, epochs, None)
        count.update_train_info(per_epoch, None, {e: 0.5 for e in range(epochs)}, {e: 2.0 for e in range(epochs)})
        keys = [f"{name}@{e}" for name in evals for e in range(epochs)]
        count.update_eval({k: evals[k.split("@")[0]] for k in keys}, {k: 0.4 for k in keys}, {k: 1.0 for k in keys})
        results.update(dataset, seed, count)
    return results.state_dict()


def nb201_official_dict(archs, nats: bool):
    """``archs`` = [(arch_str, runs200, runs12)] -> the dict the official files hold."""
    infos = {}
    for i, (arch_str, runs200, runs12) in enumerate(archs):
        full = nb201_arch_results(i, arch_str, runs200, 200)
        less = nb201_arch_results(i, arch_str, runs12, 12)
        infos[i] = {"200": full, "12": less} if nats else {"full": full, "less": less}
    return {"meta_archs": [a for a, _, _ in archs], "arch2infos": infos, "evaluated_indexes": list(infos)}


def write_nats_pickle(path, data):
    with bz2.BZ2File(path, "wb") as f:
        pickle.dump(data, f)


# NAS-Bench-101's lib/model_metrics.proto (proto2), the field numbers as published; encoded here
# by hand, apart from the reader's own codec, so a wrong number in the reader cannot hide:
#   ModelMetrics:   evaluation_data = 1 (EvaluationData), trainable_parameters = 2 (int32), total_time = 3 (double)
#   EvaluationData: current_epoch = 1, training_time = 2, train_accuracy = 3, validation_accuracy = 4,
#                   test_accuracy = 5 (doubles), checkpoint_path = 6 (string)
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _double(field: int, value: float) -> bytes:  # wire type 1 (64-bit)
    return bytes([field << 3 | 1]) + struct.pack("<d", value)


def _int32(field: int, value: int) -> bytes:  # wire type 0 (varint)
    return bytes([field << 3 | 0]) + _varint(value)


def _bytes(field: int, data: bytes) -> bytes:  # wire type 2 (length-delimited)
    return bytes([field << 3 | 2]) + _varint(len(data)) + data


def nb101_record(module_hash, epochs, matrix, ops, evaluations, params):
    """One record of the official NB101 tfrecord: evaluations = [(time, train, valid, test)] x3
    for init, halfway and final."""
    evaluation_data = b""
    for epoch, (time, train, valid, test) in zip((0.0, epochs / 2, float(epochs)), evaluations):
        message = (_double(1, epoch) + _double(2, time) + _double(3, train) + _double(4, valid) + _double(5, test)
                   + _bytes(6, b"/ckpt/model.ckpt-1"))
        evaluation_data += _bytes(1, message)
    metrics = evaluation_data + _int32(2, params) + _double(3, 123.0)
    return json.dumps([module_hash, epochs, "".join(str(v) for row in matrix for v in row), ",".join(ops),
                       base64.b64encode(metrics).decode()]).encode()


def _masked_crc32c(data: bytes) -> int:
    """TFRecord's checksum: CRC-32C (google-crc32c), rotated right by 15 bits, plus 0xa282ead8."""
    import google_crc32c
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def write_tfrecord(path, records):
    """TFRecord framing: uint64 length, its masked CRC, the data, the data's masked CRC."""
    with open(path, "wb") as f:
        for record in records:
            length = struct.pack("<Q", len(record))
            f.write(length + struct.pack("<I", _masked_crc32c(length)) + record
                    + struct.pack("<I", _masked_crc32c(record)))
