"""python -m bench.search: strategies against each other over seeds (benchmark look-ups).

  python -m bench.search --space nb201 --strategies narformer,rea,random --budget 100 --seeds 10
                         [--schedules rounds,async] [--stoppers none,asha,curve] [--slots N]
                         [--data PATH --target COL --test-target COL] [--workers N] [--json OUT]
  python -m bench.search --space nb201 --strategies narformer --budget 50 --prior-budget 50

Per strategy (under each schedule and stopper): mean and standard deviation of the test
accuracy of the arch each search picks (the best by the search metric), the fraction of seeds
whose pick is the table's best arch by the search metric (``optimum_rate``) or by test
accuracy (``test_optimum_rate``), the run's clock (simulated from the table's training
times), its training cost, the share of slot time busy, and wall time. Each seed is a real
search (the search driver, in a temporary folder); seeds run in parallel worker processes,
one torch thread each. Plots of the mean best test accuracy against evaluations, the clock
and the cost go beside the JSON.

With ``--prior-budget N``, what a warm start saves: each seed S first runs the same search
with seed S + 1000 and N evaluations, then the measured search with that run as its
``--prior``; reported are the evaluations the first run needed to reach its best search
value and those the measured search needed to match it (it never evaluates the prior's
archs again, so it must find another one as good).
"""
from __future__ import annotations

import argparse
import json
import warnings
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from narnas.cli import parse_overrides, run_main
from narnas.files import atomic_write_bytes, writable_file
from narnas.progress import Progress, interactive

from search import config as search_config
from search.config import SearchConfig
from search.errors import SearchError
from search.loop import versions


PRIOR_SEED_OFFSET = 1000  # --prior-budget: the first run of seed S has seed S + 1000


def run_one(config: SearchConfig, prior: SearchConfig | None = None) -> dict:
    """One search (a config), run by the search driver in a temporary folder (quiet, no plots):
    its pick, its clock and cost, and its curves of the reported value of the best so far
    against evaluations (in the order results arrived), the run's clock and its cost. With
    ``prior``, that search runs first and the measured one learns from it (``--prior``)."""
    import shutil
    import tempfile

    import torch
    torch.set_num_threads(1)
    from search.loop import Search
    from search.report import best_entry, best_so_far, best_test_so_far

    def quiet(c: SearchConfig, **changes) -> SearchConfig:
        return search_config.build(search_config.merge(search_config.to_dict(c),
                                                       {"run": {"quiet": True, "plots": False}, **changes}))
    folder = tempfile.mkdtemp(prefix="narnas-bench-")
    try:
        first = None
        if prior is not None:
            first_search = Search(quiet(prior), Path(folder) / "prior", log=lambda line: None)
            first_search.run()
            first = first_search.entries()
            config = quiet(config, strategy={"prior": str(Path(folder) / "prior")})
        else:
            config = quiet(config)
        start = time.time()
        search = Search(config, Path(folder) / "run", log=lambda line: None)
        summary = search.run()
        wall = time.time() - start
        entries = search.entries()
        journal = search.run_dir.read_journal()
        measures, evaluator = search.measures, search.evaluator
        space, learned_from = search.space, len(search.prior)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    # The curve follows the reported value: the test value where the evaluator has one, else
    # the search value itself (a surrogate's).
    curve_of = best_test_so_far if evaluator.test_metric else best_so_far
    best = best_entry(entries)
    run = {"seed": config.seed, "best_key": best["key"], "best_val": best["value"], "best_test": best["test"],
           "evaluations": len(entries), "wall_seconds": round(wall, 2),
           "curve": [None if np.isnan(v) else float(v) for v in curve_of(entries)]}
    for name in ("clock_seconds", "cost_seconds", "utilisation", "steady_utilisation", "stopped"):
        run[name] = summary.get(name)
    if all(isinstance(r.get("ended"), (int, float)) for r in journal):
        # against the clock: the results in the order they ended; against the cost: summed in
        # the order they arrived
        by_end = sorted(journal, key=lambda r: r["ended"])
        as_entries = lambda records: [{"value": r.get("val") if r.get("status", "ok") == "ok" else None,  # noqa: E731
                                       "test": r.get("test")} for r in records]
        run["by_clock"] = [[r["ended"], None if np.isnan(v) else float(v)]
                           for r, v in zip(by_end, curve_of(as_entries(by_end)))]
        spent = np.cumsum([r.get("cost") or 0.0 for r in journal])
        run["by_cost"] = [[round(float(c), 2), None if np.isnan(v) else float(v)]
                          for c, v in zip(spent, curve_of(as_entries(journal)))]
    for name, fn in measures.items():
        run[f"best_{name}"] = float(fn(space.from_json(best["arch"])))
    if first is not None:
        run["prior"] = dict(warm_start_saving(best_so_far(first), best_so_far(entries), prior.seed),
                            learned_from=learned_from)
    return run


