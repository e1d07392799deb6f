"""Per-trace context: who the calls are for, and how to carry it across threads.

`aisys.trace()` sets a `Scope` for the code inside it; every call span and log event
made there carries its user, session, tags and metadata. The scope and the OTel span
both live in `contextvars`, so `copy_context` / `wrap` / `run_in_thread` carry the
whole trace into threads and executors.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import threading
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

__all__ = [
    "Scope",
    "Tally",
    "copy_context",
    "current_scope",
    "current_tally",
    "run_in_thread",
    "tallying",
    "wrap",
]

P = ParamSpec("P")
R = TypeVar("R")


class Scope:
    """User, session, tags and metadata that calls inside `aisys.trace()` inherit."""

    __slots__ = ("metadata", "name", "session_id", "tags", "user_id")

    def __init__(
        self,
        name: str,
        user_id: str | None = None,
        session_id: str | None = None,
        tags: tuple[str, ...] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.user_id = user_id
        self.session_id = session_id
        self.tags = tags
        self.metadata: Mapping[str, Any] = metadata or {}

    def nested(
        self,
        name: str,
        user_id: str | None,
        session_id: str | None,
        tags: tuple[str, ...],
        metadata: Mapping[str, Any] | None,
    ) -> Scope:
        """A scope inside this one: new values win, tags and metadata add up."""
        return Scope(
            name,
            user_id if user_id is not None else self.user_id,
            session_id if session_id is not None else self.session_id,
            tuple(dict.fromkeys(self.tags + tags)),
            {**self.metadata, **(metadata or {})},
        )


_SCOPE: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "aisys_scope", default=None
)


class Tally:
    """What the calls made in a context cost, and the prompts they used.

    `aisys.evaluate` runs each case (and, apart, its judges) inside one, to put the
    case's cost and prompt version in the run file. Unknown prices are counted, never $0.
    """

    __slots__ = ("calls", "prompts", "unpriced", "usd")

    def __init__(self) -> None:
        from decimal import Decimal

        self.usd = Decimal(0)
        self.calls = 0
        self.unpriced = 0
        self.prompts: list[str] = []

    def add(self, cost: Any, prompt: tuple[str, str, str] | None) -> None:
        """One ended call: its `CallCost` (None: nothing billed) and prompt facts."""
        self.calls += 1
        if cost is not None:
            usd = cost.usd
            if usd is None:
                self.unpriced += 1
            else:
                self.usd += usd
        if prompt is not None:
            named = f"{prompt[0]}@{prompt[1]}"
            if named not in self.prompts:
                self.prompts.append(named)

    @property
    def cost_usd(self) -> Any:
        """The priced calls' cost, or None when a call's price was unknown."""
        return None if self.unpriced else self.usd


_TALLY: contextvars.ContextVar[Tally | None] = contextvars.ContextVar(
    "aisys_tally", default=None
)


def current_tally() -> Tally | None:
    """The tally the calls here add to, if one is running."""
    return _TALLY.get()


def tallying(tally: Tally | None) -> contextvars.Token[Tally | None]:
    """Make calls in this context add to ``tally``; returns the token to reset it."""
    return _TALLY.set(tally)


def current_scope() -> Scope | None:
    """The scope of the innermost `aisys.trace()` around this code, if any."""
    return _SCOPE.get()


def copy_context() -> contextvars.Context:
    """A snapshot of the current trace (OTel span and aisys scope) to run code in later.

    Added in 0.1.
    """
    return contextvars.copy_context()


def wrap(fn: Callable[P, R]) -> Callable[P, R]:
    """Bind ``fn`` to the current trace, so it joins it wherever it later runs.

    Use it when handing work to an executor:
    ``pool.submit(aisys.context.wrap(fetch), url)``.

    Added in 0.1.
    """
    ctx = contextvars.copy_context()

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        # A Context can be entered by one thread at a time; copy again per run so the
        # wrapped function may run concurrently.
        return ctx.copy().run(fn, *args, **kwargs)

    return run


def run_in_thread(
    fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
) -> concurrent.futures.Future[R]:
    """Run ``fn`` in a new thread inside the current trace; returns its `Future`.

    Added in 0.1.
    """
    future: concurrent.futures.Future[R] = concurrent.futures.Future()
    bound = wrap(fn)

    def target() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(bound(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=target, name=f"aisys-{fn.__name__}").start()
    return future
