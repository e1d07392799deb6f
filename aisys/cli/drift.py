"""``aisys report --drift``: did a group's quality, cost or latency move lately?

The last ``window`` (ending now) is compared with the ``baseline`` period just before it,
per group and signal: each score name, refusal rate, fallback rate, error rate, cost per
call, input tokens and latency. PSI over 10 bins at the baseline's deciles, and the
two-sample Kolmogorov-Smirnov p-value (scipy); a row drifts when both sides have at
least 30 values and PSI ≥ 0.2 or p < 0.01. numpy and scipy come with the ``report``
extra and are imported only here.

The calls are kept as columns (`Columns`: one row per call and group, each signal an
array of floats), filled as the spans stream by, so a million calls take little memory
and each group's values are one numpy mask away.
"""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Callable
from typing import Any

__all__ = ["MIN_N", "PSI_LIMIT", "P_LIMIT", "SIGNALS", "Columns", "drift_rows"]

MIN_N = 30
PSI_LIMIT = 0.2
P_LIMIT = 0.01
_EPSILON = 1e-4

SIGNALS = (
    "error_rate",
    "fallback_rate",
    "latency_ms",
    "input_tokens",
    "refusal_rate",
    "cache_hit",
    "cost_per_call",
)
"""Each row's fixed signals, in the order of `Columns.signals` (NaN: not known)."""
ERROR, FALLBACK, LATENCY, TOKENS, REFUSAL, CACHE_HIT, COST = range(len(SIGNALS))
_NOT_DRIFT = frozenset({"cache_hit"})  # charted by the HTML page, not a drift signal


class Columns:
    """The calls' signals as columns, one row per call and group (two tags: two rows)."""

    def __init__(self, groups_of: Callable[[dict[str, Any]], list[str]]) -> None:
        self.groups_of = groups_of
        self.group_names: list[str] = []
        self._group_ids: dict[str, int] = {}
        self.start = array("d")
        """Start time of each row's call, epoch seconds."""
        self.group = array("l")
        """Each row's group, an index into `group_names`."""
        self.signals = [array("d") for _ in SIGNALS]
        self.scores: dict[str, tuple[array[int], array[float]]] = {}
        """Score name → (rows, values)."""
        self._rows_of_span: dict[int, tuple[int, int]] = {}
        self._rows_of_trace: dict[int, tuple[int, int]] = {}
        self._results: list[tuple[int, int, Any, Any, Any]] = []

    def __len__(self) -> int:
        return len(self.start)

    def add(self, span: dict[str, Any]) -> None:
        """One record of `read_calls`: a call span, a billed attempt, or a result."""
        attrs = span.get("attributes") or {}
        if "event" in span:
            self._results.append(
                (
                    _id(span.get("span_id")),
                    _id(span.get("trace_id")),
                    attrs.get("gen_ai.evaluation.name"),
                    attrs.get("gen_ai.evaluation.score.value"),
                    attrs.get("gen_ai.evaluation.score.label"),
                )
            )
            return
        if "aisys.attempt.number" in attrs or attrs.get("gen_ai.operation.name") in (
            "retrieval",
            "execute_tool",
        ):
            return
        start = int(span.get("start_time_unix_nano") or 0)
        end = int(span.get("end_time_unix_nano") or start)
        cost = attrs.get("aisys.cost.usd")
        values = (
            float((span.get("status") or {}).get("code") == "ERROR"),
            float(int(attrs.get("aisys.fallback.index", 0) or 0) > 0),
            (end - start) / 1e6,
            float(attrs.get("gen_ai.usage.input_tokens", 0) or 0),
            float(
                "content_filter" in (attrs.get("gen_ai.response.finish_reasons") or ())
            ),
            float(attrs.get("aisys.cache.hit") is True),
            math.nan if cost is None else float(cost),
        )
        first = len(self.start)
        groups = self.groups_of(span)
        for name in groups:
            group = self._group_ids.get(name)
            if group is None:
                group = self._group_ids[name] = len(self.group_names)
                self.group_names.append(name)
            self.start.append(start / 1e9)
            self.group.append(group)
            for column, value in zip(self.signals, values, strict=True):
                column.append(value)
        rows = (first, len(groups))
        self._rows_of_span[_id(span.get("span_id"))] = rows
        self._rows_of_trace.setdefault(_id(span.get("trace_id")), rows)

    def finish(self) -> Columns:
        """Join the scores (read before or after their calls) onto the calls' rows."""
        refusals = self.signals[REFUSAL]
        for span_id, trace_id, name, value, label in self._results:
            rows = self._rows_of_span.get(span_id) or self._rows_of_trace.get(trace_id)
            if rows is None or not isinstance(name, str):
                continue
            first, count = rows
            if name == "refusal" and label == "refused":
                for row in range(first, first + count):
                    refusals[row] = 1.0
            if isinstance(value, int | float) and not isinstance(value, bool):
                where, values = self.scores.setdefault(
                    f"score:{name}", (array("l"), array("d"))
                )
                for row in range(first, first + count):
                    where.append(row)
                    values.append(float(value))
        self._results.clear()
        self._rows_of_span.clear()
        self._rows_of_trace.clear()
        return self

    def numpy(self) -> tuple[Any, Any, dict[str, Any], dict[str, tuple[Any, Any]]]:
        """start, group, {signal: values}, {score: (rows, values)} as numpy arrays."""
        np = _numpy()
        start = np.frombuffer(self.start, dtype=np.float64)
        group = np.frombuffer(self.group, dtype=np.int64)
        signals = {
            name: np.frombuffer(column, dtype=np.float64)
            for name, column in zip(SIGNALS, self.signals, strict=True)
        }
        scores = {
            name: (
                np.frombuffer(rows, dtype=np.int64),
                np.frombuffer(values, dtype=np.float64),
            )
            for name, (rows, values) in self.scores.items()
        }
        return start, group, signals, scores


