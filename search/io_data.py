"""``python -m search.io_data``: the input-output dataset of arch2vec's extension.

  python -m search.io_data build --space nb101 --preset io-cpu --out runs/io/nb101 [--data-dir DIR]
  python -m search.io_data build --space nb101 --preset io-paper --train-nets 608 --val-nets 77 \\
      --ray-address auto --gpus-per-trial 1 --out /shared/io/nb101          # the paper's protocol on GPUs
  python -m search.io_data info runs/io/nb101

``build`` samples ``--train-nets`` + ``--val-nets`` networks of the space, trains each on
CIFAR-10 with the space's training recipe (``--preset``; ``--train-set KEY=VALUE`` overrides
its fields) as a Ray trial, and stores each network's global-average-pooled features on
the held-out validation images and on ``--test-images`` test images, with its dense layer.
The same command resumes a killed build (finished networks are never trained again).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from narnas.cli import parse_overrides, prog, run_main

from .errors import SearchError


def build_parser():
    p = argparse.ArgumentParser(prog=prog("python -m search.io_data"), description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="train networks and store their features (resumable)")
    b.add_argument("--space", default="nb101")
    b.add_argument("--out", required=True, help="the dataset folder")
    b.add_argument("--preset", default="io-cpu", help="training preset: io-cpu (default), io-paper, smoke, ...")
    b.add_argument("--train-set", action="append", default=[], metavar="KEY=VALUE",
                   help="training config field over the preset's (repeatable)")
    b.add_argument("--train-nets", type=int, default=608)
    b.add_argument("--val-nets", type=int, default=77)
    b.add_argument("--val-images", type=int, default=1000)
    b.add_argument("--test-images", type=int, default=2000)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--data-dir", help="CIFAR-10 python batches folder (default $NARNAS_CIFAR10_DIR, then the data folder)")
    b.add_argument("--executor", default="ray", help="ray (default) or inline")
    b.add_argument("--ray-address", help="join a Ray cluster (auto or HOST:PORT); default: an embedded local Ray")
    b.add_argument("--cpus-per-trial", type=float, default=1.0)
    b.add_argument("--gpus-per-trial", type=float, default=0.0)
    i = sub.add_parser("info", help="what a dataset holds")
    i.add_argument("folder")
    return p


def _build(args) -> int:
    from narnas.files import writable_folder
    from .executors import ExecutorConfig
    from .io_build import IOBuildConfig, build

    folder = writable_folder(args.out, "--out")
    config = IOBuildConfig(space=args.space, preset=args.preset, train=parse_overrides(args.train_set, "--train-set"),
                           train_nets=args.train_nets, val_nets=args.val_nets, val_images=args.val_images,
                           test_images=args.test_images, seed=args.seed)
    executor = ExecutorConfig(name=args.executor, ray_address=args.ray_address, cpus_per_trial=args.cpus_per_trial,
                              gpus_per_trial=args.gpus_per_trial)
    result = build(folder, config, executor, args.data_dir, log=lambda line: print(line, flush=True))
    print(json.dumps({"folder": str(folder), "networks": len(result["networks"]), "done": result["done"],
                      "failed": result["failed"]}))
    if result["failed"]:
        print(f"error: {len(result['failed'])} networks failed (see above); run the command again to retry them",
              file=sys.stderr)
        return 1
    return 0


def _info(args) -> int:
    from embeddings.io_dataset import read_journal
    folder = Path(args.folder)
    if not (folder / "build.json").exists():
        raise SearchError(f"{folder} is not an input-output dataset (no build.json)")
    manifest = json.loads((folder / "build.json").read_text())
    done = read_journal(folder / "networks.jsonl")
    by_split = {}
    for entry in done.values():
        by_split.setdefault(entry["split"], []).append(entry)
    print(json.dumps({"config": manifest["config"], "training": manifest["training"],
                      "networks": len(manifest["networks"]), "done": len(done),
                      "splits": {s: {"done": len(e), "mean_val_acc": float(np.mean([x["val"] for x in e])),
                                     "mean_seconds": float(np.mean([x["seconds"] for x in e]))}
                                 for s, e in by_split.items()}}, indent=2))
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_main(lambda: {"build": _build, "info": _info}[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
