"""Route: a fallback chain over targets, one deadline, a circuit breaker per target.

Targets are tried in order, each under its own `Retry` policy. A failure moves to the
next target when ``fallback_on`` says so (by default: errors worth retrying elsewhere,
and a prompt too long for the model); the deadline covers the whole chain; a target
whose breaker is open is skipped without a request. Every attempt is recorded, so
telemetry and `AllTargetsFailedError` can say exactly what happened.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from aisys import _checks
from aisys.call import Call
from aisys.errors import (
    AllTargetsFailedError,
    CircuitOpenError,
    ConfigError,
    ContextLengthError,
    ProviderError,
    ProviderTimeoutError,
)
from aisys.pipeline._clock import Clock
from aisys.pipeline._flow import Flow
from aisys.pipeline.retry import Retry, WaitTooLong, retry_flow
from aisys.providers.base import classify

__all__ = [
    "Attempt",
    "CircuitBreaker",
    "Route",
    "RouteTarget",
    "breaker_key",
    "breaker_states",
    "check_circuit",
    "check_deadline",
    "default_fallback_on",
    "reset_breakers",
    "route_flow",
]

T = TypeVar("T")
Outcome = Literal["ok", "error", "skipped", "deadline"]
BreakerState = Literal["closed", "open", "half_open"]


@dataclass
class Attempt:
    """One try at one target: what was asked, what came back, how long it took."""

    target: str
    fallback_index: int
    number: int
    started_ns: int
    started_at: float
    ended_ns: int = 0
    ended_at: float = 0.0
    outcome: Outcome = "ok"
    error: BaseException | None = None
    status_code: int | None = None
    wait_s: float = 0.0
    """Seconds slept before this attempt."""
    retry_after_s: float | None = None
    """What the server asked to wait, when it failed with Retry-After."""
    usage: Any = None
    """Usage the provider reported for this attempt, even if it then failed."""
    endpoint: str | None = None
    """The target's base URL, for pricing."""
    price_as: str | None = None
    """The provider whose prices apply (``LLM(price_as=...)``), for pricing."""
    cost: Any = None
    """USD this attempt was billed (a `Decimal`), when it failed after usage was reported."""

    @property
    def elapsed_s(self) -> float:
        """Seconds this attempt took."""
        return max(0.0, self.ended_at - self.started_at)

    @property
    def made_request(self) -> bool:
        """Whether a request was sent (skipped and out-of-time attempts send none)."""
        return self.outcome in ("ok", "error")

    def __repr__(self) -> str:
        error = f", error={type(self.error).__name__}" if self.error is not None else ""
        status = f", status={self.status_code}" if self.status_code is not None else ""
        return (
            f"Attempt({self.target!r}, #{self.number}, {self.outcome}{status}{error}, "
            f"{self.elapsed_s:.3f}s)"
        )


class CircuitBreaker:
    """How a target's circuit breaker behaves: open after failures, retry after a pause.

    ``LLM(circuit=aisys.CircuitBreaker(failure_threshold=3, reset_timeout=10.0))`` sets the
    thresholds for one LLM (and its string fallbacks); ``circuit=None`` turns breakers
    off. Without it, the settings ``circuit_failure_threshold`` / ``circuit_reset_timeout``
    apply. Breaker *state* is shared by the whole process, one per provider, model,
    endpoint and credential fingerprint, so every LLM object (and every thread or task)
    calling the same target with the same key sees the same outage, and another key
    never does.

    Args:
        failure_threshold: Consecutive failed requests (retryable errors) that open it.
        reset_timeout: Seconds an open breaker waits before letting one trial request through.

    Added in 0.1.
    """

    __slots__ = ("failure_threshold", "reset_timeout")

    def __init__(self, failure_threshold: int = 5, reset_timeout: float = 30.0) -> None:
        self.failure_threshold = _checks.whole(
            "CircuitBreaker", "failure_threshold", failure_threshold, low=1
        )
        self.reset_timeout = _checks.seconds(
            "CircuitBreaker", "reset_timeout", reset_timeout
        )

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(failure_threshold={self.failure_threshold}, "
            f"reset_timeout={self.reset_timeout})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CircuitBreaker) and (
            self.failure_threshold,
            self.reset_timeout,
        ) == (other.failure_threshold, other.reset_timeout)

    def __hash__(self) -> int:
        return hash((self.failure_threshold, self.reset_timeout))

    @classmethod
    def from_settings(cls, settings: Any) -> CircuitBreaker:
        """The thresholds of ``settings`` (an `aisys.Settings`), one object per pair."""
        return _thresholds(
            settings.circuit_failure_threshold, settings.circuit_reset_timeout
        )


