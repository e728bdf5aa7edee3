"""``python -m latency``: a latency dataset measured on this machine.

  python -m latency build --out runs/latency/cpu --families all --per-family 200 \\
      --batch-size 1 --threads 1
  python -m latency info runs/latency/cpu          # or NNLQP's folder / gt.txt
  python -m latency families
  python -m latency restore --table results/latency/gt.txt --out runs/latency/cpu

``build`` draws ``--per-family`` variants of each family (randomised widths, depths, kernel
sizes and resolutions, as NNLQP's unseen-structure set), exports each to ONNX (in parallel)
and times it in onnxruntime (one at a time: warm-up runs, then the median of repeated runs).
The same command resumes a killed build and measures only what is missing; a larger
``--per-family`` extends a dataset. Time the build on an otherwise idle machine.
``restore`` redraws and exports the networks of a committed table (gt.txt with the build's
manifest.json and platforms.json beside it) without timing them: the table's latencies stand.
"""
from __future__ import annotations

import argparse
import json
import sys

from narnas.cli import prog, run_main


def build_parser():
    from latency.families import family_names
    p = argparse.ArgumentParser(prog=prog("python -m latency"), description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="measure networks into a dataset folder (resumable)")
    b.add_argument("--out", required=True, help="the dataset folder")
    b.add_argument("--families", default="all", help=f"comma-separated, or all: {', '.join(family_names())}")
    b.add_argument("--per-family", type=int, default=200)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--batch-size", type=int, default=1)
    b.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads while timing")
    b.add_argument("--warmup", type=int, default=10)
    b.add_argument("--repeats", type=int, default=30)
    b.add_argument("--min-seconds", type=float, default=1.0,
                   help="keep timing a network past --repeats until this many seconds were timed")
    b.add_argument("--export-workers", type=int, default=0, help="processes exporting to ONNX (0: one per core)")
    b.add_argument("--json", help="write the build's summary here")
    i = sub.add_parser("info", help="networks per family and their latency ranges")
    i.add_argument("folder", help="a dataset folder or a gt.txt (ours or NNLQP's)")
    sub.add_parser("families", help="the network families a build can draw")
    r = sub.add_parser("restore", help="re-export a committed table's networks (no timing; resumable)")
    r.add_argument("--table", required=True, help="a built dataset's gt.txt (manifest.json and platforms.json beside it)")
    r.add_argument("--out", required=True, help="the dataset folder to restore into")
    r.add_argument("--export-workers", type=int, default=0, help="processes exporting to ONNX (0: one per core)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from latency import dataset
    from latency.families import FAMILIES, family_names
    if args.command == "families":
        for name in family_names():
            fn = FAMILIES.get(name)
            print(f"{name:14s} {(fn.__doc__ or '').strip().splitlines()[0] if fn.__doc__ else ''}".rstrip())
        return 0
    if args.command == "info":
        print(json.dumps(dataset.summary(args.folder), indent=2))
        return 0
    if args.command == "restore":
        if args.export_workers < 0:
            raise dataset.PredictorError("--export-workers cannot be negative")
        result = dataset.restore(args.table, args.out, export_workers=args.export_workers)
        print(json.dumps(result))
        return 0
    if args.json:  # an unwritable output costs one line before the build, not after it
        from narnas.files import writable_file
        writable_file(args.json, "--json")
    families = tuple(family_names()) if args.families == "all" else tuple(f.strip() for f in args.families.split(",") if f.strip())
    config = dataset.BuildConfig(families=families, per_family=args.per_family, seed=args.seed,
                                 batch_size=args.batch_size, threads=args.threads, warmup=args.warmup,
                                 repeats=args.repeats, min_seconds=args.min_seconds,
                                 export_workers=args.export_workers)
    result = dataset.Builder(args.out, config).run()
    result.update(dataset.summary(args.out))
    from narnas.files import print_json
    print_json(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
