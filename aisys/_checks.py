"""Argument checks for public constructors: refuse at the call that made the mistake.

Each names the argument (``LLM(timeout=)``), what it takes, and what it got, raising
`aisys.ConfigError` (a `ValueError`), so a wrong type never surfaces later as an
`AttributeError` deep inside a call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from aisys.errors import ConfigError

__all__ = [
    "bad",
    "flag",
    "mapping",
    "number",
    "optional_text",
    "score_value",
    "seconds",
    "strings",
    "text",
    "whole",
]


def bad(owner: str, name: str, takes: str, got: Any, hint: str = "") -> ConfigError:
    """The error for ``owner(name=got)``: what the argument takes, and a hint."""
    shown = repr(got) if len(repr(got)) <= 80 else f"a {type(got).__name__}"
    message = f"{owner}({name}=) takes {takes}, got {shown}"
    return ConfigError(message + (f"; {hint}" if hint else ""), field=name)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def seconds(owner: str, name: str, value: Any) -> float:
    """A positive, finite number of seconds (``"10"`` is refused: pass ``10``)."""
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        hint = f"pass {name}={value}" if isinstance(value, str) else ""
        raise bad(owner, name, "positive seconds (a number)", value, hint)
    return float(value)


def number(
    owner: str, name: str, value: Any, *, low: float = 0.0, high: float | None = None
) -> float:
    """A finite number within [low, high]."""
    if (
        not _is_number(value)
        or not math.isfinite(value)
        or value < low
        or (high is not None and value > high)
    ):
        span = f"from {low:g} to {high:g}" if high is not None else f">= {low:g}"
        raise bad(owner, name, f"a number {span}", value)
    return float(value)


def whole(owner: str, name: str, value: Any, *, low: int = 0) -> int:
    """A whole number >= ``low``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise bad(owner, name, f"a whole number >= {low}", value)
    return value


def flag(owner: str, name: str, value: Any) -> bool:
    """True or False."""
    if not isinstance(value, bool):
        raise bad(owner, name, "True or False", value)
    return value


def text(owner: str, name: str, value: Any, takes: str = "a non-empty string") -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise bad(owner, name, takes, value)
    return value


def optional_text(owner: str, name: str, value: Any) -> str | None:
    """``None`` or a non-empty string."""
    return None if value is None else text(owner, name, value, "a string or None")


def strings(owner: str, name: str, value: Any) -> tuple[str, ...]:
    """A list of strings; a bare string is refused (it is not a list of its letters)."""
    if isinstance(value, str):
        raise bad(owner, name, "a list of strings", value, f"did you mean {[value]!r}?")
    if not isinstance(value, list | tuple | set | frozenset) or not all(
        isinstance(item, str) for item in value
    ):
        raise bad(owner, name, "a list of strings", value)
    return tuple(value)


def mapping(owner: str, name: str, value: Any) -> Mapping[str, Any]:
    """A mapping with string keys."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise bad(owner, name, "a dict with string keys", value)
    return value


def score_value(
    name: Any, value: Any, label: Any, explanation: Any, owner: str = "score"
) -> float | None:
    """A score's parts checked: a name, a value in [0, 1] (a bool is 1 or 0) and/or a label."""
    text(owner, "name", name)
    optional_text(owner, "label", label)
    if explanation is not None and not isinstance(explanation, str):
        raise bad(owner, "explanation", "a string or None", explanation)
    if value is None and label is None:
        msg = f"{owner}() needs a value (0 to 1), a label, or both"
        raise ConfigError(msg, field="value")
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    return None if value is None else number(owner, "value", value, high=1.0)
