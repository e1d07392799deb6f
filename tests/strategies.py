"""Hypothesis strategies shared by the property tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

JSON_SCALARS: st.SearchStrategy[Any] = (
    st.none() | st.booleans() | st.integers() | st.text(max_size=5)
)
"""Values a JSON body may hold at its leaves (floats aside)."""


def nested(
    leaves: st.SearchStrategy[Any],
    keys: st.SearchStrategy[str] | None = None,
    *,
    max_size: int = 3,
    max_leaves: int = 12,
) -> st.SearchStrategy[Any]:
    """``leaves``, and lists and dicts (keys drawn from ``keys``) nested over them."""
    dict_keys = st.text(max_size=4) if keys is None else keys
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=max_size)
            | st.dictionaries(dict_keys, inner, max_size=max_size)
        ),
        max_leaves=max_leaves,
    )
