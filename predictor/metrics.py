"""Ranking metrics of predictions against the truth."""
from __future__ import annotations

import numpy as np
from scipy import stats


def kendall_tau(pred, truth) -> float:
    tau = stats.kendalltau(np.asarray(pred), np.asarray(truth)).statistic
    return float(0.0 if np.isnan(tau) else tau)


def spearman(pred, truth) -> float:
    rho = stats.spearmanr(np.asarray(pred), np.asarray(truth)).statistic
    return float(0.0 if np.isnan(rho) else rho)


def precision_at_top(pred, truth, fraction: float = 0.05) -> float:
    """Share of the truly best ``fraction`` of archs among the predicted best ``fraction``."""
    k = max(1, int(round(len(truth) * fraction)))
    top_pred = np.argsort(-np.asarray(pred), kind="stable")[:k]
    top_true = np.argsort(-np.asarray(truth), kind="stable")[:k]
    return len(np.intersect1d(top_pred, top_true)) / k


def pearson(pred, truth) -> float:
    r = stats.pearsonr(np.asarray(pred, float), np.asarray(truth, float)).statistic if len(truth) > 1 else np.nan
    return float(0.0 if np.isnan(r) else r)


def rmse(pred, truth) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, float) - np.asarray(truth, float)) ** 2)))
