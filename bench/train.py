"""``python -m bench.train``: training throughput of a network or of the ImageNet input, on this machine.

  python -m bench.train --what darts-search --json results/train/darts_search_cpu.json
  python -m bench.train --what darts-final --precision fp32 --steps 10
  python -m bench.train --what darts-search --concurrent 4     # 4 trainings at once on one device
  python -m bench.train --what imagenet-input --data-dir ../shared/data/imagenet_sample --decode workers
  python -m bench.train --what ofa-eval --data-dir ../shared/data/imagenet_sample  # decode + forward

Networks (``darts-search``, ``darts-final``: the DARTS recipe's presets on 32 px CIFAR-sized images;
``ofa-224``: the largest OFA MobileNetV3 subnet at 224 px) train through the trainer's own pieces
and pipeline (device-resident images, augmentation on the device, the optimiser, autocast) for
``--warmup`` then ``--steps`` steps; images/s comes from the unsynchronised run (timed with CUDA
events on a GPU), then a second run synchronises around each phase to split a step into data /
forward / backward / optimiser. Random pixels stand in for CIFAR (the cost is the same) unless
``--data-dir`` names a CIFAR-10 folder. ``imagenet-input`` times the ImageNet training batches alone
(decode, crop, flip, normalise: on the device or in loader workers); ``ofa-eval`` the supernet
evaluator's view of ``ofa-224``: evaluation batches decoded and forwarded. The JSON records the
device, precision, peak memory and versions. Predictor fits are timed by ``python -m bench.predictors``
(``fit_seconds``, with ``--set device=cuda``).
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
from training.datasets.imagenet import DECODERS
from training.trainer import PRECISIONS

WHAT = ("darts-search", "darts-final", "ofa-224", "imagenet-input", "ofa-eval")


def build_parser():
    p = argparse.ArgumentParser(prog="python -m bench.train", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[2:]))
    p.add_argument("--what", required=True, choices=WHAT)
    p.add_argument("--device", default="auto", help="auto (cuda when there is one), cpu, cuda, cuda:1 ...")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto (bf16 on a GPU that has it, else fp32), fp32, bf16, fp16")
    p.add_argument("--batch-size", type=int, help="default: the preset's (darts-search 128, darts-final 96, "
                   "ofa-224 64, ImageNet input 128)")
    p.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--compile", action="store_true", help="torch.compile the network")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all)")
    p.add_argument("--data-dir", help="CIFAR-10 folder (networks on 32 px) or ImageNet root (imagenet-input, ofa-eval)")
    p.add_argument("--decode", default="auto", choices=DECODERS, help="ImageNet JPEG decoding (default auto)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="ImageNet loader processes")
    p.add_argument("--concurrent", type=int, default=1, metavar="N",
                   help="run N copies at once on the device and add their images/s (several trials per GPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the result here")
    p.add_argument("--start-at", type=float, help=argparse.SUPPRESS)  # --concurrent's copies start together
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    from narnas.errors import ConfigError
    from narnas.files import print_json, writable_file
    if args.json:
        writable_file(args.json, "--json")
    if args.steps < 1 or args.warmup < 0 or args.concurrent < 1 or args.threads < 0 or args.workers < 0 \
            or (args.batch_size is not None and args.batch_size < 1):
        raise ConfigError("--steps, --concurrent and --batch-size must be >= 1; --warmup, --threads and --workers >= 0")
    if args.what in ("imagenet-input", "ofa-eval") and args.data_dir is None:
        raise ConfigError(f"--what {args.what} needs --data-dir (an ImageNet root, e.g. ../shared/data/imagenet_sample)")
    result = concurrent(args, argv) if args.concurrent > 1 else measure(args)
    print_json(result, args.json)
    return 0


def concurrent(args, argv: list) -> dict:
    """``args.concurrent`` copies of this command in their own processes, timed together; their images/s added."""
    start = time.time() + 10 + 5 * args.concurrent  # after every copy has imported torch and built its network
    with tempfile.TemporaryDirectory() as folder:
        copies = []
        for i in range(args.concurrent):
            out = Path(folder) / f"{i}.json"
            cmd = [sys.executable, "-m", "bench.train", *_without(argv, "--json", "--concurrent", "--seed"),
                   "--concurrent", "1", "--seed", str(args.seed + i), "--start-at", str(start), "--json", str(out)]
            copies.append((subprocess.Popen(cmd, stdout=subprocess.DEVNULL), out))
        for proc, _ in copies:
            proc.wait()
        failed = [i for i, (proc, _) in enumerate(copies) if proc.returncode != 0]
        if failed:
            raise RuntimeError(f"copies {failed} of --concurrent {args.concurrent} failed")
        each = [json.loads(out.read_text()) for _, out in copies]
    return dict(each[0], concurrent=args.concurrent, images_per_second=round(sum(e["images_per_second"] for e in each), 3),
                per_copy_images_per_second=[e["images_per_second"] for e in each])


def _without(argv: list, *flags: str) -> list:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in flags:
            skip = True
        elif not any(a.startswith(f + "=") for f in flags):
            out.append(a)
    return out


def measure(args) -> dict:
    import torch

    from training.trainer import autocast_dtype, precision_name, resolve_device
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dtype = autocast_dtype(args.precision, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)
    if args.what == "imagenet-input":
        out = _imagenet_input(args, device)
    elif args.what == "ofa-eval":
        out = _ofa_eval(args, device, dtype)
    else:
        out = _network(args, device, dtype)
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else _max_rss())
    return {"what": args.what, **out, "device": _device_name(device), "precision": precision_name(dtype),
        "compile": args.compile, "channels_last": args.channels_last and device.type == "cuda",
        "peak_memory_mib": round(peak / 2 ** 20, 1), "threads": torch.get_num_threads(), "seed": args.seed,
        "torch": torch.__version__, "python": platform.python_version(), "cpu_count": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d")}


class Clock:
    """Elapsed seconds between marks: CUDA events on a GPU (no host sync until read), else perf_counter."""

    def __init__(self, device):
        import torch
        self.cuda = device.type == "cuda"
        self.torch = torch

    def mark(self):
        if self.cuda:
            event = self.torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def seconds(self, start, end) -> float:
        if self.cuda:
            end.synchronize()
            return start.elapsed_time(end) / 1000
        return end - start

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()


def _wait_for_start(args):
    if args.start_at:
        time.sleep(max(0.0, args.start_at - time.time()))


def _network(args, device, dtype) -> dict:
    import torch

    import spaces
    from training.datasets.arrays import ArrayData
    from training.recipes import get_recipe
    from spaces.ofa_mbv3.space import LARGEST
    from training.trainer import TrainerConfig, classification_loss, make_optimizer, train_step
    torch.manual_seed(args.seed)
    if args.what == "ofa-224":
        space = spaces.get_space("ofa_mbv3")
        model, size, batch = space.build_model(space.from_json(LARGEST)), 224, args.batch_size or 64
        config = TrainerConfig(batch_size=batch, precision=args.precision)
        name = "ofa_mbv3, the largest subnet (kernel 7, expand 6, depth 4)"
    else:
        recipe, space = get_recipe("darts"), spaces.get_space("darts")
        config = recipe.preset(args.what.split("-")[1], precision=args.precision,
                               **({"batch_size": args.batch_size} if args.batch_size else {}))
        model = space.build_model(space.from_json(spaces.darts.DARTS_V2), recipe.build_config(space, config))
        model.drop_path_prob = config.drop_path
        size, batch, name = 32, config.batch_size, f"DARTS V2, {config.layers} cells, {config.channels} channels"
    model = model.to(device)
    if args.channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if args.compile else model
    data = _images(args, size, batch * max(args.warmup, args.steps))
    loader = ArrayData(data, batch, seed=args.seed, cutout=getattr(config, "cutout", 0),
                       channels_last=args.channels_last).loader(device)
    opt = make_optimizer(model.parameters(), config, device)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    loss = classification_loss(config)
    clock = Clock(device)
    model.train()

    def one_step(x, y, phases=None):
        if phases is None:
            train_step(step_model, x, y, loss, opt, scaler, config, dtype)
            return
        marks = [("start", clock.mark())]
        train_step(step_model, x, y, loss, opt, scaler, config, dtype, mark=lambda phase: marks.append(
            (phase, clock.mark())))
        for (_, start), (phase, end) in zip(marks, marks[1:]):
            phases[phase] += clock.seconds(start, end)

    def run(epoch: int, split: bool):
        """(images/s, ms per phase): warm-up steps, then ``--steps`` of a fresh epoch, whose
        augmentation on the device (drawn when its first batch is asked for) is timed with them."""
        warm = loader.train(1000 + epoch)
        for _ in range(args.warmup):
            one_step(*next(warm))
        clock.sync()
        if not split:
            _wait_for_start(args)
        phases = {"data": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0} if split else None
        began, images, batches = clock.mark(), 0, loader.train(epoch)
        for _ in range(args.steps):
            before = clock.mark() if split else None
            x, y = next(batches)
            if split:
                phases["data"] += clock.seconds(before, clock.mark())
            one_step(x, y, phases)
            images += len(y)
        seconds = clock.seconds(began, clock.mark())
        return images / seconds, {k: round(1000 * v / args.steps, 3) for k, v in (phases or {}).items()}

    per_second, _ = run(0, split=False)
    # a --concurrent copy only counts images: the synchronised split would run outside the common window
    _, phases = run(1, split=True) if args.start_at is None else (None, {})
    return {"network": name, "resolution": size, "batch_size": batch, "steps": args.steps,
            "params": sum(p.numel() for p in model.parameters()), "images_per_second": round(per_second, 3),
            "step_ms": round(1000 * batch / per_second, 3), "phase_ms_synchronised": phases,
            "data": "cifar10" if args.data_dir else "random pixels"}


def _images(args, size: int, count: int):
    """A Dataset of ``count`` training images: CIFAR-10's from ``--data-dir``, else random pixels."""
    import numpy as np

    from training.datasets import Split, cifar10
    if args.data_dir and size == 32:
        data = cifar10.load(args.data_dir, val_size=0)
        rows = np.arange(count) % len(data.train)
        return cifar10.CIFAR10(Split(data.train.x[rows], data.train.y[rows]), data.test, data.test, data.source)
    rng = np.random.default_rng(args.seed)
    x = rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)
    y = rng.integers(0, 10, count).astype(np.int64)
    empty = Split(x[:0], y[:0])
    return cifar10.CIFAR10(Split(x, y), empty, empty, "random pixels")


