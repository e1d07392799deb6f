"""``aisys report --html``: the report as one self-contained page.

The rows as a table (with the totals row), and per group, over time (by day; by hour
when the traces span less than two days): calls, cost, p95 latency, errors, fallbacks,
cache hit rate and each score's mean — drawn with plotly, whose JavaScript is inlined
with the data, so the page opens offline and makes no request. The figures are the
ones ``--format json`` prints (embedded as JSON in the page, for checks).
"""

from __future__ import annotations

import functools
import html
import json
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
    columns: Any, since_s: float | None
) -> tuple[list[str], dict[str, dict[str, dict[str, float | None]]]]:
    """Buckets (days or hours) and, per metric and group, a value per bucket."""
    import numpy as np

    from aisys.cli.drift import CACHE_HIT, COST, ERROR, FALLBACK, LATENCY, SIGNALS

    start, group, signals, scores = columns.numpy()
    keep = np.ones(len(start), dtype=bool)
    if since_s is not None:
        keep = start >= datetime.now(UTC).timestamp() - since_s
    if not keep.any():
        return [], {}
    rows = np.flatnonzero(keep)
    hourly = start[rows].max() - start[rows].min() < 2 * 86400
    width = 3600 if hourly else 86400
    slot = np.floor(start / width).astype(np.int64)
    slots = np.unique(slot[rows])
    fmt = "%Y-%m-%d %H:00" if hourly else "%Y-%m-%d"
    buckets = [datetime.fromtimestamp(int(k) * width, UTC).strftime(fmt) for k in slots]
    slot_index = np.searchsorted(slots, slot)
    groups = len(columns.group_names)
    cell = group * len(slots) + slot_index  # one cell per group and bucket
    size = groups * len(slots)

    def per_cell(weights: Any, where: Any = rows) -> Any:
        return np.bincount(cell[where], weights=weights, minlength=size)

    calls = per_cell(None)
    column = {name: signals[name] for name in SIGNALS}
    latency = column[SIGNALS[LATENCY]]
    cost = column[SIGNALS[COST]]
    priced = rows[~np.isnan(cost[rows])]
    metrics: dict[str, Any] = {
        "calls": calls.astype(float),
        "cost_usd": np.where(
            per_cell(None, priced) > 0, per_cell(cost[priced], priced), np.nan
        ),
        "errors": per_cell(column[SIGNALS[ERROR]][rows]),
        "fallbacks": per_cell(column[SIGNALS[FALLBACK]][rows]),
        "cache_hit_rate": per_cell(column[SIGNALS[CACHE_HIT]][rows])
        / np.maximum(calls, 1),
    }
    order = rows[np.lexsort((latency[rows], cell[rows]))]  # by cell, then latency
    first = np.concatenate(([0], np.cumsum(calls)[:-1])).astype(np.int64)
    p95 = np.full(size, np.nan)
    filled = calls > 0
    rank = first[filled] + np.ceil(0.95 * calls[filled]).astype(np.int64) - 1
    p95[filled] = latency[order[rank]]
    metrics["p95_ms"] = p95
    for name, (where, values) in sorted(scores.items()):
        kept = keep[where]
        counts = np.bincount(cell[where][kept], minlength=size)
        sums = np.bincount(cell[where][kept], weights=values[kept], minlength=size)
        metrics[name] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    rounding = {"cost_usd": 9, "p95_ms": 1, "cache_hit_rate": 4}
    series: dict[str, dict[str, dict[str, float | None]]] = {}
    for metric, values in metrics.items():
        digits = rounding.get(metric, 4)
        grid = values.reshape(groups, len(slots))
        present = calls.reshape(groups, len(slots)) > 0
        series[metric] = {
            name: {
                bucket: (
                    round(float(grid[g, b]), digits)
                    if present[g, b] and not np.isnan(grid[g, b])
                    else None
                )
                for b, bucket in enumerate(buckets)
            }
            for g, name in enumerate(columns.group_names)
            if present[g].any()
        }
    return buckets, series


def _figure(title: str, buckets: list[str], by_group: dict[str, dict[str, Any]]) -> str:
    """One chart as plotly's HTML fragment (a figure dict: no validation pass)."""
    import plotly.io as pio

    figure = {
        "data": [
            {
                "type": "scatter",
                "x": buckets,
                "y": [points.get(b) for b in buckets],
                "mode": "lines+markers",
                "name": group,
                "connectgaps": False,
            }
            for group, points in sorted(by_group.items())
        ],
        "layout": {
            "title": {"text": title},
            "height": 320,
            "margin": {"l": 50, "r": 20, "t": 50, "b": 40},
            "template": _template(),
            "legend": {"orientation": "h"},
        },
    }
    return str(
        pio.to_html(
            figure,
            full_html=False,
            include_plotlyjs=False,
            validate=False,
            config={"displaylogo": False},
        )
    )


@functools.cache
def _template() -> Any:
    import plotly.io as pio

    return pio.templates["plotly_white"].to_plotly_json()


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
    columns: Any,
    by: str,
    drifts: list[dict[str, Any]] | None,
    since_s: float | None,
) -> None:
    """Write the page (one file, everything inline); ``whole`` is the totals row."""
    from plotly.offline import get_plotlyjs

    buckets, series = _series(columns, since_s)
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
