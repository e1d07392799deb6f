"""``aisys report --drift``: did a group's quality, cost or latency move lately?

The last ``window`` (ending now) is compared with the ``baseline`` period just before it,
per group and signal: each score name, refusal rate, fallback rate, error rate, cost per
call, input tokens and latency. PSI over 10 bins at the baseline's deciles, and the
two-sample Kolmogorov-Smirnov p-value (scipy); a row drifts when both sides have at
least 30 values and PSI ≥ 0.2 or p < 0.01. numpy and scipy come with the ``report``
extra and are imported only here.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MIN_N", "PSI_LIMIT", "P_LIMIT", "Call", "calls_of", "drift_rows"]

MIN_N = 30
PSI_LIMIT = 0.2
P_LIMIT = 0.01
_EPSILON = 1e-4
_NOT_DRIFT = frozenset({"cache_hit"})  # charted by the HTML page, not a drift signal


@dataclass
class Call:
    """One logical call's signals, as the report reads them."""

    start_s: float
    groups: list[str]
    values: dict[str, float] = field(default_factory=dict)


def calls_of(
    spans: Iterable[dict[str, Any]], groups_of: Callable[[dict[str, Any]], list[str]]
) -> list[Call]:
    """Each call's signals (scores joined to it by span, else by trace)."""
    calls: list[Call] = []
    by_span: dict[str, Call] = {}
    by_trace: dict[str, Call] = {}
    results: list[dict[str, Any]] = []
    for span in spans:
        attrs = span.get("attributes") or {}
        if "event" in span:
            results.append(span)
            continue
        if "aisys.attempt.number" in attrs or attrs.get("gen_ai.operation.name") in (
            "retrieval",
            "execute_tool",
        ):
            continue
        start = int(span.get("start_time_unix_nano") or 0)
        end = int(span.get("end_time_unix_nano") or start)
        cost = attrs.get("aisys.cost.usd")
        values = {
            "error_rate": float((span.get("status") or {}).get("code") == "ERROR"),
            "fallback_rate": float(int(attrs.get("aisys.fallback.index", 0) or 0) > 0),
            "latency_ms": (end - start) / 1e6,
            "input_tokens": float(attrs.get("gen_ai.usage.input_tokens", 0) or 0),
            "refusal_rate": float(
                "content_filter" in (attrs.get("gen_ai.response.finish_reasons") or ())
            ),
        }
        if cost is not None:
            values["cost_per_call"] = float(cost)
        values["cache_hit"] = float(attrs.get("aisys.cache.hit") is True)
        call = Call(start / 1e9, groups_of(span), values)
        calls.append(call)
        by_span[str(span.get("span_id"))] = call
        by_trace.setdefault(str(span.get("trace_id")), call)
    for result in results:
        attrs = result.get("attributes") or {}
        owner = by_span.get(str(result.get("span_id"))) or by_trace.get(
            str(result.get("trace_id"))
        )
        name = attrs.get("gen_ai.evaluation.name")
        value = attrs.get("gen_ai.evaluation.score.value")
        if owner is None or not isinstance(name, str):
            continue
        if (
            name == "refusal"
            and attrs.get("gen_ai.evaluation.score.label") == "refused"
        ):
            owner.values["refusal_rate"] = 1.0
        if isinstance(value, int | float) and not isinstance(value, bool):
            owner.values[f"score:{name}"] = float(value)
    return calls


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
        parts_b = np.bincount(
            np.searchsorted(inner, baseline, side="right"), minlength=len(edges) - 1
        )
        parts_w = np.bincount(
            np.searchsorted(inner, window, side="right"), minlength=len(edges) - 1
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
        msg = "aisys report --drift needs numpy and scipy: pip install 'aisys[report]'"
        raise SystemExit(msg) from None
    return numpy


def drift_rows(
    calls: list[Call], window_s: float, baseline_s: float, now: float | None = None
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
    start = split - baseline_s
    sides: dict[tuple[str, str], tuple[list[float], list[float]]] = defaultdict(
        lambda: ([], [])
    )
    for call in calls:
        if call.start_s < start or call.start_s > now:
            continue
        side = 0 if call.start_s < split else 1
        for group in call.groups:
            for signal, value in call.values.items():
                if signal not in _NOT_DRIFT:
                    sides[(group, signal)][side].append(value)
    rows = []
    for (group, signal), (before, after) in sorted(sides.items()):
        if not before or not after:
            continue
        baseline = np.asarray(before)
        window = np.asarray(after)
        psi = _psi(baseline, window)
        ks_p = float(ks_2samp(baseline, window).pvalue)
        enough = len(baseline) >= MIN_N and len(window) >= MIN_N
        rows.append(
            {
                "group": group,
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
    return rows