def _imagenet_input(args, device) -> dict:
    from training.datasets import imagenet
    files = imagenet.list_files(args.data_dir, allow_val_only=True).val
    batch = args.batch_size or 128
    spec = imagenet.FolderData(files, [], [], 224, batch, seed=args.seed, workers=args.workers, decode=args.decode)
    loader = spec.loader(device)
    clock = Clock(device)
    seen, epoch, began = 0, 0, None
    needed = args.warmup + args.steps
    steps = 0
    _wait_for_start(args)
    while steps < needed:
        for x, _ in loader.train(epoch):
            steps += 1
            if steps == args.warmup + 1:
                clock.sync()
                began = clock.mark()
            if steps > args.warmup:
                seen += len(x)
            if steps >= needed:
                break
        epoch += 1
    seconds = clock.seconds(began, clock.mark())
    return {"resolution": 224, "batch_size": batch, "steps": args.steps, "workers": args.workers,
            "decode": "device" if loader.on_device else "workers", "images": len(files),
            "images_per_second": round(seen / seconds, 3)}


def _ofa_eval(args, device, dtype) -> dict:
    import torch

    import spaces
    from training.datasets import imagenet
    from spaces.ofa_mbv3.space import LARGEST
    space = spaces.get_space("ofa_mbv3")
    model = space.build_model(space.from_json(LARGEST)).to(device).eval()
    if args.channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    files = imagenet.list_files(args.data_dir, allow_val_only=True).val
    batch = args.batch_size or 200
    loader = imagenet.FolderData([], files, [], 224, batch, batch, args.seed, args.workers, args.decode).loader(device)
    clock = Clock(device)
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        for x, _ in loader.evaluate("val"):  # warm-up: one batch through workers, decoder and cudnn's choice
            model(x)
            break
        _wait_for_start(args)
        began, seen = clock.mark(), 0
        for x, _ in loader.evaluate("val"):
            model(x)
            seen += len(x)
    seconds = clock.seconds(began, clock.mark())
    return {"network": "ofa_mbv3, the largest subnet", "resolution": 224, "batch_size": batch,
            "images": seen, "workers": args.workers, "decode": "device" if loader.on_device else "workers",
            "images_per_second": round(seen / seconds, 3)}


def _device_name(device) -> str:
    import torch
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()})"


def _max_rss() -> int:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":
    sys.exit(run_main(main))
