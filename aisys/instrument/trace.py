"""``with aisys.trace(...)``: a parent span, and a scope whose facts calls inside share."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aisys.call import Call
from aisys.context import _SCOPE, Scope
from aisys.lifecycle import CallScope

if TYPE_CHECKING:
    from aisys.lifecycle import RuntimeView

__all__ = ["TraceBlock"]


class TraceBlock:
    """``with aisys.trace(...)`` / ``async with``: a parent span and a scope for calls inside."""

    __slots__ = ("_call", "_runtime", "_scope", "_scope_token")

    def __init__(
        self,
        runtime: RuntimeView,
        name: str,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        tags: tuple[str, ...] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        parent = _SCOPE.get()
        self._scope = (
            parent.nested(name, user_id, session_id, tags, metadata)
            if parent is not None
            else Scope(
                name,
                user_id,
                session_id,
                tuple(dict.fromkeys(tags)),
                dict(metadata or {}),
            )
        )
        self._runtime = runtime
        self._call: CallScope | None = None

    @property
    def trace_id(self) -> str | None:
        """This trace's id as 32 hex digits, once entered (for linking logs or tickets)."""
        if self._call is None:
            return None
        ctx = self._call.span.get_span_context()
        return f"{ctx.trace_id:032x}" if ctx.is_valid else None

    def __enter__(self) -> TraceBlock:
        self._scope_token = _SCOPE.set(self._scope)
        call = Call("trace", "", name=self._scope.name, scope=self._scope)
        self._call = CallScope(self._runtime.telemetry, call)
        self._call.activate()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._call is not None:
            self._call.end(exc)
        _SCOPE.reset(self._scope_token)

    async def __aenter__(self) -> TraceBlock:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
