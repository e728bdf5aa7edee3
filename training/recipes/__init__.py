"""Training recipes: how one space's networks are trained on one dataset.

A recipe owns a typed config (a :class:`~training.trainer.TrainerConfig` subclass with its
network's fields: widths, depths, regularisers), named presets of it, and ``train``, which
builds the network through the space and runs :func:`training.trainer.fit` with its hooks.
Recipes are registered by space name; the built-in ones are the modules of this package
(``training.recipes.darts``, ``nb101``, ``nb201``; ``cell`` is NB101's and NB201's common recipe).
"""
from __future__ import annotations

from narnas.config import build
from narnas.registry import Registry

from ..errors import TrainingError

RECIPES = Registry("training recipe for space", ("training.recipes.darts", "training.recipes.nb101",
                                                  "training.recipes.nb201"))


def register_recipe(space: str):
    return RECIPES.register(space)


def get_recipe(space: str) -> "Recipe":
    """The recipe of ``space`` (a name); unknown spaces list those that have one."""
    return RECIPES.get(space)()


class Recipe:
    """The interface: ``config_class``, ``presets``, ``dataset`` and ``train``."""

    #: the TrainerConfig subclass of this recipe
    config_class: type
    #: preset name -> field overrides over the config's defaults (the first is the default)
    presets: dict[str, dict]
    #: the dataset module under training.datasets the recipe trains on
    dataset: str

    def preset(self, name: str | None = None, **overrides):
        """The config of preset ``name`` with ``overrides``; unknown names and keys list the valid ones."""
        name = next(iter(self.presets)) if name is None else name
        if name not in self.presets:
            raise TrainingError(f"unknown preset {name!r}; valid: {', '.join(self.presets)}")
        return build(self.config_class, {**self.presets[name], **overrides}, path="training")

    def load_data(self, config, data_dir=None, warn=None):
        """The dataset the recipe trains on, split as ``config`` says."""
        raise NotImplementedError

    def train(self, arch, space, data, config, checkpoint=None, progress: bool = False, log=None,
              rungs=(), report=None) -> dict:
        """Train ``arch`` of ``space`` on ``data``; the fit result plus ``params`` (``rungs`` and
        ``report``: early stopping, as ``training.trainer.fit`` takes them)."""
        raise NotImplementedError