@functools.lru_cache(maxsize=64)
def _thresholds(failure_threshold: int, reset_timeout: float) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold, reset_timeout)


class _Breaker:
    """One target's state: closed → open after failures → half-open after a pause."""

    def __init__(self) -> None:
        self.state: BreakerState = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self._trial = False
        self._lock = threading.Lock()

    def allow(self, now: float, reset_timeout: float) -> bool:
        """Whether a request may go out now (in half-open, only one trial at a time)."""
        with self._lock:
            if self.state == "open":
                if now - self.opened_at < reset_timeout:
                    return False
                self.state = "half_open"
                self._trial = False
            if self.state == "half_open":
                if self._trial:
                    return False
                self._trial = True
            return True

    def record(self, ok: bool, now: float, threshold: int) -> None:
        """Count one request's outcome."""
        with self._lock:
            if ok:
                self.state, self.failures, self._trial = "closed", 0, False
                return
            self.failures += 1
            if self.state == "half_open" or self.failures >= threshold:
                self.state, self.opened_at, self._trial = "open", now, False


_BREAKERS: dict[str, _Breaker] = {}
_BREAKERS_LOCK = threading.Lock()


def _breaker(key: str) -> _Breaker:
    with _BREAKERS_LOCK:
        breaker = _BREAKERS.get(key)
        if breaker is None:
            breaker = _BREAKERS[key] = _Breaker()
        return breaker


def breaker_key(target: str, endpoint: str, *credentials: object) -> str:
    """``target@endpoint``, plus ``#`` and a short hash of the credentials if any.

    The hash tells two API keys apart without revealing either: 12 hex digits of a
    SHA-256, never the key itself.
    """
    key = f"{target}@{endpoint}"
    secret = "\x00".join(str(item) for item in credentials if item)
    if not secret:
        return key
    return f"{key}#{hashlib.sha256(secret.encode()).hexdigest()[:12]}"


def breaker_states() -> dict[str, BreakerState]:
    """Every known target's breaker state (process-wide), by breaker key."""
    with _BREAKERS_LOCK:
        return {key: breaker.state for key, breaker in _BREAKERS.items()}


def reset_breakers() -> None:
    """Forget all breaker state (tests; or after an incident)."""
    with _BREAKERS_LOCK:
        _BREAKERS.clear()


def check_circuit(circuit: Any) -> Any:
    """``circuit=`` as given: a `CircuitBreaker`, ``None`` (off) or the default."""
    from aisys._sentinel import Default

    if not isinstance(circuit, CircuitBreaker | Default | None):
        raise ConfigError(
            f"circuit must be an aisys.CircuitBreaker(...) or None, got {circuit!r}",
            field="circuit",
        )
    return circuit


def check_deadline(deadline: Any, owner: str = "LLM") -> float | None:
    """A deadline as given, or ConfigError when it is not a positive number of seconds."""
    if deadline is None:
        return None
    return _checks.seconds(owner, "deadline", deadline)


