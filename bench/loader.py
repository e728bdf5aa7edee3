"""``python -m bench.loader``: ImageNet loader throughput (images per second) on this machine.

  python -m bench.loader --data-dir ../shared/data/imagenet_sample --resolution 224 --workers 2 \\
      --json results/imagenet/loader_224.json

Decodes, augments (the training transform: RandomResizedCrop, flip, normalise) or evaluates
(resize to resolution / 0.875, centre crop) and batches the images of ``--split`` for
``--passes`` passes after one warm-up batch; reports images/s per transform.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from narnas.cli import run_main


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.loader", description=__doc__.split("\n")[0])
    p.add_argument("--data-dir")
    p.add_argument("--split", choices=("train", "val"), default="val")
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--passes", type=int, default=1)
    p.add_argument("--json")
    args = p.parse_args(argv)
    from narnas.files import print_json, writable_file
    from training.datasets import imagenet
    if args.json:
        writable_file(args.json, "--json")
    files = imagenet.list_files(args.data_dir, allow_val_only=True)
    chosen = files.val if args.split == "val" else files.train
    result = {"root": str(files.root), "split": args.split, "images": len(chosen), "resolution": args.resolution,
              "batch_size": args.batch_size, "workers": args.workers, "cpu_count": os.cpu_count()}
    for name, transform in (("train_transform", imagenet.train_transform(args.resolution)),
                            ("eval_transform", imagenet.eval_transform(args.resolution))):
        data = imagenet.loader(chosen, transform, args.batch_size, workers=args.workers, shuffle=True)
        it = iter(data)
        next(it)  # workers started, first batch out
        start, seen = time.perf_counter(), 0
        for _ in range(args.passes):
            for x, _y in it:
                seen += len(x)
            it = iter(data)
        result[f"{name}_images_per_second"] = round(seen / (time.perf_counter() - start), 1)
    print_json(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
