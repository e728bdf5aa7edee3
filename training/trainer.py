"""The one training loop, for any image classifier on any dataset behind a loader, in one
process or as one replica of a data-parallel training.

SGD with momentum (fused on CUDA), a cosine or per-epoch exponential learning rate after an
optional linear warm-up, label smoothing, the auxiliary loss of networks that return one,
gradient clipping, bf16 autocast where the GPU has it (fp16 only on request), channels-last
and ``cudnn.benchmark`` on CUDA, ``torch.compile`` on request. Nothing inside an epoch waits
for the GPU: the loss and accuracy are summed on the device and read once per epoch.

A checkpoint is written atomically after every epoch. The order of the data, the augmentation
and the network's own randomness (dropout, drop-path) of an epoch are functions of
(seed, epoch, rank), so a training killed at any point and started again with the same
checkpoint ends exactly as an uninterrupted one; a checkpoint written with another config or
for another network is refused. What is specific to a network (schedules such as drop-path)
comes from the caller as the ``on_epoch`` hook.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from narnas.config import at_least
from narnas.files import atomic_torch_save
from narnas.progress import Progress, duration, eta, interactive

from .errors import TrainingError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SCHEDULES = ("cosine", "exponential")


@dataclass
class TrainerConfig:
    """The optimisation; recipes subclass it with their own fields and defaults."""
    epochs: int = 600
    batch_size: int = 96
    lr: float = 0.025
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 3e-4
    schedule: str = "cosine"  # cosine to 0, or exponential (lr * gamma ** epoch)
    gamma: float = 0.97
    warmup_epochs: int = 0  # linear warm-up before the schedule
    label_smoothing: float = 0.0
    auxiliary_weight: float = 0.4  # networks that return (logits, auxiliary logits)
    grad_clip: float = 5.0  # 0 = none
    eval_batch_size: int = 0  # 0: the loader's default for the device (CIFAR: 2,000 on a GPU, 250 on a CPU)
    seed: int = 0
    device: str = "auto"  # auto = cuda when there is one
    precision: str = "auto"  # auto = bf16 on a GPU that has it, else fp32; fp16 only on request
    channels_last: bool = True  # on CUDA
    compile: bool = False  # torch.compile the network
    threads: int = 0  # torch CPU threads; 0 = the CPUs given to the process less the load already on them

    def validate(self):
        at_least(self, 1, "epochs", "batch_size", where="training")
        at_least(self, 0, "eval_batch_size", "threads", where="training")
        if self.precision not in PRECISIONS:
            raise TrainingError(f"training.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.schedule not in SCHEDULES:
            raise TrainingError(f"training.schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.warmup_epochs < 0 or self.grad_clip < 0 or not 0 <= self.label_smoothing < 1:
            raise TrainingError("training.warmup_epochs and grad_clip cannot be negative; "
                                "label_smoothing must be in [0, 1)")
        return self


class Loader(Protocol):
    """Batches of one process (one replica's share under data parallelism), on its device."""

    def train(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The augmented, normalised training batches of ``epoch``: a function of (seed, epoch, rank)."""

    def evaluate(self, split: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The normalised batches of ``split`` ("val": the search signal, "test": reported)."""

    def size(self, split: str) -> int:
        """Images in ``split`` ("train": this replica's images per epoch)."""


class TrainData(Protocol):
    """A dataset and how it is batched: ``fit`` asks it for the loader of its device."""

    def loader(self, device: torch.device, rank: int = 0, world: int = 1) -> Loader: ...


@dataclass
class Replica:
    """This process's place in a data-parallel training (``training.parallel``)."""
    rank: int
    world: int
    device: torch.device
    wrap: Callable[[nn.Module], nn.Module]  # into DistributedDataParallel
    all_reduce: Callable[[torch.Tensor], None]  # sums a tensor over the replicas, in place


def seed_of(*parts: int) -> int:
    """A 63-bit seed mixed from ``parts`` (seed, epoch, rank): independent streams per epoch and replica."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def free_cpus() -> int:
    """The CPUs this process may use less the load already on them (the 1-minute load average),
    at least 1. Measured on 2 cores: a small DARTS training with 2 threads beside 2 busy processes
    took 12.0 s per epoch, with 1 thread 6.9 s; idle, 2 threads 2.8 s and 1 thread 4.4 s. Spinning
    OpenMP threads that wait for a core they do not get cost more than the parallelism gives."""
    import os
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    busy = int(round(os.getloadavg()[0])) if hasattr(os, "getloadavg") else 0
    return max(1, cpus - busy)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(f"device {name!r} requested but CUDA is not available")
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device``; None = fp32. On a GPU, fp16 autocast is
    slower than fp32 for the depthwise convolutions of these networks (sm_90), bf16 is not."""
    if precision == "auto":
        cuda = device.type == "cuda"
        return torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else None
    if precision == "fp16" and device.type != "cuda":
        raise TrainingError("training.precision fp16 needs a CUDA device (use bf16 or fp32 on a CPU)")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def precision_name(dtype: torch.dtype | None) -> str:
    """float32, bfloat16 or float16: what a result records of the autocast ``dtype``."""
    return str(dtype or torch.float32).replace("torch.", "")


def lr_factor(cfg: TrainerConfig, epoch: int) -> float:
    """The learning rate of ``epoch`` over ``cfg.lr``."""
    if epoch < cfg.warmup_epochs:
        return (epoch + 1) / cfg.warmup_epochs
    e = epoch - cfg.warmup_epochs
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * e / max(1, cfg.epochs - cfg.warmup_epochs)))
    return cfg.gamma ** e


