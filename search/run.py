"""python -m search.run: a predictor-guided (or baseline) search, resumable.

  python -m search.run --space nb201 [--strategy narformer] [--budget 100] [--batch 10] [--seed 0]
                       [--evaluator NAME] [--executor inline|ray] [--set SECTION.KEY=VALUE ...] [--out runs/NAME]
  python -m search.run --resume runs/NAME [--force]

Every flag sets one key of the config tree (seed, space, strategy, predictor, evaluator,
executor, run); --set reaches any key, e.g. --set strategy.config.candidates=1000 or
--set evaluator.config.train.epochs=5. Writes runs/NAME/: config.json, journal.jsonl,
state.json, predictor/round_*.pt, summary.json, best.json and plots/.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

from narnas.cli import interrupt_code, prog, run_main

from .config import FLAGS
from .errors import SearchError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog("python -m search.run"), description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[1:]),
                                argument_default=argparse.SUPPRESS)  # only flags given are set
    for dest, (path, kind, text) in FLAGS.items():
        p.add_argument("--" + dest.replace("_", "-"), dest=dest, type=kind, help=f"{text} [{path}]")
    p.add_argument("--space-set", dest="space_set", action="append", metavar="KEY=VALUE",
                   help="space option, repeatable (e.g. width_mult=1.2 for ofa_mbv3) [space.options]")
    p.add_argument("--predictor-set", dest="predictor_set", action="append", metavar="KEY=VALUE",
                   help="predictor config value, repeatable (e.g. epochs=100) [predictor.config]")
    p.add_argument("--train-set", dest="train_set", action="append", metavar="KEY=VALUE",
                   help="training config value of cifar10-train, repeatable (e.g. epochs=5) [evaluator.config.train]")
    p.add_argument("--constraint", action="append", metavar="NAME<=VALUE",
                   help="propose only archs within a limit, repeatable; k/M/G suffixes (e.g. params<=1.5M, "
                        "macs<=400M, latency<=5 in ms, see --latency) [strategy.constraints]")
    p.add_argument("--latency-set", dest="latency_set", action="append", metavar="KEY=VALUE",
                   help="how latency is measured: threads, batch_size, warmup, repeats [latency]")
    p.add_argument("--set", dest="sets", action="append", metavar="PATH=VALUE",
                   help="any config key by its path, repeatable (e.g. strategy.config.candidates=1000)")
    p.add_argument("--warm-start", dest="warm_start", action="store_true",
                   help="start each round's predictor from the previous round's weights [strategy.config.warm_start]")
    p.add_argument("--out", help="run folder (default runs/<space>-<strategy>-s<seed>-<time>)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder")
    p.add_argument("--force", action="store_true", help="accept a resume whose config differs")
    p.add_argument("--quiet", action="store_true", help="no progress lines [run.quiet]")
    p.add_argument("--plugin", action="append", metavar="MODULE",
                   help="import this module first (it registers its own spaces, strategies, evaluators, ...); "
                        "repeatable; also $NARNAS_PLUGINS; recorded in config.json and imported again on --resume")
    p.add_argument("--no-plots", dest="plots", action="store_false", help="do not draw plots [run.plots]")
    return p


def config_tree(args) -> dict:
    from .config import tree_from_args
    values = vars(args)
    return tree_from_args({k: v for k, v in values.items() if k not in ("sets", "plugin")}, values.get("sets"))


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_main(lambda: _main(args))


def _main(args) -> int:
    from . import config as search_config
    from .loop import Search

    from narnas.plugins import load_plugins

    from .rundir import RunDir

    search = None
    try:
        given = getattr(args, "plugin", None) or []
        if getattr(args, "resume", None):
            if getattr(args, "out", None):
                raise SearchError("give either --resume RUN or --out, not both")
            recorded = RunDir(args.resume).read_config().get("plugins", []) if Path(args.resume).is_dir() else []
            plugins = load_plugins(list(recorded) + list(given))
            tree = config_tree(args)
            # quiet belongs to this invocation (a log or a terminal), not to the run it continues
            tree.setdefault("run", {})["quiet"] = bool(getattr(args, "quiet", False))
            search = Search(None, args.resume, resume=True, force=getattr(args, "force", False), overrides=tree)
        else:
            plugins = load_plugins(given)
            tree = config_tree(args)
            config = search_config.build(tree)
            out = getattr(args, "out", None)
            if out is not None and not out.strip():
                raise SearchError("--out is empty: name a run folder, or leave --out out for runs/<space>-...")
            out = out or default_out(config)
            search = Search(config, out, plugins=plugins)
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries the result line alone (Ray prints notices)
            summary = search.run()
    except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM, in any phase and under any executor
        folder = search.run_dir.path if search is not None else None
        hint = f": continue with python -m search.run --resume {folder}" if folder else ""
        print(f"interrupted{hint}", file=sys.stderr, flush=True)
        return interrupt_code(err)
    best = summary["best"]
    print(json.dumps({"run": str(search.run_dir.path), "best": best, "evaluations": summary["evaluations"],
                      "wall_seconds": summary["wall_seconds"]}))
    print(f"results in {search.run_dir.path} (summary.json, best.json, plots/); an HTML report: "
          f"python -m search.report {search.run_dir.path}", file=sys.stderr)
    return 0


def default_out(config) -> Path:
    return Path("runs") / f"{config.space.name}-{config.strategy.name}-s{config.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


if __name__ == "__main__":
    sys.exit(main())
