"""Cost: usage times price, honest about what is not known.

An unknown price is ``usd=None`` and ``status="unknown"`` — never $0 — with one
`aisys.AisysWarning` per model per process. Usage aisys counted itself (the provider
reported none) is priced as ``status="estimated"``.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aisys.errors import AisysWarning
from aisys.metering.prices import (
    _FEMTO,
    Price,
    enable_price_updates,
    find_price,
    load_price_file,
)

if TYPE_CHECKING:
    from aisys.call import Call
    from aisys.types import Cost

__all__ = [
    "CallCost",
    "estimate_cost",
    "meter",
    "price_usage",
    "reset_warnings",
    "split_model",
]

_log = logging.getLogger("aisys")
_WARNED: set[tuple[str | None, str]] = set()
_WARNED_LOCK = threading.Lock()
_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
)


class CallCost:
    """A call's cost as metering found it: `aisys.Cost`'s fields, without pydantic.

    Made on every metered call, so it stays cheap: amounts are kept as exact integer
    femto-USD (1e-15) when the price allows, and turned into `Decimal` only when read;
    `to_cost` gives the public model when a response needs one.
    """

    __slots__ = ("_femto", "_in", "_out", "price_table", "status")

    def __init__(
        self,
        usd_in: Decimal | int | None = None,
        usd_out: Decimal | int | None = None,
        status: str = "unknown",
        price_table: str | None = None,
        *,
        femto: bool = False,
    ) -> None:
        self._in = usd_in
        self._out = usd_out
        self._femto = femto
        self.status = status
        self.price_table = price_table

    def _usd(self, value: Decimal | int | None) -> Decimal | None:
        if value is None:
            return None
        return Decimal(value) / _FEMTO if self._femto else Decimal(value)

    @property
    def input_usd(self) -> Decimal | None:
        """USD for input tokens (cache reads and writes included)."""
        return self._usd(self._in)

    @property
    def output_usd(self) -> Decimal | None:
        """USD for output tokens (reasoning included)."""
        return self._usd(self._out)

    @property
    def usd(self) -> Decimal | None:
        """USD in all; ``None`` when the price is unknown."""
        if self._in is None or self._out is None:
            return None
        return self._usd(self._in + self._out)

    @property
    def usd_float(self) -> float | None:
        """`usd` as a float, for span attributes and metrics."""
        if self._in is None or self._out is None:
            return None
        total = self._in + self._out
        return int(total) / 1e15 if self._femto else float(total)

    def to_cost(self) -> Cost:
        """The public, validated `aisys.Cost` (one shared object for $0 hits)."""
        import aisys.types as types  # a plain import: `from` costs 0.5 µs a call here

        if self._in == 0 and self._out == 0:
            zero = _ZERO_COSTS.get(self.price_table)
            if zero is None:
                zero = _ZERO_COSTS[self.price_table] = types.Cost(
                    usd=Decimal(0),
                    status="priced",
                    price_table=self.price_table,
                    input_usd=Decimal(0),
                    output_usd=Decimal(0),
                )
            return zero
        return types.Cost(
            usd=self.usd,
            status=self.status,  # type: ignore[arg-type]
            price_table=self.price_table,
            input_usd=self.input_usd,
            output_usd=self.output_usd,
        )


_UNKNOWN = CallCost()
_ZERO_COSTS: dict[str | None, Cost] = {}


def split_model(model: str, provider: str | None = None) -> tuple[str | None, str]:
    """``"openai:gpt-4o"`` → (``"openai"``, ``"gpt-4o"``); a bare name keeps ``provider``."""
    head, sep, tail = model.partition(":")
    if sep and head and tail and provider is None and "/" not in head:
        return head, tail
    return provider, model


_NO_MODEL = "(no model)"


def _warn_unknown(provider: str | None, model: str) -> None:
    key = (provider, model)
    if key in _WARNED:
        return
    with _WARNED_LOCK:
        if key in _WARNED:
            return
        _WARNED.add(key)
    name = f"{provider}:{model}" if provider else model
    if model == _NO_MODEL:
        message = (
            f"a call{f' to {provider}' if provider else ''} names no model, so its "
            "cost is reported as unknown (never $0). Pass model= to @traced_llm, or "
            "return the provider's response (it names its model)"
        )
    else:
        message = (
            f"no price known for {name}: its cost is reported as unknown (never $0). "
            f"Add one with aisys.register_price({name!r}, input=..., output=...) or "
            "the prices_path setting (USD per million tokens)"
        )
    try:
        warnings.warn(message, AisysWarning, stacklevel=4)
    except AisysWarning:  # warnings turned into errors must not fail the call
        _log.warning(message)


def reset_warnings() -> None:
    """Warn again about models already warned about (tests)."""
    with _WARNED_LOCK:
        _WARNED.clear()


def price_usage(
    price: Price | None, usage: Mapping[str, int]
) -> tuple[Decimal, Decimal] | None:
    """(input USD, output USD) of ``usage`` at ``price``; ``None`` without a price."""
    if price is None:
        return None
    return price.parts(
        usage.get("input_tokens", 0),
        usage.get("output_tokens", 0),
        usage.get("cache_read_input_tokens", 0),
        usage.get("cache_write_input_tokens", 0),
    )


def _usage_dict(usage: Any) -> tuple[dict[str, int], bool]:
    if isinstance(usage, Mapping):
        fields = {k: int(usage[k]) for k in _USAGE_FIELDS if usage.get(k) is not None}
        return fields, bool(usage.get("estimated", False))
    fields = {k: int(getattr(usage, k, 0) or 0) for k in _USAGE_FIELDS}
    return fields, bool(getattr(usage, "estimated", False))


def estimate_cost(model: str, usage: Any, *, provider: str | None = None) -> Cost:
    """What ``usage`` (an `aisys.Usage` or a dict of its fields) costs on ``model``.

    ``model`` is ``"gpt-4o-mini"`` or ``"openai:gpt-4o-mini"``; dated snapshots match
    their model. Cached input is priced at the cache-read price and cache writes at the
    cache-write price, each token once; reasoning tokens are output tokens, once.

    Added in 0.1.
    """
    from aisys.types import Cost

    provider, name = split_model(model, provider)
    _load_price_file()
    price = find_price(provider, name)
    tokens, estimated = _usage_dict(usage)
    parts = price_usage(price, tokens)
    if parts is None or price is None:
        _warn_unknown(provider, name)
        return Cost()
    return Cost(
        usd=parts[0] + parts[1],
        status="estimated" if estimated else "priced",
        price_table=price.table,
        input_usd=parts[0],
        output_usd=parts[1],
    )


def _load_price_file() -> None:
    import aisys

    use_settings(aisys._DEFAULT.settings)


def use_settings(settings: Any) -> None:
    """Apply the price settings: the override file, and opted-in updates."""
    if settings.prices_path is not None:
        load_price_file(settings.prices_path)
    if settings.price_updates:
        enable_price_updates()


def meter(call: Call, settings: Any = None) -> None:
    """Price the call (see `_meter`); a cache hit spends nothing and saves its price."""
    _meter(call, settings)
    if call.cache_hit:
        cost = call.cost
        call.cache_saved_usd = cost.usd_float if cost is not None else None
        table = cost.price_table if cost is not None else None
        call.cost = CallCost(0, 0, "priced", table, femto=True)


def _billed_failures(attempts: list[Any]) -> bool:
    """Whether a failed attempt reported usage (its tokens were billed too)."""
    for attempt in attempts:
        if attempt.usage is not None and attempt.outcome == "error":
            return True
    return False


def _meter(call: Call, settings: Any = None) -> None:
    """Price the call: its answer, plus what failed attempts were billed.

    Sets ``call.cost`` (a `CallCost`; ``None`` when nothing was billed) and each billed
    attempt's ``cost``, and adds billed attempts' tokens to ``call.usage``, so the
    call's usage and cost are everything the provider charged for.
    """
    if settings is not None and (settings.prices_path or settings.price_updates):
        use_settings(settings)
    if not _billed_failures(call.attempts):  # the common case: one answer to price
        usage = call.usage
        if not usage or call.kind != "llm" or call.error is not None:
            call.cost = None
            return
        model = call.response_model or call.request_model
        price = find_price(call.provider, model, call.endpoint) if model else None
        if price is None:
            _warn_unknown(call.provider, model or _NO_MODEL)
            call.cost = _UNKNOWN
            return
        status = "estimated" if call.estimated else "priced"
        femto = price.femto_parts(
            usage.get("input_tokens", 0),
            usage.get("output_tokens", 0),
            usage.get("cache_read_input_tokens", 0),
            usage.get("cache_write_input_tokens", 0),
        )
        if femto is not None:
            call.cost = CallCost(*femto, status, price.table, femto=True)
        else:
            usd_in, usd_out = price_usage(price, usage) or (Decimal(0), Decimal(0))
            call.cost = CallCost(usd_in, usd_out, status, price.table)
        return
    parts: list[tuple[str | None, str | None, str | None, dict[str, int], Any]] = []
    if call.usage and call.kind == "llm" and call.error is None:
        model = call.response_model or call.request_model
        parts.append((call.provider, model, call.endpoint, dict(call.usage), None))
    for attempt in call.attempts:
        if attempt.outcome == "error" and attempt.usage is not None:
            tokens, _ = _usage_dict(attempt.usage)
            provider, model = split_model(attempt.target)
            parts.append((provider, model, attempt.endpoint, tokens, attempt))
            merged = dict(call.usage or {})
            for key, value in tokens.items():
                merged[key] = merged.get(key, 0) + value
            call.usage = merged
    if not parts:
        call.cost = None
        return
    usd_in, usd_out = Decimal(0), Decimal(0)
    tables: set[str] = set()
    known = True
    for provider, model, endpoint, tokens, attempt in parts:
        price = find_price(provider, model, endpoint) if model else None
        priced = price_usage(price, tokens)
        if priced is None or price is None:
            known = False
            _warn_unknown(provider, model or _NO_MODEL)
            continue
        usd_in += priced[0]
        usd_out += priced[1]
        tables.add(price.table)
        if attempt is not None:
            attempt.cost = priced[0] + priced[1]
    if not known:
        call.cost = _UNKNOWN
        return
    call.cost = CallCost(
        usd_in,
        usd_out,
        "estimated" if call.estimated else "priced",
        tables.pop() if len(tables) == 1 else ", ".join(sorted(tables)),
    )
