"""CallScope: the one lifecycle every call goes through, in either mode and any shape.

`aisys.LLM` (chat, stream, embed), the decorators (sync, async, generator and
async-generator functions, and the SDK streams they return) and ``aisys.trace`` blocks
begin a call here and end it here. This is the only code that reads a result into the
call, meters it, runs what the steps left to finish (settling budgets) and ends its
telemetry, so the rules are written once:

- a call ends exactly once — answered, failed, cancelled, closed early or dropped —
  in one logical span and one log event;
- every model call is metered once, when its outcome is known: what the provider
  billed (the answer's usage, plus the usage failed attempts reported), at the price
  of the model that answered or was tried; a call that sent nothing is billed nothing;
- metering, finishing and telemetry never raise into the caller.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from aisys.context import current_tally
from aisys.pipeline._flow import adrive, drive
from aisys.pipeline.chain import finish

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span

    from aisys.call import Call
    from aisys.pipeline._clock import Clock
    from aisys.pipeline.route import Route
    from aisys.settings import Settings
    from aisys.telemetry.writer import Telemetry

__all__ = ["CallScope", "RuntimeView"]


class RuntimeView(Protocol):
    """What a call needs of the runtime it runs in (an `aisys.Runtime`)."""

    clock: Clock
    """Time for retries, deadlines and breakers."""

    @property
    def telemetry(self) -> Telemetry:
        """Where the call is recorded."""

    @property
    def settings(self) -> Settings:
        """The settings in force."""


class CallScope:
    """One call from its beginning to its one end.

    ``begin`` opens the span (not current: `activate` makes it so around the work);
    `read` puts the result's facts on the call; `meter` prices it (once); `end` /
    `aend` settle the outcome, meter if not yet done, run the steps' finishers and end
    the telemetry — once, whatever happens after.
    """

    __slots__ = (
        "_context",
        "_token",
        "call",
        "done",
        "metered",
        "route",
        "span",
        "started",
        "tel",
    )

    def __init__(
        self,
        tel: Telemetry,
        call: Call,
        *,
        route: Route | None = None,
        fixed: tuple[str, Mapping[str, Any]] | None = None,
        context: Context | None = None,
    ) -> None:
        self.tel = tel
        self.call = call
        self.route = route
        """The call's journey over its targets, when it has one (read at the end)."""
        self.span: Span = tel.start(call, context=context, fixed=fixed)
        if call.review is not None:  # a guard may queue it: the item needs its ids
            call.trace_id, call.span_id = tel.ids_of(self.span)
        self.started = time.perf_counter()
        self.done = False
        self.metered = False
        self._context: Context | None = None
        self._token: object = None

    # -- around the work ---------------------------------------------------------------

    def activate(self) -> None:
        """Make the call's span current (for the work and the calls nested in it).

        A generator's span is made current around each step, never across a yield.
        """
        context = self._context
        if context is None:
            context = self._context = self.tel.context_of(self.span)
        self._token = self.tel.attach(context)

    def deactivate(self) -> None:
        """Restore what was current before `activate`."""
        if self._token is not None:
            self.tel.deactivate(self._token)
            self._token = None

    # -- the outcome -------------------------------------------------------------------

    def read(self, result: Any, reader: Callable[..., Any], *context: Any) -> None:
        """Put what ``result`` says on the call: ``reader(call, result, *context)``.

        Never raises: a result that cannot be read is said so on the span.
        """
        try:
            reader(self.call, result, *context)
        except Exception as exc:
            self.call.unread = (
                f"reading the {type(result).__name__} result failed: {exc!r}"
            )

    def answered(
        self, output: Any, ids: tuple[str | None, str | None] | None = None
    ) -> None:
        """Hand an answered call's output to online scoring and to review.

        A sampled call is scored, and a call is queued when a guard asked or it is
        drawn — both off the caller's path.
        """
        call = self.call
        online = call.online
        if online is not None and online.sampled():
            online.offer(
                output, *(ids if ids is not None else self.tel.ids_of(self.span))
            )
        if call.review is not None:
            call.review.after_call(call, output)

    def meter(self) -> Any:
        """Record the route's facts and price the call, once; returns its cost."""
        call = self.call
        if not self.metered:
            self.metered = True
            if self.route is not None:
                self.route.record(call)
            if call.kind == "llm":
                _metering()(call)
        return call.cost

    def _settle(self, error: BaseException | None, early: bool) -> bool:
        """Put the outcome on the call, once; False when the call has already ended."""
        if self.done:
            return False
        self.done = True
        if self._token is not None:
            self.deactivate()
        call = self.call
        if error is not None and call.error is None:
            call.error = error
        if early:
            call.closed_early = True
        if not self.metered:
            self.meter()
        tally = current_tally()
        if tally is not None:
            tally.add(call.cost, call.prompt)
        return True

    def end(self, error: BaseException | None = None, *, early: bool = False) -> None:
        """End the call (sync): outcome, metering, the steps' finishers, telemetry."""
        if self._settle(error, early):
            if self.call.finishers:
                drive(finish(self.call))
            self.tel.end(self.call, self.span, self.started)

    async def aend(
        self, error: BaseException | None = None, *, early: bool = False
    ) -> None:
        """`end`, with the steps' finishing work awaited."""
        if self._settle(error, early):
            if self.call.finishers:
                await adrive(finish(self.call))
            self.tel.end(self.call, self.span, self.started)


@functools.cache
def _metering() -> Callable[[Call], None]:
    """`aisys.metering.cost.meter`, loaded on the first model call (keeps import light)."""
    from aisys.metering.cost import meter

    return meter
