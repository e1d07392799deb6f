"""The default runtime, for the few parts that sit above it and need it by default.

`aisys._runtime` puts its `DEFAULT_RUNTIME` here when it is imported; the review queue
(which the decorators, below it, may create) reads it here instead of importing the
runtime module back — the one edge that would make a circle.
"""

from __future__ import annotations

from typing import Any

__all__ = ["default_runtime"]

runtime: Any = None
"""`aisys._runtime.DEFAULT_RUNTIME`, once that module is imported."""


def default_runtime() -> Any:
    """The default `aisys.Runtime` (importing aisys puts it in place)."""
    if runtime is None:  # pragma: no cover - aisys/__init__ imports the runtime
        import importlib

        importlib.import_module("aisys")
    return runtime