def classification_loss(cfg: TrainerConfig):
    """loss(output, y) -> (loss, logits): cross-entropy with ``cfg.label_smoothing``, plus
    ``cfg.auxiliary_weight`` times the auxiliary head's when the network returns (logits, aux)."""
    def loss(output, y):
        logits, aux = output if isinstance(output, tuple) else (output, None)
        value = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        if aux is not None:
            value = value + cfg.auxiliary_weight * F.cross_entropy(aux, y, label_smoothing=cfg.label_smoothing)
        return value, logits
    return loss


def save_checkpoint(path: Path, state: dict) -> None:
    atomic_torch_save(path, state)


def load_checkpoint(path: Path | None, config, extra_state: dict | None, map_location) -> dict | None:
    """The per-epoch checkpoint at ``path`` (None when there is none yet), refused unless it was
    written with the same ``config`` and belongs to the same ``extra_state`` (space, arch, build
    config), so a run never continues another network's training."""
    if path is None or not path.exists():
        return None
    state = torch.load(path, map_location=map_location, weights_only=False)
    if state["config"] != dataclasses.asdict(config):
        raise TrainingError(f"checkpoint {path} was written with another training config")
    for name, value in (extra_state or {}).items():
        if state.get(name) != value:
            raise TrainingError(f"checkpoint {path} belongs to another {name} ({str(state.get(name))[:80]}); "
                                "use another output folder or delete it")
    return state


def make_optimizer(params, cfg: TrainerConfig, device: torch.device) -> torch.optim.Optimizer:
    # fused: one kernel for every parameter's update on a GPU; the CPU keeps the foreach path
    fused = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                           nesterov=cfg.nesterov and cfg.momentum > 0, **fused)


def train_step(model, x, y, loss: Callable, opt, scaler, cfg: TrainerConfig, dtype: torch.dtype | None,
               mark: Callable[[str], None] | None = None):
    """One optimisation step under autocast ``dtype`` (None: fp32), the scaler's backward (fp16
    only), gradient clipping at ``cfg.grad_clip``; returns (loss, logits), still on the device.
    ``mark(phase)``, when given, is called as the forward, backward and optimizer phases end
    (``bench.train`` times them)."""
    with torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        value, logits = loss(model(x), y)
    if mark:
        mark("forward")
    opt.zero_grad(set_to_none=True)
    scaler.scale(value).backward()
    if mark:
        mark("backward")
    if cfg.grad_clip > 0:
        scaler.unscale_(opt)
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    scaler.step(opt)
    scaler.update()
    if mark:
        mark("optimizer")
    return value, logits


