"""The HTML run report: one self-contained page (plots inline as PNG, the best arch as SVG,
a few lines of script for sorting), readable offline and safe to mail."""
from __future__ import annotations

import base64
import io
import json
from html import escape

from narnas.progress import duration

from .report import (best_entry, figure_best_so_far, figure_pareto, figure_predicted_vs_true, pareto_front,
                     round_taus)
from .run_view import RunView

SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0];
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var numeric = th.dataset.type === "number";
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort;
        if (numeric) {  // empty cells (failed runs, no prediction) sort last either way
          var fx = x === "" ? NaN : parseFloat(x), fy = y === "" ? NaN : parseFloat(y);
          if (isNaN(fx) || isNaN(fy)) { return isNaN(fx) - isNaN(fy); }
          return ascending ? fx - fy : fy - fx;
        }
        return ascending ? x.localeCompare(y) : y.localeCompare(x);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#1b1f24}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:6px 16px}
.facts div span{color:#666;display:block;font-size:12px}
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left}
th{background:#f4f6f8;cursor:pointer;position:sticky;top:0}th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.best{background:#fff6d6}tr.failed{color:#a33}.scroll{max-height:520px;overflow:auto;border:1px solid #eee}
code,pre{font:12px ui-monospace,monospace}pre{background:#f6f8fa;padding:8px;overflow:auto}
img{max-width:100%}.diagram{overflow:auto;max-height:900px;border:1px solid #eee;padding:4px}
"""


def figure_png(fig) -> str:
    """A matplotlib figure as an inline ``<img>`` (PNG, base64), the figure closed."""
    import matplotlib.pyplot as plt
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def number(value, digits: int = 3) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if abs(value) < 1e5 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def metric_columns(entries: list[dict]) -> list[str]:
    """The evaluator's numeric metrics beyond val/test, in order of first appearance."""
    names: dict[str, None] = {}
    for e in entries:
        for k, v in e["metrics"].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                names.setdefault(k)
    return list(names)


def constraint_values(view: RunView, space, entries: list[dict]) -> tuple[dict | None, str]:
    """name -> one value per entry for each constrained measure: from the journal when the
    evaluator recorded it, else measured on the arch (space or registered measures); (None,
    why) when neither is possible."""
    from .middleware import measure_functions
    limits = view.config.get("strategy", {}).get("constraints") or {}
    out = {}
    for name in limits:
        if all(name in e["metrics"] for e in entries):
            out[name] = [float(e["metrics"][name]) for e in entries]
            continue
        try:
            fn = measure_functions(space, [name])[name]
            out[name] = [float(fn(space.from_json(e["arch"]))) for e in entries]
        except Exception as err:  # an evaluator-only measure (a table column) the journal lacks
            return None, f"{name} cannot be measured without the run's evaluator ({err})"
    return out, ""


def si(value: float) -> str:
    """400000000 -> 400M, as limits are written on the command line."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:g}{suffix}"
    return f"{value:g}"


def uses_predictor(strategy: str | None) -> bool:
    from .registry import strategy_class
    from .strategies import PredictorGuided
    try:
        return issubclass(strategy_class(strategy), PredictorGuided)
    except Exception:  # a strategy whose plugin is gone: say nothing rather than guess
        return False


def facts_html(view: RunView, entries: list[dict], best: dict | None) -> str:
    cfg = view.config
    strategy = cfg.get("strategy", {})
    budget = strategy.get("budget")
    failed = sum(e["status"] == "failed" for e in entries)
    stopped = sum(e["status"] == "stopped" for e in entries)
    finished = view.summary is not None and view.summary.get("evaluations") == len(entries)
    state = view.state or {}
    wall = (view.summary or {}).get("wall_seconds", state.get("wall_seconds"))
    facts = [("space", cfg.get("space", {}).get("name")), ("strategy", strategy.get("name"))]
    if uses_predictor(strategy.get("name")):
        facts.append(("predictor", cfg.get("predictor", {}).get("name")))
    facts += [("evaluator", cfg.get("evaluator", {}).get("name")),
             ("seed", cfg.get("seed")), ("evaluations", f"{len(entries)} of {budget}" + "".join(
                 f" ({n} {what})" for n, what in ((failed, "failed"), (stopped, "stopped early")) if n)),
             ("status", "finished" if finished else "unfinished (resume to go on)"),
             ("best search value", number(best["value"]) if best else "-"),
             ("its test value", number(best["test"]) if best and best["test"] is not None else "-"),
             ("wall time", duration(wall) if isinstance(wall, (int, float)) else "-"),
             ("resumed", state.get("resumed", (view.summary or {}).get("resumed", 0)))]
    if strategy.get("constraints"):
        facts.append(("constraints", ", ".join(f"{k} ≤ {si(v)}" for k, v in strategy["constraints"].items())))
    return '<div class="facts">' + "".join(f"<div><span>{escape(k)}</span>{escape(str(v))}</div>" for k, v in facts) + "</div>"


def best_html(space, best: dict | None) -> str:
    if best is None:
        return "<p>No evaluation has succeeded yet.</p>"
    from spaces import GraphEncoding
    arch = space.from_json(best["arch"])
    parts = [f'<p id="best-key">key <code>{escape(str(best["key"]))}</code> — search value '
             f'<b>{number(best["value"])}</b>' + (f', test {number(best["test"])}' if best["test"] is not None else "")
             + f', round {best["round"]}</p>']
    text = getattr(space, "to_text", None)
    if text is not None:
        parts.append(f"<pre>{escape(text(arch))}</pre>")
    else:
        parts.append(f"<pre>{escape(json.dumps(best['arch']))}</pre>")
    if isinstance(space, GraphEncoding):
        from .diagram import arch_svg
        parts.append(f'<div class="diagram">{arch_svg(space.to_graph(arch))}</div>')
    return "".join(parts)


def archs_table(entries: list[dict], best_key, columns: list[str], constraint_cols: dict | None) -> str:
    constraint_cols = constraint_cols or {}
    extra = columns + [c for c in constraint_cols if c not in columns]
    head = ['<th data-type="number">#</th>', '<th data-type="number">round</th>', "<th>key</th>",
            '<th data-type="number">val</th>', '<th data-type="number">test</th>',
            '<th data-type="number">predicted</th>'] + [f'<th data-type="number">{escape(c)}</th>' for c in extra] + \
           ["<th>status</th>"]
    rows = []
    for i, e in enumerate(entries):
        values = [i + 1, e["round"], None, e["value"], e["test"], e["predicted"]]
        values += [e["metrics"].get(c, constraint_cols.get(c, [None] * len(entries))[i]) for c in extra]
        cells = []
        for k, v in enumerate(values):
            if k == 2:
                cells.append(f'<td data-sort="{escape(str(e["key"]))}"><code>{escape(str(e["key"]))}</code></td>')
            else:
                raw = "" if v is None else repr(float(v))
                cells.append(f'<td class="n" data-sort="{raw}">{number(v)}</td>')
        status = e["status"] if e["status"] == "ok" else f'{e["status"]}: {e["error"] or ""}'
        cells.append(f'<td data-sort="{escape(e["status"])}">{escape(status)}</td>')
        cls = "best" if e["key"] == best_key else ("failed" if e["status"] == "failed" else "")
        rows.append(f'<tr class="{cls}">' + "".join(cells) + "</tr>")
    return ('<div class="scroll"><table id="archs" class="sortable"><thead><tr>' + "".join(head) +
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")


def pareto_html(view: RunView, entries: list[dict], values: dict | None, why: str) -> str:
    limits = view.config.get("strategy", {}).get("constraints") or {}
    metric = (view.pareto or {}).get("metric") or "search value"
    if values is not None:
        front = pareto_front(entries, values)
        plot = figure_png(figure_pareto(entries, values, limits, front, metric))
    else:
        front = (view.pareto or {}).get("front", [])
        plot = f"<p>Only the saved front is shown: {escape(why)}.</p>"
    names = list(limits)
    head = "".join(f"<th>{escape(h)}</th>" for h in ["key", "val", "test", *names])
    rows = "".join("<tr>" + f"<td><code>{escape(str(r['key']))}</code></td>" +
                   "".join(f'<td class="n">{number(r.get(c))}</td>' for c in ["val", "test", *names]) + "</tr>"
                   for r in front)
    return f"{plot}<p>{len(front)} archs on the front.</p><table id=\"pareto\">" \
           f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def render(view: RunView, space) -> str:
    entries = view.entries()
    values, why = (None, "")
    limits = view.config.get("strategy", {}).get("constraints") or {}
    if limits and entries:
        values, why = constraint_values(view, space, entries)
    best = best_of(view, entries, values, limits)
    title = f"{view.config.get('strategy', {}).get('name')} on {view.config.get('space', {}).get('name')}"
    sections = [f"<h1>Run {escape(view.path.name)}</h1><p><code>{escape(str(view.path))}</code></p>",
                facts_html(view, entries, best)]
    sections.append("<h2>Best arch" + (" within the constraints" if limits else "") + "</h2>" + best_html(space, best))
    if entries:
        evaluator = view.saved.get("evaluator", {})
        sections.append("<h2>Best so far</h2>" + figure_png(figure_best_so_far(
            entries, title, evaluator.get("metric", "search value"), evaluator.get("test_metric"))))
        fig = figure_predicted_vs_true(entries)
        if fig is not None:
            taus = "".join(f"<tr><td>{t['round']}</td><td class=\"n\">{t['tau']:.3f}</td><td class=\"n\">{t['n']}</td></tr>"
                           for t in round_taus(entries))
            sections.append("<h2>Predicted vs true</h2><p>Kendall's tau between the predictor's scores and the "
                            "true values of each round's proposals.</p>" + figure_png(fig) +
                            f"<table><thead><tr><th>round</th><th>tau</th><th>archs</th></tr></thead><tbody>{taus}"
                            "</tbody></table>")
    if limits:
        sections.append("<h2>Pareto front</h2>" + pareto_html(view, entries, values, why))
    sections.append(f"<h2>Evaluated archs ({len(entries)})</h2><p>Click a column to sort.</p>" +
                    archs_table(entries, best["key"] if best else None, metric_columns(entries),
                                values if values is not None else None))
    about = {k: view.saved.get(k) for k in ("versions", "seed", "command", "plugins", "evaluator") if k in view.saved}
    sections.append("<h2>Config</h2><pre>" + escape(json.dumps(view.config, indent=2, sort_keys=True)) + "</pre>"
                    "<h2>Versions and command</h2><pre>" + escape(json.dumps(about, indent=2, sort_keys=True)) + "</pre>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)} — {escape(view.path.name)}</title><style>{STYLE}</style></head><body>"
            + "".join(sections) + f"<script>{SORT_SCRIPT}</script></body></html>\n")


def best_of(view: RunView, entries: list[dict], values: dict | None, limits: dict) -> dict | None:
    """The best evaluated arch; with constraints, the best within every limit (as the summary's)."""
    if not limits:
        return best_entry(entries)
    if values is not None:
        return best_entry([e for i, e in enumerate(entries) if all(values[n][i] <= limits[n] for n in limits)])
    key = ((view.summary or {}).get("best") or {}).get("key")
    return next((e for e in entries if e["key"] == key), None)
