"""``python -m bench.zero_cost``: how well each zero-cost proxy ranks a benchmark's architectures.

  python -m bench.zero_cost --space nb201 --all --cache runs/zc/nb201.jsonl --json results/zero_cost/nb201_all.json
  python -m bench.zero_cost --space nb201 --sample 1000 --batch-size 64 --data-dir PATH_TO_CIFAR10

Every proxy's Spearman rho and Kendall tau against --metric (default: the benchmark's search
metric; NB201: the 200-epoch validation accuracy) over the chosen archs of --data, beside the
parameter count's (ZiCo's point: many proxies do not beat it). A proxy that is NaN for a
network (see zerocost.proxies) ranks it last. The proxies are cached in --cache, so a killed
run resumes, and the seconds per architecture of what this run computed are reported.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from narnas.cli import parse_names, parse_overrides, run_main
from narnas.errors import ConfigError


def build_parser():
    p = argparse.ArgumentParser(prog="python -m bench.zero_cost", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[2:]))
    p.add_argument("--space", required=True, help="a space with a benchmark (nb201, nb101) or any space with --data")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--sample", type=int, metavar="N", help="N archs of --data drawn with --seed")
    which.add_argument("--all", action="store_true", help="every arch of --data")
    p.add_argument("--data", help="benchmark file or table (default: the space's)")
    p.add_argument("--metric", help="the metric ranked against (default: the benchmark's search metric)")
    p.add_argument("--proxies", default="all", help="comma-separated proxy names (default: all)")
    p.add_argument("--vote", default="synflow,naswot,jacov",
                   help="also score the mean rank of these proxies (the zero-cost strategy's default vote)")
    p.add_argument("--batch-size", type=int, default=64, help="images in the proxies' minibatch (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seeds the minibatch, the initialisation and --sample")
    p.add_argument("--data-dir", help="CIFAR-10 / ImageNet folder for the minibatch")
    p.add_argument("--device", default="cpu", help="where the networks run: cpu (default) or cuda")
    p.add_argument("--cache", help="proxy cache file (default: $NARNAS_DATA/zerocost/SPACE.jsonl)")
    p.add_argument("--workers", type=int, help="processes computing networks at once on a CPU, each with its share "
                                               "of the threads (default: one per thread torch may use, up to 8)")
    p.add_argument("--space-set", action="append", metavar="KEY=VALUE", help="space option")
    p.add_argument("--network", action="append", metavar="KEY=VALUE",
                   help="the proxies' network size, a key of the space's build config (repeatable; default: its "
                        "evaluation network), e.g. channels=16 and layers=8: DARTS's search network")
    p.add_argument("--table", help="also write the archs, their --metric (as val), the benchmark's test metric (as "
                                   "test) and every proxy as a table (.csv or .jsonl) that any tool's --data reads")
    p.add_argument("--json", help="write the results here as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def correlations(values: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(Spearman rho, Kendall tau) of one proxy's values with the truth; NaN values rank last."""
    from scipy import stats
    ranked = np.where(np.isnan(values), -np.inf, values)
    return float(stats.spearmanr(ranked, truth).statistic), float(stats.kendalltau(ranked, truth).statistic)


def run(args) -> dict:
    import platform

    import torch

    import spaces
    from zerocost import proxies
    from zerocost.batch import draw
    from zerocost.store import ProxyStore, check_cache, default_cache
    space = spaces.get_space(args.space, **parse_overrides(args.space_set, "--space-set"))
    chosen = [p.name for p in proxies.resolve(parse_names(args.proxies))]
    vote = [p.name for p in proxies.resolve(parse_names(args.vote))] if args.vote.strip() else []
    chosen += [n for n in vote if n not in chosen]
    if "params" not in chosen:
        chosen.append("params")  # the baseline every proxy is compared with
    bench = spaces.get_benchmark(space, args.data)
    metric = args.metric or bench.search_metric()
    truth_all = bench.column(metric)
    rows = np.flatnonzero(~np.isnan(truth_all))
    if args.sample is not None:
        if not 0 < args.sample <= len(rows):
            raise ConfigError(f"--sample must be in 1..{len(rows)}, got {args.sample}")
        rows = np.sort(np.random.default_rng(args.seed).choice(rows, args.sample, replace=False))
    cache = check_cache(args.cache) if args.cache else default_cache(space.name)
    store = ProxyStore(space, draw(space, args.batch_size, args.seed, args.data_dir), args.seed, cache, args.device,
                       args.workers, parse_overrides(args.network, "--network"))
    archs = [bench.arch(int(r)) for r in rows]
    todo = len(store.missing(archs, chosen))
    started = time.perf_counter()
    values = store.values(archs, chosen, quiet=args.quiet)
    seconds = time.perf_counter() - started
    truth = truth_all[rows]
    result = {"space": space.name, "data": bench.source, "metric": metric, "archs": len(rows),
              "batch": store.batch.signature, "batch_size": args.batch_size, "seed": args.seed,
              "network": store.sizes,
              "computed": todo, "seconds_per_arch": round(seconds / todo, 3) if todo else None,
              "device": args.device, "threads": torch.get_num_threads(), "workers": store.workers,
              "machine": platform.machine(), "torch": torch.__version__,
              "proxies": {}}
    for j, name in enumerate(chosen):
        rho, tau = correlations(values[:, j], truth)
        result["proxies"][name] = {"spearman": round(rho, 4), "kendall": round(tau, 4),
                                   "nan": int(np.isnan(values[:, j]).sum())}
    if vote:
        rho, tau = correlations(proxies.vote(values[:, [chosen.index(n) for n in vote]]), truth)
        result["vote"] = {"proxies": vote, "spearman": round(rho, 4), "kendall": round(tau, 4)}
    result["best"] = max((n for n in chosen if n != "params"), key=lambda n: result["proxies"][n]["spearman"],
                         default=None)
    result["command"] = "python -m bench.zero_cost " + " ".join(sys.argv[1:])
    if args.table:
        from spaces.table import write_table
        test = bench.column(bench.test_metric)[rows] if bench.test_metric else None
        write_table([{"arch": space.to_json(a), "val": float(truth[i]),
                      **({"test": float(test[i])} if test is not None else {}),
                      **{name: float(values[i, j]) for j, name in enumerate(chosen)}}
                     for i, a in enumerate(archs)], args.table)
    return result


def to_text(result: dict) -> str:
    lines = [f"{result['space']}, {result['archs']} archs, against {result['metric']} "
             f"(minibatch {result['batch']}; {result['seconds_per_arch']} s per arch computed here)"]
    order = sorted(result["proxies"].items(), key=lambda kv: -kv[1]["spearman"])
    if "vote" in result:
        lines.append(f"  vote of {'+'.join(result['vote']['proxies'])}: spearman {result['vote']['spearman']:+.3f}  "
                     f"kendall {result['vote']['kendall']:+.3f}")
    lines += [f"  {name:10s} spearman {v['spearman']:+.3f}  kendall {v['kendall']:+.3f}" + (f"  ({v['nan']} NaN)" if
                                                                                          v["nan"] else "")
              for name, v in order]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_main(lambda: _main(args))


def _main(args) -> int:
    from narnas.files import print_json, writable_file
    out = writable_file(args.json, "--json") if args.json else None
    if args.table:
        writable_file(args.table, "--table")
    result = run(args)
    print(to_text(result), file=sys.stderr)
    print_json(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
