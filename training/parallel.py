"""Data-parallel training with Ray Train: :func:`training.trainer.fit` run as N DDP replicas
(NCCL on GPUs, gloo on CPUs). Each replica trains its share of every global batch; rank 0
writes the same per-epoch checkpoint as a single-process training (to a path every replica can
read: one machine, or a shared file system on a cluster) and measures the accuracies."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Callable

from torch import nn

from .errors import TrainingError
from .trainer import TrainData, TrainerConfig


def fit_data_parallel(build: Callable[[], nn.Module], data: TrainData, config: TrainerConfig, *, workers: int,
                      cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0,
                      on_epoch: Callable[[nn.Module, int], None] | None = None, checkpoint: Path | None = None,
                      extra_state: dict | None = None, storage: str | None = None, name: str = "train") -> dict:
    """``fit`` as ``workers`` Ray Train replicas; rank 0's result. Needs a running Ray (the
    search's executor starts it)."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    if workers < 2:
        raise TrainingError("fit_data_parallel needs at least 2 workers (use fit for one)")
    loop_config = {"build": build, "data": data, "config": config, "on_epoch": on_epoch,
                   "checkpoint": None if checkpoint is None else str(checkpoint), "extra_state": extra_state or {}}
    resources = {"CPU": cpus_per_worker, **({"GPU": gpus_per_worker} if gpus_per_worker else {})}
    trainer = TorchTrainer(_replica, train_loop_config=loop_config,
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
        return json.loads((Path(folder) / "result.json").read_text())


def _replica(loop: dict) -> None:
    """One Ray Train worker of ``fit_data_parallel``."""
    import ray.train
    import ray.train.torch
    import torch.distributed as dist
    from ray.train import Checkpoint

    from .trainer import Replica, fit
    ctx = ray.train.get_context()
    replica = Replica(ctx.get_world_rank(), ctx.get_world_size(), ray.train.torch.get_device(),
                      wrap=ray.train.torch.prepare_model, all_reduce=dist.all_reduce)
    checkpoint = Path(loop["checkpoint"]) if loop["checkpoint"] else None
    result, _ = fit(loop["build"], loop["data"], loop["config"], on_epoch=loop["on_epoch"], checkpoint=checkpoint,
                    extra_state=loop["extra_state"], replica=replica)
    dist.barrier()
    if replica.rank == 0:
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "result.json").write_text(json.dumps(result))
            ray.train.report({"epoch": loop["config"].epochs}, checkpoint=Checkpoint.from_directory(folder))
    else:
        ray.train.report({"epoch": loop["config"].epochs})

