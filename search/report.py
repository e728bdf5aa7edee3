"""Figures of a run: the best arch, the predictor's tau per round, and the plots."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def best_entry(entries: list[dict]) -> dict | None:
    """The arch with the highest search value (the first found among equals)."""
    best = None
    for e in entries:
        if e["value"] is not None and (best is None or e["value"] > best["value"]):
            best = e
    return best


def best_so_far(entries: list[dict]) -> np.ndarray:
    """Best search value after each evaluation (NaN until the first success)."""
    values = np.array([np.nan if e["value"] is None else e["value"] for e in entries], dtype=float)
    return np.fmax.accumulate(values) if len(values) else values


def best_test_so_far(entries: list[dict]) -> np.ndarray:
    """Test value of the best-so-far arch (by search value) after each evaluation."""
    out, best = [], None
    for e in entries:
        if e["value"] is not None and (best is None or e["value"] > best["value"]):
            best = e
        out.append(np.nan if best is None or best["test"] is None else best["test"])
    return np.array(out, dtype=float)


def round_taus(entries: list[dict]) -> list[dict]:
    """Kendall's tau between the predictor's scores and the true values of each round's
    proposals (rounds the predictor chose)."""
    from predictor.metrics import kendall_tau
    out = []
    for r in sorted({e["round"] for e in entries}):
        rows = [e for e in entries if e["round"] == r and e["predicted"] is not None and e["value"] is not None]
        if len(rows) >= 2:
            tau = kendall_tau([e["predicted"] for e in rows], [e["value"] for e in rows])
            out.append({"round": r, "tau": None if np.isnan(tau) else round(float(tau), 4), "n": len(rows)})
    return [t for t in out if t["tau"] is not None]


def plot_run(entries: list[dict], folder: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    x = np.arange(1, len(entries) + 1)
    ax.plot(x, best_so_far(entries), label="best search value")
    ax.plot(x, best_test_so_far(entries), label="its test value", linestyle="--")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    _save(fig, folder / "best_so_far.png")
    plt.close(fig)

    taus = {t["round"]: t["tau"] for t in round_taus(entries)}
    if not taus:
        return
    cols = min(5, len(taus))
    rows = -(-len(taus) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for ax, (r, tau) in zip(axes.flat, sorted(taus.items())):
        pts = [(e["predicted"], e["value"]) for e in entries
               if e["round"] == r and e["predicted"] is not None and e["value"] is not None]
        ax.set_visible(True)
        ax.scatter(*zip(*pts), s=12)
        ax.set_title(f"round {r}: tau {tau:.2f}", fontsize=9)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
    fig.tight_layout()
    _save(fig, folder / "predicted_vs_true.png")
    plt.close(fig)


def _save(fig, path: Path) -> None:
    import os
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=90)
    os.replace(tmp, path)


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Which rows of ``points`` [n, m] no other row dominates, every column to be minimised
    (negate a column to maximise it). Equal rows do not dominate each other."""
    p = np.asarray(points, dtype=float)
    no_worse = np.all(p[None, :, :] <= p[:, None, :], axis=2)  # [i, j]: row j is nowhere worse than row i
    better = np.any(p[None, :, :] < p[:, None, :], axis=2)  # [i, j]: row j is better than row i somewhere
    return ~np.any(no_worse & better, axis=1)


def pareto_front(entries: list[dict], measures: dict[str, list[float]]) -> list[dict]:
    """The evaluated archs on the Pareto front of (search value: higher is better, each
    measure: lower is better), ordered by the first measure. ``measures`` holds one value per
    entry; failed entries are left out."""
    ok = [i for i, e in enumerate(entries) if e["value"] is not None]
    if not ok:
        return []
    names = list(measures)
    points = np.array([[-entries[i]["value"], *(measures[n][i] for n in names)] for i in ok], dtype=float)
    front = [ok[j] for j in np.flatnonzero(pareto_mask(points))]
    rows = [{"key": entries[i]["key"], "arch": entries[i]["arch"], "val": entries[i]["value"],
             "test": entries[i]["test"], **{n: measures[n][i] for n in names}} for i in front]
    return sorted(rows, key=lambda r: [r[n] for n in names] + [-r["val"]])


def plot_pareto(entries: list[dict], measures: dict[str, list[float]], limits: dict[str, float],
                front: list[dict], path: Path, metric: str) -> None:
    """Search value against each constrained measure: every evaluated arch, the front and the limit."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(measures)
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    ok = [i for i, e in enumerate(entries) if e["value"] is not None]
    value = np.array([entries[i]["value"] for i in ok], dtype=float)
    on_front = {r["key"] for r in front}
    for ax, name in zip(axes[0], names):
        x = np.array([measures[name][i] for i in ok], dtype=float)
        ax.scatter(x, value, s=12, color="0.6", label="evaluated")
        member = np.array([entries[i]["key"] in on_front for i in ok], dtype=bool)
        if len(names) > 1:
            ax.scatter(x[member], value[member], s=30, facecolors="none", edgecolors="C3",
                       label="Pareto front (all measures)")
        two = np.flatnonzero(pareto_mask(np.stack([-value, x], axis=1)))
        two = two[np.argsort(x[two])]
        ax.step(x[two], value[two], where="post", color="C3", marker="o", ms=4, label=f"front of {name} alone")
        if name in limits:
            ax.axvline(limits[name], color="C0", linestyle="--", label=f"limit {limits[name]:g}")
        ax.set_xlabel(name)
        ax.set_ylabel(metric)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
