"""Calling the user's function, as an effect: a call, or an await for coroutines."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aisys.pipeline._flow import Flow

__all__ = ["Invoke", "invoke"]


class Invoke:
    """The effect of calling the user's function (awaiting it, for coroutines)."""

    __slots__ = ("args", "fn", "kwargs")

    def __init__(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    def run(self) -> Any:
        """Call the function."""
        return self.fn(*self.args, **self.kwargs)

    async def arun(self) -> Any:
        """Call the coroutine function and await it."""
        return await self.fn(*self.args, **self.kwargs)


def invoke(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    timeout: float | None,
) -> Flow[Any]:
    """One call of ``fn`` (``timeout`` is for the route's deadline; a call is not cut)."""
    result = yield Invoke(fn, args, kwargs)
    return result
