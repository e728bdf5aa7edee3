"""``python -m bench.latency``: how well a predictor predicts measured latencies.

  python -m bench.latency --data runs/latency/cpu --split random --predictor narformer
  python -m bench.latency --data runs/latency/cpu --split family --test-family efficientnet \\
      --predictor gnn --json results/latency/gnn_efficientnet.json
  python -m bench.latency --data NNLQP/dataset/unseen_structure --split family \\
      --test-family all --predictor flops

``--split random``: a seeded random ``--train-size`` networks to train on (default 80%), the
rest to test. ``--split family``: NNLQP's unseen-structure protocol: train on every other
family, test on ``--test-family`` (``all``: each family in turn, one result per family).
Reports MAPE, RMSE (ms), Acc(5%), Acc(10%) (percent, as the papers print them), Kendall tau,
fit seconds and predictions per second. ``--platform`` picks one platform of a multi-platform
table (NNLQP's); ``--set KEY=VALUE`` sets the predictor's config.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from narnas.cli import parse_overrides, run_main


def build_parser():
    p = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    p.add_argument("--data", required=True, help="a latency dataset folder or a gt.txt (ours or NNLQP's)")
    p.add_argument("--onnx-root", help="folder the table's ONNX paths are relative to (default: the table's)")
    p.add_argument("--split", choices=("random", "family"), default="random")
    p.add_argument("--test-family", help="--split family: the held-out family, or all")
    p.add_argument("--predictor", default="narformer")
    p.add_argument("--train-size", type=int, help="networks to train on (default: 80%% / every other family)")
    p.add_argument("--platform", type=int, help="only this platform id's rows")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", help="write the result here")
    p.add_argument("--save", help="after the benchmark, fit on every network (of --platform) and save the "
                                  "predictor here (for search.run --latency predictor:FILE)")
    p.add_argument("--quiet", action="store_true")
    return p


def evaluate(predictor_name, overrides, graphs, y, train, test, seed, kernel_ms=None, families=None) -> dict:
    """Fit on ``train``, score on ``test``; with ``families`` (one name per network), the test
    networks' MAPE and Acc(10%) per family too (which families a random split's error comes from)."""
    from latency.predictors import get_latency_predictor
    from predictor.metrics import accuracy_within, kendall_tau, mape, rmse
    predictor = get_latency_predictor(predictor_name, **{"seed": seed, **overrides})
    part = lambda rows: None if kernel_ms is None else kernel_ms[rows]  # noqa: E731
    start = time.perf_counter()
    predictor.fit([graphs[i] for i in train], y[train], kernel_ms=part(train))
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    pred = predictor.predict([graphs[i] for i in test], kernel_ms=part(test))
    per_second = len(test) / max(time.perf_counter() - start, 1e-9)
    truth = y[test]
    result = {"mape": mape(pred, truth), "rmse": rmse(pred, truth), "acc5": accuracy_within(pred, truth, 0.05),
              "acc10": accuracy_within(pred, truth, 0.10), "kendall_tau": kendall_tau(pred, truth),
              "train_size": int(len(train)), "test_size": int(len(test)), "fit_seconds": round(fit_seconds, 2),
              "predictions_per_second": round(per_second, 1),
              # above 1: over-predicted (on a held-out family, a bias the other families taught)
              "median_ratio": float(np.median(pred / truth)),
              # the trivial baseline: every test network at the training networks' mean latency
              "mean_baseline_mape": mape(np.full_like(truth, float(np.mean(y[train]))), truth)}
    if families is not None:
        names = np.asarray(families)[test]
        result["by_family"] = {f: {"n": int((names == f).sum()), "mape": mape(pred[names == f], truth[names == f]),
                                   "acc10": accuracy_within(pred[names == f], truth[names == f], 0.10)}
                               for f in sorted(set(names))}
    return result


def layer_sums(data, onnx_root, records, log) -> np.ndarray:
    """Each network's layers timed alone and summed (the lut baseline), with the table's
    platform threads; distinct layers are timed once and kept in the dataset folder."""
    import onnx

    from narnas.files import append_jsonl
    from latency.kernels import SUMS, KernelTable
    data = Path(data)
    folder = data if data.is_dir() else data.parent
    root = Path(onnx_root) if onnx_root else folder
    platforms = folder / "platforms.json"
    threads = 1
    if platforms.exists():
        threads = int(next(iter(json.loads(platforms.read_text()).values())).get("threads", 1))
    table = KernelTable(folder, threads=threads)
    known = _read_sums(folder / SUMS, table.sum_setting)
    sums = np.empty(len(records))
    for i, r in enumerate(records):
        if r.onnx not in known:
            known[r.onnx] = table.network_ms(onnx.load(str(root / r.onnx)))
            append_jsonl(folder / SUMS, {"onnx": r.onnx, "ms": known[r.onnx], "setting": table.sum_setting})
        sums[i] = known[r.onnx]
        if (i + 1) % 100 == 0:
            log(f"  layers timed alone: {i + 1} networks, {table.timed} new layers")
    return sums


def _read_sums(path: Path, setting: dict) -> dict[str, float]:
    from narnas.files import read_jsonl
    return {e["onnx"]: float(e["ms"]) for e in read_jsonl(path) if e.get("setting") == setting}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from narnas.files import print_json, writable_file
    from predictor.errors import PredictorError
    from latency.dataset import load_graphs
    from latency.predictors import LATENCY_PREDICTORS
    predictor_class = LATENCY_PREDICTORS.get(args.predictor)  # an unknown name lists the valid ones
    overrides = parse_overrides(args.set)
    for flag, path in (("--json", args.json), ("--save", args.save)):
        if path:
            writable_file(path, flag)
    log = (lambda text: None) if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    records, graphs = load_graphs(args.data, args.onnx_root, log=log)
    if args.platform is not None:
        keep = [i for i, r in enumerate(records) if r.platform == args.platform]
        if not keep:
            raise PredictorError(f"no rows of platform {args.platform}; platforms: "
                                 f"{sorted({r.platform for r in records})}")
        records, graphs = [records[i] for i in keep], [graphs[i] for i in keep]
    y = np.array([r.latency_ms for r in records])
    kernel_ms = None
    if predictor_class.needs_kernels:
        kernel_ms = layer_sums(args.data, args.onnx_root, records, log)
    families = np.array([r.family for r in records])
    rng = np.random.default_rng(args.seed)
    result = {"data": str(args.data), "predictor": args.predictor, "split": args.split, "seed": args.seed,
              "set": overrides, "networks": len(records)}
    if args.split == "random":
        order = rng.permutation(len(records))
        n_train = args.train_size or int(round(0.8 * len(records)))
        if not 1 <= n_train < len(records):
            raise PredictorError(f"--train-size must be in 1..{len(records) - 1}, got {n_train}")
        result.update(evaluate(args.predictor, overrides, graphs, y, order[:n_train], order[n_train:], args.seed,
                               kernel_ms, families=families))
    else:
        known = sorted(set(families))
        if not args.test_family:
            raise PredictorError(f"--split family needs --test-family (one of {', '.join(known)}, or all)")
        held = known if args.test_family == "all" else [args.test_family]
        unknown = [f for f in held if f not in known]
        if unknown:
            raise PredictorError(f"family {unknown[0]!r} is not in the data; families: {', '.join(known)}")
        result["families"] = {}
        for family in held:
            test = np.flatnonzero(families == family)
            train = rng.permutation(np.flatnonzero(families != family))
            if args.train_size:
                train = train[:args.train_size]
            log(f"held out {family}: train {len(train)}, test {len(test)}")
            result["families"][family] = evaluate(args.predictor, overrides, graphs, y, train, test, args.seed,
                                                  kernel_ms)
        if len(held) == 1:
            result.update(result["families"][held[0]])
    if args.save:
        from latency.predictors import get_latency_predictor, save_latency_predictor
        final = get_latency_predictor(args.predictor, **{"seed": args.seed, **overrides}).fit(graphs, y,
                                                                                                kernel_ms=kernel_ms)
        save_latency_predictor(final, args.save, data=str(args.data), platform=args.platform, networks=len(y))
        result["saved"] = args.save
    import torch
    result["versions"] = {"python": sys.version.split()[0], "numpy": np.__version__, "torch": torch.__version__,
                          "threads": torch.get_num_threads()}
    print_json(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
