import json
import subprocess
import sys

import pytest


def test_bench_reports_every_strategy(tmp_path):
    out = tmp_path / "bench.json"
    # the default predictor (NAR-Former with NB201's search settings), as a user's search runs it
    done = subprocess.run([sys.executable, "-m", "bench.search", "--space", "nb201", "--strategies", "narformer,rea,random",
                           "--budget", "30", "--seeds", "2", "--json", str(out)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert set(result["strategies"]) == {"narformer", "rea", "random"}
    optimum = result["optimum"]
    assert optimum["by_test"] == "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    assert 94.36 < optimum["best_test"] < 94.38  # NB201's best CIFAR-10 test accuracy, a regret's reference
    assert all(s["best_test"] <= optimum["best_test"] for r in result["strategies"].values() for s in r["per_seed"])
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
    assert best_val(result, "narformer") >= best_val(result, "rea")  # measured: 181.40, 179.92, random 180.93
    # evolution needs more than two rounds to pay off: 100 evaluations, 4 seeds (look-ups only)
    runs = []
    for name in ("again", "again2"):
        done = subprocess.run([sys.executable, "-m", "bench.search", "--strategies", "rea,random", "--budget", "100",
                               "--seeds", "4", "--json", str(tmp_path / f"{name}.json")],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        runs.append(json.loads((tmp_path / f"{name}.json").read_text()))
    assert runs[0]["strategies"]["rea"]["mean_test"] > runs[0]["strategies"]["random"]["mean_test"]
    assert best_val(runs[0], "rea") > best_val(runs[0], "random")
    # the same seeds give the same searches
    picks = lambda r: [s["best_key"] for s in r["strategies"]["rea"]["per_seed"]]
    assert picks(runs[0]) == picks(runs[1])


def test_warm_start_saving_counts_evaluations_to_the_first_runs_best():
    import numpy as np
    from bench.search import warm_start_saving
    first = np.array([np.nan, 90.0, 91.0, 91.0, 92.0, 92.0])
    assert warm_start_saving(first, np.array([91.0, 92.5, 93.0]), 1000) == {
        "seed": 1000, "evaluations": 6, "best_val": 92.0, "evaluations_to_best": 5, "evaluations_to_match": 2}
    assert warm_start_saving(first, np.array([np.nan, 91.9]), 1000)["evaluations_to_match"] is None


def test_bench_search_measures_what_a_prior_saves(tmp_path):
    out = tmp_path / "prior.json"
    done = subprocess.run([sys.executable, "-m", "bench.search", "--strategies", "narformer", "--budget", "10",
                           "--batch", "5", "--init", "5", "--prior-budget", "15", "--seeds", "2", "--predictor-set",
                           "epochs=5", "--json", str(out), "--quiet"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    r = result["strategies"]["narformer"]
    assert result["config"]["prior_budget"] == 15 and r["settings"] is not None
    priors = [s["prior"] for s in r["per_seed"]]
    assert [p["seed"] for p in priors] == [1000, 1001]
    assert all(p["evaluations"] == 15 and p["learned_from"] == 15 for p in priors)  # the measured search had them
    for run, p in zip(r["per_seed"], priors):
        assert 1 <= p["evaluations_to_best"] <= 15
        matched = p["evaluations_to_match"] is not None
        assert matched == (run["best_val"] >= p["best_val"])  # matched exactly when its best reaches the prior's
    assert r["prior"]["matched"] == sum(p["evaluations_to_match"] is not None for p in priors)
    assert "the prior's best: reached at evaluation" in done.stderr
    bad = subprocess.run([sys.executable, "-m", "bench.search", "--strategies", "narformer,rea",
                          "--prior-budget", "20"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "error: --prior-budget: rea does not learn from a prior; strategies that do: narformer")


def test_bench_rejects_unknown_strategies():
    done = subprocess.run([sys.executable, "-m", "bench.search", "--strategies", "rea,nope"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == "error: unknown strategy 'nope'; valid: bo, narformer, random, rea, reinforce, zero-cost"


def test_predictor_bench_splits_are_disjoint_seeded_and_cover_the_usable_rows():
    import numpy as np
    from bench.predictors import split_rows
    usable = np.arange(0, 1000, 3)
    train, val, test = split_rows(usable, 50, 20, seed=4)
    assert (len(train), len(val), len(test)) == (50, 20, len(usable) - 70)
    parts = [set(train.tolist()), set(val.tolist()), set(test.tolist())]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert set.union(*parts) == set(usable.tolist())
    again = split_rows(usable, 50, 20, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
    assert not np.array_equal(split_rows(usable, 50, 20, seed=5)[0], train)


def test_predictor_bench_tests_on_another_table_without_the_training_archs(tmp_path):
    """A --test-data table holding 30 of the 40 training archs and 70 others: only the 70 are tested."""
    import csv
    import numpy as np
    import spaces
    from bench import predictors
    bench = spaces.get_benchmark("nb201")
    target = bench.search_metric()
    y = bench.column(target)
    train, _, _ = predictors.split_rows(np.flatnonzero(np.isfinite(y)), 40, 10, seed=0)
    inside = set(train.tolist())
    others = [i for i in range(len(bench)) if i not in inside and np.isfinite(y[i])][:70]
    table = tmp_path / "other.csv"
    with open(table, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["arch_str", target])
        for i in [*train[:30].tolist(), *others]:
            writer.writerow([bench.keys[i], y[i] - 1.0])  # shifted: not the same numbers as the training table
    args = predictors.build_parser().parse_args(
        ["--space", "nb201", "--predictor", "mlp", "--train-size", "40", "--val-size", "10", "--seed", "0",
         "--test-data", str(table), "--set", "epochs=3", "--quiet"])
    result = predictors.run(args)
    assert result["train_size"] == 40 and result["val_size"] == 10 and result["test_size"] == 70
    assert result["test_data"] == str(table) and result["data"] != str(table)
    plain = predictors.run(predictors.build_parser().parse_args(
        ["--space", "nb201", "--predictor", "mlp", "--train-size", "40", "--val-size", "10", "--seed", "0",
         "--set", "epochs=3", "--quiet"]))
    assert plain["test_size"] == int(np.isfinite(y).sum()) - 50


def test_bench_search_on_the_surrogate_under_a_constraint_with_the_oracle(tmp_path):
    out = tmp_path / "ofa.json"
    done = subprocess.run([sys.executable, "-m", "bench.search", "--space", "ofa_mbv3", "--constraint", "macs<=300M",
                           "--strategies", "rea,random", "--budget", "20", "--seeds", "2", "--oracle",
                           "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["optimum"] is None and result["config"]["evaluator"]["name"] == "ofa-acc-predictor"
    assert result["config"]["strategy"]["constraints"] == {"macs": 3e8}
    for name in ("rea", "random"):
        r = result["strategies"][name]
        assert "mean_test" not in r and len(r["per_seed"]) == 2  # a surrogate has no test value
        assert all(s["best_macs"] <= 3e8 and s["evaluations"] == 20 for s in r["per_seed"])
        assert abs(r["mean_val"] - sum(s["best_val"] for s in r["per_seed"]) / 2) < 1e-3
    oracle = result["strategies"]["oracle"]
    assert oracle["best_macs"] <= 3e8 and oracle["evaluations"] == 100 + 500 * 75
    best_searched = max(s["best_val"] for r in ("rea", "random") for s in result["strategies"][r]["per_seed"])
    assert oracle["best_val"] >= best_searched  # tens of thousands of look-ups against twenty


def test_predictor_bench_scores_a_reference_evaluator_on_the_same_test_archs(shared_data):
    import numpy as np
    import spaces
    from bench import predictors
    from predictor.metrics import kendall_tau
    from spaces.ofa_mbv3.surrogate import predict_top1
    data = shared_data / "ofa_mbv3" / "ofa_mbv3w10_accuracy_dynast.csv.gz"
    args = predictors.build_parser().parse_args(
        ["--space", "ofa_mbv3", "--data", str(data), "--predictor", "mlp", "--train-size", "100", "--val-size", "50",
         "--set", "epochs=3", "--quiet", "--score-evaluator", "ofa-acc-predictor"])
    result = predictors.run(args)
    bench = spaces.get_benchmark("ofa_mbv3", data)
    y = bench.column("top1_imagenet")
    _, _, test = predictors.split_rows(np.flatnonzero(np.isfinite(y)), 100, 50, 0)
    want = kendall_tau(predict_top1([bench.arch(int(i)) for i in test]), y[test])
    assert result["test_size"] == 1336 - 150 and result["reference"]["evaluator"] == "ofa-acc-predictor"
    assert abs(result["reference"]["kendall_tau"] - want) < 1e-4  # one arch at a time vs a batch: float32 ties


def test_bench_search_set_takes_paths_flag_names_and_switches():
    from bench.search import base_tree, build_parser, strategy_settings
    tree = base_tree(build_parser().parse_args(["--set", "strategy.config.candidates=50", "--set", "population=7",
                                                "--set", "warm_start=True", "--set", "proxies=jacov,naswot"]))
    assert tree["strategy"]["config"] == {"candidates": 50, "population": 7, "warm_start": True}
    assert tree["proxies"]["names"] == ["jacov", "naswot"]  # a flag name's value read as the flag reads it
    # each strategy gets the settings it has; one that no strategy has is refused
    assert strategy_settings(tree, ["narformer", "rea", "random"]) == {
        "narformer": {"candidates": 50, "warm_start": True}, "rea": {"population": 7}, "random": {}}
    from search.errors import SearchError
    with pytest.raises(SearchError, match="no strategy of --strategies takes candidates, warm_start"):
        strategy_settings(tree, ["rea", "random"])


def test_holdout_draws_are_seeded_subsets_of_the_test_archs():
    import numpy as np
    from bench.predictors import holdout_taus
    truth = np.arange(500.0)
    perfect = holdout_taus(truth * 2, truth, 100, 10, seed=3)
    assert perfect["taus"] == [1.0] * 10 and perfect["size"] == 100
    noisy = np.random.default_rng(0).normal(truth, 200)
    a, b, c = (holdout_taus(noisy, truth, 100, 10, seed=s) for s in (3, 3, 4))
    assert a == b and a["taus"] != c["taus"] and a["min"] < a["median"] < a["max"]
    assert holdout_taus(noisy, truth, 600, 10, seed=3) is None and holdout_taus(noisy, truth, 0, 10, seed=3) is None


def test_paper_table_sets_our_runs_beside_the_papers(tmp_path):
    from bench.paper_table import render
    run = lambda space, train, predictor, sets, seed, tau, **extra: (
        f"r/{predictor}_{space}_{train}_s{seed}.json",
        {"space": space, "train_size": train, "predictor": predictor, "seed": seed, "kendall_tau": tau,
         "config": {"set": list(sets)}, **extra})
    runs = [run("nb201", 781, "tnasp", [], 0, 0.89, kendall_tau_vs_test=0.86),
            run("nb201", 781, "tnasp", ["threads=1"], 1, 0.91, kendall_tau_vs_test=0.87),  # speed-only set item
            run("nb201", 781, "tnasp", ["self_evolution=True", "evolution_method=reconstruction"], 0, 0.99),
            run("nb101", 424, "tnasp", [], 0, 0.74, holdout={"size": 100, "median": 0.75, "taus": [0.7, 0.8]}),
            run("nb101", 424, "tnasp", [], 1, 0.72)]  # an older JSON without holdout draws
    lines = render(runs).splitlines()
    row = lambda start: next(line for line in lines if line.startswith(start))
    tnasp_781 = row("| TNASP T2 | nb201 | 781 | all | TNASP |")
    assert "| **0.900** (seeds 0,1) | 0.865 | +0.211 |" in tnasp_781 and "[s1](r/tnasp_nb201_781_s1.json)" in tnasp_781
    se_781 = row("| TNASP T2 | nb201 | 781 | all | TNASP + SE |")  # the reconstruction is another variant
    assert "not run yet" in se_781 and "--set self_evolution=True`" in se_781
    assert "**0.750** (seeds 0; draws 0.700–0.800) | — | -0.002 |" in row("| TNASP T1 | nb101 | 424 | 100 | TNASP |")
    assert "**0.730** (seeds 0,1)" in row("| TNASP T1 | nb101 | 424 | all | TNASP |")
    assert "not run: our NB101 data is the verified 20,001-cell subset" in row("| NAR-Former T1 | nb101 | 21,180 |")
    assert "--data ../shared/data/nb101/nb101_subset_valacc.npz" in row("| TNASP T1 | nb101 | 100 | all | TNASP |")


def test_bad_holdout_values_are_one_line():
    done = subprocess.run([sys.executable, "-m", "bench.predictors", "--space", "nb201", "--predictor", "mlp",
                           "--train-size", "50", "--holdout", "-1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == \
        "error: --holdout must be >= 0 (0: off) and --holdout-draws >= 1"


def test_predictor_bench_reports_errors_overall_and_above_a_threshold():
    """pearson / rmse on every test arch, and under ``above`` on those at or over --test-min:
    recomputed here from the same split and the same (deterministic) ridge fit."""
    import numpy as np
    import predictor
    import spaces
    from bench import predictors
    from predictor.metrics import pearson, rmse
    args = predictors.build_parser().parse_args(["--space", "nb201", "--predictor", "ridge", "--train-size", "300",
                                                 "--val-size", "0", "--test-min", "90", "--quiet"])
    result = predictors.run(args)
    space, bench = spaces.get_space("nb201"), spaces.get_benchmark("nb201")
    y = bench.column(bench.search_metric())
    train, _, test = predictors.split_rows(np.flatnonzero(np.isfinite(y)), 300, 0, 0)
    fit = predictor.get_predictor("ridge").fit([space.to_graph(bench.arch(i)) for i in train], y[train])
    pred = fit.predict([space.to_graph(bench.arch(i)) for i in test])
    good = y[test] >= 90
    assert result["rmse"] == pytest.approx(rmse(pred, y[test])) and result["pearson"] == pytest.approx(
        pearson(pred, y[test]))
    assert result["above"]["count"] == int(good.sum()) > 0
    assert result["above"]["rmse"] == pytest.approx(rmse(pred[good], y[test][good]))
    assert result["above"]["rmse"] < result["rmse"]  # the broken archs (10%) carry the large errors
    with pytest.raises(predictor.PredictorError, match="no test arch has"):
        predictors.run(predictors.build_parser().parse_args(
            ["--space", "nb201", "--predictor", "ridge", "--train-size", "30", "--val-size", "0",
             "--test-min", "101", "--quiet"]))


def test_a_latency_target_is_scaled_not_ranked(shared_data):
    """On a HELP latency column the neural predictors train on min-max scaled targets (ranks
    would squeeze the relative errors latency is judged by); a user's choice still wins, and
    accuracy targets keep the rank transform."""
    from bench import predictors
    data = str(shared_data / "nb201" / "nb201_latency_help.csv.gz")
    common = ["--space", "nb201", "--predictor", "mlp", "--train-size", "60", "--val-size", "20", "--set", "epochs=2",
              "--quiet"]
    run = lambda *extra: predictors.run(predictors.build_parser().parse_args([*common, *extra]))
    latency = run("--data", data, "--target", "lat_pixel2")
    assert latency["config"]["predictor_config"]["target_transform"] == "minmax"
    assert 0 <= latency["acc10"] <= 100 and latency["mape"] > 0
    chosen = run("--data", data, "--target", "lat_pixel2", "--set", "target_transform=rank")
    assert chosen["config"]["predictor_config"]["target_transform"] == "rank"
    assert run()["config"]["predictor_config"]["target_transform"] == "rank"
    assert predictors.is_latency("latency_note10") and not predictors.is_latency("c10valid_val_200_mean")


def _search_result(curves_by_strategy, best_test=None):
    return {"strategies": {name: {"mean_test": 0.0, "per_seed": [{"curve": c} for c in curves]}
                           for name, curves in curves_by_strategy.items()},
            "optimum": None if best_test is None else {"best_test": best_test}}


def test_regret_curves_from_search_results(tmp_path):
    from bench.regret import parse_curve_spec
    a = tmp_path / "a.json"
    a.write_text(json.dumps(_search_result({"reinforce": [[None, 90.0, 92.0, 94.0], [91.0, 91.0, 93.0]],
                                            "rea": [[93.0, 94.0, 94.0, 94.0]] * 2}, best_test=94.0)))
    b = tmp_path / "b.json"
    b.write_text(json.dumps(_search_result({"narformer": [[92.0, 94.0, 94.0, 94.0], [93.0, 93.0, 93.5, 94.0]]})))
    assert parse_curve_spec(f"io={a}:reinforce") == ("io", a, "reinforce")
    assert parse_curve_spec(f"nar={b}") == ("nar", b, None)
    out, js = tmp_path / "regret.png", tmp_path / "regret.json"
    done = subprocess.run([sys.executable, "-m", "bench.regret", f"a2v={a}:reinforce", f"nar={b}", "--optimum", "94",
                           "--out", str(out), "--json", str(js)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    curves = json.loads(js.read_text())["curves"]
    a2v = curves["a2v"]
    # seed 1 stopped after 3 evaluations and keeps its pick (93.0); step 1 has one seed only
    assert a2v["mean"] == [3.0, 3.5, 1.5, 0.5] and a2v["sem"][0] is None
    assert a2v["final_mean"] == 0.5 and a2v["zero_regret_share"] == 0.5
    assert curves["nar"]["mean"] == [1.5, 0.5, 0.25, 0.0] and curves["nar"]["zero_regret_share"] == 1.0
    assert out.stat().st_size > 0
    # the optimum comes from the JSON when it has one
    done = subprocess.run([sys.executable, "-m", "bench.regret", f"rea={a}:rea", "--out", str(out), "--json", str(js)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and json.loads(js.read_text())["curves"]["rea"]["mean"] == [1.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("spec,extra,message", [
    ("a2v={a}", [], "holds 2 searches (reinforce, rea): name one"),
    ("a2v={a}:bo", [], "has no strategy 'bo'; it has: rea, reinforce"),
    ("nar={b}", [], "records no table optimum"),
    ("nothing", [], "expected LABEL=RESULT.json"),
    ("x={tmp}/missing.json", ["--optimum", "1"], "does not exist"),
    ("nar={b}", ["--optimum", "1", "--json", "{a}/curves.json"], "cannot write --json folder"),
])
def test_regret_bad_input_is_one_line(tmp_path, capsys, spec, extra, message):
    from bench import regret
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_search_result({"reinforce": [[1.0]], "rea": [[1.0]]}, best_test=2.0)))
    b.write_text(json.dumps(_search_result({"narformer": [[1.0]]})))
    extra = [e.format(a=a) for e in extra]
    code = regret.main([spec.format(a=a, b=b, tmp=tmp_path), *extra, "--out", str(tmp_path / "r.png")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.png").exists()  # nothing drawn from bad input


def test_io_curves_plot_the_losses_beside_their_baselines(tmp_path):
    splits = ("unseen_networks", "unseen_images", "unseen_both")
    history = [{"epoch": e, **{f"{s}_l1": 0.8 - 0.1 * e for s in splits}, **{f"{s}_baseline": 0.75 for s in splits},
                "reconstruction_ops_accuracy": 0.5 + 0.1 * e, "reconstruction_adj_accuracy": 0.8} for e in (1, 2)]
    io = tmp_path / "io.json"
    io.write_text(json.dumps({"history": history}))
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"history": [{"epoch": 1, "held_out_ops_accuracy": 0.9,
                                              "held_out_adj_accuracy": 0.95}]}))
    out = tmp_path / "curves.png"
    done = subprocess.run([sys.executable, "-m", "bench.io_curves", str(io), "--arch2vec", str(plain),
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    last = json.loads(done.stdout)
    assert last["epochs"] == 2 and last["unseen_images_l1"] == pytest.approx(0.6)
    assert last["unseen_both_baseline"] == 0.75
    assert out.stat().st_size > 0
    # plain arch2vec's info where the IO history belongs: one line naming what is missing
    done = subprocess.run([sys.executable, "-m", "bench.io_curves", str(plain), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no per-epoch unseen_networks_l1" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_bench_search_plots_seeds_that_a_cost_budget_ends_at_different_counts(tmp_path):
    out = tmp_path / "budget.json"
    done = subprocess.run([sys.executable, "-m", "bench.search", "--strategies", "random", "--schedules", "async", "--budget", "40",
                           "--seeds", "3", "--set", "strategy.cost_budget=40000", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    counts = [s["evaluations"] for s in json.loads(out.read_text())["strategies"]["random/async"]["per_seed"]]
    assert len(set(counts)) > 1 and max(counts) < 40, counts  # the budget ended them, each at its own count
    assert out.with_suffix(".png").stat().st_size > 0
