"""``python -m zerocost``: zero-cost proxies of a space's architectures, cached, as a table.

  python -m zerocost --space nb201 --sample 100 --out proxies.csv        # 100 random cells
  python -m zerocost --space nb201 --all --cache nb201-proxies.jsonl     # every cell: kill and rerun to resume
  python -m zerocost --space darts --archs my_cells.jsonl --proxies synflow,naswot --out scores.jsonl
  python -m zerocost --list                                              # each proxy and its paper

The minibatch is ``--batch-size`` images of the space's dataset (CIFAR-10 for 32-pixel spaces,
from ``--data-dir``, $NARNAS_CIFAR10_DIR or the data folder; ImageNet for OFA), drawn with
``--seed``, which also seeds every network's initialisation. Values are cached per
(architecture, minibatch, seed) in ``--cache`` (default: $NARNAS_DATA/zerocost/SPACE.jsonl).
The table (``--out``, .csv or .jsonl) has an ``arch`` column (the space's JSON form) and one
column per proxy; ``--archs`` reads such a table, or a file of one architecture per line.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from narnas.cli import parse_names, parse_overrides, prog, run_main

from .errors import ZeroCostError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog("python -m zerocost"), description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[2:]))
    p.add_argument("--space", help="search space (one that builds networks: nb101, nb201, darts, ofa_mbv3)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--sample", type=int, metavar="N", help="N random archs drawn with --seed")
    which.add_argument("--all", action="store_true", help="every arch of the space (enumerated)")
    which.add_argument("--archs", metavar="FILE", help="a table with an arch column, or one arch per line")
    which.add_argument("--list", action="store_true", help="list the proxies with their papers")
    p.add_argument("--proxies", default="all", help="comma-separated proxy names (default: all)")
    p.add_argument("--batch-size", type=int, default=64, help="images in the minibatch (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seeds the minibatch, the initialisation and --sample")
    p.add_argument("--data-dir", help="the dataset's folder (default: $NARNAS_CIFAR10_DIR / $NARNAS_IMAGENET_DIR, "
                                      "then the data folder)")
    p.add_argument("--cache", help="the cache file (default: $NARNAS_DATA/zerocost/SPACE.jsonl)")
    p.add_argument("--out", help="write the table here (.csv or .jsonl); default: print it as JSON lines")
    p.add_argument("--space-set", action="append", metavar="KEY=VALUE", help="space option")
    p.add_argument("--network", action="append", metavar="KEY=VALUE",
                   help="the proxies' network size, a key of the space's build config (repeatable; default: its "
                        "evaluation network), e.g. channels=16 and layers=8: DARTS's search network")
    p.add_argument("--device", default="cpu", help="where the networks run: cpu (default) or cuda")
    p.add_argument("--threads", type=int, help="torch's CPU threads (default: torch's choice)")
    p.add_argument("--workers", type=int, help="processes computing networks at once on a CPU, each with its share "
                                               "of the threads (default: one per thread torch may use, up to 8)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--plugin", action="append", metavar="MODULE", help="import this module first; repeatable")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_main(lambda: run(args) or 0)


def run(args) -> None:
    from . import proxies
    if args.list:
        for proxy in proxies.resolve(None):
            print(f"{proxy.name:10s} {proxy.source}")
        return
    if not args.space or not (args.sample or args.all or args.archs):
        raise ZeroCostError("give --space and one of --sample N, --all or --archs FILE (or --list)")
    import torch

    from narnas.files import writable_file
    from narnas.plugins import load_plugins
    from spaces.registry import get_space

    from .batch import draw
    from .store import ProxyStore, check_cache, default_cache
    from spaces.table import read_table, write_table
    load_plugins(args.plugin)
    chosen = [p.name for p in proxies.resolve(parse_names(args.proxies))]
    space = get_space(args.space, **parse_overrides(args.space_set, "--space-set"))
    out = writable_file(args.out, "--out") if args.out else None
    if args.archs:
        archs = read_table(space, args.archs).archs()
    elif args.all:
        from spaces.base import Enumeration, require
        archs = list(require(space, Enumeration, "for --all").enumerate())
    else:
        from spaces.base import Sampling, require
        rng = np.random.default_rng(args.seed)
        archs = [require(space, Sampling, "for --sample").sample(rng) for _ in range(args.sample)]
    cache = check_cache(args.cache) if args.cache else default_cache(space.name)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ZeroCostError(f"--device {args.device}: CUDA is not available here")
    store = ProxyStore(space, draw(space, args.batch_size, args.seed, args.data_dir), args.seed, cache, args.device,
                       args.workers, parse_overrides(args.network, "--network"))
    started = time.perf_counter()
    todo = len(store.missing(archs, chosen))
    print(f"{len(archs)} archs, {todo} to compute, cache {cache} (minibatch {store.batch.signature})",
          file=sys.stderr, flush=True)
    values = store.values(archs, chosen, quiet=args.quiet)
    if todo:
        print(f"computed {todo} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    rows = [{"arch": space.to_json(a), **dict(zip(chosen, map(float, v)))} for a, v in zip(archs, values)]
    write_table(rows, out)


if __name__ == "__main__":
    sys.exit(main())
