"""``narnas``: one command for the engine's tools.

  narnas search --space nb201 --budget 100 --seed 0      # python -m search.run
  narnas report runs/nb201-s0                            # python -m search.report
  narnas train | export | io-data | spaces | embed | latency | zerocost ...
  narnas bench search --space nb201 ...                  # python -m bench.search, from a checkout
  narnas list [spaces|strategies|predictors|evaluators|...]
  narnas --version

Each subcommand is the ``python -m`` tool named beside it, with the same flags
(``narnas SUBCOMMAND --help``); the ``python -m`` names stay. It lives in ``search``, the
top installed layer, because it reaches every package below.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from narnas.cli import run_main
from narnas.errors import UserError

#: subcommand -> (module whose ``main(argv)`` it runs, what it does)
TOOLS = {
    "search": ("search.run", "run or resume a search (python -m search.run)"),
    "report": ("search.report", "a run folder's plots and HTML report (python -m search.report)"),
    "train": ("search.train", "train one architecture with its space's recipe (python -m search.train)"),
    "export": ("search.export", "a found architecture as PyTorch / ONNX files (python -m search.export)"),
    "io-data": ("search.io_data", "build arch2vec's input-output dataset (python -m search.io_data)"),
    "spaces": ("spaces.__main__", "sample, mutate, key, count, query a space (python -m spaces)"),
    "embed": ("embeddings.__main__", "pretrain arch2vec, encode archs, train the IO model (python -m embeddings)"),
    "latency": ("latency.__main__", "build and inspect a measured latency dataset (python -m latency)"),
    "zerocost": ("zerocost.__main__", "zero-cost proxies of a space's archs, cached, as a table (python -m zerocost)"),
}


def _registries() -> dict:
    """kind -> (registry, what the kind is); imported here so ``narnas --version`` starts nothing."""
    from latency.predictors import LATENCY_PREDICTORS
    from predictor.registry import PREDICTORS
    from spaces.registry import BENCHMARKS, SPACES
    from training.recipes import RECIPES
    from zerocost.proxies import PROXIES

    from .registry import EVALUATORS, EXECUTORS, MEASURES, STRATEGIES
    return {"spaces": (SPACES, "search spaces"), "benchmarks": (BENCHMARKS, "spaces with a tabular benchmark reader"),
            "strategies": (STRATEGIES, "search strategies (--strategy)"),
            "predictors": (PREDICTORS, "accuracy predictors (--predictor)"),
            "evaluators": (EVALUATORS, "evaluators (--evaluator)"), "executors": (EXECUTORS, "executors (--executor)"),
            "measures": (MEASURES, "constraint measures (--constraint NAME<=LIMIT)"),
            "recipes": (RECIPES, "training recipes, by space (search.train, cifar10-train)"),
            "latency-predictors": (LATENCY_PREDICTORS, "latency predictors of whole networks (bench.latency)"),
            "proxies": (PROXIES, "zero-cost proxies (--proxies, python -m zerocost)")}


def summary(factory) -> str:
    """The first line of a registered factory's docstring (a zero-cost proxy: its source)."""
    if getattr(factory, "source", None):
        return factory.source
    doc = (getattr(factory, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


def list_registered(kinds: list[str], plugins=()) -> str:
    from narnas.plugins import load_plugins
    load_plugins(plugins)
    registries = _registries()
    unknown = [k for k in kinds if k not in registries]
    if unknown:
        raise UserError(f"narnas list: unknown kind {', '.join(unknown)}; valid: {', '.join(registries)}")
    lines = []
    for kind in kinds or registries:
        registry, what = registries[kind]
        lines.append(f"{kind}: {what}")
        lines += [f"  {name:20s} {summary(registry.get(name))}".rstrip() for name in registry.names()]
    return "\n".join(lines)


def _bench(argv: list[str]) -> int:
    """``python -m bench.NAME ARGS`` from the repository checkout in the current folder."""
    folder = Path.cwd() / "bench"
    names = sorted(p.stem for p in folder.glob("*.py") if "\ndef main(" in p.read_text()) if folder.is_dir() else []
    if not names:
        raise UserError(f"narnas bench runs the repository's benchmark commands: no bench/ folder in {Path.cwd()} "
                        "(run it from a narnas checkout)")
    if not argv or argv[0] not in names:
        raise UserError(f"narnas bench: {'unknown benchmark ' + repr(argv[0]) if argv else 'name a benchmark'}; "
                        f"valid: {', '.join(names)}")
    sys.path.insert(0, str(Path.cwd()))
    return importlib.import_module(f"bench.{argv[0]}").main(argv[1:])


def usage() -> str:
    width = max(map(len, TOOLS)) + 2
    tools = "\n".join(f"  {name:{width}s}{what}" for name, (_, what) in TOOLS.items())
    return (f"usage: narnas SUBCOMMAND [ARGS]   (narnas SUBCOMMAND --help for its flags)\n\n{tools}\n"
            f"  {'bench':{width}s}the repository's benchmark commands: narnas bench NAME [ARGS] (from a checkout)\n"
            f"  {'list':{width}s}what is registered: narnas list [KIND ...] [--plugin MODULE]\n"
            f"  {'--version':{width + 2}s}the installed version")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "--version":
        from importlib.metadata import version
        print(f"narnas {version('narnas')}")
        return 0
    if command in TOOLS:
        from narnas.cli import invoked_as
        invoked_as(f"narnas {command}")
        return importlib.import_module(TOOLS[command][0]).main(rest)

    def other() -> int:
        if command == "bench":
            return _bench(rest)
        if command == "list":
            parser = argparse.ArgumentParser(prog="narnas list", description="what is registered, by kind")
            parser.add_argument("kinds", nargs="*", metavar="KIND", help="spaces, strategies, predictors, ...")
            parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                                help="import this plugin module first (repeatable; also $NARNAS_PLUGINS)")
            args = parser.parse_args(rest)
            print(list_registered(args.kinds, args.plugin))
            return 0
        raise UserError(f"unknown subcommand {command!r}; valid: {', '.join([*TOOLS, 'bench', 'list', '--version'])}")
    return run_main(other)


if __name__ == "__main__":
    sys.exit(main())
