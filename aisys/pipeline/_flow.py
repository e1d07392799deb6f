"""Flows and their two drivers: the only place where sync and async differ.

A flow is a generator that makes decisions and yields *effects* (send a request, sleep)
instead of doing I/O. `drive` performs each effect with blocking calls, `adrive` with
awaits, and sends the result (or throws the exception) back into the flow, so one piece
of logic serves `chat()` and `achat()` alike.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Protocol, TypeAlias, TypeVar

__all__ = ["Effect", "Flow", "adrive", "drive"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Effect(Protocol[T_co]):
    """One piece of I/O, with a blocking and an awaitable way to perform it."""

    def run(self) -> T_co:
        """Perform the effect, blocking."""

    async def arun(self) -> T_co:
        """Perform the effect on the running event loop."""


Flow: TypeAlias = Generator[Effect[Any], Any, T]


def drive(flow: Flow[T]) -> T:
    """Run ``flow`` to its result, performing its effects with blocking calls."""
    try:
        effect = next(flow)
        while True:
            try:
                result = effect.run()
            except Exception as exc:  # the flow decides what a failure means
                effect = flow.throw(exc)
            else:
                effect = flow.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value
    finally:
        flow.close()


async def adrive(flow: Flow[T]) -> T:
    """Run ``flow`` to its result, awaiting its effects."""
    try:
        effect = next(flow)
        while True:
            try:
                result = await effect.arun()
            except Exception as exc:  # the flow decides what a failure means
                effect = flow.throw(exc)
            else:
                effect = flow.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value
    finally:
        flow.close()
