"""The input-output paper's preprocessing of a trained network's pooled features.

Two networks can compute the same features in another order, and at another scale
(the softmax does not care). So, per network: standardise all its outputs by two scalars
(their mean and standard deviation); then, per image, take the dense layer's weights of the
image's class with the bias appended (the feature vector gets a 1 appended to meet it), sort
both by those weights (largest first) and multiply them. Across the dataset each resulting
feature is then normalised (its mean and standard deviation over the training networks), so
that every one weighs alike in the loss.
"""
from __future__ import annotations

import numpy as np

from predictor.errors import PredictorError


def io_targets(features: np.ndarray, weight: np.ndarray, bias: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """float32 [images, F + 1] targets of one network: ``features`` [images, F] (its global
    average pooled outputs), ``weight`` [classes, F] and ``bias`` [classes] (its dense layer),
    ``labels`` [images] (the images' classes)."""
    features = np.asarray(features, np.float64)
    weight, bias, labels = np.asarray(weight, np.float64), np.asarray(bias, np.float64), np.asarray(labels)
    if features.ndim != 2 or weight.ndim != 2 or weight.shape[1] != features.shape[1]:
        raise PredictorError(f"features [images, F] and dense weights [classes, F] do not match: "
                             f"{features.shape} and {weight.shape}")
    if bias.shape != (weight.shape[0],) or labels.shape != (features.shape[0],):
        raise PredictorError(f"bias must be [classes] and labels [images]; got {bias.shape} and {labels.shape}")
    scale = features.std()
    scaled = (features - features.mean()) / (scale if scale > 0 else 1.0)
    x = np.concatenate([scaled, np.ones((len(scaled), 1))], axis=1)
    w = np.concatenate([weight[labels], bias[labels][:, None]], axis=1)
    order = np.argsort(-w, axis=1, kind="stable")
    return (np.take_along_axis(x, order, 1) * np.take_along_axis(w, order, 1)).astype(np.float32)


def fit_normaliser(targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature (mean, std) of training targets [N, D]; constant features keep scale 1."""
    mean, std = targets.mean(0), targets.std(0)
    return mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)


def normalise(targets: np.ndarray, normaliser: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    mean, std = normaliser
    return ((targets - mean) / std).astype(np.float32)