def warm_start_saving(first: np.ndarray, measured: np.ndarray, seed: int) -> dict:
    """From the best-so-far search values of a first run and of the search that had it as its
    prior: the evaluations (counted from 1) the first needed to reach its best, and those the
    second needed to match that value (None: not within its budget)."""
    target = float(np.nanmax(first))
    reached = np.flatnonzero(measured >= target)
    return {"seed": seed, "evaluations": len(first), "best_val": target,
            "evaluations_to_best": int(np.flatnonzero(first >= target)[0]) + 1,
            "evaluations_to_match": int(reached[0]) + 1 if len(reached) else None}


def table_optimum(config: SearchConfig) -> tuple[str, str, float, float] | None:
    """The table's best arch by the search metric and by the test metric, among the archs
    within every constraint, and those two best values (a regret's reference); None when the
    evaluator is not a table look-up."""
    from search.middleware import measure_functions
    if config.evaluator.name != "benchmark":
        return None
    config, parts = search_config.resolve(config)
    space = parts.space
    evaluator = parts.evaluator_class(space, parts.evaluator_config)
    bench = evaluator.table  # opened once, by the evaluator
    val = bench.column(evaluator.metric).copy()
    test = bench.column(evaluator.test_metric).copy()
    limits = config.strategy.constraints
    if limits:
        fns = measure_functions(space, limits, evaluator)
        archs = list(bench.archs())
        feasible = np.array([all(fns[n](a) <= v for n, v in limits.items()) for a in archs])
        val[~feasible], test[~feasible] = -np.inf, -np.inf
    best_val, best_test = int(np.argmax(val)), int(np.argmax(test))
    return (str(space.key(bench.arch(best_val))), str(space.key(bench.arch(best_test))), float(val[best_val]),
            float(test[best_test]))


def summarise(runs: list[dict], optimum: tuple[str, str] | None, wall: float) -> dict:
    vals = np.array([r["best_val"] for r in runs])
    out = {"mean_val": round(float(vals.mean()), 4), "std_val": round(float(vals.std()), 4)}
    for name in ("clock_seconds", "cost_seconds", "utilisation", "steady_utilisation", "stopped"):
        if all(r.get(name) is not None for r in runs):
            out[f"mean_{name}"] = round(float(np.mean([r[name] for r in runs])), 4)
    if all(r["best_test"] is not None for r in runs):
        tests = np.array([r["best_test"] for r in runs])
        out.update(mean_test=round(float(tests.mean()), 4), std_test=round(float(tests.std()), 4))
    if optimum is not None:
        out.update(optimum_rate=float(np.mean([r["best_key"] == optimum[0] for r in runs])),
                   test_optimum_rate=float(np.mean([r["best_key"] == optimum[1] for r in runs])))
    if all("prior" in r for r in runs):
        priors = [r["prior"] for r in runs]
        to_match = [p["evaluations_to_match"] for p in priors]
        # a seed that never matched counts as one evaluation past its budget: the mean is a lower bound
        counted = [m if m is not None else r["evaluations"] + 1 for m, r in zip(to_match, runs)]
        out["prior"] = {"evaluations": priors[0]["evaluations"],
                        "mean_evaluations_to_best": float(np.mean([p["evaluations_to_best"] for p in priors])),
                        "mean_evaluations_to_match": float(np.mean(counted)),
                        "matched": sum(m is not None for m in to_match),
                        "fewer": sum(m is not None and m < p["evaluations_to_best"] for m, p in zip(to_match, priors))}
    return dict(out, wall_seconds=round(wall, 1), per_seed=runs)


def run_seeds(pool, configs: list, progress, priors: list | None = None) -> list[dict]:
    """Every config's search (after its prior's, where given), in the order given, with a bar
    over finished seeds."""
    futures = [pool.submit(run_one, c, p) for c, p in zip(configs, priors or [None] * len(configs))]
    done = 0
    try:
        for _ in as_completed(futures):
            done += 1
            progress.update(done)
    finally:
        progress.close()
    return [f.result() for f in futures]


