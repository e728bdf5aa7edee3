"""Searching a table of your own results: the space confined to the table's archs."""
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

import spaces
from spaces.base import GraphEncoding, ModelBuilding
from spaces.errors import SpacesError
from spaces.subset import restrict
from spaces.table import write_table


def _distinct(space, n, seed=0):
    rng, archs, keys = np.random.default_rng(seed), [], set()
    while len(archs) < n:
        arch = space.sample(rng)
        if space.key(arch) not in keys:
            keys.add(space.key(arch))
            archs.append(arch)
    return archs


def _edits(a, b):
    """NB201: the edges whose operations differ."""
    return sum(x != y for x, y in zip(a.ops, b.ops))


def test_the_confined_space_samples_and_mutates_only_within_its_list():
    space = spaces.get_space("nb201")
    archs = _distinct(space, 300)
    view = restrict(space, archs)
    listed = {space.key(a) for a in archs}
    rng = np.random.default_rng(1)
    assert view.count() == 300 and [space.key(a) for a in view.enumerate()] == [space.key(a) for a in archs]
    assert {view.key(view.sample(rng)) for _ in range(200)} <= listed
    near, far = [], []
    for parent in archs[:100]:
        child = view.mutate(parent, rng)
        assert view.key(child) in listed and view.key(child) != view.key(parent)
        near.append(_edits(parent, child))
        far.append(_edits(parent, view.sample(rng)))
    # a mutation moves to a near listed arch: a random listed arch differs in ~5 of 6 edges
    assert np.mean(near) < np.mean(far) - 1.5, (np.mean(near), np.mean(far))


def test_the_confined_space_keeps_the_spaces_own_capabilities_and_pickles():
    space = spaces.get_space("darts")
    archs = _distinct(space, 20)
    view = restrict(space, archs)
    assert isinstance(view, type(space)) and isinstance(view, GraphEncoding) and isinstance(view, ModelBuilding)
    assert view.name == "darts" and view.to_json(archs[3]) == space.to_json(archs[3])
    again = pickle.loads(pickle.dumps(view))
    assert again.count() == 20 and again.key(again.sample(np.random.default_rng(0))) in {space.key(a) for a in archs}
    with pytest.raises(SpacesError, match="repeat a key"):
        restrict(space, archs + archs[:1])


@pytest.fixture
def darts_table(tmp_path):
    """60 DARTS cells whose value counts their separable convolutions (a signal a search can follow)."""
    space = spaces.get_space("darts")
    rng = np.random.default_rng(0)
    rows = []
    for arch in _distinct(space, 60):
        text = json.dumps(space.to_json(arch))
        val = 90.0 + 0.5 * text.count("sep_conv") + float(rng.normal(0, 0.1))
        rows.append({"arch": space.to_json(arch), "val": round(val, 3), "test": round(val - 0.2, 3)})
    write_table(rows, tmp_path / "darts.csv")
    return space, rows, tmp_path / "darts.csv"


def _search(*args):
    return subprocess.run([sys.executable, "-m", "search.run", "--space", "darts", "--evaluator", "benchmark",
                           "--executor", "inline", "--seed", "0", "--quiet", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


def test_a_darts_search_over_a_table_of_results_evaluates_only_its_archs(darts_table, tmp_path):
    space, rows, table = darts_table
    values = {space.key(space.from_json(r["arch"])): r["val"] for r in rows}
    out = tmp_path / "run"
    done = _search("--data", table, "--strategy", "rea", "--budget", 25, "--batch", 5, "--out", out)
    assert done.returncode == 0, done.stderr[-2000:]
    journal = [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]
    assert len(journal) == 25 and all(r["status"] == "ok" for r in journal)
    assert all(r["val"] == values[r["key"]] for r in journal)  # every proposal was a row of the table
    assert len({r["key"] for r in journal}) == 25
    # evolution over the table climbs: its best beats the table's median
    assert max(r["val"] for r in journal) > np.median(list(values.values()))


def test_a_budget_beyond_the_tables_archs_is_refused_before_any_evaluation(darts_table, tmp_path):
    _, _, table = darts_table
    done = _search("--data", table, "--budget", 100, "--out", tmp_path / "run")
    assert done.returncode == 2
    assert "--budget 100 exceeds the 60 architectures of" in done.stderr and done.stderr.count("\n") == 1
    assert not (tmp_path / "run" / "journal.jsonl").exists()


def test_a_table_that_lists_every_arch_leaves_the_space_whole(tmp_path):
    from search.evaluators.benchmark import BenchmarkConfig, BenchmarkEvaluator
    space = spaces.get_space("nb201")
    archs = list(space.enumerate())
    write_table([{"arch": space.to_json(a), "val": float(i % 97), "test": 0.0} for i, a in enumerate(archs)], tmp_path / "all.jsonl")
    write_table([{"arch": space.to_json(a), "val": float(i), "test": 0.0} for i, a in enumerate(archs[:50])], tmp_path / "some.jsonl")
    whole = BenchmarkEvaluator(space, BenchmarkConfig(data=str(tmp_path / "all.jsonl")))
    assert whole.search_space() is space  # the same draws as with the official table
    part = BenchmarkEvaluator(space, BenchmarkConfig(data=str(tmp_path / "some.jsonl"))).search_space()
    assert part is not space and part.count() == 50


def test_a_search_over_the_nb101_subset_proposes_only_its_cells(shared_data, tmp_path):
    """The shared NB101 file holds 20k of the 423,624 cells (and no test column: its 36-epoch value
    stands in for one): a search draws and mutates within them."""
    data = shared_data / "nb101" / "nb101_subset_valacc.npz"
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "search.run", "--space", "nb101", "--data", str(data), "--test-metric",
                           "val_acc_36", "--strategy",
                           "rea", "--budget", "30", "--batch", "10", "--executor", "inline", "--seed", "0", "--quiet",
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    journal = [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]
    bench = spaces.get_benchmark("nb101", data)
    assert len(journal) == 30 and all(r["status"] == "ok" for r in journal)
    assert all(r["val"] == bench.query(spaces.get_space("nb101").from_json(r["arch"])) for r in journal)
