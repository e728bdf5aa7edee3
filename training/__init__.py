"""Training networks for real: a trainer that knows no dataset or space, dataset modules,
and the training recipes of the spaces (it sits above ``spaces``; no space imports it).

* ``training.trainer.fit`` - the loop: SGD, cosine schedule, mixed precision, gradient
  clipping, a checkpoint after every epoch and resumption from it;
* ``training.datasets.cifar10`` - CIFAR-10 from its python batches, with batch augmentation;
* ``training.recipes`` - ``Recipe`` and ``RECIPES`` (space name -> its recipe, e.g. the
  DARTS protocol in ``training.recipes.darts``).
"""
from .errors import TrainingError

__all__ = ["TrainingError"]
