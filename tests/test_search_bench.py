import json
import subprocess
import sys


def test_bench_reports_every_strategy(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "search.bench", "--space", "nb201", "--strategies", "narformer,rea,random",
                           "--budget", "30", "--seeds", "2", "--predictor", "mlp", "--predictor-set", "epochs=20",
                           "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert set(result["strategies"]) == {"narformer", "rea", "random"}
    for r in result["strategies"].values():
        assert len(r["per_seed"]) == 2 and all(s["evaluations"] == 30 for s in r["per_seed"])
        tests = [s["best_test"] for s in r["per_seed"]]
        assert abs(r["mean_test"] - sum(tests) / 2) < 1e-3 and 0 <= r["optimum_rate"] <= 1
        assert 80 < r["mean_test"] <= 94.37  # NB201 CIFAR-10 test accuracies of good cells
        assert all(len(s["curve"]) == 30 and s["curve"][-1] == s["best_test"] for s in r["per_seed"])
    assert result["optimum"]["by_test"] == "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    assert result["config"]["budget"] == 30 and (tmp_path / "bench.png").stat().st_size > 0
    # the same seeds give the same searches
    again = subprocess.run([sys.executable, "-m", "search.bench", "--strategies", "rea", "--budget", "30", "--seeds", "2",
                            "--json", str(tmp_path / "again.json")], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    rea = json.loads((tmp_path / "again.json").read_text())["strategies"]["rea"]["per_seed"]
    assert [s["best_key"] for s in rea] == [s["best_key"] for s in result["strategies"]["rea"]["per_seed"]]


def test_bench_rejects_unknown_strategies():
    done = subprocess.run([sys.executable, "-m", "search.bench", "--strategies", "rea,nope"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == "error: unknown strategy 'nope'; valid: narformer, random, rea"
