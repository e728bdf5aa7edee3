"""The training loop, for any image classifier on any :class:`~training.datasets.Dataset`.

SGD with momentum, a cosine learning rate to 0, gradient clipping, mixed precision and
channels-last on CUDA. Augmentation runs on whole batches of tensors (no per-image
Python). A checkpoint is written atomically after every epoch; ``fit`` started again
with the same checkpoint continues after its last epoch, and refuses a checkpoint
written with another config. What is specific to a network (extra losses, schedules
such as drop-path, the augmentation) comes from the recipe as hooks.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from narnas.config import at_least
from narnas.files import atomic_torch_save
from narnas.progress import Progress, duration, eta, interactive

from .errors import TrainingError


@dataclass
class TrainerConfig:
    """The optimisation; recipes subclass it with their own fields and defaults."""
    epochs: int = 600
    batch_size: int = 96
    lr: float = 0.025
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    eval_batch_size: int = 500
    seed: int = 0
    device: str = "auto"  # auto = cuda when there is one
    amp: bool = True  # mixed precision on CUDA
    channels_last: bool = True  # on CUDA
    threads: int = 0  # torch CPU threads; 0 = all given

    def validate(self):
        at_least(self, 1, "epochs", "batch_size", "eval_batch_size", where="training")
        return self


def cross_entropy(output, y):
    """(loss, logits) of a network that returns logits."""
    return F.cross_entropy(output, y), output


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(f"device {name!r} requested but CUDA is not available")
    return torch.device(name)


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


def train_step(model, x, y, loss: Callable, opt, scaler, config, device):
    """One optimisation step: autocast on CUDA when ``config.amp``, scaled backward, gradient
    clipping at ``config.grad_clip``; returns (loss, logits)."""
    with torch.autocast(device.type, enabled=device.type == "cuda" and config.amp):
        value, logits = loss(model(x), y)
    opt.zero_grad(set_to_none=True)
    scaler.scale(value).backward()
    scaler.unscale_(opt)
    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    scaler.step(opt)
    scaler.update()
    return value, logits


def fit(build: Callable[[], nn.Module], data, config: TrainerConfig, *,
        augment: Callable | None = None, loss: Callable = cross_entropy,
        on_epoch: Callable[[nn.Module, int], None] | None = None,
        checkpoint: Path | None = None, extra_state: dict | None = None,
        progress: bool = False, log=None) -> tuple[dict, nn.Module]:
    """Train the network ``build()`` makes on ``data``; (result, trained model).

    ``build`` is called after seeding, so the initial weights follow ``config.seed``.
    ``augment(x, generator)`` transforms a training batch; ``loss(output, y)`` returns
    (loss, logits); ``on_epoch(model, epoch)`` runs before each epoch (schedules).
    The checkpoint records ``asdict(config)`` plus ``extra_state`` (what the weights belong to:
    space, arch, build config); a checkpoint whose config or any ``extra_state`` entry differs
    is refused, so it never continues another network's training.
    The result holds val and test accuracy (%), the last training loss, the per-epoch
    history, the epochs and the training seconds (resumed runs included).
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    cfg = config
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    cuda = device.type == "cuda"
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = build().to(device)
    if cuda and cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and cfg.amp)
    start_epoch, history, spent = 0, [], 0.0
    state = load_checkpoint(checkpoint, cfg, extra_state, device)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, history, spent = state["epoch"], state["history"], state["seconds"]
        log(f"resuming training from epoch {start_epoch} of {cfg.epochs} ({checkpoint})")

    x_train, y_train = data.prepare(data.train.x), torch.from_numpy(data.train.y)
    n = len(y_train)
    steps = math.ceil(n / cfg.batch_size)
    # On a terminal a bar over every step of the training; in a log one line per epoch.
    bar = Progress(cfg.epochs * steps, progress and interactive(), "train", start=start_epoch * steps)
    began_training = time.time()
    for epoch in range(start_epoch, cfg.epochs):
        began = time.time()
        model.train()
        if on_epoch is not None:
            on_epoch(model, epoch)
        order = torch.randperm(n, generator=gen)
        total_loss, correct = 0.0, 0
        for step in range(steps):
            idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            x = x_train[idx]
            if augment is not None:
                x = augment(x, gen)
            x = x.to(device, non_blocking=True)
            y = y_train[idx].to(device, non_blocking=True)
            if cuda and cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            batch_loss, logits = train_step(model, x, y, loss, opt, scaler, cfg, device)
            total_loss += float(batch_loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y).sum())
            if bar.enabled:
                seen = min(n, (step + 1) * cfg.batch_size)
                bar.update(epoch * steps + step + 1, epoch=f"{epoch + 1}/{cfg.epochs}", loss=total_loss / seen,
                           acc=f"{100.0 * correct / seen:.1f}%")
        sched.step()
        spent += time.time() - began
        history.append({"epoch": epoch + 1, "train_loss": total_loss / n, "train_acc": 100.0 * correct / n})
        if progress and not bar.enabled:
            elapsed = time.time() - began_training
            left = eta(elapsed, epoch + 1 - start_epoch, cfg.epochs - start_epoch)
            log(f"epoch {epoch + 1}/{cfg.epochs} loss {total_loss / n:.4f} acc {100.0 * correct / n:.1f}% "
                f"{duration(elapsed)} eta {duration(left)}")
        if checkpoint is not None:
            save_checkpoint(checkpoint, {**(extra_state or {}), "config": dataclasses.asdict(cfg),
                                         "model": model.state_dict(), "optimizer": opt.state_dict(),
                                         "scheduler": sched.state_dict(), "generator": gen.get_state(),
                                         "torch_rng": torch.get_rng_state(), "epoch": epoch + 1,
                                         "history": history, "seconds": spent})
    bar.close()
    val = evaluate(model, data, data.val, cfg, device) if len(data.val) else float("nan")
    test = evaluate(model, data, data.test, cfg, device)
    result = {"val": val, "test": test, "train_loss": history[-1]["train_loss"] if history else None,
              "history": history, "epochs": cfg.epochs, "seconds": round(spent, 2)}
    return result, model


@torch.inference_mode()
def evaluate(model, data, split, cfg: TrainerConfig, device) -> float:
    """Top-1 accuracy (%) of ``model`` on ``split`` of ``data``."""
    model.eval()
    correct = 0
    for i in range(0, len(split), cfg.eval_batch_size):
        x = data.prepare(split.x[i:i + cfg.eval_batch_size]).to(device)
        correct += int((model(x).argmax(1).cpu() == torch.from_numpy(split.y[i:i + cfg.eval_batch_size])).sum())
    return 100.0 * correct / len(split)
