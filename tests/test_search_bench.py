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
    optimum = result["optimum"]
    assert optimum["by_test"] == "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    for r in result["strategies"].values():
        assert len(r["per_seed"]) == 2 and all(s["evaluations"] == 30 for s in r["per_seed"])
        tests = [s["best_test"] for s in r["per_seed"]]
        assert abs(r["mean_test"] - sum(tests) / 2) < 1e-3
        assert r["optimum_rate"] == sum(s["best_key"] == optimum["by_metric"] for s in r["per_seed"]) / 2
        assert r["test_optimum_rate"] == sum(s["best_key"] == optimum["by_test"] for s in r["per_seed"]) / 2
        assert all(len(s["curve"]) == 30 and s["curve"][-1] == s["best_test"] for s in r["per_seed"])
    # the predictor-guided search beats drawing at random (the seeds are fixed: no luck involved)
    best_val = lambda r, n: sum(s["best_val"] for s in r["strategies"][n]["per_seed"])
    assert best_val(result, "narformer") >= best_val(result, "random")
    # evolution needs more than two rounds to pay off: 100 evaluations, 4 seeds (look-ups only)
    runs = []
    for name in ("again", "again2"):
        done = subprocess.run([sys.executable, "-m", "search.bench", "--strategies", "rea,random", "--budget", "100",
                               "--seeds", "4", "--json", str(tmp_path / f"{name}.json")],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        runs.append(json.loads((tmp_path / f"{name}.json").read_text()))
    assert runs[0]["strategies"]["rea"]["mean_test"] > runs[0]["strategies"]["random"]["mean_test"]
    assert best_val(runs[0], "rea") > best_val(runs[0], "random")
    # the same seeds give the same searches
    picks = lambda r: [s["best_key"] for s in r["strategies"]["rea"]["per_seed"]]
    assert picks(runs[0]) == picks(runs[1])


def test_bench_rejects_unknown_strategies():
    done = subprocess.run([sys.executable, "-m", "search.bench", "--strategies", "rea,nope"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == "error: unknown strategy 'nope'; valid: narformer, random, rea"
