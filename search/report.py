"""Figures of a run (the best arch, the predictor's tau per round, the plots) and
``python -m search.report``: a run's HTML report, and its PNG plots redrawn.

  python -m search.report RUN [--html PATH] [--plots] [--no-html]

Writes RUN/report.html (or PATH): one self-contained page with the run's facts, the best arch
(drawn as a cell or network diagram), best-so-far and predicted-vs-true plots, the Pareto front
of a constrained run, every evaluated arch in a sortable table, and the config and versions.
--plots also redraws RUN/plots/*.png (for a run started with --no-plots). The run folder is
only read, so a report can be made while the search is still running.
"""
from __future__ import annotations

import argparse
import sys
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


def schedule_figures(records: list[dict], slots: int) -> dict:
    """From a journal: ``clock_seconds`` (the span of the run's clock from the first evaluation
    to the last: simulated for the inline executor, wall time for Ray), ``cost_seconds`` (the
    evaluations' cost summed: GPU-seconds for trainings, the table's training seconds for
    look-ups), ``utilisation`` (busy slot-seconds over the ``slots`` slots' slot-seconds in that
    span) and ``steady_utilisation`` (the same until the last evaluation began: while the
    search still had archs to hand out, without the drain of the last ones); None where the
    journal holds no times."""
    timed = [r for r in records if isinstance(r.get("began"), (int, float)) and isinstance(r.get("ended"), (int, float))]
    if not timed:
        return {"clock_seconds": None, "cost_seconds": None, "utilisation": None, "steady_utilisation": None}
    first, last_start = min(r["began"] for r in timed), max(r["began"] for r in timed)
    span = max(r["ended"] for r in timed) - first
    busy = sum(r["ended"] - r["began"] for r in timed)
    steady = sum(max(0.0, min(r["ended"], last_start) - r["began"]) for r in timed)
    share = lambda part, length: round(part / (slots * length), 4) if length > 0 and slots else None  # noqa: E731
    return {"clock_seconds": round(span, 2), "cost_seconds": round(sum(r.get("cost") or 0.0 for r in timed), 2),
            "utilisation": share(busy, span), "steady_utilisation": share(steady, last_start - first)}


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def figure_best_so_far(entries: list[dict], title: str, metric: str = "search value",
                       test_metric: str | None = None):
    """The best ``metric`` after each evaluation and, where the evaluator reports one, the
    ``test_metric`` of that arch; the axis is named by the metric, whatever its scale or sign."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    x = np.arange(1, len(entries) + 1)
    ax.plot(x, best_so_far(entries), label=f"best {metric}")
    tests = best_test_so_far(entries)
    if test_metric and np.isfinite(tests).any():
        ax.plot(x, tests, label=f"its {test_metric}", linestyle="--")
    ax.set_xlabel("evaluations")
    ax.set_ylabel(metric)
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def figure_predicted_vs_true(entries: list[dict]):
    """One panel per round the predictor chose, tau in its title; None without such rounds."""
    taus = {t["round"]: t["tau"] for t in round_taus(entries)}
    if not taus:
        return None
    plt = _pyplot()
    cols = min(5, len(taus))
    rows = -(-len(taus) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for ax, (r, tau) in zip(axes.flat, sorted(taus.items())):
        pts = np.array([(e["predicted"], e["value"]) for e in entries
                        if e["round"] == r and e["predicted"] is not None and e["value"] is not None], dtype=float)
        ax.set_visible(True)
        # Predictions a hair apart (a predictor that has not learned much yet) would show as one
        # column under an axis offset of 1e-9: draw ranks then, and say so.
        ranks = nearly_equal(pts[:, 0])
        if ranks:
            pts = np.stack([rank(pts[:, 0]), rank(pts[:, 1])], axis=1)
        ax.scatter(pts[:, 0], pts[:, 1], s=12)
        ax.ticklabel_format(useOffset=False)
        ax.set_title(f"round {r}: tau {tau:.2f}" + (" (ranks)" if ranks else ""), fontsize=9)
        ax.set_xlabel("predicted rank (values nearly equal)" if ranks else "predicted", fontsize=8)
        ax.set_ylabel("true rank" if ranks else "true", fontsize=8)
    fig.tight_layout()
    return fig


def plot_run(entries: list[dict], folder: Path, title: str, metric: str = "search value",
             test_metric: str | None = None) -> None:
    """plots/best_so_far.png and plots/predicted_vs_true.png."""
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    fig = figure_best_so_far(entries, title, metric, test_metric)
    _save(fig, folder / "best_so_far.png")
    plt.close(fig)
    fig = figure_predicted_vs_true(entries)
    if fig is not None:
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


def figure_pareto(entries: list[dict], measures: dict[str, list[float]], limits: dict[str, float],
                  front: list[dict], metric: str):
    """Search value against each constrained measure: every evaluated arch, the front and the limit."""
    plt = _pyplot()
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
    return fig


def nearly_equal(values: np.ndarray) -> bool:
    """Whether ``values`` span less than a millionth of their magnitude (but are not all equal)."""
    spread = float(values.max() - values.min()) if len(values) else 0.0
    return 0 < spread <= 1e-6 * max(1.0, float(np.abs(values).max()))


def rank(values: np.ndarray) -> np.ndarray:
    """1 for the smallest value; ties share their mean rank."""
    from scipy.stats import rankdata
    return rankdata(values)


def plot_pareto(entries: list[dict], measures: dict[str, list[float]], limits: dict[str, float],
                front: list[dict], path: Path, metric: str) -> None:
    plt = _pyplot()
    fig = figure_pareto(entries, measures, limits, front, metric)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(fig, path)
    plt.close(fig)


# --- the command line ---------------------------------------------------------------

def redraw_plots(view, space) -> list[Path]:
    """RUN/plots/*.png from the run's files, as the search draws them."""
    from .report_html import constraint_values
    entries = view.entries()
    folder = view.path / "plots"
    cfg = view.config
    evaluator = view.saved.get("evaluator", {})
    plot_run(entries, folder, f"{cfg.get('strategy', {}).get('name')} on {cfg.get('space', {}).get('name')}",
             evaluator.get("metric", "search value"), evaluator.get("test_metric"))
    written = [folder / "best_so_far.png"] + ([folder / "predicted_vs_true.png"] if round_taus(entries) else [])
    limits = cfg.get("strategy", {}).get("constraints") or {}
    if limits and entries:
        values, why = constraint_values(view, space, entries)
        if values is None:
            print(f"warning: plots/pareto.png not drawn: {why}", file=sys.stderr)
        else:
            metric = (view.pareto or {}).get("metric", "search value")
            plot_pareto(entries, values, limits, pareto_front(entries, values), folder / "pareto.png", metric)
            written.append(folder / "pareto.png")
    return written


def main(argv=None) -> int:
    from narnas.cli import prog, run_main
    p = argparse.ArgumentParser(prog=prog("python -m search.report"), description=__doc__.split("\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run folder (runs/NAME)")
    p.add_argument("--html", help="where to write the page (default RUN/report.html)")
    p.add_argument("--plots", action="store_true", help="also redraw RUN/plots/*.png")
    p.add_argument("--no-html", dest="write_html", action="store_false", help="write no page (with --plots)")
    args = p.parse_args(argv)
    return run_main(lambda: _main(args))


def _main(args) -> int:
    from narnas.files import atomic_write_bytes, writable_file, writable_folder

    from .errors import SearchError
    from .run_view import read_run, space_of
    if not args.write_html and not args.plots:
        raise SearchError("--no-html without --plots has nothing to do")
    view = read_run(args.run)
    target = Path(args.html) if args.html else view.path / "report.html"
    if args.write_html:
        writable_file(target, "--html")  # before the work, not after it
    if args.plots:
        writable_folder(view.path, "RUN")
    space = space_of(view)
    if args.plots:
        for path in redraw_plots(view, space):
            print(path)
    if args.write_html:
        from .report_html import render
        atomic_write_bytes(target, render(view, space).encode())
        print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
