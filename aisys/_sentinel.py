"""`DEFAULT`: "not given", apart from ``None`` (which explicitly turns a feature off)."""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT", "Default"]


class Default:
    """The type of `DEFAULT` (as httpx's ``USE_CLIENT_DEFAULT``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Final = Default()
