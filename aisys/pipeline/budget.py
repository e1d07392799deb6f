"""Budget: refuse, warn or downgrade before a request leaves the process.

For each budget the step estimates the call (counted input tokens plus ``max_tokens``,
or `DEFAULT_OUTPUT_TOKENS`, at the model's price), reserves the estimate atomically in
the budget's store, and leaves a finisher that settles the reservation with the real
cost once it is known (refunding it when nothing was billed). Concurrent calls cannot
overspend a window: each reservation sees every other.
"""

from __future__ import annotations

import calendar
import functools
import inspect
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from aisys import _checks
from aisys.errors import BudgetExceededError, BudgetStoreError, ConfigError
from aisys.metering.prices import find_price
from aisys.pipeline._clock import wall_time
from aisys.pipeline._flow import Flow
from aisys.stores import StoreOp, StoreRef, check_store

if TYPE_CHECKING:
    from aisys.call import Call
    from aisys.pipeline.protocol import Proceed, Step
    from aisys.stores import Store

__all__ = [
    "DEFAULT_OUTPUT_TOKENS",
    "Budget",
    "BudgetStoreError",
    "budget_step",
    "budgets_for_function",
    "budgets_of",
]

_log = logging.getLogger("aisys")
Per = Literal["call", "minute", "hour", "day", "month"]
OnExceed = Literal["raise", "warn", "downgrade"]
DEFAULT_OUTPUT_TOKENS = 512
"""Output tokens assumed for the estimate when a call sets no ``max_tokens``."""
_NANO = Decimal(1_000_000_000)
_PERS = ("call", "minute", "hour", "day", "month")
_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class Budget:
    """A spending limit in USD, checked before each call.

    Args:
        usd: The limit, in USD.
        per: ``call`` (each call's estimate), or a calendar window in UTC:
            ``minute``, ``hour``, ``day``, ``month``.
        scope: Whose spend counts together: ``global``, ``user``, ``session``,
            ``prompt``, or ``tag:<tag>`` (only calls inside ``aisys.trace(tags=[...])``
            with that tag). User and session come from `aisys.trace`.
        on_exceed: ``raise`` `aisys.BudgetExceededError` (nothing is sent), ``warn``
            (sent anyway, with a warning and ``aisys.budget.exceeded=true``), or
            ``downgrade`` to ``downgrade_to``.
        downgrade_to: A ``provider:model`` string (same provider: the endpoint and
            key of the LLM; another: its environment) or an `aisys.LLM`.
        store: ``None`` (diskcache in ``cache_dir``: shared by the processes of one
            machine), ``"memory"`` (this process) or ``"redis://…"`` (a fleet).
        on_store_error: ``fail`` refuses calls while the store is unreachable
            (`BudgetStoreError`); ``allow`` lets them through unmetered, with a warning.
        name: The spend counter's name in the store; by default derived from ``per``,
            ``scope`` and ``usd``, so the same budget declared in two processes
            shares one counter.

    Added in 0.1.
    """

    __slots__ = (
        "downgrade_to",
        "limit_nano",
        "name",
        "on_exceed",
        "on_store_error",
        "opened",
        "per",
        "scope",
        "store",
        "usd",
    )

    def __init__(
        self,
        usd: float | Decimal | str,
        *,
        per: Per = "call",
        scope: str = "global",
        on_exceed: OnExceed = "raise",
        downgrade_to: Any = None,
        store: str | None = None,
        on_store_error: Literal["fail", "allow"] = "fail",
        name: str | None = None,
    ) -> None:
        try:
            limit = Decimal(str(usd))
        except ArithmeticError:
            limit = Decimal(-1)
        if not limit.is_finite() or limit < 0:
            _bad("usd", usd, "a non-negative amount of USD, e.g. 5 or '0.50'")
        if per not in _PERS:
            _bad("per", per, "one of call, minute, hour, day, month")
        if scope not in ("global", "user", "session", "prompt") and not (
            isinstance(scope, str) and scope.startswith("tag:") and len(scope) > 4
        ):
            _bad("scope", scope, "global, user, session, prompt or tag:<tag>")
        if on_exceed not in ("raise", "warn", "downgrade"):
            _bad("on_exceed", on_exceed, "raise, warn or downgrade")
        if (on_exceed == "downgrade") != (downgrade_to is not None):
            _bad(
                "downgrade_to",
                downgrade_to,
                "a model (e.g. 'openai:gpt-4o-mini') exactly when on_exceed='downgrade'",
            )
        if on_store_error not in ("fail", "allow"):
            _bad("on_store_error", on_store_error, "fail or allow")
        check_store("Budget", store)
        if name is not None:
            _checks.text("Budget", "name", name)
        self.usd = limit
        self.limit_nano = int(limit * _NANO)
        self.per: Per = per
        self.scope = scope
        self.on_exceed: OnExceed = on_exceed
        self.downgrade_to = downgrade_to
        self.store = store
        self.on_store_error = on_store_error
        self.name = name or f"{per}:{scope}:{limit}"
        self.opened = StoreRef(store, "budgets")
        """Where the spend counters live, opened on first use."""

    def __repr__(self) -> str:
        return (
            f"Budget({self.usd}, per={self.per!r}, scope={self.scope!r}, "
            f"on_exceed={self.on_exceed!r}, name={self.name!r})"
        )

    def scope_value(self, call: Call) -> str | None:
        """Whose counter this call adds to; ``None`` when the budget does not apply."""
        scope = call.scope
        if self.scope == "global":
            return "*"
        if self.scope == "user":
            return (scope.user_id if scope else None) or "-"
        if self.scope == "session":
            return (scope.session_id if scope else None) or "-"
        if self.scope == "prompt":
            return call.prompt[0] if call.prompt is not None else "-"
        tag = self.scope[4:]
        return tag if scope is not None and tag in scope.tags else None

    def window(self, now: float) -> tuple[str, float, float]:
        """The current window: its label, seconds until it ends, and its end (epoch s).

        Fixed windows are labelled by their start second; months by ``YYYY-MM``.
        """
        if self.per == "call":
            return "call", 0.0, 0.0
        if self.per == "month":
            label, end = _month(int(now // 86400))
            return label, end - now, end
        size = _SECONDS[self.per]
        start = now - now % size
        return str(int(start)), start + size - now, start + size


@functools.lru_cache(maxsize=8)
def _month(day: int) -> tuple[str, float]:
    """The month holding UTC day number ``day``: its label and end (epoch seconds)."""
    moment = datetime.fromtimestamp(day * 86400, UTC)
    days = calendar.monthrange(moment.year, moment.month)[1]
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC).timestamp()
    return f"{moment.year:04d}-{moment.month:02d}", start + days * 86400


def budgets_of(value: Any) -> tuple[Budget, ...]:
    """``budget=`` as a tuple: one `Budget` or a list of them (`ConfigError` else)."""
    budgets = tuple(value) if isinstance(value, list | tuple) else (value,)
    for item in budgets:
        if not isinstance(item, Budget):
            msg = f"budget must be an aisys.Budget(...) or a list of them, got {item!r}"
            raise ConfigError(msg, field="budget")
    return budgets


def budgets_for_function(
    budget: Any, fn: Callable[..., Any], has_model_param: bool
) -> tuple[Budget, ...]:
    """A decorator's ``budget=``, checked against what the function can do."""
    if budget is None:
        return ()
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        msg = (
            f"budget= cannot wrap the generator function {fn.__qualname__}: its cost is "
            "known only once the caller has consumed it; put the budget on the call "
            "that opens the stream (a function returning the SDK's stream works)"
        )
        raise ConfigError(msg, field="budget")
    budgets = budgets_of(budget)
    for item in budgets:
        if item.on_exceed == "downgrade" and not has_model_param:
            msg = (
                f"{item!r} downgrades, but the decorated function has no `model` "
                "parameter to change; add one, or use on_exceed='raise' or 'warn'"
            )
            raise ConfigError(msg, field="budget")
    return budgets


def _bad(field: str, value: Any, allowed: str) -> None:
    msg = f"Budget({field}=) must be {allowed}, got {value!r}"
    raise ConfigError(msg, field=field)


def estimate_usd(
    call: Call, provider: str | None, model: str | None, endpoint: str | None
) -> Decimal | None:
    """What the call may cost at most: counted input plus ``max_tokens`` of output."""
    if model is None:
        return None
    price = find_price(provider, model, endpoint)
    if price is None:
        return None
    input_tokens = 0
    if call.input_value is not None:
        from aisys.metering.tokens import count_tokens  # loads tiktoken once

        try:
            input_tokens = count_tokens(call.input_value, model)
        except Exception:  # uncountable input: the output estimate still applies
            input_tokens = 0
    params = call.request_params
    output = params.get("max_tokens") or params.get("max_completion_tokens")
    output_tokens = output if isinstance(output, int) else DEFAULT_OUTPUT_TOKENS
    usd_in, usd_out = price.parts(input_tokens, output_tokens, 0, 0)
    return usd_in + usd_out


def budget_step(budgets: tuple[Budget, ...], runtime: Callable[[], Any]) -> Step:
    """The step checking ``budgets`` (in order) before the request leaves.

    ``runtime`` gives the `aisys.Runtime` whose clock and ``cache_dir`` apply.
    """

    def step(call: Call, request: Any, proceed: Proceed) -> Flow[Any]:
        current = runtime()
        for budget in budgets:
            request = yield from _check(budget, call, request, current)
        result = yield from proceed(request)
        return result

    return step


def _check(budget: Budget, call: Call, request: Any, runtime: Any) -> Flow[Any]:
    """Reserve this budget's share of the call, or refuse, warn or downgrade."""
    scope_value = budget.scope_value(call)
    if scope_value is None:
        return request
    provider, model, endpoint = request.priced_as()
    estimate = estimate_usd(call, provider, model, endpoint)
    if estimate is None:
        _warn_unmetered(budget, provider, model, endpoint)
        return request
    label, ttl, ends = budget.window(wall_time(runtime.clock))
    facts: dict[str, Any] = {
        "name": budget.name,
        "limit_usd": budget.usd,
        "exceeded": False,
    }
    call.budget = facts
    if budget.per == "call":
        if estimate <= budget.usd:
            return request
        return (yield from _exceeded(budget, call, request, estimate, Decimal(0), None))
    store = budget.opened.get(runtime.settings.cache_dir)
    key = f"{budget.name}|{scope_value}|{label}"
    ok = yield from _take(budget, call, store, key, estimate, ttl + 60)
    if ok is not False:  # reserved, or the store is down and calls are allowed
        return request
    spent = facts["spent_usd"]
    return (
        yield from _exceeded(
            budget, call, request, estimate, spent, ends, store, key, ttl + 60
        )
    )


def _take(
    budget: Budget,
    call: Call,
    store: Store,
    key: str,
    usd: Decimal,
    ttl: float,
    *,
    anyway: bool = False,
) -> Flow[bool | None]:
    """Reserve ``usd`` in the window (``anyway``: add it even past the limit).

    True when taken — its settlement is then left on the call as a finisher —, False
    when it does not fit, ``None`` when the store failed and ``on_store_error`` lets
    the call through (with ``"fail"`` that raises `BudgetStoreError`).
    """
    amount = int(usd * _NANO)
    facts = call.budget or {}
    try:
        if anyway:
            yield StoreOp(store, "add", key, amount, ttl)
            ok = True
        else:
            ok, total = yield StoreOp(
                store, "reserve", key, amount, budget.limit_nano, ttl
            )
            facts["spent_usd"] = Decimal(total) / _NANO
    except Exception as exc:
        _store_failed(budget, exc)
        return None
    if ok:
        call.finishers.append(_settle(store, key, amount, ttl, facts))
    return bool(ok)


def _exceeded(
    budget: Budget,
    call: Call,
    request: Any,
    estimate: Decimal,
    spent: Decimal,
    ends: float | None,
    store: Store | None = None,
    key: str = "",
    ttl: float = 0.0,
) -> Flow[Any]:
    """The estimate does not fit: raise, let it through with a warning, or downgrade."""
    facts = call.budget or {}
    if budget.on_exceed == "warn":
        facts["exceeded"] = True
        _log.warning(
            "aisys budget %r exceeded (spent $%s of $%s, this call ~$%s): sent anyway "
            "(on_exceed='warn')",
            budget.name,
            _usd(spent),
            _usd(budget.usd),
            _usd(estimate),
        )
        if store is not None:
            yield from _take(budget, call, store, key, estimate, ttl, anyway=True)
        return request
    if budget.on_exceed == "downgrade":
        cheaper = request.retarget(budget.downgrade_to)
        provider, model, endpoint = cheaper.priced_as()
        smaller = estimate_usd(call, provider, model, endpoint)
        if smaller is not None:
            if store is None:
                fits = smaller <= budget.usd
            else:
                taken = yield from _take(budget, call, store, key, smaller, ttl)
                if taken is None:
                    return request  # the store is down and calls are allowed
                fits = taken
            if fits:
                facts["downgraded_to"] = f"{provider}:{model}" if provider else model
                call.request_model = model
                return cheaper
    raise _error(
        budget,
        estimate,
        spent,
        datetime.fromtimestamp(ends, UTC) if ends else None,
    )


def _error(
    budget: Budget, estimate: Decimal, spent: Decimal, resets_at: datetime | None
) -> BudgetExceededError:
    window = "per call" if budget.per == "call" else f"this {budget.per}"
    resets = f"; resets at {resets_at:%Y-%m-%dT%H:%M:%SZ}" if resets_at else ""
    return BudgetExceededError(
        f"budget {budget.name!r} would be exceeded: ${_usd(spent)} of ${_usd(budget.usd)} "
        f"spent {window}, this call may cost ${_usd(estimate)}{resets}. Nothing was "
        "sent. Raise the limit, lower max_tokens, or set on_exceed='downgrade'",
        budget=budget.name,
        limit_usd=budget.usd,
        spent_usd=spent,
        estimate_usd=estimate,
        resets_at=resets_at,
    )


def _settle(
    store: Store, key: str, reserved: int, ttl: float, facts: dict[str, Any]
) -> Callable[[Call], Flow[None]]:
    """Replace the reservation with what the call really cost (0 if nothing billed)."""

    def settle(call: Call) -> Flow[None]:
        cost = call.cost
        if cost is None:
            actual = 0  # nothing was billed: the reservation is refunded
        elif cost.usd is None:
            return  # billed, price unknown: the estimate stays as the best figure
        else:
            actual = int(cost.usd * _NANO)
        total = yield StoreOp(store, "add", key, actual - reserved, ttl)
        facts["spent_usd"] = Decimal(total) / _NANO

    return settle


def _store_failed(budget: Budget, exc: Exception) -> None:
    """Warn and go on (``on_store_error="allow"``), or refuse the call."""
    if budget.on_store_error == "allow":
        _log.warning(
            "aisys budget %r: its store cannot be reached (%s); the call goes through "
            "unmetered (on_store_error='allow')",
            budget.name,
            type(exc).__name__,
        )
        return
    msg = (
        f"budget {budget.name!r}: its store ({budget.store or 'diskcache'}) cannot be "
        f"reached ({type(exc).__name__}: {exc}); the call was refused. Set "
        "on_store_error='allow' to let calls through unmetered while it is down"
    )
    raise BudgetStoreError(msg) from exc


_UNMETERED: set[tuple[str, str | None]] = set()


def reset_warnings() -> None:
    """Warn again about budgets already warned about (`aisys.testing.reset`)."""
    _UNMETERED.clear()


def _warn_unmetered(
    budget: Budget, provider: str | None, model: str | None, endpoint: str | None
) -> None:
    key = (budget.name, model)
    if key not in _UNMETERED:
        _UNMETERED.add(key)
        from aisys.metering.cost import unknown_price_reason

        _log.warning(
            "aisys budget %r cannot meter its calls, which are not counted: %s",
            budget.name,
            unknown_price_reason(provider, model, endpoint),
        )


def _usd(value: Decimal) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") if value else "0"
