"""Writers of small files in the official benchmark formats, for the reader tests."""
from __future__ import annotations

import base64
import bz2
import json
import pickle

from spaces.tfrecord import encode_field, write_record


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


def nb101_record(module_hash, epochs, matrix, ops, evaluations, params):
    """One record of the official NB101 tfrecord: evaluations = [(time, train, valid, test)] x3
    for init, halfway and final."""
    evaluation_data = b""
    for epoch, (time, train, valid, test) in zip((0.0, epochs / 2, float(epochs)), evaluations):
        message = (encode_field(1, epoch) + encode_field(2, time) + encode_field(3, train)
                   + encode_field(4, valid) + encode_field(5, test) + encode_field(6, "/ckpt/model.ckpt-1"))
        evaluation_data += encode_field(1, message)
    metrics = evaluation_data + encode_field(2, params) + encode_field(3, 123.0)
    return json.dumps([module_hash, epochs, "".join(str(v) for row in matrix for v in row), ",".join(ops),
                       base64.b64encode(metrics).decode()]).encode()


def write_tfrecord(path, records):
    with open(path, "wb") as f:
        for record in records:
            write_record(f, record)
