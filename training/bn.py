"""BatchNorm recalibration: the statistics of a subnet cut from a supernet are wrong for it.

Once-for-All's practice: reset every BatchNorm's running mean and variance, then forward a few
thousand training images (no gradients, the rest of the network in inference) so each layer
holds the exact average of its batch statistics over them (momentum ``None``).
"""
from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches, device="cpu", max_images: int | None = None) -> int:
    """Recompute the BatchNorm statistics of ``model`` from ``batches`` (an iterable of (x, y) or
    x); returns the number of images used. The model is left in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m, m.momentum) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over every batch, not an exponential one
    model.eval()
    for m in norms:
        m.train()
    seen = 0
    try:
        for batch in batches:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            if max_images is not None:
                x = x[:max(0, max_images - seen)]
            if len(x) == 0:
                break
            model(x.to(device))
            seen += len(x)
            if max_images is not None and seen >= max_images:
                break
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.eval()
    return seen
