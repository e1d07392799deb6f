"""``aisys report --drift``: did a group's quality, cost or latency move lately?

The last ``window`` (ending now) is compared with the ``baseline`` period just before it,
per group and signal: each score name, refusal rate, fallback rate, error rate, cost per
call, input tokens and latency. PSI over 10 bins at the baseline's deciles, and the
two-sample Kolmogorov-Smirnov p-value (scipy); a row drifts when both sides have at
least 30 values and PSI ≥ 0.2 or p < 0.01. numpy and scipy come with the ``report``
extra and are imported only here.
"""

from __future__ import annotations

import math
import time
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MIN_N",
    "PSI_LIMIT",
    "P_LIMIT",
    "Call",
    "Collector",
    "calls_of",
    "drift_rows",
]

MIN_N = 30
PSI_LIMIT = 0.2
P_LIMIT = 0.01
_EPSILON = 1e-4
_NOT_DRIFT = frozenset({"cache_hit"})  # charted by the HTML page, not a drift signal


SIGNALS = (
    "error_rate",
    "fallback_rate",
    "latency_ms",
    "input_tokens",
    "refusal_rate",
    "cache_hit",
    "cost_per_call",
)
"""A call's fixed signals, in the order `Call.signals` holds them (NaN: not known)."""
ERROR, FALLBACK, LATENCY, TOKENS, REFUSAL, CACHE_HIT, COST = range(len(SIGNALS))


@dataclass(slots=True)
class Call:
    """One logical call's signals, kept small: a million of them fit in memory."""

    start_s: float
    groups: list[str]
    signals: array[float]
    scores: dict[str, float] | None = None

    def items(self) -> Iterator[tuple[str, float]]:
        """(signal, value) pairs: the known fixed ones, then ``score:NAME`` ones."""
        for name, value in zip(SIGNALS, self.signals, strict=True):
            if value == value:  # not NaN
                yield name, value
        if self.scores:
            yield from self.scores.items()


class Collector:
    """Reads each call's signals as the spans stream by, keeping only numbers."""

    def __init__(self, groups_of: Callable[[dict[str, Any]], list[str]]) -> None:
        self.groups_of = groups_of
        self.calls: list[Call] = []
        self._by_span: dict[int, Call] = {}  # ids as ints: half the memory of hex
        self._by_trace: dict[int, Call] = {}
        self._results: list[tuple[int, int, Any, Any, Any]] = []

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
        signals = array(
            "d",
            (
                float((span.get("status") or {}).get("code") == "ERROR"),
                float(int(attrs.get("aisys.fallback.index", 0) or 0) > 0),
                (end - start) / 1e6,
                float(attrs.get("gen_ai.usage.input_tokens", 0) or 0),
                float(
                    "content_filter"
                    in (attrs.get("gen_ai.response.finish_reasons") or ())
                ),
                float(attrs.get("aisys.cache.hit") is True),
                math.nan if cost is None else float(cost),
            ),
        )
        call = Call(start / 1e9, self.groups_of(span), signals)
        self.calls.append(call)
        self._by_span[_id(span.get("span_id"))] = call
        self._by_trace.setdefault(_id(span.get("trace_id")), call)

    def finish(self) -> list[Call]:
        """The calls, with the scores that arrived (before or after them) joined on."""
        for span_id, trace_id, name, value, label in self._results:
            owner = self._by_span.get(span_id) or self._by_trace.get(trace_id)
            if owner is None or not isinstance(name, str):
                continue
            if name == "refusal" and label == "refused":
                owner.signals[REFUSAL] = 1.0
            if isinstance(value, int | float) and not isinstance(value, bool):
                if owner.scores is None:
                    owner.scores = {}
                owner.scores[f"score:{name}"] = float(value)
        self._results.clear()
        self._by_span.clear()
        self._by_trace.clear()
        return self.calls


def _id(value: Any) -> int:
    """A hex id as an int (-1 for none or a malformed one, which joins nothing)."""
    try:
        return int(value, 16)
    except (TypeError, ValueError):
        return -1


def calls_of(
    spans: Iterable[dict[str, Any]], groups_of: Callable[[dict[str, Any]], list[str]]
) -> list[Call]:
    """Each call's signals (scores joined to it by span, else by trace)."""
    collector = Collector(groups_of)
    for span in spans:
        collector.add(span)
    return collector.finish()


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
            for signal, value in call.items():
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
