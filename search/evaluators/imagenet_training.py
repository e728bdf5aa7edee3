"""The ``imagenet`` evaluator: each arch trained on ImageNet (``training.recipes.imagenet``);
top-1 on the held-out subset of train is the search value, top-1 on the official val is
reported. Serves ``darts`` (the DARTS ImageNet network) and ``ofa_mbv3`` (subnets, from the
supernet's weights when the space has them, else from scratch).

Presets (``--preset``; ``--train-set KEY=VALUE`` and ``--set evaluator.config.build.KEY=VALUE``
override their fields):

* ``final``: the published protocols. DARTS: 250 epochs, batch 128, lr 0.1 decayed by 0.97 per
  epoch, label smoothing 0.1, auxiliary weight 0.4, weight decay 3e-5, 48 channels, 14 cells.
  OFA subnets: OFA fine-tunes specialised subnets for 25 epochs; we use cosine from lr 0.01 with
  one warm-up epoch, batch 256, label smoothing 0.1, weight decay 3e-5 (our reading; OFA's
  exact fine-tuning schedule is not in the material here).
* ``search``: a proxy that ranks archs in GPU-minutes: a fixed 100-class subset, 260 training
  images per class (26,000), 2,000 held out, 10 epochs at 128 px for DARTS (8 cells of 32
  channels, no auxiliary head) and 5 at the subnet's own resolution for OFA (starting from the
  supernet, so a few epochs separate archs). Chosen because subset-and-short proxies keep the
  ranking of full training far better than they keep its accuracy (ImageNet-100 practice),
  and because at these sizes an arch costs about 5-15 minutes on one V100-class GPU (an
  estimate from the image count: ~26k images x 10 epochs at ~1,000 images/s at 128 px).
* ``smoke``: the shared 1,000-image sample on a CPU in about a minute: 20 classes, 64 px
  (DARTS 5 cells of 8 channels; its auxiliary head needs 224 px), one epoch; plumbing, not a measurement.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import SearchError
from ..registry import register_evaluator
from . import Evaluator

PRESETS = {
    "darts": {
        "final": ({}, {"channels": 48, "layers": 14, "auxiliary": True}),
        "search": ({"epochs": 10, "batch_size": 256, "lr": 0.2, "schedule": "cosine", "warmup_epochs": 1,
                    "resolution": 128, "classes": 100, "images_per_class": 260, "holdout_images": 2000,
                    "val_images": 0}, {"channels": 32, "layers": 8, "auxiliary": False}),
        "smoke": ({"epochs": 1, "batch_size": 8, "lr": 0.05, "schedule": "cosine", "resolution": 64, "classes": 20,
                   "holdout_images": 10, "val_images": 20, "eval_batch_size": 20, "workers": 0,
                   "allow_val_only": True}, {"channels": 8, "layers": 5, "auxiliary": False}),
    },
    "ofa_mbv3": {
        "final": ({"epochs": 25, "batch_size": 256, "lr": 0.01, "schedule": "cosine", "warmup_epochs": 1}, {}),
        "search": ({"epochs": 5, "batch_size": 256, "lr": 0.01, "schedule": "cosine", "classes": 100,
                    "images_per_class": 260, "holdout_images": 2000}, {}),
        "smoke": ({"epochs": 1, "batch_size": 8, "lr": 0.01, "schedule": "cosine", "resolution": 64, "classes": 20,
                   "holdout_images": 10, "val_images": 20, "eval_batch_size": 20, "workers": 0,
                   "allow_val_only": True}, {}),
    },
}


@dataclass
class ImageNetTrainingEvaluatorConfig:
    preset: str = "search"
    train: dict = field(default_factory=dict)  # ImageNetTrainingConfig fields over the preset's
    build: dict = field(default_factory=dict)  # the space's build config fields over the preset's
    data_dir: str | None = None  # ImageNet root; None: $NARNAS_IMAGENET_DIR, then the data folder


@register_evaluator("imagenet")
class ImageNetTrainingEvaluator(Evaluator):
    """Trains each arch (DARTS, OFA subnets) on ImageNet; data-parallel with Ray Train.

    Checkpoints every epoch under ``RUN/checkpoints/<key digest>/imagenet.pt``: a retried or
    resumed trial continues from its last epoch."""

    config_class = ImageNetTrainingEvaluatorConfig
    default_executor = "ray"
    spaces = ("darts", "ofa_mbv3")
    data_parallel = True

    def __init__(self, space, config=None, context=None):
        from narnas import config as configs
        from narnas.errors import ConfigError
        from training.recipes.imagenet import ImageNetTrainingConfig, splits
        super().__init__(space, config or ImageNetTrainingEvaluatorConfig(), context)
        presets = PRESETS.get(space.name)
        if presets is None:
            raise SearchError(f"imagenet training serves {', '.join(PRESETS)}, not {space.name}")
        if self.config.preset not in presets:
            raise SearchError(f"unknown imagenet preset {self.config.preset!r}; valid: {', '.join(presets)}")
        train, build = presets[self.config.preset]
        try:
            self.training = configs.build(ImageNetTrainingConfig, {**train, **self.config.train},
                                          path="imagenet training").validate()
        except ConfigError as err:
            raise SearchError(str(err)) from None
        if self.context.threads and not self.training.threads:
            self.training.threads = self.context.threads
        self.build = {**build, **self.config.build}
        if space.name == "darts":
            self.build["dataset"] = "imagenet"
        space.build_config(self.build)  # bad build keys fail here, not in a trial
        self.data = splits(self.config.data_dir, self.training)  # a missing or bad root fails in the driver

    @property
    def metric(self) -> str:
        return "imagenet_holdout_top1"

    @property
    def test_metric(self) -> str:
        return "imagenet_val_top1"

    def metrics(self):
        return ["seconds", "params", "epochs", "train_loss", "train_images", "holdout_images", "val_images", "workers"]

    def checkpoint_path(self, key: str):
        if self.context.run_dir is None:
            return None
        return Path(self.context.run_dir) / "checkpoints" / hashlib.sha1(key.encode()).hexdigest()[:16] / "imagenet.pt"

    def evaluate(self, arch_json) -> dict:
        from training.parallel import fit_data_parallel
        from training.trainer import fit
        space = self.space
        arch = space.from_json(arch_json)
        build = dict(self.build, num_classes=self.data.num_classes)
        resolution = self.training.resolution or int(getattr(arch, "r", 224))
        drop_path, epochs = float(build.get("drop_path", 0.0)), self.training.epochs

        def ramp_drop_path(model, epoch):  # DARTS networks ramp drop-path when the build sets one
            if hasattr(model, "drop_path_prob"):
                model.drop_path_prob = drop_path * epoch / epochs

        extra = {"space": space.name, "arch": str(space.key(arch)), "build": build}
        checkpoint = self.checkpoint_path(str(space.key(arch)))
        batches = self.data.batches(self.training, resolution)
        ctx = self.context
        if ctx.workers_per_trial > 1:
            storage = None if ctx.run_dir is None else str(Path(ctx.run_dir) / "ray_train")
            result = fit_data_parallel(lambda: space.build_model(arch, build), batches, self.training,
                                       workers=ctx.workers_per_trial, cpus_per_worker=ctx.cpus_per_worker,
                                       gpus_per_worker=ctx.gpus_per_worker, on_epoch=ramp_drop_path,
                                       checkpoint=checkpoint, extra_state=extra, storage=storage, name="imagenet")
        else:
            result, _ = fit(lambda: space.build_model(arch, build), batches, self.training, on_epoch=ramp_drop_path,
                            checkpoint=checkpoint, extra_state=extra)
        model = space.build_model(arch, build)
        params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("auxiliary."))
        return {"val": result["val"], "test": result["test"], "seconds": result["seconds"], "epochs": result["epochs"],
                "train_loss": result["train_loss"], "train_images": result["train_images"],
                "holdout_images": result["val_images"], "val_images": result["test_images"], "params": params,
                "workers": result["workers"]}

    def describe(self) -> dict:
        return dict(super().describe(), data_dir=self.data.root, preset=self.config.preset,
                    training=asdict(self.training), build=self.build)
