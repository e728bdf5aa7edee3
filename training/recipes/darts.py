"""The DARTS evaluation protocol on CIFAR-10, as a training recipe.

SGD (momentum 0.9, weight decay 3e-4), cosine learning rate from 0.025 to 0, cutout 16,
drop-path ramped linearly to 0.2, auxiliary head weighted 0.4, gradient clipping at 5,
random crop (padding 4) and horizontal flip; 600 epochs of a 36-channel, 20-cell network.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from narnas.config import at_least
from spaces.darts.model import count_parameters

from ..errors import TrainingError
from ..datasets.arrays import ArrayData
from ..trainer import TrainerConfig, fit
from . import Recipe, register_recipe


@dataclass
class DartsTrainingConfig(TrainerConfig):
    channels: int = 36
    layers: int = 20
    cutout: int = 16  # side of the square cut out; 0 = none
    drop_path: float = 0.2  # final drop-path probability (ramped linearly over the epochs)
    auxiliary: bool = True
    fraction: float = 1.0  # share of every split used (smoke runs)
    val_size: int = 5000  # held out of the training set: the search signal

    def validate(self):
        super().validate()
        at_least(self, 1, "channels", "layers", where="training")
        if not 0 < self.fraction <= 1:
            raise TrainingError(f"training.fraction must be in (0, 1], got {self.fraction}")
        return self


@register_recipe("darts")
class DartsRecipe(Recipe):
    """The DARTS evaluation protocol on CIFAR-10 (drop-path, auxiliary head, cutout)."""

    config_class = DartsTrainingConfig
    dataset = "cifar10"
    presets = {
        # The DARTS paper's final training.
        "final": {},
        # The proxy inside a search: the DARTS search network's size (8 cells, 16 channels), 20 epochs,
        # no auxiliary head; about 15 min per arch on one V100-class GPU.
        "search": dict(epochs=20, channels=16, layers=8, batch_size=128, auxiliary=False, drop_path=0.0),
        # Seconds to minutes on a CPU: a tiny network on 2% of the data for one epoch.
        "smoke": dict(epochs=1, channels=8, layers=5, batch_size=64, fraction=0.02, auxiliary=True,
                      drop_path=0.1),
    }

    def load_data(self, config, data_dir=None, warn=None):
        from training.datasets import cifar10
        return cifar10.load(data_dir, config.val_size, config.fraction, warn=warn)

    def build_config(self, space, config, num_classes: int = 10):
        return space.build_config(dict(num_classes=num_classes, channels=config.channels, layers=config.layers,
                                       auxiliary=config.auxiliary))

    def train(self, arch, space, data, config, checkpoint=None, progress=False, log=None, rungs=(),
              report=None) -> dict:
        build = self.build_config(space, config, data.num_classes)

        def ramp_drop_path(model, epoch):
            model.drop_path_prob = config.drop_path * epoch / config.epochs

        batches = ArrayData(data, config.batch_size, config.eval_batch_size, config.seed, cutout=config.cutout,
                            channels_last=config.channels_last)
        result, model = fit(lambda: space.build_model(arch, build), batches, config, on_epoch=ramp_drop_path,
                            checkpoint=checkpoint,
                            extra_state={"space": space.name, "arch": str(space.key(arch)), "build": asdict(build)},
                            progress=progress, log=log, rungs=rungs, report=report)
        return dict(result, params=count_parameters(model))
