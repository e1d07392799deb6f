"""Scorers for evaluation: ``aisys.scorers.Exact()``, ``Judge("politeness")`` ….

The public face of `aisys.evals.scorers`. A scorer is any callable
``(case, output) -> aisys.Score | float | bool``, sync or async.
"""

from aisys.evals.scorers import (
    Contains,
    Exact,
    JsonValid,
    Judge,
    Length,
    Matches,
    Numeric,
    Refusal,
    Regex,
)

__all__ = [
    "Contains",
    "Exact",
    "JsonValid",
    "Judge",
    "Length",
    "Matches",
    "Numeric",
    "Refusal",
    "Regex",
]