def fit(build: Callable[[], nn.Module], data: TrainData, config: TrainerConfig, *,
        on_epoch: Callable[[nn.Module, int], None] | None = None, checkpoint: Path | None = None,
        extra_state: dict | None = None, progress: bool = False, log=None,
        replica: Replica | None = None, rungs=(), report=None) -> tuple[dict, nn.Module]:
    """Train the network ``build()`` makes on ``data``; (result, trained model).

    ``build`` is called after seeding, so the initial weights follow ``config.seed``;
    ``on_epoch(model, epoch)`` runs before each epoch (schedules such as drop-path).
    The checkpoint records ``asdict(config)`` plus ``extra_state`` (what the weights belong to:
    space, arch, build config); a checkpoint whose config or any ``extra_state`` entry differs
    is refused. Under ``replica`` (data parallelism) every replica trains its share of each
    batch, rank 0 writes the checkpoint and measures the accuracies (the others return None).
    The result holds val and test accuracy (%), the last training loss, the per-epoch history,
    the images of each split, the epochs, the training seconds (resumed runs included), and the
    seed, device, precision and CPU threads it ran with.

    Early stopping (one process): after each epoch of ``rungs`` (before the last) the validation
    accuracy is measured, kept in the history and the checkpoint, and ``report(epoch, val,
    seconds so far)`` says whether the training goes on; when it says no, the result has
    ``stopped: True``, the epochs trained, that val and no test. A training resumed right after
    a rung reports it again, so no rung goes unanswered.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    cfg = config
    torch.set_num_threads(cfg.threads or free_cpus())
    device = replica.device if replica else resolve_device(cfg.device)
    rank, world = (replica.rank, replica.world) if replica else (0, 1)
    dtype = autocast_dtype(cfg.precision, device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed shapes: the fastest convolution kernels, chosen once
    torch.manual_seed(cfg.seed)
    inner = build()
    state = load_checkpoint(checkpoint, cfg, extra_state, "cpu")
    if state is not None:
        inner.load_state_dict(state["model"])
    inner = inner.to(device)
    if cuda and cfg.channels_last:
        inner = inner.to(memory_format=torch.channels_last)
    model = replica.wrap(inner) if replica else inner
    opt = make_optimizer(model.parameters(), cfg, device)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: lr_factor(cfg, epoch))
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    start_epoch, history, spent = 0, [], 0.0
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, history, spent = state["epoch"], state["history"], state["seconds"]
        if rank == 0:
            log(f"resuming training from epoch {start_epoch} of {cfg.epochs} ({checkpoint})")
    step_model = torch.compile(model) if cfg.compile else model
    loader = data.loader(device, rank, world)
    loss = classification_loss(cfg)
    n = loader.size("train")
    steps = max(1, math.ceil(n / max(1, cfg.batch_size // world)))
    # On a terminal a bar over every step of the training; in a log one line per epoch.
    bar = Progress(cfg.epochs * steps, progress and rank == 0 and interactive(), "train", start=start_epoch * steps)
    began_training = time.time()
    rungs = {int(r) for r in rungs if 0 < int(r) < cfg.epochs} if report is not None and world == 1 else set()
    if start_epoch in rungs and "val" in history[-1] and not report(start_epoch, history[-1]["val"], spent):
        return _stopped(history, start_epoch, spent, cfg, device, dtype, loader, n), inner
    for epoch in range(start_epoch, cfg.epochs):
        began = time.time()
        torch.manual_seed(seed_of(cfg.seed, epoch, rank))  # this epoch's dropout and drop-path
        model.train()
        if on_epoch is not None:
            on_epoch(inner, epoch)
        sums = torch.zeros(3, device=device)  # loss x images, correct, images: read once per epoch
        for step, (x, y) in enumerate(loader.train(epoch)):
            value, logits = train_step(step_model, x, y, loss, opt, scaler, cfg, dtype)
            sums[0] += value.detach().float() * len(y)
            sums[1] += (logits.argmax(1) == y).sum()
            sums[2] += len(y)
            if bar.enabled and step % 20 == 0:  # a terminal's bar may cost a sync now and then
                seen = float(sums[2])
                bar.update(epoch * steps + step + 1, epoch=f"{epoch + 1}/{cfg.epochs}", loss=float(sums[0]) / seen,
                           acc=f"{100.0 * float(sums[1]) / seen:.1f}%")
        sched.step()
        if replica:
            replica.all_reduce(sums)
        total_loss, correct, seen = sums.tolist()
        seen = max(seen, 1.0)
        spent += time.time() - began
        history.append({"epoch": epoch + 1, "train_loss": total_loss / seen, "train_acc": 100.0 * correct / seen})
        if epoch + 1 in rungs:
            history[-1]["val"] = evaluate(inner, loader, "val", dtype)
        if progress and rank == 0 and not bar.enabled:
            elapsed = time.time() - began_training
            left = eta(elapsed, epoch + 1 - start_epoch, cfg.epochs - start_epoch)
            log(f"epoch {epoch + 1}/{cfg.epochs} loss {total_loss / seen:.4f} acc {100.0 * correct / seen:.1f}% "
                f"{duration(elapsed)} eta {duration(left)}")
        if checkpoint is not None and rank == 0:
            save_checkpoint(checkpoint, {**(extra_state or {}), "config": dataclasses.asdict(cfg),
                                         "model": inner.state_dict(), "optimizer": opt.state_dict(),
                                         "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
                                         "epoch": epoch + 1, "history": history, "seconds": spent,
                                         "workers": world})
        if epoch + 1 in rungs and not report(epoch + 1, history[-1]["val"], spent):
            bar.close()
            return _stopped(history, epoch + 1, spent, cfg, device, dtype, loader, n), inner
    bar.close()
    # the thread count and precision change the float sums: recorded beside the seed
    result = {"train_loss": history[-1]["train_loss"] if history else None, "history": history,
              "epochs": cfg.epochs, "seconds": round(spent, 2), "workers": world, "seed": cfg.seed,
              "device": str(device), "precision": precision_name(dtype),
              "threads": torch.get_num_threads(),
              "train_images": n * world, "val_images": loader.size("val"), "test_images": loader.size("test")}
    if rank == 0:
        result["val"] = evaluate(inner, loader, "val", dtype)
        result["test"] = evaluate(inner, loader, "test", dtype)
    return result, inner


def _stopped(history, epochs, spent, cfg, device, dtype, loader, n) -> dict:
    """The result of a training stopped after ``epochs``: its val there, no test."""
    return {"train_loss": history[-1]["train_loss"], "history": history, "epochs": epochs, "seconds": round(spent, 2),
            "workers": 1, "seed": cfg.seed, "device": str(device), "precision": precision_name(dtype),
            "threads": torch.get_num_threads(), "train_images": n, "val_images": loader.size("val"),
            "test_images": loader.size("test"), "val": history[-1]["val"], "test": None, "stopped": True}


@torch.inference_mode()
def evaluate(model: nn.Module, loader: Loader, split: str, dtype: torch.dtype | None = None) -> float:
    """Top-1 accuracy (%) of ``model`` on ``split`` of ``loader``; nan for an empty split."""
    if loader.size(split) == 0:
        return float("nan")
    model.eval()
    correct, total = None, 0
    for x, y in loader.evaluate(split):
        with torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(x)
        logits = out[0] if isinstance(out, tuple) else out
        hits = (logits.argmax(1) == y).sum()
        correct = hits if correct is None else correct + hits
        total += len(y)
    return 100.0 * int(correct) / total
