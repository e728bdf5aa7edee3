"""``make run`` for now: a short evolution over NAS-Bench-201 by benchmark look-ups.

Samples a population, repeatedly mutates the best architectures and looks them up in
the packaged CIFAR-10 table, then prints the best found and builds its network.
The real predictor-guided search (``python -m search.run``) replaces this.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from .errors import SpacesError
from .registry import get_benchmark, get_space


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m spaces.demo", description=__doc__.split("\n")[0])
    p.add_argument("--space", default="nb201")
    p.add_argument("--budget", type=int, default=100, help="architectures to look up (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", help="benchmark file (default: the packaged table)")
    args = p.parse_args(argv)
    try:
        return demo(args)
    except SpacesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def demo(args) -> int:
    if args.budget < 10:
        raise SpacesError(f"--budget must be at least 10, got {args.budget}")
    space, bench = get_space(args.space), get_benchmark(args.space, args.data)
    rng = np.random.default_rng(args.seed)
    seen: dict = {}

    def evaluate(arch):
        key = space.key(arch)
        if key not in seen:
            seen[key] = (bench.query(arch), arch)

    while len(seen) < 10:
        evaluate(space.sample(rng))
    while len(seen) < args.budget:
        top = sorted(seen.values(), key=lambda v: -v[0])[:5]
        evaluate(space.mutate(top[int(rng.integers(len(top)))][1], rng))
        if len(seen) % 20 == 0:
            print(f"evaluated {len(seen):4d}  best {bench.default_metric} = {max(v for v, _ in seen.values()):.2f}")
    best_val, best = max(seen.values(), key=lambda v: v[0])
    params = sum(p.numel() for p in space.build_model(best).parameters())
    print(f"best of {len(seen)}: {space.to_json(best)}")
    print(f"  {bench.default_metric} = {best_val:.2f}, {bench.test_metric} = {bench.query(best, bench.test_metric):.2f}, "
          f"{params / 1e6:.3f} M parameters (benchmark: {bench.source})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
