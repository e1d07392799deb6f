"""Binding a decorated call's arguments for its cache key: the same as Python's rules."""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aisys._arguments import Binder


def plain(question: Any, model: Any = "m", n: Any = 1) -> None: ...


def required(a: Any, b: Any) -> None: ...


def starred(a: Any, *rest: Any, flag: Any = False, **more: Any) -> None: ...


def positional_only(a: Any, /, b: Any = 2) -> None: ...


_NAMES = st.sampled_from(["question", "model", "n", "a", "b", "flag", "other"])


@settings(max_examples=400)
@given(
    st.sampled_from([plain, required, starred, positional_only]),
    st.lists(st.integers(0, 3), max_size=4),
    st.dictionaries(_NAMES, st.integers(0, 3), max_size=3),
)
def test_binding_follows_pythons_rules(
    fn: Any, args: list[int], kwargs: dict[str, int]
) -> None:
    """Same names and values as Signature.bind + apply_defaults, or the same TypeError."""
    signature = inspect.signature(fn)
    try:
        expected = signature.bind(*args, **kwargs)
    except TypeError as exc:
        with pytest.raises(TypeError, match=f"^{re.escape(str(exc))}$"):
            Binder(signature).bind(tuple(args), kwargs)
        return
    expected.apply_defaults()
    assert Binder(signature).bind(tuple(args), kwargs) == dict(expected.arguments)
