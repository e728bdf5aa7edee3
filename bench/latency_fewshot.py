"""``python -m bench.latency_fewshot``: HELP's few-shot latency setting on a device table.

  python -m bench.latency_fewshot --space nb201 --data ../shared/data/nb201/nb201_latency_help.csv.gz \\
      --device lat_pixel2 --shots 20 --seed 0 --json results/latency/fewshot_pixel2.json
  python -m bench.latency_fewshot --space nb201 --data ... --device all      # each device in turn

A meta-model learns every other device (all columns of the target's hardware left out),
then adapts to the target device from ``--shots`` measured archs; Kendall tau, MAPE and
Acc(10%) on the rest of the table, beside ridge regression on the shots alone and the
meta-model without fine-tuning. ``--set KEY=VALUE`` sets FewShotConfig fields.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from narnas.cli import parse_overrides, run_main


def build_parser():
    p = argparse.ArgumentParser(prog="python -m bench.latency_fewshot", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    p.add_argument("--space", default="nb201")
    p.add_argument("--data", required=True, help="a benchmark table of the space with lat_* columns")
    p.add_argument("--device", required=True, help="the target latency column, or all")
    p.add_argument("--shots", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import spaces
    from narnas import config as configs
    from narnas.errors import ConfigError
    from narnas.files import print_json, writable_file
    from predictor.errors import PredictorError
    from latency.fewshot import FewShotConfig, encode_archs, few_shot
    if args.json:
        writable_file(args.json, "--json")
    try:
        config = configs.build(FewShotConfig, {"shots": args.shots, "seed": args.seed, **parse_overrides(args.set)},
                               path="few-shot config")
    except ConfigError as err:
        raise PredictorError(str(err)) from None
    space = spaces.get_space(args.space)
    bench = spaces.get_benchmark(space, args.data)
    columns = {c: bench.column(c) for c in bench.metrics if c.startswith("lat_")}
    if len(columns) < 2:
        raise PredictorError(f"{args.data} has {len(columns)} lat_* column(s); few-shot needs several devices")
    usable = np.flatnonzero(np.all([np.isfinite(v) & (v > 0) for v in columns.values()], axis=0))
    features = encode_archs(space, [bench.arch(int(i)) for i in usable])
    latencies = {c: v[usable] for c, v in columns.items()}
    targets = sorted(columns) if args.device == "all" else [args.device]
    results = {}
    for target in targets:
        start = time.perf_counter()
        results[target] = few_shot(features, latencies, target, config)
        results[target]["seconds"] = round(time.perf_counter() - start, 1)
        r = results[target]
        print(f"{target}: tau {r['few_shot']['kendall_tau']:.3f} (no adaptation {r['no_adaptation']['kendall_tau']:.3f}, "
              f"ridge on the shots {r['scratch']['kendall_tau']:.3f}), MAPE {r['few_shot']['mape']:.1f}%",
              file=sys.stderr, flush=True)
    import dataclasses
    out = {"space": args.space, "data": str(args.data), "config": dataclasses.asdict(config), "devices": results}
    if len(targets) == 1:
        out.update(results[targets[0]])
    print_json(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
