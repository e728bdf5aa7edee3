"""Training a DARTS-space network on CIFAR-10 with the DARTS evaluation protocol.

SGD (momentum 0.9, weight decay 3e-4), cosine learning rate from 0.025 to 0, cutout 16,
drop-path ramped linearly to 0.2, auxiliary head weighted 0.4, gradient clipping at 5,
random crop (padding 4) and horizontal flip. Augmentation runs on whole batches of
tensors (no per-image Python). A checkpoint is written atomically after every epoch, and
a run started again with the same checkpoint folder continues after its last epoch.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from narnas import config as configs

from .errors import SearchError


@dataclass
class TrainingConfig:
    epochs: int = 600
    channels: int = 36
    layers: int = 20
    batch_size: int = 96
    lr: float = 0.025
    momentum: float = 0.9
    weight_decay: float = 3e-4
    cutout: int = 16  # side of the square cut out; 0 = none
    drop_path: float = 0.2  # final drop-path probability (ramped linearly over the epochs)
    auxiliary: bool = True
    auxiliary_weight: float = 0.4
    grad_clip: float = 5.0
    fraction: float = 1.0  # share of every split used (smoke runs)
    val_size: int = 5000  # held out of the training set: the search signal
    eval_batch_size: int = 500
    seed: int = 0
    device: str = "auto"  # auto = cuda when there is one
    amp: bool = True  # mixed precision on CUDA
    channels_last: bool = True  # on CUDA
    threads: int = 0  # torch CPU threads; 0 = all given

    def validate(self):
        for name in ("epochs", "channels", "layers", "batch_size"):
            if getattr(self, name) < 1:
                raise SearchError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.fraction <= 1:
            raise SearchError(f"fraction must be in (0, 1], got {self.fraction}")
        return self


PRESETS = {
    # The DARTS paper's final training.
    "final": {},
    # The proxy inside a search: the DARTS search network's size (8 cells, 16 channels), 20 epochs,
    # no auxiliary head; about 15 min per arch on one V100-class GPU.
    "search": dict(epochs=20, channels=16, layers=8, batch_size=128, auxiliary=False, drop_path=0.0),
    # Seconds to minutes on a CPU: a tiny network on 2% of the data for one epoch.
    "smoke": dict(epochs=1, channels=8, layers=5, batch_size=64, fraction=0.02, auxiliary=True, drop_path=0.1,
                  eval_batch_size=250),
}


def preset(name: str, **overrides) -> TrainingConfig:
    if name not in PRESETS:
        raise SearchError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    return configs.build(TrainingConfig, {**PRESETS[name], **overrides}, path="training")


# --- augmentation on batches ------------------------------------------------------------

def augment(x: torch.Tensor, gen: torch.Generator, cutout: int) -> torch.Tensor:
    """Random crop (padding 4), horizontal flip and cutout for a [B, C, 32, 32] batch."""
    b, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (b,), generator=gen).to(x.device)
    dx = torch.randint(0, 9, (b,), generator=gen).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    x = padded[torch.arange(b, device=x.device)[:, None, None, None], torch.arange(x.shape[1], device=x.device)[None, :, None, None],
               rows, cols]
    flip = (torch.rand(b, generator=gen) < 0.5).to(x.device)
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if cutout > 0:
        cy = torch.randint(0, h, (b,), generator=gen).to(x.device)
        cx = torch.randint(0, w, (b,), generator=gen).to(x.device)
        ys = torch.arange(h, device=x.device)[None, :, None]
        xs = torch.arange(w, device=x.device)[None, None, :]
        half = cutout // 2  # a cutout x cutout square centred on (cy, cx), clipped at the border
        hole = ((ys >= (cy - half)[:, None, None]) & (ys < (cy + cutout - half)[:, None, None])
                & (xs >= (cx - half)[:, None, None]) & (xs < (cx + cutout - half)[:, None, None]))
        x = x * (~hole)[:, None].to(x.dtype)
    return x


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, 32, 32, 3] -> normalised float32 [N, 3, 32, 32]."""
    from .cifar10 import MEAN, STD
    x = (images.astype(np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


# --- the loop ---------------------------------------------------------------------------

def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SearchError(f"device {name!r} requested but CUDA is not available")
    return torch.device(name)


def save_checkpoint(path: Path, state: dict) -> None:
    from .rundir import atomic_torch_save
    atomic_torch_save(path, state)


def train(arch, space, data, config: TrainingConfig, checkpoint: Path | None = None,
          progress: bool = False, log=None) -> dict:
    """Train ``arch`` on ``data`` (a cifar10.CIFAR10); return validation and test accuracy (%)."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    cfg = config
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    cuda = device.type == "cuda"
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = space.build_model(arch, num_classes=10, channels=cfg.channels, layers=cfg.layers,
                              auxiliary=cfg.auxiliary, drop_path=0.0).to(device)
    if cuda and cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and cfg.amp)
    start_epoch, history, spent = 0, [], 0.0
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        if state["config"] != dataclasses.asdict(cfg):
            raise SearchError(f"checkpoint {checkpoint} was written with another training config")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, history, spent = state["epoch"], state["history"], state["seconds"]
        log(f"resuming training from epoch {start_epoch} of {cfg.epochs} ({checkpoint})")

    x_train, y_train = to_tensor(data.train.x), torch.from_numpy(data.train.y)
    n = len(y_train)
    steps = math.ceil(n / cfg.batch_size)
    for epoch in range(start_epoch, cfg.epochs):
        began = time.time()
        model.train()
        model.drop_path_prob = cfg.drop_path * epoch / cfg.epochs
        order = torch.randperm(n, generator=gen)
        total_loss, correct = 0.0, 0
        for step in range(steps):
            idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            x = augment(x_train[idx], gen, cfg.cutout).to(device, non_blocking=True)
            y = y_train[idx].to(device, non_blocking=True)
            if cuda and cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, enabled=cuda and cfg.amp):
                out = model(x)
                logits, aux = out if isinstance(out, tuple) else (out, None)
                loss = F.cross_entropy(logits, y)
                if aux is not None:
                    loss = loss + cfg.auxiliary_weight * F.cross_entropy(aux, y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y).sum())
            if progress:
                _bar(epoch, cfg.epochs, step + 1, steps, total_loss / min(n, (step + 1) * cfg.batch_size),
                     100.0 * correct / min(n, (step + 1) * cfg.batch_size))
        sched.step()
        spent += time.time() - began
        history.append({"epoch": epoch + 1, "train_loss": total_loss / n, "train_acc": 100.0 * correct / n})
        if progress:
            sys.stderr.write("\n")
        if checkpoint is not None:
            save_checkpoint(checkpoint, {"config": dataclasses.asdict(cfg), "model": model.state_dict(),
                                         "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                                         "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                                         "epoch": epoch + 1, "history": history, "seconds": spent})
    val = evaluate(model, data.val, cfg, device) if len(data.val) else float("nan")
    test = evaluate(model, data.test, cfg, device)
    from spaces.darts_model import count_parameters
    return {"val": val, "test": test, "train_loss": history[-1]["train_loss"] if history else None,
            "history": history, "epochs": cfg.epochs, "params": count_parameters(model), "seconds": round(spent, 2)}


@torch.inference_mode()
def evaluate(model, split, cfg: TrainingConfig, device) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(split), cfg.eval_batch_size):
        x = to_tensor(split.x[i:i + cfg.eval_batch_size]).to(device)
        correct += int((model(x).argmax(1).cpu() == torch.from_numpy(split.y[i:i + cfg.eval_batch_size])).sum())
    return 100.0 * correct / len(split)


def _bar(epoch, epochs, step, steps, loss, acc):
    width = 20
    done = int(width * step / steps)
    sys.stderr.write(f"\repoch {epoch + 1}/{epochs} [{'#' * done}{'.' * (width - done)}] {step}/{steps} "
                     f"loss {loss:.3f} acc {acc:.1f}%   ")
    sys.stderr.flush()
