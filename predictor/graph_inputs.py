"""Per-graph numbers a predictor's head takes beside the graph: zero-cost proxies, FLOPs, ...

Whoever builds the graphs attaches the numbers as ``graph_features`` (name, value) pairs
(``search`` and ``bench`` attach the zero-cost proxies they compute); a predictor given
``graph_inputs=("synflow", ...)`` reads those names. Proxies span tens of orders of magnitude
(synflow: 1e6 to 1e34 on NB201), so each is taken as a signed log, then standardised with the
training graphs' mean and spread. A NaN (a proxy undefined for a degenerate network) becomes the
lowest standardised value seen in training: every proxy ranks such networks last.
"""
from __future__ import annotations

import numpy as np

from .errors import PredictorError


def signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def values(graph_features: dict | None, names) -> np.ndarray:
    """float64 [B, len(names)] from a GraphBatch's ``graph_features``; a missing name is an error."""
    have = graph_features or {}
    missing = [n for n in names if n not in have]
    if missing:
        carried = ", ".join(have) or "none"
        raise PredictorError(f"graph_inputs names {', '.join(missing)}, which the graphs do not carry (they carry: "
                             f"{carried}); attach them first (search.run --proxies, bench.predictors --proxies)")
    return np.stack([np.asarray(have[n], dtype=np.float64) for n in names], axis=1)


def fit_scaling(graph_features: dict | None, names) -> dict:
    """How the training graphs' values map to the head's inputs (kept in the predictor's meta)."""
    z = signed_log(values(graph_features, names))
    with np.errstate(invalid="ignore"):
        mean = np.nan_to_num(np.nanmean(z, axis=0)) if len(z) else np.zeros(len(names))
        std = np.nanstd(z, axis=0) if len(z) else np.ones(len(names))
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    scaled = (z - mean) / std
    fill = np.array([np.nanmin(col) if np.isfinite(col).any() else 0.0 for col in scaled.T])
    return {"names": list(names), "mean": mean.tolist(), "std": std.tolist(), "fill": fill.tolist()}


def scale(graph_features: dict | None, scaling: dict) -> np.ndarray:
    """float32 [B, k]: the head's inputs for a batch's graphs."""
    z = (signed_log(values(graph_features, scaling["names"])) - scaling["mean"]) / scaling["std"]
    return np.where(np.isnan(z), np.asarray(scaling["fill"])[None], z).astype(np.float32)


def check_names(names) -> None:
    if not isinstance(names, (tuple, list)) or not all(isinstance(n, str) and n for n in names):
        raise PredictorError(f"graph_inputs is a tuple of feature names, e.g. ('synflow', 'jacov'), got {names!r}")
    if len(set(names)) != len(names):
        raise PredictorError(f"graph_inputs names a feature twice: {names!r}")
