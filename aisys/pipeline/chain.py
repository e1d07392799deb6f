"""The chain: a call's steps, outer first, ending in its route; assembled here only.

A step is ``step(call, request, proceed) -> Flow[result]``: it reads and writes facts on
the `Call`, answers itself (a refused budget, later a cache hit) or runs the rest with
``yield from proceed(request)``, and does I/O only as effects. `aisys.LLM` (chat,
stream, embed) and ``@traced_llm`` build their chain with `assemble` and run it with
`run`, so a capability written as a step works in both modes, sync and async.

Steps that need the call's outcome (its cost, its error) leave a *finisher* on the
call; whoever ends the call runs them with `finish` after metering, before telemetry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from aisys.pipeline._flow import Flow

if TYPE_CHECKING:
    from aisys.call import Billed, Call

__all__ = ["Proceed", "Request", "Step", "assemble", "finish", "run"]

_log = logging.getLogger("aisys")

Proceed: TypeAlias = Callable[[Any], Flow[Any]]
Step: TypeAlias = Callable[["Call", Any, Proceed], Flow[Any]]


class Request(Protocol):
    """What a step may ask of the request travelling down the chain."""

    def priced_as(self) -> tuple[str | None, str | None, str | None]:
        """Provider, model and endpoint this request would be priced at."""

    use_cache: bool
    """False when the caller asked to bypass the cache for this call."""
    shares_flights: bool
    """Whether identical concurrent misses may share one answer (not for streams)."""

    def cache_material(self) -> Any:
        """What the cache key covers (JSON-able); TypeError if it cannot be."""

    def from_cache(
        self, value: Any, chunks: list[str] | None, *, shared: bool = True
    ) -> Any:
        """A stored answer in the shape the rest of the call expects.

        ``shared``: other callers hold the same object (a single-flight leader's
        answer), so a mutable value must be copied; ``False`` for a value read from
        the store for this call.
        """

    def wait_limit(self) -> float:
        """Seconds a single-flight follower waits for its leader at most."""

    def input_parts(self) -> list[tuple[int, str, str]]:
        """(index, source, text) of what the call sends: messages by role."""

    def with_input(self, replaced: dict[int, str]) -> Request:
        """The same request with the texts at ``replaced``'s indexes replaced."""

    def output_text(self, result: Any) -> str | None:
        """The answer's text (``None`` for a stream, checked when it ends)."""

    def with_output(self, result: Any, text: str) -> Any:
        """The answer with its text replaced (redaction)."""

    def billed_by(self, result: Any, target: str | None) -> Billed | None:
        """What answering ``result`` cost, for an answer a step refuses.

        ``target`` is the target that answered; ``None`` when nothing was billed (a
        cache hit, or no usage).
        """

    def after(self, target: str | None) -> Request | None:
        """The request to the targets after ``target``; ``None`` if there are none."""

    def retarget(self, model: Any) -> Request:
        """The same request aimed at another model (a budget's downgrade).

        ``model`` is a ``provider:model`` string or an `aisys.LLM`.
        """


def assemble(
    *,
    runtime: Callable[[], Any],
    budgets: Sequence[Any] = (),
    cache: Any = None,
    guards: Sequence[Any] = (),
    structured: bool = False,
) -> tuple[Step, ...]:
    """The steps a call was configured with, in the order of DESIGN.md's picture.

    prompt → guard_input → budget → guard_output → structured → cache → route (the
    route is the chain's end, given to `run`). Only the steps configured are there.
    ``runtime`` gives the `aisys.Runtime` in force at call time (clock, settings).
    """
    steps: list[Step] = []
    inputs = tuple(g for g in guards if "input" in g.stages)
    outputs = tuple(g for g in guards if "output" in g.stages)
    if inputs:
        from aisys.pipeline.guard import guard_input_step

        steps.append(guard_input_step(inputs))
    if budgets:
        from aisys.pipeline.budget import budget_step

        steps.append(budget_step(tuple(budgets), runtime))
    if outputs:
        from aisys.pipeline.guard import guard_output_step

        steps.append(guard_output_step(outputs))
    if structured:
        from aisys.pipeline.structured import structured_step

        steps.append(structured_step())
    if cache is not None:
        from aisys.errors import ConfigError
        from aisys.pipeline.cache import Cache, cache_step

        if not isinstance(cache, Cache):
            msg = f"cache must be an aisys.Cache(...) or None, got {cache!r}"
            raise ConfigError(msg, field="cache")
        steps.append(cache_step(cache, runtime))
    return tuple(steps)


def run(call: Call, steps: Sequence[Step], last: Proceed, request: Any) -> Flow[Any]:
    """The flow of ``request`` through ``steps`` and then ``last``."""
    proceed = last
    for step in reversed(steps):
        proceed = _link(step, call, proceed)
    return proceed(request)


def _link(step: Step, call: Call, after: Proceed) -> Proceed:
    def proceed(request: Any) -> Flow[Any]:
        return step(call, request, after)

    return proceed


def finish(call: Call) -> Flow[None]:
    """Run what steps left for the end (settling budgets).

    A failure there is logged, never raised: the call's own outcome stands.
    """
    finishers, call.finishers = call.finishers, []
    for finisher in finishers:
        try:
            yield from finisher(call)
        except Exception:
            _log.warning("aisys: a step could not finish its work", exc_info=True)
