"""``python -m bench.table FILE.json ...``: the docs' predictor table from
``bench.predictors`` JSON files.

Runs of one (space, train size, predictor, variant) are one row: the median Kendall tau
over their seeds, each seed's tau, and the medians of the other figures. The variant is
the run's ``--set`` values, leaving out those that change speed only (threads, device).
Runs with ``--score-evaluator`` add a row for that evaluator after their (space, train
size) rows: its tau on the same test archs, once per seed.

  python -m bench.table results/predictor/*.json > table.md
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

SPEED_ONLY = ("threads", "device", "quiet")
SPACE_ORDER = ("nb201", "nb101", "ofa_mbv3")
PREDICTOR_ORDER = ("narformer", "tnasp", "gin", "mlp", "ridge")
HEADER = ("| space | train | predictor | variant | Kendall tau (median) | per seed | tau vs test | Spearman "
          "| precision@top 5% | fit | predict archs/s | JSON |\n|---|---|---|---|---|---|---|---|---|---|---|---|")


def variant(run: dict) -> str:
    items = [item for item in run["config"].get("set") or [] if item.partition("=")[0] not in SPEED_ONLY]
    return " ".join(items)


def _order(values, key):
    return values.index(key) if key in values else len(values)


def rows(runs: list[tuple[str, dict]]) -> list[str]:
    groups = defaultdict(list)
    for path, run in runs:
        groups[(run["space"], run["train_size"], run["predictor"], variant(run))].append((path, run))
    keys = sorted(groups, key=lambda k: (_order(SPACE_ORDER, k[0]), k[1], _order(PREDICTOR_ORDER, k[2]),
                                         k[3] != "", k[3]))
    out = []
    for i, key in enumerate(keys):
        group = sorted(groups[key], key=lambda item: item[1]["seed"])
        median = lambda name: float(np.median([run[name] for _, run in group if run.get(name) is not None]))
        seeds = ",".join(str(run["seed"]) for _, run in group)
        per_seed = " / ".join(f"{run['kendall_tau']:.3f}" for _, run in group)
        has_vs_test = any(run.get("kendall_tau_vs_test") is not None for _, run in group)
        vs_test = f"{median('kendall_tau_vs_test'):.3f}" if has_vs_test else "—"
        links = ", ".join(f"[s{run['seed']}]({path})" for path, run in group)
        space, train, name, var = key
        out.append(f"| {space} | {train} | `{name}` | {f'`{var}`' if var else 'default'} "
                   f"| **{median('kendall_tau'):.3f}** | {per_seed} (seed{'s' if len(group) > 1 else ''} {seeds}) "
                   f"| {vs_test} "
                   f"| {median('spearman'):.3f} | {median('precision_at_top_5pct'):.2f} "
                   f"| {median('fit_seconds'):.0f} s | {median('predict_archs_per_second'):,.0f} | {links} |")
        if i + 1 == len(keys) or keys[i + 1][:2] != key[:2]:
            out += reference_rows(space, train, [run for k in keys if k[:2] == key[:2] for _, run in groups[k]])
    return out


def reference_rows(space: str, train: int, runs: list[dict]) -> list[str]:
    """One row per evaluator scored beside the predictors (``--score-evaluator``), one tau per seed."""
    by_name = defaultdict(dict)
    for run in runs:
        ref = run.get("reference")
        if ref:
            by_name[ref["evaluator"]].setdefault(run["seed"], ref)
    out = []
    for name, per_seed in sorted(by_name.items()):
        seeds = sorted(per_seed)
        taus = [per_seed[s]["kendall_tau"] for s in seeds]
        median = lambda field: float(np.median([per_seed[s][field] for s in seeds]))
        out.append(f"| {space} | {train} | `{name}` | reference: scored on the same test archs, no fit "
                   f"| **{float(np.median(taus)):.3f}** | {' / '.join(f'{t:.3f}' for t in taus)} "
                   f"(seed{'s' if len(seeds) > 1 else ''} {','.join(map(str, seeds))}) | — "
                   f"| {median('spearman'):.3f} | {median('precision_at_top_5pct'):.2f} | — | — | — |")
    return out


def load_runs(files, strict: bool) -> list[tuple[str, dict]]:
    """(path, result) of each bench.predictors JSON; a file that is no such result is an error
    when ``strict``, else passed over."""
    from narnas.errors import UserError
    runs = []
    for name in files:
        try:
            run = json.loads(Path(name).read_text())
        except (OSError, ValueError) as err:
            raise UserError(f"cannot read {name}: {err}") from None
        if isinstance(run, dict) and "kendall_tau" in run and "config" in run:
            runs.append((name, run))
        elif strict:
            raise UserError(f"not a bench.predictors result: {name}")
    return runs


def main(argv=None) -> int:
    from narnas.cli import run_main
    return run_main(lambda: _main(argv))


def _main(argv) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.table", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.split("\n")[2:]))
    parser.add_argument("files", nargs="+", help="bench.predictors JSON files")
    args = parser.parse_args(argv)
    runs = load_runs(args.files, strict=True)
    print(HEADER)
    print("\n".join(rows(runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
