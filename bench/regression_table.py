"""``python -m bench.regression_table FILE.json ...``: RMSE and Pearson r of ``bench.predictors``
runs as arch2vec's papers report them: mean ± standard deviation over seeds, on every test
arch and on those above ``--test-min`` (the ``above`` entry), one row per (space, train size,
predictor, variant).

  python -m bench.regression_table results/arch2vec/*.json > table.md
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict

import numpy as np

from .table import SPACE_ORDER, _order, load_runs, variant

HEADER = ("| space | train | predictor | variant | seeds | RMSE | Pearson r | Kendall tau | RMSE above | "
          "Pearson r above | archs above | command |\n|---|---|---|---|---|---|---|---|---|---|---|---|")


def _spread(values) -> str:
    values = np.asarray(values, float)
    return f"{values.mean():.3f} ± {values.std():.3f}"


def rows(runs: list[tuple[str, dict]]) -> list[str]:
    groups = defaultdict(list)
    for path, run in runs:
        groups[(run["space"], run["train_size"], run["predictor"], variant(run))].append(run)
    out = []
    for (space, size, name, var), group in sorted(groups.items(), key=lambda kv: (
            _order(SPACE_ORDER, kv[0][0]), kv[0][1], kv[0][2], kv[0][3])):
        above = [r["above"] for r in group if "above" in r]
        threshold = f"≥ {above[0]['min']:g}: {int(np.median([a['count'] for a in above]))}" if above else "—"
        cfg = group[0]["config"]
        command = (f"`bench.predictors --space {space} --predictor {name} --train-size {size}"
                   + "".join(f" --set {s}" for s in cfg.get("set") or [])
                   + (f" --test-min {cfg['test_min']:g}" if cfg.get("test_min") is not None else "") + "`")
        out.append(f"| {space} | {size} | {name} | {var or 'default'} | {len(group)} | "
                   f"{_spread([r['rmse'] for r in group])} | {_spread([r['pearson'] for r in group])} | "
                   f"{_spread([r['kendall_tau'] for r in group])} | "
                   f"{_spread([a['rmse'] for a in above]) if above else '—'} | "
                   f"{_spread([a['pearson'] for a in above]) if above else '—'} | {threshold} | {command} |")
    return out


def main(argv=None) -> int:
    from narnas.cli import run_main
    return run_main(lambda: _main(argv))


def _main(argv) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.regression_table", description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="+")
    args = p.parse_args(argv)
    runs = load_runs(args.files, strict=True)
    print(HEADER)
    print("\n".join(rows(runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