def _id(value: Any) -> int:
    """A hex id as an int (-1 for none or a malformed one, which joins nothing)."""
    try:
        return int(value, 16)
    except (TypeError, ValueError):
        return -1


def _psi(baseline: Any, window: Any) -> float:
    np = _numpy()
    edges = np.unique(np.quantile(baseline, np.linspace(0, 1, 11)))
    if len(edges) < 2:  # a constant baseline: one bin, and what falls outside it
        same_b = np.mean(baseline == edges[0])
        same_w = np.mean(window == edges[0])
        parts_b = np.array([same_b, 1 - same_b])
        parts_w = np.array([same_w, 1 - same_w])
    else:
        inner = edges[1:-1]
        bins = len(edges) - 1
        parts_b = np.bincount(
            np.searchsorted(inner, baseline, side="right"), minlength=bins
        )
        parts_w = np.bincount(
            np.searchsorted(inner, window, side="right"), minlength=bins
        )
        parts_b = parts_b / parts_b.sum()
        parts_w = parts_w / parts_w.sum()
    parts_b = np.clip(parts_b, _EPSILON, None)
    parts_w = np.clip(parts_w, _EPSILON, None)
    return float(np.sum((parts_w - parts_b) * np.log(parts_w / parts_b)))


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:  # pragma: no cover - the extra is missing
        msg = "aisys report --drift and --html need numpy: pip install 'aisys[report]'"
        raise SystemExit(msg) from None
    return numpy


def drift_rows(
    columns: Columns, window_s: float, baseline_s: float, now: float | None = None
) -> list[dict[str, Any]]:
    """One row per group and signal seen on both sides of the window's start."""
    np = _numpy()
    try:
        from scipy.stats import ks_2samp
    except ImportError:  # pragma: no cover - the extra is missing
        msg = "aisys report --drift needs scipy: pip install 'aisys[report]'"
        raise SystemExit(msg) from None
    now = time.time() if now is None else now
    split = now - window_s
    start, group, signals, scores = columns.numpy()
    in_range = (start >= split - baseline_s) & (start <= now)
    recent = start >= split
    series: list[tuple[str, Any, Any]] = [
        (name, values, ~np.isnan(values))
        for name, values in signals.items()
        if name not in _NOT_DRIFT
    ]
    rows = []
    for index, name in enumerate(columns.group_names):
        mine = in_range & (group == index)
        sides = []
        for signal, values, known in series:
            kept = mine & known
            sides.append((signal, values[kept & ~recent], values[kept & recent]))
        for signal, (where, values) in scores.items():
            kept = mine[where]
            late = recent[where]
            sides.append((signal, values[kept & ~late], values[kept & late]))
        for signal, baseline, window in sides:
            if not len(baseline) or not len(window):
                continue
            psi = _psi(baseline, window)
            ks_p = float(ks_2samp(baseline, window).pvalue)
            enough = len(baseline) >= MIN_N and len(window) >= MIN_N
            rows.append(
                {
                    "group": name,
                    "signal": signal.removeprefix("score:"),
                    "baseline_n": len(baseline),
                    "window_n": len(window),
                    "baseline_mean": round(float(baseline.mean()), 6),
                    "window_mean": round(float(window.mean()), 6),
                    "psi": round(psi, 6),
                    "ks_p": round(ks_p, 6),
                    "drift": bool(enough and (psi >= PSI_LIMIT or ks_p < P_LIMIT)),
                }
            )
    return sorted(rows, key=lambda r: (r["group"], r["signal"]))
