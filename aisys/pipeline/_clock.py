"""The clock the pipeline reads and sleeps with; tests swap in a fake one."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "Sleep", "SystemClock", "wall_time"]


class Clock(Protocol):
    """Monotonic time in seconds, and the two ways to wait."""

    def now(self) -> float:
        """Seconds on a monotonic clock."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch (budget windows are calendar windows)."""

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``."""

    async def asleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the event loop."""


class SystemClock:
    """The real clock: `time.monotonic`, `time.sleep`, `asyncio.sleep`."""

    def now(self) -> float:
        """Seconds on the monotonic clock."""
        return time.monotonic()

    def time(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """Block the thread."""
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        """Yield to the event loop."""
        import asyncio  # only async callers pay for importing it

        await asyncio.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


def wall_time(clock: Clock) -> float:
    """Wall-clock seconds from ``clock`` (a clock of the user's own may lack ``time``)."""
    try:
        return float(clock.time())
    except AttributeError:
        return time.time()


class Sleep:
    """The effect of waiting between attempts."""

    __slots__ = ("clock", "seconds")

    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds

    def run(self) -> None:
        """Sleep, blocking."""
        self.clock.sleep(self.seconds)

    async def arun(self) -> None:
        """Sleep on the event loop."""
        await self.clock.asleep(self.seconds)
