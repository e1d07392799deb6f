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
from typing import TYPE_CHECKING, Any

from aisys.pipeline._flow import Flow
from aisys.pipeline.protocol import Proceed, Request, Step

if TYPE_CHECKING:
    from aisys.call import Call

__all__ = ["Proceed", "Request", "Step", "assemble", "finish", "run"]


_log = logging.getLogger("aisys")


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
