"""``aisys report --html``: the report as one self-contained page.

The rows as a table (with the totals row), and per group, over time (by day; by hour
when the traces span less than two days): calls, cost, p95 latency, errors, fallbacks,
cache hit rate and each score's mean — drawn with plotly, whose JavaScript is inlined
with the data, so the page opens offline and makes no request. The figures are the
ones ``--format json`` prints (embedded as JSON in the page, for checks).
"""

from __future__ import annotations

import html
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["write_page"]

_METRICS: tuple[tuple[str, str], ...] = (
    ("calls", "calls"),
    ("cost_usd", "cost (USD, priced calls)"),
    ("p95_ms", "p95 latency (ms)"),
    ("errors", "errors"),
    ("fallbacks", "fallbacks"),
    ("cache_hit_rate", "cache hit rate"),
)


def _series(
    calls: Sequence[Any], since_s: float | None
) -> tuple[list[str], dict[str, dict[str, dict[str, float | None]]]]:
    """Buckets (days or hours) and, per metric and group, a value per bucket."""
    if since_s is not None:
        cutoff = datetime.now(UTC).timestamp() - since_s
        calls = [c for c in calls if c.start_s >= cutoff]
    if not calls:
        return [], {}
    span_s = max(c.start_s for c in calls) - min(c.start_s for c in calls)
    fmt = "%Y-%m-%d %H:00" if span_s < 2 * 86400 else "%Y-%m-%d"
    cells: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for call in calls:
        bucket = datetime.fromtimestamp(call.start_s, UTC).strftime(fmt)
        for group in call.groups:
            cells[(group, bucket)].append(call)
    buckets = sorted({b for _, b in cells})
    groups = sorted({g for g, _ in cells})
    scores = sorted({k for c in calls if c.scores for k in c.scores})
    series: dict[str, dict[str, dict[str, float | None]]] = defaultdict(dict)
    for group in groups:
        for metric, _ in _METRICS + tuple((s, s) for s in scores):
            series[metric][group] = {
                bucket: _value(metric, cells.get((group, bucket), []))
                for bucket in buckets
            }
    return buckets, series


def _value(metric: str, calls: list[Any]) -> float | None:
    from aisys.cli.drift import CACHE_HIT, COST, ERROR, FALLBACK, LATENCY

    if not calls:
        return None
    if metric == "calls":
        return float(len(calls))
    if metric == "cost_usd":
        costs = [c.signals[COST] for c in calls if c.signals[COST] == c.signals[COST]]
        return round(float(sum(costs)), 9) if costs else None
    if metric == "p95_ms":
        ordered = sorted(c.signals[LATENCY] for c in calls)
        return round(float(ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]), 1)
    if metric == "errors":
        return float(sum(c.signals[ERROR] for c in calls))
    if metric == "fallbacks":
        return float(sum(c.signals[FALLBACK] for c in calls))
    if metric == "cache_hit_rate":
        return round(float(sum(c.signals[CACHE_HIT] for c in calls)) / len(calls), 4)
    scored = [c.scores[metric] for c in calls if c.scores and metric in c.scores]
    return round(float(sum(scored)) / len(scored), 4) if scored else None


def _figure(title: str, buckets: list[str], by_group: dict[str, dict[str, Any]]) -> str:
    import plotly.graph_objects as go

    figure = go.Figure()
    for group, points in sorted(by_group.items()):
        figure.add_trace(
            go.Scatter(
                x=buckets,
                y=[points.get(b) for b in buckets],
                mode="lines+markers",
                name=group,
                connectgaps=False,
            )
        )
    figure.update_layout(
        title=title, height=320, margin={"l": 50, "r": 20, "t": 50, "b": 40},
        template="plotly_white", legend={"orientation": "h"},
    )  # fmt: skip
    return str(
        figure.to_html(
            full_html=False, include_plotlyjs=False, config={"displaylogo": False}
        )
    )


def _table(rows: Sequence[Any], whole: Any, by: str) -> str:
    keys = ("calls", "cost_usd", "unpriced_calls", "errors", "p95_ms", "p50_ms",
            "input_tokens", "output_tokens", "fallbacks", "retries", "cache_hits",
            "refusals", "reviews", "corrections")  # fmt: skip
    head = "".join(f"<th>{html.escape(k)}</th>" for k in (by, *keys, "scores"))
    body = []
    for row in [*rows, whole]:
        data = row.as_dict()
        cells = [f"<td>{html.escape(str(data['group']))}</td>"]
        for key in keys:
            value = data[key]
            shown = (
                "—"
                if value is None
                else (f"{value:.6f}" if key == "cost_usd" else str(value))
            )
            cells.append(f'<td data-key="{key}">{html.escape(shown)}</td>')
        scores = ", ".join(
            f"{k} {v['mean']:.2f} (n={v['n']})" for k, v in data["scores"].items()
        )
        cells.append(f"<td>{html.escape(scores or '—')}</td>")
        kind = ' class="total"' if row is whole else ""
        body.append(f"<tr{kind}>{''.join(cells)}</tr>")
    return (
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _drift_table(drifts: list[dict[str, Any]]) -> str:
    if not drifts:
        return "<p>No group has calls on both sides of the window.</p>"
    keys = (
        "group",
        "signal",
        "baseline_n",
        "window_n",
        "baseline_mean",
        "window_mean",
        "psi",
        "ks_p",
        "drift",
    )
    head = "".join(f"<th>{k}</th>" for k in keys)
    body = "".join(
        '<tr class="{}">{}</tr>'.format(
            "drift" if row["drift"] else "",
            "".join(f"<td>{html.escape(str(row[k]))}</td>" for k in keys),
        )
        for row in drifts
    )
    return (
        f'<table id="drift"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #1f2933; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 16px; }
th, td { border: 1px solid #d9dee3; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.total td { font-weight: 600; background: #f3f5f7; }
tr.drift td { background: #fde8e8; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 12px; }
.note { color: #52606d; font-size: 13px; }
"""


def write_page(
    path: Path,
    rows: Sequence[Any],
    whole: Any,
    calls: Sequence[Any],
    by: str,
    drifts: list[dict[str, Any]] | None,
    since_s: float | None,
) -> None:
    """Write the page (one file, everything inline); ``whole`` is the totals row."""
    from plotly.offline import get_plotlyjs

    buckets, series = _series(calls, since_s)
    names = dict(_METRICS)
    charts = "".join(
        _figure(
            names.get(metric, f"score {metric.removeprefix('score:')} (mean)"),
            buckets,
            by_group,
        )
        for metric, by_group in series.items()
    )
    data = {
        "group_by": by,
        "rows": [row.as_dict() for row in rows],
        "total": whole.as_dict(),
        "drift": drifts,
    }
    payload = json.dumps(data).replace("</", "<\\/")  # no early end of the script
    drift = (
        f"<h2>Drift (last window against the baseline before it)</h2>{_drift_table(drifts)}"
        if drifts is not None
        else ""
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>aisys report by {html.escape(by)}</title>
<style>{_STYLE}</style>
<script>{get_plotlyjs()}</script>
</head><body>
<h1>aisys report by {html.escape(by)}</h1>
<p class="note">{len(rows)} groups, {whole.calls} calls; written
{datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}. Cost counts priced calls only;
unpriced calls are counted apart, never as $0.</p>
{_table(rows, whole, by)}
{drift}
<h2>Over time, per group</h2>
<div class="charts">{charts or "<p>No calls to chart.</p>"}</div>
<script type="application/json" id="aisys-report">{payload}</script>
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
