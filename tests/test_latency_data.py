"""The latency dataset: drawn network families, a resumable measured build, NNLQP's table reader."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from predictor.errors import PredictorError
from latency import dataset
from latency.families import draw, family_names
from latency.graph import onnx_graph

ROOT = Path(__file__).resolve().parents[1]


def test_a_variant_is_fixed_by_seed_family_and_index():
    a, b, c = draw("mobilenetv3", 0, 5), draw("mobilenetv3", 0, 5), draw("mobilenetv3", 1, 5)
    assert a.spec == b.spec and a.spec != c.spec
    sa = {k: v for k, v in a.module.state_dict().items() if v.is_floating_point()}
    sb = b.module.state_dict()
    assert all((sa[k] == sb[k]).all() for k in sa)  # the weights too
    specs = {json.dumps(draw("googlenet", 0, i).spec, sort_keys=True) for i in range(6)}
    assert len(specs) == 6  # variants differ within a family


def _cli(*args, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "latency", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, **kw)


FAST = ["--warmup", "1", "--repeats", "3", "--min-seconds", "0.3", "--export-workers", "1"]


def test_killed_build_resumes_without_duplicates_and_its_table_reads_back(tmp_path):
    out = tmp_path / "lat"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "latency", "build", "--out", str(out),
                             "--families", "nb201,squeezenet", "--per-family", "2", *FAST],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = out / dataset.JOURNAL
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if journal.exists() and journal.read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = dataset.read_journal(out)
    assert 1 <= len(first) < 4, "the kill should land mid-build"

    done = _cli("build", "--out", str(out), "--families", "nb201,squeezenet", "--per-family", "2", *FAST)
    assert done.returncode == 0, done.stderr
    entries = dataset.read_journal(out)
    assert sorted(e["id"] for e in entries) == ["nb201_0000", "nb201_0001", "squeezenet_0000", "squeezenet_0001"]
    assert entries[:len(first)] == first  # nothing measured twice, nothing rewritten
    records = dataset.read_table(out)
    assert [r.id for r in records] == [e["id"] for e in entries]
    for r, e in zip(records, entries):
        assert r.latency_ms == pytest.approx(e["latency_ms"], rel=1e-5) and r.latency_ms > 0
        assert (r.batch_size, r.family, r.platform) == (1, e["family"], 0)
        g = onnx_graph(out / r.onnx)  # the stored (weightless) ONNX is a readable graph
        assert g.num_nodes == e["num_nodes"]
        assert e["stats"]["min_ms"] <= e["latency_ms"] <= e["stats"]["max_ms"]
    platform = json.loads((out / dataset.PLATFORMS).read_text())["0"]
    assert platform["threads"] == 1 and platform["runtime"] == "onnxruntime" and platform["cpu"]

    again = _cli("build", "--out", str(out), "--families", "nb201,squeezenet", "--per-family", "2", *FAST)
    assert again.returncode == 0 and len(dataset.read_journal(out)) == 4
    changed = _cli("build", "--out", str(out), "--families", "nb201", "--per-family", "2", "--threads", "2", *FAST)
    assert changed.returncode == 2 and "threads 1 -> 2" in changed.stderr
    assert len(changed.stderr.strip().splitlines()) == 1


def test_torn_journal_line_is_ignored(tmp_path):
    (tmp_path / dataset.JOURNAL).write_text('{"id": "a", "family": "x", "index": 0}\n{"id": "b", "fam')
    assert [e["id"] for e in dataset.read_journal(tmp_path)] == ["a"]


def test_reader_takes_nnlqp_layout_and_names_bad_lines(tmp_path):
    gt = tmp_path / "gt.txt"
    gt.write_text("0 onnx/resnet18/resnet18_0.onnx 8 12.5 resnet18 2 train\n"
                  "1 onnx/vgg16/vgg16_3.onnx 1 3.25 vgg16 2 test\n")
    rows = dataset.read_table(gt)
    assert rows[0] == dataset.Record("0", "onnx/resnet18/resnet18_0.onnx", 8, 12.5, "resnet18", 2, "train")
    assert rows[1].stage == "test" and rows[1].latency_ms == 3.25
    gt.write_text("0 a.onnx 1 2.0 fam 0\n1 b.onnx one 2.0 fam 0\n")
    with pytest.raises(PredictorError, match="line 2"):
        dataset.read_table(gt)
    with pytest.raises(PredictorError, match="does not exist"):
        dataset.read_table(tmp_path / "nowhere")


def test_cli_rejects_unknown_family_in_one_line(tmp_path):
    r = _cli("build", "--out", str(tmp_path / "x"), "--families", "resnet,lenet", "--per-family", "1")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"error: unknown network family lenet; known: {', '.join(family_names())}"]


def test_unwritable_outputs_are_refused_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = _cli("build", "--out", str(tmp_path / "d"), "--families", "nb201", "--per-family", "1",
             "--json", str(blocker / "out.json"))
    assert r.returncode == 2 and "cannot write --json" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "d" / "journal.jsonl").exists()  # nothing was measured
    r = _cli("build", "--out", str(blocker / "d"), "--families", "nb201", "--per-family", "1")
    assert r.returncode == 2 and "cannot write --out" in r.stderr


def test_a_committed_table_restores_to_the_same_graphs_without_timing(tmp_path):
    import numpy as np
    built = tmp_path / "built"
    config = dataset.BuildConfig(families=("nb201", "squeezenet"), per_family=1, warmup=1, repeats=3,
                                 min_seconds=0.0, export_workers=1)
    dataset.Builder(built, config, log=lambda _: None).run()
    committed = tmp_path / "committed"  # what a commit keeps: the table, its manifest and platforms
    committed.mkdir()
    for name in (dataset.TABLE, dataset.MANIFEST, dataset.PLATFORMS):
        (committed / name).write_bytes((built / name).read_bytes())

    out = tmp_path / "restored"
    result = dataset.restore(committed / dataset.TABLE, out, export_workers=1, log=lambda _: None)
    assert result["exported_now"] == 2
    assert (out / dataset.TABLE).read_text() == (built / dataset.TABLE).read_text()  # latencies kept
    _, original = dataset.load_graphs(built)
    _, restored = dataset.load_graphs(out)
    for a, b in zip(original, restored):
        assert np.array_equal(a.ops, b.ops) and np.array_equal(a.values, b.values)
        assert np.array_equal(a.static, b.static) and all(np.array_equal(x, y) for x, y in zip(a.sources, b.sources))
    assert [e["static"] for e in dataset.read_journal(out)] == [e["static"] for e in dataset.read_journal(built)]
    assert all("stats" not in e and e["restored_from"] for e in dataset.read_journal(out))  # nothing was timed

    again = dataset.restore(committed, out, export_workers=1, log=lambda _: None)
    assert again["exported_now"] == 0 and len(dataset.read_journal(out)) == 2

    other = tmp_path / "other"
    dataset.Builder(other, dataclasses.replace(config, seed=5, families=("nb201",)), log=lambda _: None)
    with pytest.raises(PredictorError, match="holds another dataset"):
        dataset.restore(committed, other, export_workers=1)
    (committed / dataset.TABLE).write_text("resnet_0000 onnx/resnet/resnet_0000.onnx 1 2.0 resnet 0\n"
                                           "lenet_0003 onnx/lenet/lenet_0003.onnx 1 2.0 lenet 0\n")
    with pytest.raises(PredictorError, match="row 2: lenet_0003"):
        dataset.restore(committed, tmp_path / "x", export_workers=1)
    (committed / dataset.MANIFEST).unlink()
    with pytest.raises(PredictorError, match="manifest.json"):
        dataset.restore(committed, tmp_path / "x", export_workers=1)


def test_restore_cli_names_a_missing_table_in_one_line(tmp_path):
    r = _cli("restore", "--table", str(tmp_path / "gt.txt"), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "does not exist" in r.stderr
    (tmp_path / "gt.txt").write_text("nb201_0000 onnx/nb201/nb201_0000.onnx 1 2.0 nb201 0\n")
    r = _cli("restore", "--table", str(tmp_path / "gt.txt"), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "manifest.json" in r.stderr
    (tmp_path / "manifest.json").write_text(json.dumps({"format": dataset.FORMAT, "seed": 0, "batch_size": 1,
                                                         "threads": 1, "warmup": 1, "repeats": 1,
                                                         "min_seconds": 0, "opset": 17}))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = _cli("restore", "--table", str(tmp_path / "gt.txt"), "--out", str(blocker / "out"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "cannot write --out" in r.stderr
    r = _cli("restore", "--table", str(tmp_path / "gt.txt"), "--out", str(tmp_path / "o"), "--export-workers", "-1")
    assert r.returncode == 2 and "--export-workers cannot be negative" in r.stderr and not (tmp_path / "o").exists()
