"""A training recipe for plain cell-based classifiers on CIFAR-10 (NB101, NB201): random
crop (padding 4) and horizontal flip, cross-entropy, SGD with a cosine schedule. The
spaces subclass it with their network's fields and presets."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import TrainingError
from ..datasets.arrays import ArrayData
from ..trainer import TrainerConfig, fit
from . import Recipe


@dataclass
class CellTrainingConfig(TrainerConfig):
    """The data fields the cell recipes share; the spaces add their network's fields."""
    fraction: float = 1.0  # share of the training images used (class-balanced)
    val_size: int = 1000  # held out of the training set

    def validate(self):
        super().validate()
        if not 0 < self.fraction <= 1:
            raise TrainingError(f"training.fraction must be in (0, 1], got {self.fraction}")
        return self


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


class CellRecipe(Recipe):
    dataset = "cifar10"

    def load_data(self, config, data_dir=None, warn=None):
        from training.datasets import cifar10
        return cifar10.load(data_dir, config.val_size, config.fraction, warn=warn)

    def build_config(self, space, config, num_classes: int = 10):
        """The space's build config from the training config's network fields."""
        raise NotImplementedError

    def train_model(self, arch, space, data, config, checkpoint=None, progress=False, log=None, rungs=(),
                    report=None):
        """(result, trained model): ``train`` for callers that use the network afterwards."""
        build = self.build_config(space, config, data.num_classes)
        batches = ArrayData(data, config.batch_size, config.eval_batch_size, config.seed,
                            channels_last=config.channels_last)
        result, model = fit(lambda: space.build_model(arch, build), batches, config, checkpoint=checkpoint,
                            extra_state={"space": space.name, "arch": str(space.key(arch)), "build": asdict(build)},
                            progress=progress, log=log, rungs=rungs, report=report)
        return dict(result, params=count_parameters(model)), model

    def train(self, arch, space, data, config, checkpoint=None, progress=False, log=None, rungs=(),
              report=None) -> dict:
        return self.train_model(arch, space, data, config, checkpoint, progress, log, rungs, report)[0]
