"""python -m search.run: a predictor-guided (or baseline) search, resumable.

  python -m search.run --space nb201 [--strategy narformer] [--budget 100] [--batch 10] [--seed 0]
                       [--executor inline|ray] [--out runs/NAME]
  python -m search.run --resume runs/NAME [--force]

Writes runs/NAME/: config.json, journal.jsonl, state.json, predictor/round_*.pt,
summary.json, best.json and plots/.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from predictor.bench import parse_overrides

from .cli import USER_ERRORS, report
from .errors import SearchError

# Flags that map one-to-one onto SearchConfig fields (argparse dest -> type).
FLAGS = {
    "space": str, "strategy": str, "budget": int, "batch": int, "init": int, "seed": int,
    "predictor": str, "population": int, "tournament": int, "parents": int, "candidates": int,
    "random_share": float, "max_mutations": int, "data": str, "metric": str, "test_metric": str,
    "executor": str, "ray_address": str, "cpus_per_trial": float, "gpus_per_trial": float,
    "max_failures": int, "preset": str, "data_dir": str,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m search.run", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[1:]),
                                argument_default=argparse.SUPPRESS)  # only flags given are set
    helps = {"space": "search space (default nb201)", "strategy": "narformer (default), rea or random",
             "budget": "evaluations in all (default 100)", "batch": "archs per round (default 10)",
             "init": "random archs of the first round (default 10)", "seed": "the run's one seed (default 0)",
             "predictor": "predictor of the narformer strategy (default narformer)",
             "data": "benchmark file (default: the space's default table)",
             "metric": "search metric (default: the benchmark's validation accuracy)",
             "test_metric": "reported metric (default: the benchmark's test accuracy)",
             "executor": "inline or ray (default: inline for look-ups, ray for trained spaces)",
             "preset": "training budget of trained spaces (darts): final, search (default) or smoke",
             "data_dir": "CIFAR-10 python batches folder (trained spaces; default $NARNAS_CIFAR10_DIR, then the data folder)", "ray_address": "join a Ray cluster: auto or HOST:PORT "
             "(default: start an embedded local Ray)", "max_failures": "retries of a failing evaluation (default 2)"}
    for name, kind in FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, help=helps.get(name))
    p.add_argument("--predictor-set", dest="predictor_set", action="append", metavar="KEY=VALUE",
                   help="predictor config override, repeatable (e.g. epochs=100)")
    p.add_argument("--train-set", dest="train_set", action="append", metavar="KEY=VALUE",
                   help="training config override for trained spaces, repeatable (e.g. epochs=5)")
    p.add_argument("--warm-start", dest="warm_start", action="store_true",
                   help="start each round's predictor from the previous round's weights")
    p.add_argument("--out", help="run folder (default runs/<space>-<strategy>-s<seed>-<time>)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder")
    p.add_argument("--force", action="store_true", help="accept a resume whose config differs")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--no-plots", dest="plots", action="store_false", help="do not draw plots")
    return p


def config_values(args) -> dict:
    values = {k: v for k, v in vars(args).items() if k in FLAGS or k in ("warm_start", "quiet", "plots")}
    if "predictor_set" in vars(args):
        values["predictor_config"] = parse_overrides(args.predictor_set, "--predictor-set")
    if "train_set" in vars(args):
        values["train_set"] = parse_overrides(args.train_set, "--train-set")
    return values


def main(argv=None) -> int:
    from .loop import Search, _make_config

    args = build_parser().parse_args(argv)
    try:
        values = config_values(args)
        if getattr(args, "resume", None):
            if getattr(args, "out", None):
                raise SearchError("give either --resume RUN or --out, not both")
            search = Search(None, args.resume, resume=True, force=getattr(args, "force", False), overrides=values)
        else:
            config = _make_config(values)
            _check_names(config)
            out = getattr(args, "out", None) or default_out(config)
            search = Search(config, out)
        summary = search.run()
    except USER_ERRORS as err:  # spaces, predictor and search errors are ValueErrors
        return report(err)
    except KeyboardInterrupt:
        print("interrupted: continue with --resume", file=sys.stderr)
        return 130
    best = summary["best"]
    print(json.dumps({"run": str(search.run_dir.path), "best": best, "evaluations": summary["evaluations"],
                      "wall_seconds": summary["wall_seconds"]}))
    print(f"results in {search.run_dir.path} (summary.json, best.json, plots/)", file=sys.stderr)
    return 0


def _check_names(config) -> None:
    import predictor
    from .registry import strategy_class
    strategy_class(config.strategy)
    if config.strategy == "narformer" and config.predictor not in predictor.list_predictors():
        raise SearchError(f"unknown predictor {config.predictor!r}; valid: {', '.join(predictor.list_predictors())}")
    for name in ("budget", "batch", "init"):
        if getattr(config, name) < 1:
            raise SearchError(f"--{name} must be >= 1, got {getattr(config, name)}")


def default_out(config) -> Path:
    return Path("runs") / f"{config.space}-{config.strategy}-s{config.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


if __name__ == "__main__":
    sys.exit(main())