def default_fallback_on(exc: BaseException) -> bool:
    """Move to the next target on errors another target may not have.

    Retryable errors (429, 5xx, timeouts, connection failures), an open breaker, and a
    prompt too long for this model's context. Not on other 4xx: the request itself
    is wrong and would fail everywhere.
    """
    return classify(exc).retryable or isinstance(
        exc, CircuitOpenError | ContextLengthError | WaitTooLong
    )


@dataclass(frozen=True)
class RouteTarget:
    """One place to try: a label, a retry policy, a breaker, and what the attempt runs.

    Static facts of a target, made once per `LLM` or decorated function and shared by
    all its calls; each call passes `route_flow` the attempt to run against it.
    """

    label: str
    retry: Retry
    breaker_key: str | None = None
    """Whose breaker state this target shares (`breaker_key`); ``None``: no breaker."""
    circuit: CircuitBreaker | None = None
    """This target's thresholds; ``None``: the route's (from settings)."""
    endpoint: str | None = None
    """The target's base URL, kept on its attempts for pricing."""
    price_as: str | None = None
    """The provider whose price table prices this target (a gateway's ``price_as``)."""
    subject: Any = None
    """What the attempt runs against (an `LLM`, a function): handed to the attempt."""


@dataclass
class Route:
    """One call's journey through its targets; read by telemetry afterwards."""

    clock: Clock
    deadline_s: float | None = None
    fallback_on: Callable[[BaseException], bool] = default_fallback_on
    circuit: CircuitBreaker = field(default_factory=CircuitBreaker)
    """Breaker thresholds for targets that do not set their own."""
    attempts: list[Attempt] = field(default_factory=list)
    fallback_index: int = 0
    target: str | None = None
    endpoint: str | None = None
    price_as: str | None = None
    started_at: float | None = None

    @classmethod
    def configured(
        cls,
        clock: Clock,
        settings: Any,
        *,
        deadline_s: float | None,
        fallback_on: Callable[[BaseException], bool] = default_fallback_on,
    ) -> Route:
        """A route with the breaker thresholds of ``settings`` (an `aisys.Settings`)."""
        return cls(
            clock=clock,
            deadline_s=deadline_s,
            fallback_on=fallback_on,
            circuit=CircuitBreaker.from_settings(settings),
        )

    def record(self, call: Call) -> None:
        """Put the attempts and the target that answered (or none) on the call."""
        call.attempts = self.attempts
        call.fallback_index = self.fallback_index if self.target is not None else None
        call.target = self.target
        call.endpoint = self.endpoint
        call.price_as = self.price_as

    def remaining(self) -> float | None:
        """Seconds left before the deadline, or ``None`` without one."""
        if self.deadline_s is None or self.started_at is None:
            return self.deadline_s
        return self.deadline_s - (self.clock.now() - self.started_at)

    def _begin(
        self, target: RouteTarget, index: int, number: int, wait_s: float
    ) -> Attempt:
        attempt = Attempt(
            target=target.label,
            fallback_index=index,
            number=number,
            started_ns=time.time_ns(),
            started_at=self.clock.now(),
            wait_s=wait_s,
            endpoint=target.endpoint,
            price_as=target.price_as,
        )
        self.attempts.append(attempt)
        return attempt

    def _end(
        self, attempt: Attempt, error: BaseException | None, outcome: Outcome
    ) -> None:
        attempt.ended_ns = time.time_ns()
        attempt.ended_at = self.clock.now()
        attempt.outcome = outcome
        if error is not None:
            attempt.error = error
            failure = classify(error)
            attempt.status_code = failure.status_code
            attempt.retry_after_s = failure.retry_after_s
            attempt.usage = getattr(error, "usage", None)


