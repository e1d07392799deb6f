"""Compare two runs case by case: did the change make it better, worse, or neither?

Paired over the case ids both runs hold: per scorer (and per tag) the means, their
difference, and a 95 % bootstrap interval of the mean difference (numpy, seeded: the
same runs give the same interval); the cases that went from pass to fail and back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aisys.errors import ConfigError
from aisys.evals.experiment import EvalRun

__all__ = ["compare"]


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:  # pragma: no cover - the extra is missing
        msg = "aisys eval compare needs numpy: pip install 'aisys[evals]'"
        raise ConfigError(msg, field="compare") from None
    return numpy


def _values(run: EvalRun) -> dict[str, dict[str, float]]:
    """Case id → scorer → value (cases a scorer could not score are left out)."""
    table: dict[str, dict[str, float]] = {}
    for case in run.cases:
        for name, score in (case.get("scores") or {}).items():
            value = score.get("value") if isinstance(score, dict) else None
            if isinstance(value, int | float) and not score.get("error"):
                table.setdefault(str(case["id"]), {})[name] = float(value)
    return table


def _interval(diffs: list[float], resamples: int, seed: int) -> tuple[float, float]:
    np = _numpy()
    values = np.asarray(diffs, dtype=float)
    if len(values) == 1 or np.all(values == values[0]):
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(
        axis=1
    )
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def _row(
    pairs: list[tuple[float, float]], resamples: int, seed: int, **key: str
) -> dict[str, Any]:
    a = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    low, high = _interval([y - x for x, y in pairs], resamples, seed)
    return {
        **key,
        "mean_a": round(sum(a) / len(a), 6),
        "mean_b": round(sum(b) / len(b), 6),
        "delta": round(sum(b) / len(b) - sum(a) / len(a), 6),
        "ci_low": round(low, 6),
        "ci_high": round(high, 6),
        "n": len(pairs),
    }


def compare(
    a: EvalRun,
    b: EvalRun,
    *,
    threshold: float = 0.5,
    resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Run ``b`` against run ``a`` (the base): scorers, tags, regressions, improvements.

    A case passes a scorer at ``threshold`` or above; a regression is a case that
    passed a scorer in ``a`` and fails it in ``b``.
    """
    values_a, values_b = _values(a), _values(b)
    common = [cid for cid in (str(c["id"]) for c in b.cases) if cid in values_a]
    tags = {str(c["id"]): list(c.get("tags") or []) for c in b.cases}
    scorers = sorted({name for cid in common for name in values_b.get(cid, {})})
    rows, tag_rows = [], []
    regressions: list[str] = []
    improvements: list[str] = []
    for name in scorers:
        pairs = {
            cid: (values_a[cid][name], values_b[cid][name])
            for cid in common
            if name in values_a[cid] and name in values_b.get(cid, {})
        }
        if not pairs:
            continue
        rows.append(_row(list(pairs.values()), resamples, seed, scorer=name))
        for tag in sorted({t for cid in pairs for t in tags.get(cid, [])}):
            tagged = [pair for cid, pair in pairs.items() if tag in tags.get(cid, [])]
            tag_rows.append(_row(tagged, resamples, seed, tag=tag, scorer=name))
        for cid, (before, after) in pairs.items():
            if before >= threshold > after and cid not in regressions:
                regressions.append(cid)
            elif after >= threshold > before and cid not in improvements:
                improvements.append(cid)
    return {
        "a": str(a.path),
        "b": str(b.path),
        "scorers": rows,
        "tags": tag_rows,
        "regressions": regressions,
        "improvements": _without(improvements, regressions),
    }


def _without(ids: Iterable[str], others: list[str]) -> list[str]:
    return [i for i in ids if i not in others]
