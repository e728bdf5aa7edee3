"""``python -m bench.imagenet``: the ImageNet evaluators end to end on this machine, timed.

  python -m bench.imagenet --data-dir ../shared/data/imagenet_sample --json results/imagenet/smoke.json

Runs real searches (``search.run``, Ray executor) on the given images and reads each arch's
``seconds`` (the evaluation inside its trial) from the run's journal, beside the search's wall
time per arch (Ray's start-up, trial scheduling and, with workers per trial, the worker group's
set-up included):

* ``ofa_supernet``: ``ofa_mbv3`` with the ``ofa-supernet`` evaluator (subnet cut from the supernet,
  BatchNorm recalibrated, top-1 on the held-out split and on val). Without ``--supernet`` a
  supernet of random weights is written first in the official file's layout (timing does not
  depend on the weights);
* ``darts_imagenet`` and ``ofa_imagenet``: the ``imagenet`` evaluator's ``smoke`` preset;
* ``darts_imagenet_ddp``: the same DARTS smoke as 2 Ray Train gloo workers per arch.

The JSON also carries the GPU cost per arch of each preset: estimates from image counts and
typical V100-class throughput, marked as such (no GPU here).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from narnas.cli import run_main

ROOT = Path(__file__).resolve().parents[1]

#: (what, GPU minutes per arch, basis): estimates, not measurements.
GPU_ESTIMATES = (
    ("ofa-supernet", 1.0, "2,000 calibration + 10,000 held-out images through a MobileNetV3 subnet; OFA reports "
                          "about a minute per subnet, bounded by JPEG decoding"),
    ("imagenet search (darts)", 5.0, "26,000 images x 10 epochs at 128 px, 8 cells of 32 channels, "
                                     "at ~1,000 images/s, plus 2,000 held out"),
    ("imagenet search (ofa_mbv3)", 3.0, "26,000 images x 5 epochs at the subnet's resolution at ~1,000 images/s"),
    ("imagenet final (darts)", 250 * 1_281_167 / 1000 / 60, "250 epochs of 1.28 M images at ~1,000 images/s "
                                                           "(DARTS's 574 M MACs network, batch 128)"),
    ("imagenet final (ofa_mbv3)", 25 * 1_281_167 / 1500 / 60, "25 fine-tuning epochs at ~1,500 images/s"),
)


def _search(args: list[str], out: Path, log) -> dict:
    command = [sys.executable, "-m", "search.run", *args, "--quiet", "--no-plots", "--out", str(out)]
    log("$ " + " ".join(command[1:]))
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        from narnas.errors import UserError
        raise UserError(f"{' '.join(args[:6])} ... failed: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    entries = [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines() if line.strip()]
    seconds = [round(e["seconds"], 1) for e in entries if e.get("status") == "ok"]
    failed = [e for e in entries if e.get("status") != "ok"]
    return {"command": "python -m search.run " + " ".join(args), "archs": len(entries), "failed": len(failed),
            "seconds_per_arch": seconds, "mean_seconds_per_arch": round(sum(seconds) / max(len(seconds), 1), 1),
            "wall_seconds": round(wall, 1), "wall_seconds_per_arch": round(wall / max(len(entries), 1), 1),
            "val": [e.get("val") for e in entries]}


def _random_supernet(folder: Path) -> Path:
    import torch
    from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3
    torch.manual_seed(0)
    net = OFAMobileNetV3(n_classes=1000, dropout_rate=0.1, width_mult=1.0, ks_list=[3, 5, 7],
                         expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4])
    path = folder / "ofa_mbv3_d234_e346_k357_w1.0"
    torch.save({"state_dict": net.state_dict()}, path)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.imagenet", description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", required=True, help="an ImageNet root (the shared 1,000-image sample for smoke)")
    p.add_argument("--supernet", help="OFA supernet file (default: random weights in the official layout)")
    p.add_argument("--only", nargs="+", choices=("ofa_supernet", "darts_imagenet", "ofa_imagenet",
                                                  "darts_imagenet_ddp"))
    p.add_argument("--json")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    from narnas.files import print_json, writable_file
    if args.json:
        writable_file(args.json, "--json")
    log = (lambda *_: None) if args.quiet else (lambda msg: print(msg, flush=True))
    data = str(Path(args.data_dir).resolve())
    common = ["--budget", "4", "--batch", "2", "--init", "2", "--strategy", "random"]
    result = {"data_dir": data, "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "runs": {}}
    with tempfile.TemporaryDirectory(prefix="bench-imagenet-") as tmp:
        tmp = Path(tmp)
        supernet = args.supernet or str(_random_supernet(tmp))
        result["supernet"] = "random weights, official layout" if not args.supernet else args.supernet
        plans = {
            "ofa_supernet": ["--space", "ofa_mbv3", "--evaluator", "ofa-supernet", "--data-dir", data,
                             "--supernet", supernet, "--set", "evaluator.config.calib_images=200",
                             "--set", "evaluator.config.holdout_images=200", *common],
            "darts_imagenet": ["--space", "darts", "--evaluator", "imagenet", "--preset", "smoke", "--data-dir", data,
                               *common],
            "ofa_imagenet": ["--space", "ofa_mbv3", "--evaluator", "imagenet", "--preset", "smoke", "--data-dir", data,
                             *common],
            "darts_imagenet_ddp": ["--space", "darts", "--evaluator", "imagenet", "--preset", "smoke", "--data-dir",
                                   data, "--workers-per-trial", "2", *common],
        }
        for name, plan in plans.items():
            if args.only and name not in args.only:
                continue
            result["runs"][name] = _search(plan, tmp / name, log)
            if "--supernet" in plan:
                result["runs"][name]["command"] = result["runs"][name]["command"].replace(supernet, "FILE")
            log(f"{name}: {result['runs'][name]['mean_seconds_per_arch']} s per arch")
    result["gpu_minutes_per_arch_estimates"] = [{"what": w, "minutes": round(m, 1), "basis": b, "estimate": True}
                                                for w, m, b in GPU_ESTIMATES]
    print_json(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