def route_flow(
    route: Route,
    targets: Sequence[RouteTarget],
    run: Callable[[Any, float | None], Flow[T]],
    first_index: int = 0,
) -> Flow[T]:
    """Try ``targets`` in order under one deadline; returns the first success.

    ``run(target.subject, seconds_left)`` makes one attempt's flow (``seconds_left``
    is ``None`` without a deadline). ``first_index`` is the first target's place in
    the whole chain, when a route goes on past a target that answered (an output
    guard's fallback): fallback indexes count from the primary, and the deadline
    runs from the route's first attempt.

    A single target re-raises its last error; a chain raises `AllTargetsFailedError`
    once no target is left (or the deadline passed). An error ``fallback_on`` rejects
    (a malformed request) is raised at once: no other target would take it.
    """
    if route.started_at is None:
        route.started_at = route.clock.now()
    errors: list[BaseException] = []
    for index, target in enumerate(targets, first_index):
        breaker = _breaker(target.breaker_key) if target.breaker_key else None
        circuit = target.circuit or route.circuit
        try:
            result = yield from retry_flow(
                target.retry,
                _attempt_flow(route, target, run, index, breaker, circuit),
                clock=route.clock,
                remaining=route.remaining,
            )
        except WaitTooLong as stop:
            errors.append(stop.last)
        except Exception as exc:
            errors.append(exc)
            if not route.fallback_on(exc) and not _deadline_passed(route):
                raise
        else:
            route.fallback_index = index
            route.target = target.label
            route.endpoint = target.endpoint
            route.price_as = target.price_as
            return result
        if _deadline_passed(route):
            break
    if len(targets) == 1 and errors:
        raise errors[-1]
    raise _all_failed(route, errors)


def _deadline_passed(route: Route) -> bool:
    left = route.remaining()
    return left is not None and left <= 0


def _attempt_flow(
    route: Route,
    target: RouteTarget,
    run: Callable[[Any, float | None], Flow[T]],
    index: int,
    breaker: _Breaker | None,
    circuit: CircuitBreaker,
) -> Callable[[float], Flow[T]]:
    """The attempt retry_flow repeats: checks deadline and breaker, runs, records."""
    number = 0

    def attempt(wait_s: float) -> Flow[T]:
        nonlocal number
        number += 1
        record = route._begin(target, index, number, wait_s)
        left = route.remaining()
        error: ProviderError
        if left is not None and left <= 0:
            error = ProviderTimeoutError(
                f"the deadline of {route.deadline_s} s passed before {target.label} "
                f"could be tried",
            )
            route._end(record, error, "deadline")
            raise error
        if breaker is not None and not breaker.allow(
            record.started_at, circuit.reset_timeout
        ):
            error = CircuitOpenError(
                f"{target.label} skipped: its circuit breaker is open after repeated "
                f"failures (retried after {circuit.reset_timeout} s)",
            )
            route._end(record, error, "skipped")
            raise error
        try:
            result = yield from run(target.subject, left)
        except Exception as exc:
            route._end(record, exc, "error")
            if breaker is not None:
                breaker.record(
                    not classify(exc).retryable,
                    record.ended_at,
                    circuit.failure_threshold,
                )
            raise
        route._end(record, None, "ok")
        if breaker is not None:
            breaker.record(True, record.ended_at, circuit.failure_threshold)
        return result

    return attempt


def _all_failed(route: Route, errors: list[BaseException]) -> AllTargetsFailedError:
    tried = list(dict.fromkeys(a.target for a in route.attempts))
    last = errors[-1] if errors else None
    reason = "the deadline passed" if _deadline_passed(route) else "every target failed"
    summary = "; ".join(
        f"{a.target} #{a.number}: {a.outcome}"
        + (f" {type(a.error).__name__}" if a.error is not None else "")
        + (f" HTTP {a.status_code}" if a.status_code else "")
        for a in route.attempts
    )
    error = AllTargetsFailedError(
        f"{reason} ({len(route.attempts)} attempts over {', '.join(tried)}): {summary}",
        tuple(a.error for a in route.attempts if a.error is not None),
        tuple(route.attempts),
    )
    error.__cause__ = last
    return error
