"""Ranking metrics of predictions against the truth. (scipy.stats is imported where it is used:
half a second that a command refusing bad input should not pay.)"""
from __future__ import annotations

import numpy as np


def kendall_tau(pred, truth) -> float:
    from scipy import stats
    tau = stats.kendalltau(np.asarray(pred), np.asarray(truth)).statistic
    return float(0.0 if np.isnan(tau) else tau)


def spearman(pred, truth) -> float:
    from scipy import stats
    rho = stats.spearmanr(np.asarray(pred), np.asarray(truth)).statistic
    return float(0.0 if np.isnan(rho) else rho)


def precision_at_top(pred, truth, fraction: float = 0.05) -> float:
    """Share of the truly best ``fraction`` of archs among the predicted best ``fraction``."""
    k = max(1, int(round(len(truth) * fraction)))
    top_pred = np.argsort(-np.asarray(pred), kind="stable")[:k]
    top_true = np.argsort(-np.asarray(truth), kind="stable")[:k]
    return len(np.intersect1d(top_pred, top_true)) / k


def pearson(pred, truth) -> float:
    from scipy import stats
    r = stats.pearsonr(np.asarray(pred, float), np.asarray(truth, float)).statistic if len(truth) > 1 else np.nan
    return float(0.0 if np.isnan(r) else r)


def rmse(pred, truth) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, float) - np.asarray(truth, float)) ** 2)))


def mape(pred, truth) -> float:
    """Mean absolute percentage error, in percent (as latency papers print it); truths of 0 are left out."""
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    ok = truth != 0
    return float(100.0 * np.mean(np.abs(pred[ok] - truth[ok]) / np.abs(truth[ok]))) if ok.any() else float("nan")


def accuracy_within(pred, truth, tolerance: float) -> float:
    """Share (percent) of predictions within ``tolerance`` (0.1 = 10%) of the truth: NNLQP's Acc(10%)."""
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    ok = truth != 0
    if not ok.any():
        return float("nan")
    return float(100.0 * np.mean(np.abs(pred[ok] - truth[ok]) / np.abs(truth[ok]) <= tolerance))
