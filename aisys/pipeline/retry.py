"""Retry: which failures are tried again, and how long to wait, over tenacity.

The policy is tenacity's own stop / wait / retry strategies; `retry_flow` drives
tenacity's state machine (``Retrying.iter``) inside a flow, so one piece of logic serves
sync and async calls and never sleeps past the caller's deadline.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import tenacity
from tenacity import DoAttempt, DoSleep, RetryCallState
from tenacity.wait import wait_base

from aisys import _checks
from aisys.pipeline._clock import Sleep
from aisys.pipeline._flow import Flow
from aisys.providers.base import classify

__all__ = [
    "Retry",
    "WaitTooLong",
    "check_retry",
    "is_retryable",
    "retry_flow",
    "wait_retry_after",
]

T = TypeVar("T")


def is_retryable(exc: BaseException) -> bool:
    """Whether trying again may help: 429, 408, 409, 5xx, connection errors, timeouts."""
    return classify(exc).retryable


class wait_retry_after(wait_base):  # noqa: N801 - named like tenacity's strategies
    """Wait what the server asked for (Retry-After), capped; else the fallback strategy."""

    def __init__(self, fallback: wait_base, cap: float) -> None:
        self.fallback = fallback
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        """Seconds to wait before the next attempt."""
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        asked = classify(error).retry_after_s if error is not None else None
        if asked is not None:
            return min(asked, self.cap)
        return float(self.fallback(retry_state))


class Retry:
    """How a target is retried: attempts, exponential backoff with jitter, Retry-After.

    Args:
        max_attempts: Requests per target, the first included (1 = no retry).
        initial: Seconds before the first retry; doubled for each next one.
        max_delay: The longest wait, also for a server's Retry-After.
        jitter: Randomise waits (full jitter) so clients do not retry in step.
        stop, wait, retry: tenacity strategies replacing the defaults built from the
            arguments above (``retry`` decides which exceptions are retried).

    Added in 0.1.
    """

    def __init__(
        self,
        max_attempts: int = 3,
        initial: float = 0.5,
        max_delay: float = 20.0,
        jitter: bool = True,
        *,
        stop: Any = None,
        wait: Any = None,
        retry: Any = None,
    ) -> None:
        _checks.whole("Retry", "max_attempts", max_attempts, low=1)
        _checks.number("Retry", "initial", initial)
        _checks.number("Retry", "max_delay", max_delay)
        _checks.flag("Retry", "jitter", jitter)
        self.max_attempts = max_attempts
        self.initial = initial
        self.max_delay = max_delay
        self.jitter = jitter
        backoff = (
            tenacity.wait_random_exponential(multiplier=initial, max=max_delay)
            if jitter
            else tenacity.wait_exponential(multiplier=initial, max=max_delay)
        )
        self.stop = (
            stop if stop is not None else tenacity.stop_after_attempt(max_attempts)
        )
        self.wait = wait if wait is not None else wait_retry_after(backoff, max_delay)
        self.retry = (
            retry if retry is not None else tenacity.retry_if_exception(is_retryable)
        )

    def __repr__(self) -> str:
        return (
            f"Retry(max_attempts={self.max_attempts}, initial={self.initial}, "
            f"max_delay={self.max_delay}, jitter={self.jitter})"
        )

    def retrying(self) -> tenacity.Retrying:
        """A fresh tenacity controller for one call (its state is per call)."""
        return tenacity.Retrying(
            stop=self.stop,
            wait=self.wait,
            retry=self.retry,
            reraise=True,
            sleep=_never_sleeps,
        )


def _never_sleeps(
    seconds: float,
) -> None:  # pragma: no cover - flows yield Sleep instead
    msg = "aisys drives tenacity itself; its sleep is never called"
    raise AssertionError(msg)


class WaitTooLong(Exception):  # noqa: N818 - a signal inside the flow, never seen by users
    """The next wait would pass the deadline: give up on this target now."""

    def __init__(self, wait_s: float, last: BaseException) -> None:
        super().__init__(f"waiting {wait_s:.2f} s would pass the deadline")
        self.wait_s = wait_s
        self.last = last


def retry_flow(
    policy: Retry,
    attempt: Callable[[float], Flow[T]],
    *,
    clock: Any,
    remaining: Callable[[], float | None],
) -> Flow[T]:
    """Run ``attempt(wait_before)`` until it succeeds or the policy stops.

    Raises the last error when retries are exhausted or the error is not retryable,
    and `WaitTooLong` (carrying it) when the next wait would pass the deadline.
    """
    started = time.monotonic()
    try:  # most calls succeed at once: tenacity's controller only after a failure
        first: T = yield from attempt(0.0)
    except Exception:
        failed = sys.exc_info()
    else:
        return first
    retrying = policy.retrying()
    retrying.begin()
    state = RetryCallState(retry_object=retrying, fn=None, args=(), kwargs={})
    state.start_time = started  # the first attempt counts for stop_after_delay
    retrying.iter(retry_state=state)  # the first attempt, already made
    state.set_exception(failed)  # type: ignore[arg-type]
    waited = 0.0
    while True:
        do = retrying.iter(retry_state=state)
        if isinstance(do, DoAttempt):
            try:
                result = yield from attempt(waited)
            except Exception:
                state.set_exception(sys.exc_info())  # type: ignore[arg-type]
            else:
                state.set_result(result)
        elif isinstance(do, DoSleep):
            wait_s = float(do)
            left = remaining()
            if left is not None and wait_s >= left:
                last = state.outcome.exception() if state.outcome is not None else None
                assert last is not None  # noqa: S101 - a sleep only follows a failure
                raise WaitTooLong(wait_s, last)
            state.prepare_for_next_attempt()
            yield Sleep(clock, wait_s)
            waited = wait_s
        else:
            value: T = do
            return value


def check_retry(owner: str, retry: Any) -> Any:
    """``retry=`` as given: an `aisys.Retry`, ``None`` (no retries) or the default.

    An int is refused rather than guessed at (3 retries, or 3 attempts?).
    """
    from aisys._sentinel import Default

    if isinstance(retry, Retry | Default) or retry is None:
        return retry
    hint = (
        f"for {retry} attempts pass retry=aisys.Retry(max_attempts={retry})"
        if isinstance(retry, int) and not isinstance(retry, bool)
        else ""
    )
    raise _checks.bad(owner, "retry", "an aisys.Retry(...) or None", retry, hint)
