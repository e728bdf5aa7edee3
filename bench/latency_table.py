"""``python -m bench.latency_table FILE.json ...``: README tables of the latency benchmarks.

Reads ``predictor.latency_fewshot`` results (one table: per target device, median over seeds
of the few-shot tau / MAPE / Acc(10%) beside its baselines) and ``predictor.latency_bench``
results (one table: a row per split and held-out family, a column per predictor with its
median MAPE %, Acc(10%) and Kendall tau over seeds; then how many held-out families NAR-Former
predicts better than each other predictor, by MAPE).

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


def _label(run) -> str:
    sets = run.get("set") or {}
    return run["predictor"] + (f" ({', '.join(f'{k}={v}' for k, v in sorted(sets.items()))})" if sets else "")


#: Column order of the predictors (others after them, by name).
ORDER = ("narformer", "gnn", "flops", "lut")


def bench_rows(runs) -> list[str]:
    """One row per split / held-out family, one column per predictor: median over seeds of
    MAPE % / Acc(10%) / Kendall tau (and the seed count where seeds differ)."""
    cells = defaultdict(lambda: defaultdict(list))  # (split, family) -> predictor label -> results
    for run in runs:
        label = _label(run)
        if run["split"] == "random":
            cells[("random", "—")][label].append(run)
        else:
            for family, r in run["families"].items():
                cells[("family", family)][label].append(r)
    labels = sorted({label for row in cells.values() for label in row},
                    key=lambda x: (ORDER.index(x.split(" ")[0]) if x.split(" ")[0] in ORDER else len(ORDER), x))
    out = ["| split | test family | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
    # (NAR-Former column, other column) -> [held-out families where its MAPE is lower, families]
    wins = defaultdict(lambda: [0, 0])
    for key in sorted(cells, key=lambda k: (k[0] != "random", k[1])):
        row = cells[key]
        shown = []
        for label in labels:
            rs = row.get(label)
            if not rs:
                shown.append("—")
                continue
            seeds = "" if len(rs) == 3 else f" ({len(rs)} seed{'s' if len(rs) > 1 else ''})"
            shown.append(f"{_med([r['mape'] for r in rs]):.2f} / {_med([r['acc10'] for r in rs]):.1f} / "
                         f"{_med([r['kendall_tau'] for r in rs]):.3f}{seeds}")
        out.append(f"| {key[0]} | {key[1]} | " + " | ".join(shown) + " |")
        if key[0] != "family":
            continue
        for mine in (label for label in row if label.split(" ")[0] == "narformer"):
            ours = _med([r["mape"] for r in row[mine]])
            for label, rs in row.items():
                if label.split(" ")[0] != "narformer":
                    wins[(mine, label)][0] += ours < _med([r["mape"] for r in rs])
                    wins[(mine, label)][1] += 1
    mines = sorted({mine for mine, _ in wins}, key=labels.index)
    for mine in mines:
        out.append("")
        out.append(f"Held-out families where {mine}'s median MAPE is below the other's: " + "; ".join(
            f"{label} {won} of {total}" for (m, label), (won, total) in sorted(wins.items()) if m == mine) + ".")
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
