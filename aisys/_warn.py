"""Warnings that point at the user's line, never at aisys's own frames."""

from __future__ import annotations

import logging
import os
import sys
import warnings

from aisys.errors import AisysWarning

__all__ = ["warn_user"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_log = logging.getLogger("aisys")


def user_stacklevel() -> int:
    """The ``stacklevel`` of the innermost frame outside aisys, seen from the caller."""
    frame = sys._getframe(2)  # the caller of warn_user's caller
    level = 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def warn_user(message: str) -> None:
    """Warn with `aisys.AisysWarning` at the user's line.

    Warnings turned into errors (``-W error``) are logged on the ``aisys`` logger
    instead: a warning must never fail the call it is about.
    """
    try:
        warnings.warn(message, AisysWarning, stacklevel=user_stacklevel())
    except AisysWarning:
        _log.warning(message)
