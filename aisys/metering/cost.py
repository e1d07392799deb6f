"""Cost: usage times price, honest about what is not known.

An unknown price is ``usd=None`` and ``status="unknown"`` — never $0 — with one
`aisys.AisysWarning` per model per process. Usage aisys counted itself (the provider
reported none) is priced as ``status="estimated"``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aisys._warn import warn_user
from aisys.errors import ConfigError
from aisys.metering.prices import (
    _DATED,
    _FEMTO,
    Price,
    enable_price_updates,
    find_price,
    use_price_file,
)
from aisys.names import split_model

if TYPE_CHECKING:
    from aisys.call import Call
    from aisys.types import Cost

__all__ = [
    "CallCost",
    "estimate_cost",
    "meter",
    "price_usage",
    "priced_where",
    "public_cost",
    "reset_warnings",
    "unknown_price_reason",
    "usage_tokens",
    "use_settings",
]

_log = logging.getLogger("aisys")
_WARNED: set[tuple[str | None, str, str | None]] = set()
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


def public_cost(cost: CallCost | None) -> Cost:
    """``cost`` as the `aisys.Cost` a response carries; unknown if it cannot be made."""
    if cost is not None:
        try:
            return cost.to_cost()
        except Exception:  # metering never fails an answered call
            _log.warning("aisys could not report a call's cost", exc_info=True)
    import aisys.types as types

    return types.Cost()


_NO_MODEL = "(no model)"


def priced_where(
    provider: str | None, endpoint: str | None, price_as: str | None
) -> tuple[str | None, str | None]:
    """The provider and endpoint a price is looked up by: ``price_as`` wins over both."""
    return (price_as, None) if price_as else (provider, endpoint)


def unknown_price_reason(
    provider: str | None, model: str | None, endpoint: str | None = None
) -> str:
    """Why a call has no price, and the fix, in one sentence for a warning."""
    name = f"{provider}:{_DATED.sub('', model)}" if provider and model else str(model)
    if model is None or model == _NO_MODEL:
        return (
            f"a call{f' to {provider}' if provider else ''} names no model, so its "
            "cost is reported as unknown (never $0). Pass model= to @traced_llm, or "
            "return the provider's response (it names its model)"
        )
    if endpoint is not None:
        return (
            f"no price known for {name} at {endpoint}: genai-prices does not know that "
            "endpoint (a local server or a gateway), so its cost is reported as "
            "unknown (never $0). If it serves a provider's models at that provider's "
            f"prices, pass price_as={provider or 'openai'!r} to aisys.LLM (or "
            "@traced_llm); otherwise add a price with "
            f"aisys.register_price({name!r}, input=..., output=...) or the "
            "prices_path setting"
        )
    return (
        f"no price known for {name}: its cost is reported as unknown (never $0). "
        f"Add one with aisys.register_price({name!r}, input=..., output=...) or "
        "the prices_path setting (USD per million tokens)"
    )


def _warn_unknown(
    provider: str | None, model: str, endpoint: str | None = None
) -> None:
    key = (provider, model, endpoint)
    if key in _WARNED:
        return
    with _WARNED_LOCK:
        if key in _WARNED:
            return
        _WARNED.add(key)
    warn_user(unknown_price_reason(provider, model, endpoint))


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


_USAGE_KEYS = frozenset(
    (*_USAGE_FIELDS, "reasoning_output_tokens", "total_tokens", "estimated")
)


def usage_tokens(usage: Any) -> tuple[dict[str, int], bool]:
    """The token counts of ``usage`` (an `aisys.Usage` or a dict), and if estimated."""
    if isinstance(usage, Mapping):
        fields = {k: int(usage[k]) for k in _USAGE_FIELDS if usage.get(k) is not None}
        return fields, bool(usage.get("estimated", False))
    fields = {k: int(getattr(usage, k, 0) or 0) for k in _USAGE_FIELDS}
    return fields, bool(getattr(usage, "estimated", False))


def estimate_cost(model: str, usage: Any, *, provider: str | None = None) -> Cost:
    """What ``usage`` (an `aisys.Usage` or a dict of its fields) costs on ``model``.

    At the prices in force (`aisys.estimate_cost` first puts the settings' prices file
    in force). ``model`` is ``"gpt-4o-mini"`` or ``"openai:gpt-4o-mini"``; dated snapshots match
    their model. Cached input is priced at the cache-read price and cache writes at the
    cache-write price, each token once; reasoning tokens are output tokens, once.

    """
    from aisys.types import Cost, Usage

    if not isinstance(model, str) or not model:
        msg = f"estimate_cost(model=) takes 'model' or 'provider:model', got {model!r}"
        raise ConfigError(msg, field="model")
    if isinstance(usage, Mapping):
        unknown = sorted(str(key) for key in usage if key not in _USAGE_KEYS)
        if unknown:
            msg = (
                f"estimate_cost(usage=) got unknown key(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(_USAGE_KEYS - {'total_tokens'}))}"
            )
            raise ConfigError(msg, field="usage")
        try:
            Usage.model_validate(
                {k: v for k, v in usage.items() if k != "total_tokens"}
            )
        except ValueError as exc:
            msg = f"estimate_cost(usage=) takes whole token counts >= 0: {exc}"
            raise ConfigError(msg, field="usage") from None
    elif not isinstance(usage, Usage):
        msg = (
            "estimate_cost(usage=) takes an aisys.Usage or a dict of its fields, got "
            f"{type(usage).__name__}"
        )
        raise ConfigError(msg, field="usage")
    provider, name = split_model(model, provider)
    price = find_price(provider, name)
    tokens, estimated = usage_tokens(usage)
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


def use_settings(settings: Any) -> None:
    """Put the price settings in force: the prices file, and opted-in updates.

    Raises `aisys.ConfigError` for a bad file, leaving the prices in force as they were.
    """
    use_price_file(settings.prices_path)
    if settings.price_updates:
        enable_price_updates()


def meter(call: Call) -> None:
    """Price the call (see `_meter`); a cache hit spends nothing and saves its price.

    Never raises: a price that cannot be read makes the call's cost ``unknown``, with
    one warning. Metering must not fail a call that succeeded.
    """
    try:
        _meter(call)
    except Exception as exc:
        call.cost = _UNKNOWN if call.usage else None
        key = ("(failed)", type(exc).__name__, None)
        if key not in _WARNED:
            _WARNED.add(key)
            warn_user(
                f"aisys could not price a call ({type(exc).__name__}: {exc}); its "
                "cost is reported as unknown"
            )
        return
    if call.cache_hit:
        cost = call.cost
        if cost is None or cost.usd is None:  # unpriced: the saving is unknown too
            call.cache_saved_usd = None
            return
        call.cache_saved_usd = cost.usd_float
        call.cost = CallCost(0, 0, "priced", cost.price_table, femto=True)


def _billed_failures(call: Call) -> bool:
    """Whether a failed attempt or a refused answer was billed too."""
    if call.billed:
        return True
    for attempt in call.attempts:
        if attempt.usage is not None and attempt.outcome == "error":
            return True
    return False


def _add_usage(call: Call, tokens: Mapping[str, int]) -> None:
    merged = dict(call.usage or {})
    for key, value in tokens.items():
        merged[key] = merged.get(key, 0) + value
    call.usage = merged


def _meter(call: Call) -> None:
    """Price the call: its answer, plus what failed attempts were billed.

    The answer is what was read into ``call.usage`` — a whole answer, or what a stream
    delivered before it ended or broke — whatever the call's outcome: delivered text
    was billed. Sets ``call.cost`` (a `CallCost`; ``None`` when nothing was billed)
    and each billed attempt's ``cost``, and adds billed attempts' tokens to
    ``call.usage``, so the call's usage and cost are everything the provider charged.
    """
    if not _billed_failures(call):  # the common case: one answer to price
        usage = call.usage
        if not usage or call.kind != "llm":
            call.cost = None  # nothing read was billed
            return
        model = call.response_model or call.request_model
        provider, endpoint = priced_where(call.provider, call.endpoint, call.price_as)
        price = find_price(provider, model, endpoint) if model else None
        if price is None:
            _warn_unknown(provider, model or _NO_MODEL, endpoint)
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
    if call.usage and call.kind == "llm":
        model = call.response_model or call.request_model
        provider, endpoint = priced_where(call.provider, call.endpoint, call.price_as)
        parts.append((provider, model, endpoint, dict(call.usage), None))
    for attempt in call.attempts:
        if attempt.outcome == "error" and attempt.usage is not None:
            tokens, _ = usage_tokens(attempt.usage)
            provider, model = split_model(attempt.target)
            provider, endpoint = priced_where(
                provider, attempt.endpoint, attempt.price_as
            )
            parts.append((provider, model, endpoint, tokens, attempt))
            _add_usage(call, tokens)
    for provider, model, endpoint, price_as, tokens in call.billed:
        provider, endpoint = priced_where(provider, endpoint, price_as)
        parts.append((provider, model, endpoint, tokens, None))
        _add_usage(call, tokens)
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
            _warn_unknown(provider, model or _NO_MODEL, endpoint)
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
