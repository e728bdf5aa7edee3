"""Tables of your own results (an arch column plus metrics) as the benchmark of any space."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import spaces
from spaces.errors import DataFileError, SpacesError
from spaces.table import read_table, write_table


@pytest.fixture
def darts_rows():
    space = spaces.get_space("darts")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(5)]
    return space, [{"arch": space.to_json(a), "val": 90.0 + i, "test": 89.0 + i, "note": "run"} for i, a in
                   enumerate(archs)]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_table_is_the_benchmark_of_a_space_without_one(darts_rows, tmp_path, suffix):
    space, rows = darts_rows
    path = tmp_path / f"mine{suffix}"
    write_table(rows, path)
    bench = spaces.get_benchmark("darts", path)
    assert bench.metrics == ["test", "val"]  # "note" is not a number: not a metric
    assert bench.search_metric() == "val" and bench.report_metric() == "test"
    for row in rows:
        assert bench.query(space.from_json(row["arch"])) == row["val"]
    assert [space.key(a) for a in bench.archs()] == [space.key(space.from_json(r["arch"])) for r in rows]


def test_without_a_table_a_space_without_a_reader_says_what_to_give():
    with pytest.raises(SpacesError, match="space 'darts' has no benchmark reader; give a table"):
        spaces.get_benchmark("darts")


def test_refused_and_repeated_rows_are_named_by_line(darts_rows, tmp_path):
    space, rows = darts_rows
    path = tmp_path / "bad.jsonl"
    write_table(rows[:2] + [{"arch": {"normal": "nonsense"}, "val": 1.0}] + rows[:1], path)
    with pytest.raises(DataFileError, match=r"1 rows hold no valid darts architecture \(lines 3; line 3: "):
        read_table(space, path)
    write_table(rows[:3] + rows[1:2], path)
    with pytest.raises(DataFileError, match=r"1 rows repeat an architecture of an earlier row \(line 4 repeats 2\)"):
        read_table(space, path)


def test_a_run_folder_is_a_table_of_its_finished_evaluations(tmp_path):
    space = spaces.get_space("nb201")
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(3)]
    folder = tmp_path / "run"
    folder.mkdir()
    lines = [{"arch": space.to_json(archs[0]), "status": "ok", "val": 80.5, "test": 81.0},
             {"arch": space.to_json(archs[1]), "status": "failed", "error": "boom", "val": None},
             {"arch": space.to_json(archs[2]), "status": "stopped", "val": 40.0}]
    (folder / "journal.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    bench = spaces.get_benchmark(space, folder)
    assert len(bench) == 1 and bench.query(archs[0]) == 80.5


def test_one_arch_per_line_is_a_table_without_metrics(tmp_path):
    out = subprocess.run([sys.executable, "-m", "spaces", "--space", "nb201", "--sample", "4"], capture_output=True,
                         text=True, env=os.environ, timeout=120)
    path = tmp_path / "archs.jsonl"
    path.write_text(out.stdout)
    bench = read_table(spaces.get_space("nb201"), path)
    assert len(bench) == 4 and bench.metrics == []


def test_spaces_query_reads_a_table(darts_rows, tmp_path):
    space, rows = darts_rows
    path = tmp_path / "mine.csv"
    write_table(rows, path)
    out = subprocess.run([sys.executable, "-m", "spaces", "--space", "darts", "--query", json.dumps(rows[2]["arch"]),
                          "--data", str(path), "--metric", "val"], capture_output=True, text=True, env=os.environ,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["val"] == 92.0


@pytest.mark.parametrize("predictor_args", [["narformer", "--set", "epochs=3"], ["ridge", "--set", "features=edge_ops"]])
def test_bench_predictors_scores_a_predictor_on_a_darts_table(tmp_path, predictor_args):
    """Issue 32's DARTS row: bench.predictors on a table of your own, trained on a named column."""
    space = spaces.get_space("darts")
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(40)]
    rows = [{"arch": space.to_json(a), "val": 90.0, "score": float(sum(op.startswith("sep") for op, _ in
                                                                        space.to_json(a)["normal"]))}
            for a in archs]
    write_table(rows, tmp_path / "mine.csv")
    out = tmp_path / "result.json"
    done = subprocess.run([sys.executable, "-m", "bench.predictors", "--space", "darts", "--predictor", *predictor_args,
                           "--train-size", "20", "--val-size", "5", "--holdout", "0", "--data", str(tmp_path / "mine.csv"),
                           "--target", "score", "--json", str(out), "--quiet"],
                          capture_output=True, text=True, env=os.environ, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert (result["target"], result["test_target"], result["test_size"]) == ("score", "score", 15)
    assert np.isfinite(result["kendall_tau"])


def test_bench_predictors_names_a_missing_graph_input_column(darts_rows, tmp_path):
    space, rows = darts_rows
    path = tmp_path / "mine.csv"
    write_table(rows, path)
    done = subprocess.run([sys.executable, "-m", "bench.predictors", "--space", "darts", "--predictor", "mlp",
                           "--train-size", "2", "--val-size", "0", "--data", str(path), "--graph-inputs", "synflow",
                           "--quiet"], capture_output=True, text=True, env=os.environ, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "--graph-inputs synflow: no such column in" in done.stderr and "(columns: test, val)" in done.stderr


@pytest.mark.parametrize("name, text, says", [
    ("empty.csv", "", "empty.csv is empty; space 'darts' reads only tables of your own results"),
    ("plain.csv", "genotype,val\n", "plain.csv: no 'arch' column (columns: genotype, val)"),
    ("header.csv", "arch,val\n", "header.csv: no rows (a table has one row per architecture)"),
    ("none.jsonl", "\n", "none.jsonl: no rows (a table has one row per architecture)"),
    ("failed.jsonl", '{"arch": "x", "status": "failed"}\n', "failed.jsonl: no rows that ended ok"),
])
def test_a_table_without_rows_or_arch_column_says_so(tmp_path, name, text, says):
    (tmp_path / name).write_text(text)
    with pytest.raises(DataFileError) as err:
        spaces.get_benchmark("darts", tmp_path / name)
    assert says in str(err.value)


def test_an_empty_file_for_a_space_with_a_reader_is_called_empty(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataFileError, match="empty.csv is empty$"):
        spaces.get_benchmark("nb201", tmp_path / "empty.csv")


def test_a_table_without_metrics_says_so_when_one_is_asked_for(darts_rows, tmp_path):
    space, rows = darts_rows
    write_table([{"arch": r["arch"]} for r in rows], tmp_path / "archs.csv")
    bench = spaces.get_benchmark("darts", tmp_path / "archs.csv")
    with pytest.raises(SpacesError, match="archs.csv has no metric columns, so no 'val'"):
        bench.column("val")
    with pytest.raises(SpacesError, match="name the search metric .*; columns: none beside arch"):
        bench.search_metric()


def test_a_missing_table_of_a_space_without_a_reader_is_named(tmp_path):
    with pytest.raises(DataFileError, match=f"table {tmp_path / 'nope.csv'} not found"):
        spaces.get_benchmark("darts", tmp_path / "nope.csv")
    done = subprocess.run([sys.executable, "-m", "search.run", "--space", "darts", "--evaluator", "benchmark", "--data",
                           str(tmp_path / "nope.csv"), "--out", str(tmp_path / "run"), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"error: table {tmp_path / 'nope.csv'} not found (space 'darts' reads only tables of your own results)"]
    assert not (tmp_path / "run").exists()
