"""python -m bench.regret: regret curves of searches saved by ``bench.search --json``.

  python -m bench.regret LABEL=RESULT.json[:STRATEGY] ... [--optimum VALUE] [--log] --out regret.png
                         [--json OUT]

Regret after k evaluations = the table's best test value (the JSON's ``optimum.best_test``,
or ``--optimum``) minus the test value of the arch the search would pick after k evaluations
(its best by the search metric so far). Per curve: the mean and standard error over the
JSON's seeds at every evaluation, and the final mean regret. Curves from several JSONs share
one plot, so searches run with different settings (e.g. ``reinforce`` on arch2vec's
embeddings and on the input-output model's) compare at the same budget.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from narnas.cli import run_main
from narnas.errors import UserError
from narnas.files import atomic_write_bytes, writable_file


class RegretError(UserError):
    pass


def parse_curve_spec(spec: str) -> tuple[str, Path, str | None]:
    """``LABEL=FILE[:STRATEGY]`` -> (label, file, strategy or None: the file's only one)."""
    label, sep, rest = spec.partition("=")
    if not sep or not label or not rest:
        raise RegretError(f"{spec!r}: expected LABEL=RESULT.json[:STRATEGY], e.g. arch2vec=latent.json:reinforce")
    path, colon, strategy = rest.rpartition(":")
    if not colon or strategy.endswith(".json"):
        path, strategy = rest, ""
    return label, Path(path), strategy or None


def seed_curves(result: dict, strategy: str | None, where: str) -> np.ndarray:
    """[seeds, evaluations] reported values of one strategy (NaN before the first value)."""
    strategies = result.get("strategies")
    if not isinstance(strategies, dict):
        raise RegretError(f"{where} is not a bench.search result (no 'strategies')")
    searches = {name: r for name, r in strategies.items() if "per_seed" in r}
    if strategy is None:
        if len(searches) != 1:
            raise RegretError(f"{where} holds {len(searches)} searches ({', '.join(searches)}): name one as "
                              f"LABEL={where}:STRATEGY")
        strategy = next(iter(searches))
    if strategy not in searches:
        raise RegretError(f"{where} has no strategy {strategy!r}; it has: {', '.join(sorted(searches))}")
    runs = searches[strategy]["per_seed"]
    length = max(len(r["curve"]) for r in runs)
    curves = np.full((len(runs), length), np.nan)
    for i, run in enumerate(runs):
        values = np.array([np.nan if v is None else v for v in run["curve"]], dtype=float)
        curves[i, :len(values)] = values
        curves[i, len(values):] = values[-1] if len(values) else np.nan  # a search that stopped early keeps its pick
    return curves


def regret_summary(curves: np.ndarray, optimum: float) -> dict:
    """Mean and standard error of the regret at every evaluation (a seed without a value yet is
    left out of that step)."""
    regret = optimum - curves
    counted = np.sum(~np.isnan(regret), axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # steps no seed has reached yet: NaN
        mean = np.nanmean(regret, axis=0)
        sem = np.nanstd(regret, axis=0, ddof=1) / np.sqrt(counted)
    final = regret[:, -1]
    final = final[~np.isnan(final)]
    rounded = lambda values: [None if np.isnan(v) else round(float(v), 6) for v in values]  # noqa: E731
    return {"seeds": int(len(curves)), "evaluations": int(curves.shape[1]), "mean": rounded(mean),
            "sem": rounded(sem), "final_mean": round(float(final.mean()), 6),
            "final_sem": round(float(final.std(ddof=1) / np.sqrt(len(final))), 6) if len(final) > 1 else None,
            "zero_regret_share": round(float(np.mean(final <= 1e-9)), 4)}


def _main(args) -> int:
    if not args.curves:
        raise RegretError("name at least one curve: LABEL=RESULT.json[:STRATEGY]")
    out_file = writable_file(args.out, "--out")
    json_file = writable_file(args.json, "--json") if args.json else None
    summaries = {}
    for spec in args.curves:
        label, path, strategy = parse_curve_spec(spec)
        if label in summaries:
            raise RegretError(f"label {label!r} is given twice")
        if not path.is_file():
            raise RegretError(f"{path} does not exist (write it with python -m bench.search --json {path})")
        try:
            result = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise RegretError(f"{path} is not JSON ({err.msg}, line {err.lineno})") from None
        optimum = args.optimum
        if optimum is None:
            optimum = ((result.get("optimum") or {}).get("best_test"))
            if optimum is None:
                raise RegretError(f"{path} records no table optimum (a search off a table, or a JSON from before "
                                  "bench.search wrote optimum.best_test): give --optimum VALUE")
        curves = seed_curves(result, strategy, str(path))
        summaries[label] = dict(regret_summary(curves, float(optimum)), file=str(path), strategy=strategy,
                                optimum=float(optimum))
    plot(summaries, out_file, args.log)
    text = json.dumps({"curves": summaries}, indent=2)
    if json_file is not None:
        atomic_write_bytes(json_file, (text + "\n").encode())
    for label, s in summaries.items():
        sem = "" if s["final_sem"] is None else f" ± {s['final_sem']:.4f}"
        print(f"{label:16s} final regret {s['final_mean']:.4f}{sem} over {s['seeds']} seeds, "
              f"{s['zero_regret_share']:.0%} at zero", file=sys.stderr)
    return 0


def plot(summaries: dict, path: Path, log: bool) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, s in summaries.items():
        steps = np.arange(1, s["evaluations"] + 1)
        mean = np.array([np.nan if v is None else v for v in s["mean"]], dtype=float)
        sem = np.array([np.nan if v is None else v for v in s["sem"]], dtype=float)
        line, = ax.plot(steps, mean, label=f"{label} ({s['seeds']} runs)")
        ax.fill_between(steps, mean - sem, mean + sem, color=line.get_color(), alpha=0.2, linewidth=0)
    if log:
        ax.set_yscale("symlog", linthresh=1e-2)
    ax.set_xlabel("evaluations")
    ax.set_ylabel("test regret (mean ± s.e.)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def build_parser():
    p = argparse.ArgumentParser(prog="python -m bench.regret", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[1:]))
    p.add_argument("curves", nargs="*", metavar="LABEL=RESULT.json[:STRATEGY]")
    p.add_argument("--optimum", type=float, help="the best test value (default: each JSON's optimum.best_test)")
    p.add_argument("--log", action="store_true", help="a symmetric-log regret axis")
    p.add_argument("--out", required=True, help="the plot (PNG)")
    p.add_argument("--json", help="the curves' numbers")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_main(lambda: _main(args))


if __name__ == "__main__":
    sys.exit(main())
