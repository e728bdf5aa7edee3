"""``python -m bench.latency_table FILE.json ...``: README tables of the latency benchmarks.

Reads ``predictor.latency_fewshot`` results (one table: per target device, median over seeds
of the few-shot tau / MAPE / Acc(10%) beside its baselines) and ``predictor.latency_bench``
results (one table: per split and held-out family, each predictor's median MAPE, Acc(10%) and
tau over seeds).

  python -m bench.latency_table results/latency/*.json > tables.md
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from narnas.cli import run_main


def _med(values) -> float:
    return float(np.median(values))


def fewshot_rows(runs) -> list[str]:
    per_device = defaultdict(list)
    for run in runs:
        for device, r in run["devices"].items():
            per_device[device].append(r)
    out = ["| target device | seeds | few-shot tau | MAPE % | Acc(10%) | no adaptation tau | ridge on the shots tau |",
           "|---|---|---|---|---|---|---|"]
    for device in sorted(per_device):
        rs = per_device[device]
        out.append(f"| {device.removeprefix('lat_')} | {len(rs)} | {_med([r['few_shot']['kendall_tau'] for r in rs]):.3f} | "
                   f"{_med([r['few_shot']['mape'] for r in rs]):.1f} | {_med([r['few_shot']['acc10'] for r in rs]):.1f} | "
                   f"{_med([r['no_adaptation']['kendall_tau'] for r in rs]):.3f} | "
                   f"{_med([r['scratch']['kendall_tau'] for r in rs]):.3f} |")
    taus = [_med([r["few_shot"]["kendall_tau"] for r in rs]) for rs in per_device.values()]
    if taus:
        out.append(f"| **mean over devices** | | {np.mean(taus):.3f} | | | | |")
    return out


def bench_rows(runs) -> list[str]:
    cells = defaultdict(list)  # (split, family) -> predictor -> results
    for run in runs:
        if run["split"] == "random":
            cells[("random", "—")].append((run["predictor"], run))
        else:
            for family, r in run["families"].items():
                cells[("family", family)].append((run["predictor"], r))
    out = ["| split | test family | predictor | seeds | MAPE % | Acc(10%) | Kendall tau |", "|---|---|---|---|---|---|---|"]
    for (split, family) in sorted(cells):
        by_pred = defaultdict(list)
        for name, r in cells[(split, family)]:
            by_pred[name].append(r)
        for name in sorted(by_pred):
            rs = by_pred[name]
            out.append(f"| {split} | {family} | {name} | {len(rs)} | {_med([r['mape'] for r in rs]):.2f} | "
                       f"{_med([r['acc10'] for r in rs]):.1f} | {_med([r['kendall_tau'] for r in rs]):.3f} |")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.latency_table", description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="+")
    args = p.parse_args(argv)
    from predictor.errors import PredictorError
    fewshot, bench = [], []
    for name in args.files:
        try:
            run = json.loads(Path(name).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise PredictorError(f"{name}: not a readable JSON result ({err})") from None
        if "devices" in run:
            fewshot.append(run)
        elif "split" in run:
            bench.append(run)
        else:
            raise PredictorError(f"{name}: neither a latency_fewshot nor a latency_bench result")
    blocks = []
    if fewshot:
        blocks.append("\n".join(fewshot_rows(fewshot)))
    if bench:
        blocks.append("\n".join(bench_rows(bench)))
    print("\n\n".join(blocks))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