def build_parser():
    p = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[1:]))
    p.add_argument("--space", default="nb201")
    p.add_argument("--strategies", default="narformer,rea,random", help="comma-separated")
    p.add_argument("--schedules", default="rounds", help="comma-separated: rounds, async (each strategy under each)")
    p.add_argument("--stoppers", default="none",
                   help="comma-separated: none, asha, curve (each async schedule with each; rounds stop nothing)")
    p.add_argument("--slots", type=int, help="async: evaluations in flight (default: --batch)")
    p.add_argument("--budget", type=int, default=100)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--init", type=int, default=10)
    p.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1")
    p.add_argument("--prior-budget", type=int, metavar="N",
                   help="what a warm start saves: each seed S first runs the same search of N evaluations with "
                        "seed S + 1000, then the measured one with it as --prior (strategies that learn from a prior)")
    p.add_argument("--predictor", default="narformer")
    p.add_argument("--predictor-set", action="append", metavar="KEY=VALUE", help="predictor config override")
    p.add_argument("--set", action="append", metavar="PATH=VALUE", dest="options",
                   help="any other search config key, by its path or its search.run flag name, "
                        "e.g. strategy.config.candidates=1000 or candidates=1000")
    p.add_argument("--evaluator", help="how archs are evaluated (default: the space's; nb201: benchmark, "
                                       "ofa_mbv3: ofa-acc-predictor)")
    p.add_argument("--space-set", action="append", metavar="KEY=VALUE", help="space option (e.g. width_mult=1.2)")
    p.add_argument("--constraint", action="append", metavar="NAME<=VALUE",
                   help="a limit every proposal keeps (e.g. macs<=400M), repeatable")
    p.add_argument("--oracle", action="store_true",
                   help="ofa_mbv3: add OFA's own evolutionary search with the evaluator as fitness (population 100, "
                        "500 generations), which bounds what a budget of evaluations can reach")
    p.add_argument("--data")
    p.add_argument("--target", help="search metric (default: the benchmark's validation accuracy)")
    p.add_argument("--test-target", help="reported metric (default: the benchmark's test accuracy)")
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="parallel seeds (default: all cores)")
    p.add_argument("--json", help="write the results here (and a plot beside it)")
    p.add_argument("--plugin", action="append", metavar="MODULE",
                   help="import this module first (it registers its own spaces, strategies, ...); repeatable")
    p.add_argument("--quiet", action="store_true", help="no progress bar (there is none in a log either)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_main(lambda: _main(args))


def base_tree(args) -> dict:
    """The config tree every strategy and seed shares."""
    tree = search_config.tree_from_args({
        "space": args.space, "budget": args.budget, "batch": args.batch, "init": args.init,
        "predictor": args.predictor, "evaluator": args.evaluator, "data": args.data, "metric": args.target,
        "test_metric": args.test_target, "predictor_set": args.predictor_set, "constraint": args.constraint,
        "space_set": args.space_set})
    tree = _drop_none(tree)
    for key, value in parse_overrides(args.options).items():
        if key in search_config.FLAGS:
            path, convert = search_config.FLAGS[key][:2]
            if isinstance(value, str):  # as search.run's flag reads it: proxies=a,b is a list
                value = convert(value)
        elif key in search_config.SWITCHES:  # --warm-start, --quiet, --no-plots of search.run
            path = search_config.SWITCHES[key][0]
        else:
            path = key
        search_config.configs.set_path(tree, path, value)
    return tree


def check_prior_budget(budget: int, names: list[str]) -> None:
    """--prior-budget's one-line errors, before any search."""
    from search.registry import STRATEGIES
    if budget < 1:
        raise SearchError(f"--prior-budget must be >= 1, got {budget}")
    learners = sorted(n for n in STRATEGIES.names() if STRATEGIES.get(n).learns_from_prior)
    others = [n for n in names if n in STRATEGIES.names() and n not in learners]
    if others:
        raise SearchError(f"--prior-budget: {', '.join(others)} does not learn from a prior; strategies that do: "
                          f"{', '.join(learners)}")


def strategy_settings(tree: dict, names: list[str]) -> dict[str, dict]:
    """Each strategy's own settings from the shared ``strategy.config``: every strategy gets the
    keys it has (``--set population=7`` goes to rea, not to random); a key that none of them
    has is an error listing what each takes."""
    import dataclasses

    from search.registry import strategy_class
    given = tree.get("strategy", {}).get("config", {})
    fields = {name: {f.name for f in dataclasses.fields(strategy_class(name).config_class)} for name in names}
    unused = sorted(set(given) - set().union(*fields.values()))
    if unused:
        takes = "; ".join(f"{n}: {', '.join(sorted(f)) or 'none'}" for n, f in fields.items())
        raise SearchError(f"no strategy of --strategies takes {', '.join(unused)} (their settings: {takes})")
    return {name: {k: v for k, v in given.items() if k in fields[name]} for name in names}


def _drop_none(tree: dict) -> dict:
    """Flags not given stay out of the tree (so the space's defaults apply)."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            value = _drop_none(value)
            if value:
                out[key] = value
        elif value is not None:
            out[key] = value
    return out


def _main(args) -> int:
    from narnas.plugins import load_plugins
    plugins = load_plugins(args.plugin)
    if args.seeds < 1 or args.workers < 1:
        raise SearchError("--seeds and --workers must be >= 1")
    names = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if not names:
        raise SearchError("--strategies names no strategy (e.g. narformer,rea,random)")
    if args.prior_budget is not None:
        check_prior_budget(args.prior_budget, names)
    schedules = [s.strip() for s in args.schedules.split(",") if s.strip()]
    stoppers = [s.strip() for s in args.stoppers.split(",") if s.strip()]
    variants = [(name, schedule, stopper) for name in names for schedule in schedules
                for stopper in (stoppers if schedule == "async" else ["none"])]
    if args.oracle and args.space != "ofa_mbv3":
        raise SearchError(f"--oracle runs OFA's evolution, which needs the ofa_mbv3 space, not {args.space}")
    out_file = writable_file(args.json, "--json") if args.json else None  # before the searches, not after
    tree = base_tree(args)
    configs = {}
    settings = strategy_settings(tree, names)
    for strategy, schedule, stopper in variants:
        name = variant_name(strategy, schedule, stopper)
        strategy_tree = search_config.merge(tree, {"strategy": {"name": strategy},
                                                   "schedule": {"name": schedule, "slots": args.slots or 0},
                                                   "stopper": {"name": stopper}})
        strategy_tree["strategy"]["config"] = settings[strategy]
        resolved, _ = search_config.resolve(search_config.build(strategy_tree))
        resolved.strategy.check_budget()  # here, not in each seed's worker
        configs[name] = [search_config.build(dict(search_config.to_dict(resolved), seed=s)) for s in range(args.seeds)]
    priors = {name: [search_config.build(search_config.merge(search_config.to_dict(c), {
        "seed": c.seed + PRIOR_SEED_OFFSET, "strategy": {"budget": args.prior_budget}})) for c in seeds]
        for name, seeds in configs.items()} if args.prior_budget is not None else {}
    for first_runs in priors.values():
        search_config.resolve(first_runs[0])[0].strategy.check_budget()
    names = list(configs)
    optimum = table_optimum(configs[names[0]][0])
    results = {}
    with ProcessPoolExecutor(args.workers, initializer=load_plugins, initargs=(plugins,)) as pool:
        for name in names:
            start = time.time()
            runs = run_seeds(pool, configs[name], Progress(args.seeds, interactive(args.quiet), f"{name} seeds"),
                             priors.get(name))
            results[name] = dict(summarise(runs, optimum, time.time() - start),
                                 settings=configs[name][0].strategy.config)
            r = results[name]
            shown = "test" if "mean_test" in r else "val"
            rate = f"  optimum {r['optimum_rate']:.0%}" if "optimum_rate" in r else ""
            steady = r.get("mean_steady_utilisation")
            clock = (f"  clock {r['mean_clock_seconds'] / 3600:.1f} h  cost {r['mean_cost_seconds'] / 3600:.1f} h  "
                     f"slots busy {r['mean_utilisation']:.0%}"
                     + (f" ({steady:.0%} until the last start)" if steady is not None else "")
                     if r.get("mean_utilisation") is not None else "")
            warm = (f"  the prior's best: reached at evaluation {r['prior']['mean_evaluations_to_best']:.1f} by the "
                    f"first run, matched at {r['prior']['mean_evaluations_to_match']:.1f} ({r['prior']['matched']}/"
                    f"{args.seeds} matched, {r['prior']['fewer']} sooner)" if "prior" in r else "")
            print(f"{name:10s} mean {shown} {r[f'mean_{shown}']:.2f} ± {r[f'std_{shown}']:.2f}{rate}{clock}{warm}  "
                  f"{r['wall_seconds']:.0f} s", file=sys.stderr, flush=True)
    if args.oracle:
        from .oracle import evolution_oracle
        results["oracle"] = evolution_oracle(configs[names[0]][0])
        print(f"oracle     best {results['oracle']['best_val']:.2f} after {results['oracle']['evaluations']:,} "
              f"evaluations, {results['oracle']['wall_seconds']:.0f} s", file=sys.stderr, flush=True)
    shared = search_config.to_dict(configs[names[0]][0])
    shared["strategy"] = dict(shared["strategy"], name=None, config=None)  # each strategy's: its "settings"
    out = {"strategies": results, "config": dict(shared, seed=None, strategies=names, seeds=args.seeds,
                                                 workers=args.workers, prior_budget=args.prior_budget),
           "optimum": None if optimum is None else {"by_metric": optimum[0], "by_test": optimum[1],
                                                    "best_val": optimum[2], "best_test": optimum[3]},
           "versions": versions()}
    text = to_text(out)
    if out_file is not None:
        atomic_write_bytes(out_file, (text + "\n").encode())
        plot(results, out_file.with_suffix(".png"), args.space)
    print(json.dumps({n: {k: v for k, v in r.items() if k not in ("per_seed", "curve", "settings")}
                      for n, r in results.items()}))
    return 0


def to_text(out: dict) -> str:
    """The results as indented JSON, each seed's run on one line: its curves hold a point per
    evaluation, which indented one number a line would make megabytes."""
    runs = []

    def mark(run) -> str:
        runs.append(run)
        return f"\u0000run{len(runs) - 1}"
    marked = {name: dict(r, per_seed=[mark(run) for run in r["per_seed"]]) if "per_seed" in r else r
              for name, r in out["strategies"].items()}
    text = json.dumps(dict(out, strategies=marked), indent=2)
    for i, run in enumerate(runs):
        text = text.replace(json.dumps(f"\u0000run{i}"), json.dumps(run))
    return text


def variant_name(strategy: str, schedule: str, stopper: str) -> str:
    """``rea``, ``rea/async``, ``rea/async+asha``: a strategy under a schedule and a stopper."""
    return strategy + ("" if schedule == "rounds" else f"/{schedule}") + ("" if stopper == "none" else f"+{stopper}")


def mean_step_curve(curves: list[list], grid: np.ndarray) -> np.ndarray:
    """The mean over seeds of step curves ``[[x, value], ...]`` (each holds its last value from
    its x on; NaN before its first value), on ``grid``."""
    rows = []
    for points in curves:
        xs = np.array([p[0] for p in points], dtype=float)
        ys = np.array([np.nan if p[1] is None else p[1] for p in points], dtype=float)
        at = np.searchsorted(xs, grid, side="right") - 1
        rows.append(np.where(at >= 0, ys[np.clip(at, 0, None)], np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # before any seed has a value
        return np.nanmean(np.array(rows), axis=0)


def plot(results: dict, path: Path, space: str) -> None:
    """The mean best-so-far against evaluations; where the runs have a clock, also against
    the run's clock (hours, simulated for look-ups) and against the training cost (hours)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    timed = [n for n, r in results.items() if "per_seed" in r and all("by_clock" in run for run in r["per_seed"])]
    fig, axes = plt.subplots(1, 3 if timed else 1, figsize=(15 if timed else 6, 4), squeeze=False)
    ax = axes[0][0]
    for name, r in results.items():
        if "per_seed" not in r:
            if "best_val" in r:
                ax.axhline(r["best_val"], color="0.4", linestyle=":", label=f"{name} ({r['evaluations']:,} evaluations)")
            continue
        # seeds under a cost budget end after different numbers of evaluations: NaN past each end
        longest = max(len(run["curve"]) for run in r["per_seed"])
        curves = np.full((len(r["per_seed"]), longest), np.nan)
        for row, run in zip(curves, r["per_seed"]):
            row[:len(run["curve"])] = [np.nan if v is None else v for v in run["curve"]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a step where no seed has a value yet
            ax.plot(np.arange(1, curves.shape[1] + 1), np.nanmean(curves, axis=0), label=name)
    ax.set_xlabel("evaluations")
    ax.set_ylabel("mean reported value of the best so far")
    ax.set_title(f"{space}: {len(next(iter(results.values()))['per_seed'])} seeds")
    ax.legend()
    for ax, key, label in zip(axes[0][1:], ("by_clock", "by_cost"), ("the run's clock (hours)", "training cost (hours)")):
        end = max(p[0] for n in timed for run in results[n]["per_seed"] for p in run[key][-1:])
        grid = np.linspace(0, end, 400)
        for name in timed:
            ax.plot(grid / 3600, mean_step_curve([run[key] for run in results[name]["per_seed"]], grid), label=name)
        ax.set_xlabel(label)
        ax.legend()
    finals = [np.nanmean([run["curve"][-1] for run in r["per_seed"] if run["curve"][-1] is not None])
              for r in results.values() if "per_seed" in r]
    if finals and np.all(np.isfinite(finals)):  # the approach to the end, not the first random archs
        for ax in axes[0]:
            ax.set_ylim(bottom=min(finals) - 2, top=max(finals) + 0.5)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
