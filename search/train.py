"""python -m search.train: train a DARTS genotype from scratch on CIFAR-10.

  python -m search.train --arch runs/NAME/best.json --preset final [--data-dir DIR] [--set KEY=VALUE ...]
                         [--out DIR] [--quiet]

--arch takes a JSON file (a genotype dict, e.g. a run's best.json), a file or string holding
the ``Genotype(normal=[...], ...)`` text, or a known name (darts_v1, darts_v2). The output
folder keeps a checkpoint after every epoch; running the same command again continues
from the last finished epoch. The result (validation and test accuracy, parameters, the
per-epoch history and the config) goes to OUT/result.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from pathlib import Path

from narnas.cli import parse_overrides, run_main

from .errors import SearchError

KNOWN = {"darts_v1": "DARTS_V1", "darts_v2": "DARTS_V2"}


def load_arch(space, text: str):
    """A genotype from a file, a Genotype(...) / JSON string, or a known name."""
    import spaces.darts as darts
    if text.lower() in KNOWN:
        return space.from_json(getattr(darts, KNOWN[text.lower()]))
    path = Path(text)
    if path.exists():
        text = path.read_text()
    elif not text.lstrip().startswith(("{", "Genotype", "genotypes.Genotype")):
        raise SearchError(f"--arch {text!r} is neither a file, a genotype nor a known name ({', '.join(KNOWN)})")
    return space.from_json(text)


def build_parser():
    p = argparse.ArgumentParser(prog="python -m search.train", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[1:]))
    p.add_argument("--arch", required=True)
    p.add_argument("--preset", default="final", help="final (default), search or smoke")
    p.add_argument("--data-dir", help="CIFAR-10 python batches folder")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", dest="options", help="training config override")
    p.add_argument("--out", help="output folder (default runs/train-<genotype digest>-<preset>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_main(lambda: _main(args))


def _main(args) -> int:
    import spaces
    from . import cifar10, training

    try:
        space = spaces.get_space("darts")
        arch = load_arch(space, args.arch)
        config = training.preset(args.preset, **parse_overrides(args.options))
        key = space.key(arch)
        out = Path(args.out or f"runs/train-{hashlib.sha1(key.encode()).hexdigest()[:10]}-{args.preset}")
        out.mkdir(parents=True, exist_ok=True)
        (out / "genotype.json").write_text(json.dumps(space.to_json(arch), indent=2) + "\n")
        warn = lambda msg: print(msg, file=sys.stderr, flush=True)
        data = cifar10.load(args.data_dir, config.val_size, config.fraction, warn=warn)
        result = training.train(arch, space, data, config, checkpoint=out / "checkpoint.pt", progress=not args.quiet)
    except KeyboardInterrupt:
        print("interrupted: run the same command again to continue from the last epoch", file=sys.stderr)
        return 130
    record = dict(result, genotype=space.genotype_text(arch), key=key, preset=args.preset,
                  config=dataclasses.asdict(config), data=data.source)
    (out / "result.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({"val": result["val"], "test": result["test"], "params": result["params"],
                      "epochs": result["epochs"], "out": str(out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
