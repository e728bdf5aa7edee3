"""``python -m bench.predictors``: fit a predictor on N benchmark archs and rank the rest.

  python -m bench.predictors --space nb201 --predictor narformer --train-size 781
  python -m bench.predictors --space nb101 --predictor gin --train-size 424 \\
      --data nb101_subset_valacc.npz --json runs/bench/gin_nb101.json
  python -m bench.predictors ... --set epochs=300 --set d_model=128   # predictor config

The seed draws the N training and --val-size validation archs from --data; the test
set is every other arch of --data, or every arch of --test-data (minus training archs).
"""
from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np

from narnas.cli import parse_names, parse_overrides, run_main

from predictor.errors import PredictorError
from predictor.metrics import accuracy_within, kendall_tau, mape, pearson, precision_at_top, rmse, spearman
from predictor.registry import get_predictor, list_predictors, predictor_class


def build_parser():
    p = argparse.ArgumentParser(prog="python -m bench.predictors", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[2:]))
    p.add_argument("--space", required=True, help="nb101 or nb201")
    p.add_argument("--predictor", required=True, help=f"one of {', '.join(list_predictors())}")
    p.add_argument("--train-size", type=int, required=True, help="number of training archs")
    p.add_argument("--val-size", type=int, default=200, help="validation archs for model selection (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", help="benchmark file (any format the space reads; nb201 default: packaged table)")
    p.add_argument("--test-data", help="test on every arch of this file instead of the rest of --data")
    p.add_argument("--target", help="metric to train on (default: the benchmark's search metric)")
    p.add_argument("--test-target", help="metric to test against (default: the table's test metric where it "
                   "comes from the same trained networks as the target, as NB101's; else the target)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="predictor config value (repeatable), e.g. epochs=300")
    p.add_argument("--score-evaluator", metavar="NAME",
                   help="also score an evaluator's values on the same test archs (e.g. ofa-acc-predictor, "
                        "OFA's own predictor)")
    p.add_argument("--holdout", type=int, default=100, metavar="N",
                   help="also score draws of N test archs (the papers' \"100 test archs\"; 0: off; default 100)")
    p.add_argument("--holdout-draws", type=int, default=10, metavar="K", help="how many draws (default 10)")
    p.add_argument("--test-min", type=float, metavar="VALUE",
                   help="also report RMSE, Pearson r and tau on the test archs whose truth is >= VALUE "
                        "(arch2vec scores archs above 80%% accuracy)")
    p.add_argument("--graph-inputs", metavar="NAMES",
                   help="comma-separated columns of --data (e.g. zero-cost proxies: python -m bench.zero_cost "
                        "--table) that the predictor's head takes beside each graph (its graph_inputs)")
    p.add_argument("--test-size", type=int, metavar="N", help="test on a seeded draw of N of the remaining archs "
                                                              "(default: all of them)")
    p.add_argument("--json", help="write the results here as JSON")
    p.add_argument("--plugin", action="append", metavar="MODULE",
                   help="import this module first (it registers its own spaces, predictors, ...); repeatable")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def run(args) -> dict:
    import spaces
    import torch

    if args.train_size < 1 or args.val_size < 0:
        raise PredictorError("--train-size must be >= 1 and --val-size >= 0")
    if args.holdout < 0 or args.holdout_draws < 1:
        raise PredictorError("--holdout must be >= 0 (0: off) and --holdout-draws >= 1")
    space = spaces.get_space(args.space)
    bench = spaces.get_benchmark(space, args.data)
    target = args.target or bench.search_metric()
    # Where the table's test metric was measured on the same trained networks as its search
    # metric (NB101), predictors are scored against it; otherwise against the target itself.
    test_target = args.test_target or (bench.test_metric if bench.paired_test and bench.test_metric else target)
    y = bench.column(target)
    reference = make_evaluator(args.score_evaluator, space) if args.score_evaluator else None
    train, val, test = split_rows(np.flatnonzero(np.isfinite(y)), args.train_size, args.val_size, args.seed,
                                  bench.source)
    inputs = parse_names(args.graph_inputs or "")
    graphs = lambda b, rows: [with_columns(space.to_graph(b.arch(int(i))), b, int(i), inputs) for i in rows]
    if args.test_data:
        test_bench = spaces.get_benchmark(space, args.test_data)
        test = rows_outside(test_bench, {bench.keys[i] for i in train})
    else:
        test_bench = bench
    y_test = test_bench.column(test_target)[test]
    keep = np.isfinite(y_test)
    test, y_test = test[keep], y_test[keep]
    if args.test_size is not None:
        if not 0 < args.test_size <= len(test):
            raise PredictorError(f"--test-size must be in 1..{len(test)}, got {args.test_size}")
        pick = np.sort(np.random.default_rng([args.seed, 1]).choice(len(test), args.test_size, replace=False))
        test, y_test = test[pick], y_test[pick]

    if args.test_min is not None and not (y_test >= args.test_min).any():  # before the fit, not after
        raise PredictorError(f"no test arch has {test_target} >= {args.test_min} (--test-min)")
    overrides = parse_overrides(args.set)
    if inputs:
        overrides["graph_inputs"] = tuple(inputs)
    if is_latency(target) and "target_transform" not in overrides \
            and "target_transform" in getattr(predictor_class(args.predictor).config_class, "__dataclass_fields__", {}):
        # Ranks suit accuracies (every pair alike); a latency is judged by its relative error,
        # which the rank transform squeezes (HELP gold_6226, MLP at 900 archs: MAPE 5.5% -> 4.5%, Acc(10%) 85% -> 92%).
        overrides["target_transform"] = "minmax"
    predictor = get_predictor(args.predictor, seed=args.seed, quiet=args.quiet, **overrides)
    start = time.time()
    val_data = (graphs(bench, val), y[val]) if len(val) else None
    predictor.fit(graphs(bench, train), y[train], val=val_data)
    fit_seconds = time.time() - start
    test_graphs = graphs(test_bench, test)
    start = time.time()
    pred = predictor.predict(test_graphs)
    predict_seconds = time.time() - start
    result = {
        "space": args.space, "predictor": args.predictor, "seed": args.seed,
        "kendall_tau": kendall_tau(pred, y_test), "spearman": spearman(pred, y_test),
        "precision_at_top_5pct": precision_at_top(pred, y_test, 0.05),
        "pearson": pearson(pred, y_test), "rmse": rmse(pred, y_test), "mape": mape(pred, y_test),
        "acc5": accuracy_within(pred, y_test, 0.05), "acc10": accuracy_within(pred, y_test, 0.10),
        "train_size": len(train), "val_size": len(val), "test_size": len(test),
        "fit_seconds": round(fit_seconds, 2), "predict_archs_per_second": round(len(test) / predict_seconds, 1),
        "target": target, "test_target": test_target, "data": bench.source,
        "test_data": test_bench.source, "selected_model": getattr(predictor, "selected", None),
    }
    if args.test_min is not None:
        # arch2vec's protocol: errors on the good archs only (test accuracy above 0.8 there)
        good = y_test >= args.test_min
        result["above"] = {"min": args.test_min, "count": int(good.sum()), "rmse": rmse(pred[good], y_test[good]),
                           "pearson": pearson(pred[good], y_test[good]),
                           "kendall_tau": kendall_tau(pred[good], y_test[good])}
    holdout = holdout_taus(pred, y_test, args.holdout, args.holdout_draws, args.seed)
    if holdout is not None:
        result["holdout"] = holdout
    if test_bench.test_metric not in (None, test_target):
        truth = test_bench.column(test_bench.test_metric)[test]
        ok = np.isfinite(truth)
        result["kendall_tau_vs_test"] = kendall_tau(pred[ok], truth[ok])
        result["test_metric"] = test_bench.test_metric
    if reference is not None:
        result["reference"] = score_evaluator(reference, space, [test_bench.arch(int(i)) for i in test], y_test)
    result["config"] = {**vars(args), "predictor_config": _jsonable(predictor.config)}
    result["versions"] = {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
                          "threads": torch.get_num_threads()}
    return result


def with_columns(graph, bench, row: int, names: list[str]):
    """``graph`` carrying the values of ``bench``'s columns ``names`` at ``row`` as per-graph numbers."""
    if not names:
        return graph
    import dataclasses
    missing = [n for n in names if n not in bench.columns]
    if missing:
        raise PredictorError(f"--graph-inputs {', '.join(missing)}: no such column in {bench.source} "
                             f"(columns: {', '.join(bench.metrics)})")
    pairs = tuple((n, float(bench.columns[n][row])) for n in names)
    return dataclasses.replace(graph, graph_features=tuple(graph.graph_features) + pairs)


def is_latency(target: str) -> bool:
    """Whether a table column is a latency (HELP's lat_<device>, OFA's latency_<device>)."""
    return target.startswith(("lat_", "latency"))


def holdout_taus(pred: np.ndarray, truth: np.ndarray, size: int, draws: int, seed: int) -> dict | None:
    """Kendall tau on ``draws`` seeded draws of ``size`` test archs (NAR-Former's and TNASP's
    "100 test archs" setting, which one draw makes noisy); None when off or too few archs."""
    if size <= 0 or draws <= 0 or len(truth) < size:
        return None
    rng = np.random.default_rng([seed, size])
    taus = [kendall_tau(pred[rows], truth[rows]) for rows in (rng.choice(len(truth), size, replace=False)
                                                              for _ in range(draws))]
    return {"size": size, "draws": draws, "taus": [round(float(t), 4) for t in taus],
            "median": float(np.median(taus)), "min": float(np.min(taus)), "max": float(np.max(taus))}


def make_evaluator(name: str, space):
    """The evaluator ``name`` of ``space`` with its default config (unknown names list the valid ones)."""
    from search.evaluators import evaluator_class
    cls = evaluator_class(space, name)
    return cls(space, cls.config_class())


def score_evaluator(evaluator, space, archs, truth) -> dict:
    """Kendall tau of an evaluator's values (e.g. OFA's published accuracy predictor, fitted
    elsewhere: it needs no training) on the same test archs as the predictor."""
    values = np.array([evaluator.evaluate(space.to_json(a))["val"] for a in archs], dtype=float)
    return {"evaluator": evaluator.name, "metric": evaluator.metric, "kendall_tau": kendall_tau(values, truth),
            "spearman": spearman(values, truth), "precision_at_top_5pct": precision_at_top(values, truth, 0.05)}


def split_rows(usable: np.ndarray, train_size: int, val_size: int, seed: int, source: str = "the table"):
    """Disjoint (train, validation, test) rows drawn from ``usable`` by ``seed``; test is the rest."""
    order = np.random.default_rng(seed).permutation(usable)
    if train_size + val_size >= len(order):
        raise PredictorError(f"{train_size} train + {val_size} validation archs leave no test archs "
                             f"({len(order)} in {source})")
    return order[:train_size], order[train_size:train_size + val_size], order[train_size + val_size:]


def rows_outside(bench, keys: set) -> np.ndarray:
    """The rows of ``bench`` whose arch is not one of ``keys`` (a test table minus the training archs)."""
    return np.array([i for i, k in enumerate(bench.keys) if k not in keys], dtype=np.int64)


def _jsonable(config):
    from dataclasses import asdict
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_main(lambda: _main(args))


def _main(args) -> int:
    from narnas.files import print_json, writable_file
    from narnas.plugins import load_plugins
    load_plugins(args.plugin)
    out = writable_file(args.json, "--json") if args.json else None  # before the fit, not after
    result = run(args)
    print_json(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
