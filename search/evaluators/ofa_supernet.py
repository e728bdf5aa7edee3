"""The ``ofa-supernet`` evaluator: an ``ofa_mbv3`` subnet cut from the trained supernet, its
BatchNorm statistics recalibrated, and its ImageNet top-1 measured (OFA's and NAR-Former's
search-time evaluator; minutes per arch on a GPU).

Per arch: the subnet with the supernet's weights (the space's ``supernet`` option, the
official ``ofa_mbv3_d234_e346_k357_w1.0`` / ``_w1.2`` file), BatchNorm recalibrated on
``calib_images`` training images (OFA uses 2,000) at the subnet's resolution, top-1 on the
fixed held-out subset of train (the search value; ``holdout_images``, OFA's 10,000), and top-1
on the official validation set (reported; ``val_images`` of them, 0 for all 50,000).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import SearchError
from ..registry import register_evaluator
from . import Evaluator


@dataclass
class OFASupernetConfig:
    data_dir: str | None = None  # ImageNet root; None: $NARNAS_IMAGENET_DIR, then the data folder
    calib_images: int = 2000
    holdout_images: int = 10_000
    val_images: int = 0  # 0: the whole official validation set
    batch_size: int = 100
    workers: int = 2
    decode: str = "auto"  # JPEG decoding: device (on the GPU), workers (PIL), auto = device on CUDA
    device: str = "auto"  # auto: cuda when available
    seed: int = 0  # the calibration images and the held-out subset

    def validate(self):
        if self.calib_images < 1 or self.holdout_images < 1 or self.val_images < 0 or self.batch_size < 1:
            raise SearchError("ofa-supernet needs calib_images, holdout_images, batch_size >= 1 and val_images >= 0")
        from training.datasets.imagenet import DECODERS
        if self.decode not in DECODERS:
            raise SearchError(f"ofa-supernet decode must be one of {', '.join(DECODERS)}, got {self.decode!r}")


@register_evaluator("ofa-supernet")
class OFASupernetEvaluator(Evaluator):
    """OFA subnets with the supernet's weights: BatchNorm recalibrated, ImageNet top-1."""

    config_class = OFASupernetConfig
    default_executor = "ray"
    spaces = ("ofa_mbv3",)

    def __init__(self, space, config=None, context=None):
        from training.datasets import imagenet
        super().__init__(space, config or OFASupernetConfig(), context)
        self.config.validate()
        if space.name != "ofa_mbv3":
            raise SearchError(f"ofa-supernet evaluates ofa_mbv3 subnets, not {space.name} archs")
        from spaces.ofa_mbv3.model import supernet_file
        if supernet_file(space.options.supernet, space.width_mult) is None:
            raise SearchError("ofa-supernet needs the trained supernet's weights: --supernet FILE (or --space-set "
                              "supernet=FILE, $NARNAS_OFA_SUPERNET), OFA's ofa_mbv3_d234_e346_k357_w1.0 / _w1.2")
        files = imagenet.list_files(self.config.data_dir, allow_val_only=True)  # a missing root fails here
        self.data_dir = str(files.root.resolve())  # absolute: Ray workers run elsewhere

    @property
    def metric(self) -> str:
        return "imagenet_holdout_top1"

    @property
    def test_metric(self) -> str:
        return "imagenet_val_top1"

    def metrics(self):
        return ["seconds", "params", "macs", "calib_images", "holdout_images", "val_images"]

    def _splits(self):
        from training.datasets import imagenet
        c = self.config
        files = imagenet.list_files(self.data_dir, allow_val_only=True)
        rest, held = imagenet.holdout_split(files.train, c.holdout_images, c.seed)
        if files.val_only:  # smoke: the sample stands in for every split (plumbing, not a measurement)
            rest = files.train
        val = files.val if not c.val_images else files.val[:c.val_images]
        return rest, held, val

    def evaluate(self, arch_json) -> dict:
        import numpy as np
        import torch

        from training.bn import recalibrate_bn
        from training.datasets import imagenet
        from training.trainer import autocast_dtype, evaluate, resolve_device
        start = time.perf_counter()
        c = self.config
        if self.context.threads:
            torch.set_num_threads(self.context.threads)
        device = resolve_device(self.config.device)
        arch = self.space.from_json(arch_json)
        model = self.space.build_model(arch).to(device)
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        rest, held, val = self._splits()
        rng = np.random.default_rng(c.seed)
        calib = [rest[i] for i in rng.permutation(len(rest))[:c.calib_images]]
        # OFA calibrates on training images as the network sees them in training (its sub-train loader)
        loader = imagenet.FolderData(calib, held, val, arch.r, c.batch_size, c.batch_size, c.seed, c.workers,
                                     c.decode).loader(device)
        used = recalibrate_bn(model, loader.train(0), device)
        dtype = autocast_dtype("auto", device)
        out = {"val": evaluate(model, loader, "val", dtype), "test": evaluate(model, loader, "test", dtype),
               "params": self.space.params(arch), "macs": self.space.macs(arch),
               "calib_images": used, "holdout_images": len(held), "val_images": len(val)}
        out["seconds"] = time.perf_counter() - start
        return out

    def describe(self) -> dict:
        return dict(super().describe(), data=self.data_dir, supernet=self.space.options.supernet)
