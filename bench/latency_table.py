"""``python -m bench.latency_table FILE.json ...``: tables of the docs of the latency benchmarks.

Reads ``bench.latency_fewshot`` results (one table: per target device, median over seeds
of the few-shot tau / MAPE / Acc(10%) beside its baselines) and ``bench.latency``
results (one table: a row per split and held-out family, a column per predictor variant with its
median MAPE %, Acc(10%) and Kendall tau over seeds; then how many held-out families each NAR-Former
variant predicts better than each other predictor, by MAPE). A column is named after its files
(``make bench-latency`` writes NAME_random_sS.json and NAME_family_F_sS.json) and a legend gives
its settings; ``--columns`` picks and orders them.

  python -m bench.latency_table results/latency/*.json > tables.md
  python -m bench.latency_table results/latency/*.json --columns narformer_raw,gnn,flops,lut
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from narnas.cli import run_main
from predictor.errors import PredictorError


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


def _settings(run) -> str:
    sets = run.get("set") or {}
    return run["predictor"] + (f" ({', '.join(f'{k}={v}' for k, v in sorted(sets.items()))})" if sets else "")


#: ``make bench-latency`` names its files NAME_random_sS.json and NAME_family_F_sS.json.
_STEM = re.compile(r"^(?P<name>.+?)_(?:random|family_.+)_s\d+$")


def _label(run, path: str) -> str:
    """A column's name: the file's variant name when it follows the Makefile's pattern (narformer_raw),
    else the predictor and its settings."""
    m = _STEM.match(Path(path).stem)
    return m["name"] if m else _settings(run)


#: Column order of the predictors (others after them, by name).
ORDER = ("narformer", "gnn", "flops", "lut")


def bench_rows(runs, paths=None, columns=None) -> list[str]:
    """One row per split / held-out family, one column per predictor variant: median over seeds of
    MAPE % / Acc(10%) / Kendall tau (and the seed count where seeds differ). ``columns`` picks and
    orders the columns by name; a legend gives each named column's settings."""
    paths = paths or [""] * len(runs)
    cells = defaultdict(lambda: defaultdict(list))  # (split, family) -> column label -> results
    predictor, settings = {}, defaultdict(set)
    for run, path in zip(runs, paths):
        label = _label(run, path)
        predictor[label] = run["predictor"]
        settings[label].add(_settings(run))
        if run["split"] == "random":
            cells[("random", "—")][label].append(run)
        else:
            for family, r in run["families"].items():
                cells[("family", family)][label].append(r)
    mixed = sorted(label for label, s in settings.items() if len(s) > 1)
    if mixed:
        raise PredictorError(f"column {mixed[0]} mixes settings: {' vs '.join(sorted(settings[mixed[0]]))}")
    setting = {label: s.pop() for label, s in settings.items()}
    if columns:
        unknown = [c for c in columns if c not in predictor]
        if unknown:
            raise PredictorError(f"no results for column {unknown[0]}; the files give: {', '.join(sorted(predictor))}")
        labels = list(columns)
    else:
        labels = sorted(predictor, key=lambda x: (ORDER.index(predictor[x]) if predictor[x] in ORDER
                                                  else len(ORDER), x))
    out = ["| split | test family | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
    # (NAR-Former column, other column) -> [held-out families where its MAPE is lower, families]
    wins = defaultdict(lambda: [0, 0])
    for key in sorted(cells, key=lambda k: (k[0] != "random", k[1])):
        row = {label: rs for label, rs in cells[key].items() if label in labels}
        if not row:
            continue
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
        for mine in (label for label in row if predictor[label] == "narformer"):
            ours = _med([r["mape"] for r in row[mine]])
            for label, rs in row.items():
                if predictor[label] != "narformer":
                    wins[(mine, label)][0] += ours < _med([r["mape"] for r in rs])
                    wins[(mine, label)][1] += 1
    for mine in sorted({mine for mine, _ in wins}, key=labels.index):
        out.append("")
        out.append(f"Held-out families where {mine}'s median MAPE is below the other's: " + "; ".join(
            f"{label} {won} of {total}" for (m, label), (won, total) in sorted(wins.items()) if m == mine) + ".")
    named = [label for label in labels if setting[label] != label]
    if named:
        out.append("")
        out.append("Columns: " + "; ".join(f"{label} = {setting[label]}" for label in named) + ".")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.latency_table", description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="+")
    p.add_argument("--columns", help="comma-separated column names to show, in this order "
                   "(names from the files: narformer_raw,gnn,flops,lut); default: all")
    args = p.parse_args(argv)
    fewshot, bench, bench_paths = [], [], []
    for name in args.files:
        try:
            run = json.loads(Path(name).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise PredictorError(f"{name}: not a readable JSON result ({err})") from None
        if "devices" in run:
            fewshot.append(run)
        elif "split" in run:
            bench.append(run)
            bench_paths.append(name)
        else:
            raise PredictorError(f"{name}: neither a latency_fewshot nor a latency_bench result")
    blocks = []
    if fewshot:
        blocks.append("\n".join(fewshot_rows(fewshot)))
    if bench:
        columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
        blocks.append("\n".join(bench_rows(bench, bench_paths, columns)))
    print("\n\n".join(blocks))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
