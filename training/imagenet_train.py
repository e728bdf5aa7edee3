"""Training an ImageNet network from its image folders (streamed, not held in memory).

SGD with momentum, label smoothing, a cosine or per-epoch exponential learning rate after a
linear warm-up, the DARTS auxiliary loss when the network returns one, gradient clipping,
mixed precision and channels-last on CUDA. A checkpoint is written atomically after every
epoch and a restarted training continues after the last one (refusing another config's or
another network's checkpoint). The result: top-1 on the held-out subset of train (``val``,
the search signal) and on the official validation images (``test``, reported).

Class subsets keep the original class indices (the network keeps its 1,000 outputs), so a
supernet's classifier and a from-scratch network are treated alike.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from narnas.config import at_least

from .errors import TrainingError
from .trainer import load_checkpoint, resolve_device, save_checkpoint, train_step


@dataclass
class ImageNetTrainingConfig:
    epochs: int = 250
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 3e-5
    label_smoothing: float = 0.1
    schedule: str = "exponential"  # exponential (gamma per epoch) or cosine
    gamma: float = 0.97
    warmup_epochs: int = 0
    grad_clip: float = 5.0
    auxiliary_weight: float = 0.4  # networks that return (logits, auxiliary logits)
    resolution: int = 0  # 0: the arch's own (ofa_mbv3's r), else 224
    classes: int = 0  # 0: every class; N: a fixed random N-class subset (the search proxy)
    images_per_class: int = 0  # 0: all
    holdout_images: int = 10_000
    val_images: int = 0  # official val images reported; 0: all
    eval_batch_size: int = 200
    workers: int = 4
    allow_val_only: bool = False  # a val-only folder (the shared sample) for smoke runs
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    channels_last: bool = True
    threads: int = 0

    def validate(self):
        at_least(self, 1, "epochs", "batch_size", "eval_batch_size", "holdout_images", where="training")
        if self.schedule not in ("exponential", "cosine"):
            raise TrainingError(f"training.schedule must be exponential or cosine, got {self.schedule!r}")
        if self.classes < 0 or self.images_per_class < 0 or self.val_images < 0 or self.resolution < 0:
            raise TrainingError("training.classes, images_per_class, val_images and resolution cannot be negative")
        return self


@dataclass
class ImageNetSplits:
    train: list
    holdout: list
    val: list
    num_classes: int
    root: str


def splits(data_dir, cfg: ImageNetTrainingConfig) -> ImageNetSplits:
    """The training files, the held-out subset and the reported val files for ``cfg``."""
    from .datasets import imagenet
    files = imagenet.list_files(data_dir, allow_val_only=cfg.allow_val_only)
    rng = np.random.default_rng(cfg.seed)
    keep = None
    if cfg.classes and cfg.classes < files.num_classes:
        keep = set(rng.choice(files.num_classes, cfg.classes, replace=False).tolist())
    train = [f for f in files.train if keep is None or f[1] in keep]
    val = [f for f in files.val if keep is None or f[1] in keep]
    if cfg.images_per_class:
        counts: dict[int, int] = {}
        capped = []
        for f in train:
            if counts.get(f[1], 0) < cfg.images_per_class:
                capped.append(f)
                counts[f[1]] = counts.get(f[1], 0) + 1
        train = capped
    rest, held = imagenet.holdout_split(train, min(cfg.holdout_images, max(1, len(train) // 2)), cfg.seed)
    if files.val_only:
        rest = train  # smoke: the sample stands in for the training images too
    if cfg.val_images:
        val = val[:cfg.val_images]
    return ImageNetSplits(rest, held, val, files.num_classes, str(files.root.resolve()))


def _loss(cfg):
    def loss(output, y):
        logits, aux = output if isinstance(output, tuple) else (output, None)
        value = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        if aux is not None:
            value = value + cfg.auxiliary_weight * F.cross_entropy(aux, y, label_smoothing=cfg.label_smoothing)
        return value, logits
    return loss


def _lr_factor(cfg, epoch: int) -> float:
    if epoch < cfg.warmup_epochs:
        return (epoch + 1) / cfg.warmup_epochs
    e = epoch - cfg.warmup_epochs
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * e / max(1, cfg.epochs - cfg.warmup_epochs)))
    return cfg.gamma ** e


def fit(build: Callable[[], nn.Module], data: ImageNetSplits, cfg: ImageNetTrainingConfig, resolution: int, *,
        checkpoint: Path | None = None, extra_state: dict | None = None, log=None,
        on_epoch: Callable[[nn.Module, int], None] | None = None) -> dict:
    """Train ``build()`` on ``data``; returns val / test top-1, history, epochs and seconds."""
    from .datasets import imagenet
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    cuda = device.type == "cuda"
    torch.manual_seed(cfg.seed)
    model = build().to(device)
    if cuda and cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                          nesterov=cfg.nesterov)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: _lr_factor(cfg, epoch))
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and cfg.amp)
    start_epoch, history, spent = 0, [], 0.0
    state = load_checkpoint(checkpoint, cfg, extra_state, device)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start_epoch, history, spent = state["epoch"], state["history"], state["seconds"]
        # the crops, flips and dropout of the epochs to come draw from where the killed run stood
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"].cpu())
        if "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        if cuda and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        log(f"resuming ImageNet training from epoch {start_epoch} of {cfg.epochs} ({checkpoint})")
    loss_fn = _loss(cfg)
    for epoch in range(start_epoch, cfg.epochs):
        began = time.time()
        model.train()
        if on_epoch is not None:
            on_epoch(model, epoch)
        # the epoch's order is a function of (seed, epoch): a resumed run sees the same batches
        batches = imagenet.loader(data.train, imagenet.train_transform(resolution), cfg.batch_size,
                                  workers=cfg.workers, shuffle=True, seed=cfg.seed * 100_003 + epoch,
                                  device=str(device), drop_last=len(data.train) > cfg.batch_size)
        total, correct, seen = 0.0, 0, 0
        for x, y in batches:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if cuda and cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            value, logits = train_step(model, x, y, loss_fn, opt, scaler, cfg, device)
            total += float(value.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        sched.step()
        spent += time.time() - began
        history.append({"epoch": epoch + 1, "train_loss": total / max(seen, 1), "train_acc": 100.0 * correct / max(seen, 1)})
        log(f"epoch {epoch + 1}/{cfg.epochs} loss {total / max(seen, 1):.4f} ({time.time() - began:.0f} s)")
        if checkpoint is not None:
            save_checkpoint(checkpoint, {**(extra_state or {}), "config": dataclasses.asdict(cfg),
                                         "model": model.state_dict(), "optimizer": opt.state_dict(),
                                         "scheduler": sched.state_dict(), "epoch": epoch + 1, "history": history,
                                         "seconds": spent, "scaler": scaler.state_dict(),
                                         "torch_rng": torch.get_rng_state(),
                                         "cuda_rng": torch.cuda.get_rng_state_all() if cuda else None})
    evaluate = lambda files: top1(model, imagenet.loader(files, imagenet.eval_transform(resolution),  # noqa: E731
                                                         cfg.eval_batch_size, workers=cfg.workers,
                                                         device=str(device)), device)
    return {"val": evaluate(data.holdout), "test": evaluate(data.val), "history": history, "epochs": cfg.epochs,
            "train_loss": history[-1]["train_loss"] if history else None, "seconds": round(spent, 2),
            "train_images": len(data.train), "holdout_images": len(data.holdout), "val_images": len(data.val)}


@torch.inference_mode()
def top1(model, batches, device) -> float:
    """Top-1 accuracy (%) over ``batches`` of (images, labels)."""
    model.eval()
    correct = total = 0
    for x, y in batches:
        out = model(x.to(device))
        logits = out[0] if isinstance(out, tuple) else out
        correct += int((logits.argmax(1).cpu() == y).sum())
        total += len(y)
    if total == 0:
        raise TrainingError("no images to evaluate on")
    return 100.0 * correct / total


def fit_data_parallel(build: Callable[[], nn.Module], data: ImageNetSplits, cfg: ImageNetTrainingConfig,
                      resolution: int, *, workers: int, cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0,
                      checkpoint: Path | None = None, extra_state: dict | None = None, storage: str | None = None,
                      name: str = "imagenet") -> dict:
    """``fit`` as ``workers`` Ray Train data-parallel workers (DDP: NCCL on GPUs, gloo on CPUs):
    each worker reads its share of every epoch's shuffled images, ``batch_size`` is the global
    batch, gradients are averaged. Rank 0 writes the same per-epoch checkpoint as ``fit`` (a
    path every worker can read: one machine, or a shared file system on a cluster) and measures
    top-1 at the end. Needs a running Ray (the search's executor starts it)."""
    import tempfile

    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    if workers < 2:
        raise TrainingError("fit_data_parallel needs at least 2 workers (use fit for one)")
    loop_config = {"build": build, "data": data, "cfg": cfg, "resolution": resolution,
                   "checkpoint": None if checkpoint is None else str(checkpoint), "extra_state": extra_state or {}}
    resources = {"CPU": cpus_per_worker, **({"GPU": gpus_per_worker} if gpus_per_worker else {})}
    trainer = TorchTrainer(_data_parallel_worker, train_loop_config=loop_config,
                           scaling_config=ScalingConfig(num_workers=workers, use_gpu=gpus_per_worker > 0,
                                                        resources_per_worker=resources),
                           run_config=RunConfig(name=f"{name}_{int(time.time() * 1000)}",
                                                storage_path=str(Path(storage or tempfile.mkdtemp(
                                                    prefix="narnas-train-")).resolve())))
    result = trainer.fit()
    if result.error is not None:
        raise TrainingError(f"data-parallel training failed: {result.error}")
    if result.checkpoint is None:
        raise TrainingError("data-parallel training ended without its result (no final checkpoint)")
    # Train V2 keeps metrics only beside checkpoints: rank 0's last report carries them as a file
    with result.checkpoint.as_directory() as folder:
        metrics = json.loads((Path(folder) / "result.json").read_text())
    metrics["history"] = json.loads(metrics.pop("history_json", "[]"))
    return metrics


def _data_parallel_worker(config: dict) -> None:
    """One Ray Train worker of ``fit_data_parallel``."""
    import ray.train
    import ray.train.torch
    import torch.distributed as dist

    from .datasets import imagenet
    build, data, cfg, resolution = config["build"], config["data"], config["cfg"], config["resolution"]
    checkpoint = Path(config["checkpoint"]) if config["checkpoint"] else None
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = ray.train.torch.get_device()
    cuda = device.type == "cuda"
    torch.manual_seed(cfg.seed)
    model = build()
    per_worker = max(1, cfg.batch_size // world)
    start_epoch, history, spent = 0, [], 0.0
    state = load_checkpoint(checkpoint, cfg, config["extra_state"], "cpu")
    if state is not None:
        model.load_state_dict(state["model"])
        start_epoch, history, spent = state["epoch"], state["history"], state["seconds"]
    model = ray.train.torch.prepare_model(model)  # to the device, wrapped in DDP
    if cuda and cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                          nesterov=cfg.nesterov)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: _lr_factor(cfg, epoch))
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and cfg.amp)
    loss_fn = _loss(cfg)
    usable = (len(data.train) // world) * world  # equal shares: every worker takes the same steps
    for epoch in range(start_epoch, cfg.epochs):
        began = time.time()
        model.train()
        # each worker's crops, flips and dropout follow (seed, epoch, rank): a resume goes on exactly
        torch.manual_seed(cfg.seed * 1_000_003 + epoch * world + rank)
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(data.train))[:usable]
        mine = [data.train[i] for i in order[rank::world]]
        batches = imagenet.loader(mine, imagenet.train_transform(resolution), per_worker, workers=cfg.workers,
                                  device=str(device), drop_last=len(mine) > per_worker)
        total = torch.zeros(2, device=device)
        for x, y in batches:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            value, _ = train_step(model, x, y, loss_fn, opt, scaler, cfg, device)
            total += torch.tensor([float(value.detach()) * len(y), len(y)], device=device)
        sched.step()
        dist.all_reduce(total)
        spent += time.time() - began
        history.append({"epoch": epoch + 1, "train_loss": float(total[0] / total[1].clamp(min=1))})
        if rank == 0 and checkpoint is not None:
            inner = model.module if hasattr(model, "module") else model
            save_checkpoint(checkpoint, {**config["extra_state"], "config": dataclasses.asdict(cfg),
                                         "model": inner.state_dict(), "optimizer": opt.state_dict(),
                                         "scheduler": sched.state_dict(), "epoch": epoch + 1, "history": history,
                                         "seconds": spent, "workers": world})
        dist.barrier()
        ray.train.report({"epoch": epoch + 1, "train_loss": history[-1]["train_loss"]})
    metrics = {"epochs": cfg.epochs, "seconds": round(spent, 2), "workers": world,
               "train_loss": history[-1]["train_loss"] if history else None, "history_json": json.dumps(history),
               "train_images": len(data.train), "holdout_images": len(data.holdout), "val_images": len(data.val)}
    dist.barrier()
    if rank == 0:
        import tempfile

        from ray.train import Checkpoint
        inner = model.module if hasattr(model, "module") else model
        evaluate = lambda files: top1(inner, imagenet.loader(files, imagenet.eval_transform(resolution),  # noqa: E731
                                                             cfg.eval_batch_size, workers=cfg.workers,
                                                             device=str(device)), device)
        metrics.update(val=evaluate(data.holdout), test=evaluate(data.val))
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "result.json").write_text(json.dumps(metrics))
            ray.train.report({"epoch": cfg.epochs}, checkpoint=Checkpoint.from_directory(folder))
    else:
        ray.train.report({"epoch": cfg.epochs})
