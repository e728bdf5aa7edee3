"""``python -m spaces``: sample, count, key and look up architectures of a search space.

  python -m spaces --space nb201 --sample 5 --seed 0     # 5 random archs, one JSON per line
  python -m spaces --space nb101 --count                 # unique archs by enumeration: 423624
  python -m spaces --space nb201 --key '"|nor_conv_3x3~0|+|...|"'
  python -m spaces --space nb201 --query ARCH_JSON [--metric M] [--data PATH]
  python -m spaces --space ofa_mbv3 --space-set width_mult=1.2 --measure ARCH_JSON   # params, MACs, latency
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from narnas.cli import prog, run_main

from .base import Enumeration, Sampling, require
from .errors import SpacesError
from .registry import get_benchmark, get_space, list_spaces


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog("python -m spaces"), description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[2:]))
    p.add_argument("--space", required=True, help=f"search space ({', '.join(list_spaces())})")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--sample", type=int, metavar="N", help="print N random archs as JSON lines")
    what.add_argument("--mutate", metavar="ARCH_JSON", help="print --n mutations of an arch as JSON lines")
    what.add_argument("--count", action="store_true", help="count the unique archs by enumeration")
    what.add_argument("--enumerate", action="store_true", help="print every unique arch as a JSON line")
    what.add_argument("--key", metavar="ARCH_JSON", help="print the canonical key of an arch")
    what.add_argument("--query", metavar="ARCH_JSON", help="look an arch up in the benchmark")
    what.add_argument("--metrics", action="store_true", help="list the benchmark's metrics")
    what.add_argument("--measure", metavar="ARCH_JSON", help="print the measures the space computes for an arch "
                                                             "(ofa_mbv3: params, macs, latency_note10)")
    p.add_argument("--n", type=int, default=1, help="number of mutations for --mutate (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--metric", help="metric for --query (default: the benchmark's search metric)")
    p.add_argument("--space-set", action="append", metavar="KEY=VALUE", help="space option (ofa_mbv3: width_mult, "
                                                                            "resolutions, supernet)")
    p.add_argument("--data", help="benchmark file for --query / --metrics (default: env var, then data folder)")
    p.add_argument("--plugin", action="append", metavar="MODULE",
                   help="import this module first (it registers its own spaces, ...); repeatable; also $NARNAS_PLUGINS")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_main(lambda: run(args) or 0)


def run(args) -> None:
    from narnas.cli import parse_overrides
    from narnas.plugins import load_plugins
    load_plugins(args.plugin)
    space = get_space(args.space, **parse_overrides(args.space_set, "--space-set"))
    rng = np.random.default_rng(args.seed)
    if args.sample is not None or args.mutate is not None:
        count = args.sample if args.sample is not None else args.n
        if count < 0:
            raise SpacesError(f"the number of archs must be >= 0, got {count}")
        require(space, Sampling, "to sample or mutate")
        parent = space.from_json(args.mutate) if args.mutate is not None else None
        for _ in range(count):
            arch = space.sample(rng) if parent is None else space.mutate(parent, rng)
            print(json.dumps(space.to_json(arch)))
    elif args.count:
        print(space.count())
    elif args.enumerate:
        for arch in require(space, Enumeration, "to enumerate").enumerate():
            print(json.dumps(space.to_json(arch)))
    elif args.key is not None:
        print(space.key(space.from_json(args.key)))
    elif args.query is not None:
        bench = get_benchmark(space, args.data)
        arch = space.from_json(args.query)
        metrics = [args.metric] if args.metric else bench.metrics
        print(json.dumps({"key": space.key(arch), **{m: bench.query(arch, m) for m in metrics}}))
    elif args.measure is not None:
        arch = space.from_json(args.measure)
        out = {"key": space.key(arch)}
        for name in getattr(space, "measures", ()):
            try:
                getattr(space, "check_measure", lambda n: None)(name)
            except SpacesError:
                continue  # not defined for this space's options (e.g. latency at width 1.0)
            out[name] = getattr(space, name)(arch)
        print(json.dumps(out))
    elif args.metrics:
        bench = get_benchmark(space, args.data)
        print(json.dumps({"source": bench.source, "archs": len(bench), "search_metric": bench.default_metric,
                          "test_metric": bench.test_metric, "metrics": bench.metrics}))


if __name__ == "__main__":
    sys.exit(main())
