"""``python -m bench.paper_table FILE.json ...``: the papers' prediction tables beside ours,
row by row (bench/papers.py), from ``bench.predictors`` JSON files.

Each row: the paper's Kendall tau, the median of our matching runs over their seeds (on NB201
also against the test accuracy; "100 test archs" rows: the median over seeds of the median of
10 draws of 100 held-out archs, with the range of all draws), the difference, the command that
makes a seed's JSON and the JSONs used. Rows without runs say so, with their command.

  python -m bench.paper_table results/predictor/*.json > table.md
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict

import numpy as np

from .papers import GROUND_TRUTH, ROWS, PaperRow
from .table import load_runs, variant

NB101_DATA = "../shared/data/nb101/nb101_subset_valacc.npz"
HEADER = ("| paper, table | space | train | test archs | model | paper's tau | ours (median) | ours vs test | "
          "ours − paper | command (add --seed S --json FILE) | JSON |\n|---|---|---|---|---|---|---|---|---|---|---|")


def group_runs(runs: list[tuple[str, dict]]) -> dict:
    groups = defaultdict(list)
    for path, run in runs:
        items = tuple(sorted(variant(run).split())) if variant(run) else ()
        groups[(run["space"], run["train_size"], run["predictor"], items)].append((path, run))
    return groups


def command(row: PaperRow) -> str:
    predictor, sets = row.ours
    data = f" --data {NB101_DATA}" if row.space == "nb101" else ""
    extra = "".join(f" --set {item}" for item in sets)
    return f"`python -m bench.predictors --space {row.space}{data} --predictor {predictor} --train-size {row.train}{extra}`"


def line(row: PaperRow, groups: dict) -> str:
    paper = "—" if row.tau is None else f"{row.tau:.3f}"
    head = f"| {row.table} | {row.space} | {row.train:,} | {row.test} | {row.model} | {paper} "
    if row.ours is None or row.why_not:
        return head + f"| not run: {row.why_not} | | | | |"
    predictor, sets = row.ours
    found = sorted(groups.get((row.space, row.train, predictor, tuple(sorted(sets))), []),
                   key=lambda item: item[1]["seed"])
    if row.test == "100":
        found = [(p, r) for p, r in found if r.get("holdout", {}).get("size") == 100]
    if not found:
        return head + f"| not run yet | | | {command(row)} | |"
    seeds = ",".join(str(r["seed"]) for _, r in found)
    if row.test == "100":
        medians = [r["holdout"]["median"] for _, r in found]
        draws = [t for _, r in found for t in r["holdout"]["taus"]]
        ours = float(np.median(medians))
        shown = f"**{ours:.3f}** (seeds {seeds}; draws {min(draws):.3f}–{max(draws):.3f})"
    else:
        ours = float(np.median([r["kendall_tau"] for _, r in found]))
        shown = f"**{ours:.3f}** (seed{'s' if len(found) > 1 else ''} {seeds})"
    vs_test = [r["kendall_tau_vs_test"] for _, r in found if r.get("kendall_tau_vs_test") is not None]
    vs_test_text = f"{float(np.median(vs_test)):.3f}" if vs_test and row.test == "all" else "—"
    diff = "—" if row.tau is None else f"{ours - row.tau:+.3f}"
    links = ", ".join(f"[s{r['seed']}]({p})" for p, r in found)
    return head + f"| {shown} | {vs_test_text} | {diff} | {command(row)} | {links} |"


def render(runs: list[tuple[str, dict]]) -> str:
    groups = group_runs(runs)
    notes = "\n".join(f"- {space}: {text}." for space, text in GROUND_TRUTH.items())
    return HEADER + "\n" + "\n".join(line(row, groups) for row in ROWS) + "\n\nGround truth of our rows:\n" + notes + "\n"


def main(argv=None) -> int:
    from narnas.cli import run_main
    return run_main(lambda: _main(argv))


def _main(argv) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.paper_table", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.split("\n")[2:]))
    parser.add_argument("files", nargs="+", help="bench.predictors JSON files (others are passed over)")
    args = parser.parse_args(argv)
    print(render(load_runs(args.files, strict=False)), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
