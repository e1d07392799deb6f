"""Prices: genai-prices' bundled table, overridden by the user's file and registrations.

A model's price is resolved once (per provider, model, endpoint and UTC day, since the
table holds dated prices) and kept; pricing a call is then a few Decimal products.
genai-prices is imported on the first lookup, never at ``import aisys``, and its
background auto-update is never started unless the user asks for it
(`enable_price_updates`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from aisys.errors import ConfigError

__all__ = [
    "Price",
    "Rate",
    "check_price_as",
    "clear_overrides",
    "enable_price_updates",
    "find_price",
    "read_price_file",
    "register_price",
    "table_version",
    "use_price_file",
]

_log = logging.getLogger("aisys")
_MILLION = Decimal(1_000_000)
_DATED = re.compile(r"[-@](\d{4}-\d{2}-\d{2}|\d{8})$")


_FEMTO_PER_MILLION = 10**9  # USD per million tokens → femto-USD (1e-15) per token
_FEMTO = Decimal(10**15)


@dataclass(frozen=True, slots=True)
class Rate:
    """USD per million tokens, with optional tiers.

    Above a tier's ``start`` input tokens, all tokens of the call pay that tier's
    price (the "cliff" most providers use).
    """

    base: Decimal
    tiers: tuple[tuple[int, Decimal], ...] = ()

    def femto(self, input_tokens: int) -> int | None:
        """Femto-USD per token as an exact integer, or None past nine decimals.

        With None, `Price.parts` computes in Decimal instead.
        """
        exact = self.per_token(input_tokens) * _FEMTO_PER_MILLION
        return int(exact) if exact == exact.to_integral_value() else None

    def per_token(self, input_tokens: int) -> Decimal:
        """USD per million for a call with ``input_tokens`` input tokens."""
        for start, price in reversed(self.tiers):
            if input_tokens > start:
                return price
        return self.base


@dataclass(frozen=True, slots=True)
class Price:
    """One model's prices, in USD per million tokens, and where they came from."""

    input: Rate
    output: Rate
    cache_read: Rate | None = None
    cache_write: Rate | None = None
    table: str = "override"
    """``"genai-prices 0.2.3"`` for the database, ``"override"`` for the user's own."""
    _flat: tuple[int, int, int, int] | None = field(
        default=None, init=False, repr=False
    )

    def __post_init__(self) -> None:
        rates = (
            self.input,
            self.output,
            self.cache_read or self.input,
            self.cache_write or self.input,
        )
        if any(rate.tiers for rate in rates):
            return
        femto = [rate.femto(0) for rate in rates]
        if all(value is not None for value in femto):
            object.__setattr__(self, "_flat", tuple(femto))

    def femto_parts(
        self, input_tokens: int, output_tokens: int, cache_read: int, cache_write: int
    ) -> tuple[int, int] | None:
        """(input, output) in exact integer femto-USD.

        ``None`` for tiered prices, or prices past nine decimals: use `parts`.
        """
        flat = self._flat
        if flat is None:
            return None
        read = min(cache_read, input_tokens)
        write = min(cache_write, input_tokens - read)
        fresh = input_tokens - read - write
        return (
            fresh * flat[0] + read * flat[2] + write * flat[3],
            output_tokens * flat[1],
        )

    def parts(
        self, input_tokens: int, output_tokens: int, cache_read: int, cache_write: int
    ) -> tuple[Decimal, Decimal]:
        """(input USD, output USD): cached tokens at their own price, each token once.

        Exact: integer femto-USD arithmetic (one Decimal conversion at the end) when
        the prices allow it, which they do for every price with up to nine decimals.
        """
        femto = self.femto_parts(input_tokens, output_tokens, cache_read, cache_write)
        if femto is not None:
            return Decimal(femto[0]) / _FEMTO, Decimal(femto[1]) / _FEMTO
        read = min(cache_read, input_tokens)
        write = min(cache_write, input_tokens - read)
        fresh = input_tokens - read - write
        rate_in = self.input.per_token(input_tokens)
        usd_in = fresh * rate_in
        usd_in += read * (self.cache_read or self.input).per_token(input_tokens)
        usd_in += write * (self.cache_write or self.input).per_token(input_tokens)
        usd_out = output_tokens * self.output.per_token(input_tokens)
        return usd_in / _MILLION, usd_out / _MILLION


# -- overrides ------------------------------------------------------------------------

_REGISTERED: dict[str, Price] = {}
"""Prices from `register_price`: they win over the file and the database."""
_FILE: tuple[Path | None, dict[str, Price]] = (None, {})
"""The prices file in force (the ``prices_path`` setting) and its prices."""
_LOCK = threading.Lock()
_RESOLVED: dict[tuple[str | None, str, str | None, int], Price | None] = {}


def _decimal(value: Any, what: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        number = Decimal(-1)
    if isinstance(value, bool) or not number.is_finite() or number < 0:
        msg = f"{what} must be a non-negative number of USD per million tokens, got {value!r}"
        raise ConfigError(msg, field="prices")
    return number


def _price(
    model: str,
    input: Any,
    output: Any,
    cache_read: Any = None,
    cache_write: Any = None,
) -> Price:
    """A checked override: every amount a non-negative number of USD per million."""
    return Price(
        input=Rate(_decimal(input, f"{model} input")),
        output=Rate(_decimal(output, f"{model} output")),
        cache_read=None
        if cache_read is None
        else Rate(_decimal(cache_read, f"{model} cache_read")),
        cache_write=None
        if cache_write is None
        else Rate(_decimal(cache_write, f"{model} cache_write")),
    )


def register_price(
    model: str,
    *,
    input: float | Decimal | str,
    output: float | Decimal | str,
    cache_read: float | Decimal | str | None = None,
    cache_write: float | Decimal | str | None = None,
) -> None:
    """Price ``model`` (``"provider:model"`` or ``"model"``) in USD per million tokens.

    An override always wins over the database, and matches the model's dated snapshots
    too (``gpt-4o-mini`` prices ``gpt-4o-mini-2024-07-18``). A ``"provider:model"``
    override is also what the bare ``"model"`` finds when the database places that
    model with that provider. Cached tokens without a cache price are charged the
    input price.

    Added in 0.1.
    """
    if not isinstance(model, str) or not model.strip():
        msg = f"register_price(model=) takes 'provider:model' or 'model', got {model!r}"
        raise ConfigError(msg, field="model")
    price = _price(model, input, output, cache_read, cache_write)
    with _LOCK:
        _REGISTERED[model.lower()] = price
        _RESOLVED.clear()


def clear_overrides() -> None:
    """Forget every registered price and the price file (tests)."""
    global _FILE
    with _LOCK:
        _REGISTERED.clear()
        _FILE = (None, {})
        _RESOLVED.clear()


def read_price_file(path: Path) -> dict[str, Price]:
    """The prices of a JSON, TOML or YAML file, every entry checked.

    The file maps ``"provider:model"`` (or ``"model"``) to ``{input, output,
    cache_read, cache_write}`` in USD per million tokens. Raises `aisys.ConfigError`
    naming the file and the entry at fault; registers nothing.
    """
    where = f"prices_path {str(path)!r}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"{where} cannot be read: {exc}"
        raise ConfigError(msg, field="prices_path") from exc
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            msg = f"{where} must end in .json, .toml, .yaml or .yml"
            raise ConfigError(msg, field="prices_path")
    except ConfigError:
        raise
    except Exception as exc:
        msg = f"{where} is not valid {suffix[1:].upper()}: {exc}"
        raise ConfigError(msg, field="prices_path") from exc
    if not isinstance(data, Mapping):
        msg = f"{where} must map model names to prices"
        raise ConfigError(msg, field="prices_path")
    prices: dict[str, Price] = {}
    for model, fields in data.items():
        if not isinstance(fields, Mapping) or not {"input", "output"} <= set(fields):
            msg = (
                f"{where}: {model!r} needs at least 'input' and 'output' (USD per "
                "million tokens)"
            )
            raise ConfigError(msg, field="prices_path")
        unknown = set(fields) - {"input", "output", "cache_read", "cache_write"}
        if unknown:
            msg = (
                f"{where}: {model!r} has unknown fields {sorted(unknown)}; known: "
                "input, output, cache_read, cache_write"
            )
            raise ConfigError(msg, field="prices_path")
        try:
            prices[str(model).lower()] = _price(str(model), **fields)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}", field="prices_path") from None
    return prices


def use_price_file(path: Path | None) -> None:
    """Put the prices of ``path`` in force in place of the previous file's (``None``: none).

    The file is read and checked whole first: a bad file raises `aisys.ConfigError`
    (naming the file and the entry) and the prices in force stay as they were. The
    same path again is not read again.
    """
    global _FILE
    if path == _FILE[0]:
        return
    prices = read_price_file(path) if path is not None else {}
    with _LOCK:
        _FILE = (path, prices)
        _RESOLVED.clear()


def _override(provider: str | None, model: str) -> Price | None:
    registered, from_file = _REGISTERED, _FILE[1]
    if not registered and not from_file:
        return None
    name = model.lower()
    undated = _DATED.sub("", name)
    candidates = [name, undated] if undated != name else [name]
    for table in (registered, from_file):
        for candidate in candidates:
            if provider is not None:
                price = table.get(f"{provider.lower()}:{candidate}")
                if price is not None:
                    return price
            price = table.get(candidate)
            if price is not None:
                return price
    return None


# -- the database ---------------------------------------------------------------------

_AUTO_UPDATE: Any = None


def table_version() -> str:
    """``"genai-prices <version>"``: the price table aisys reads."""
    from genai_prices import __version__

    return f"genai-prices {__version__}"


def enable_price_updates() -> None:
    """Start genai-prices' background price updates (network!); off unless asked."""
    global _AUTO_UPDATE
    if _AUTO_UPDATE is None:
        from genai_prices import UpdatePrices

        _AUTO_UPDATE = UpdatePrices()
        _AUTO_UPDATE.start()
        with _LOCK:
            _RESOLVED.clear()


def _rate(value: Any) -> Rate | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return Rate(value)
    base = getattr(value, "base", None)
    if isinstance(base, Decimal):
        tiers = tuple((int(t.start), Decimal(t.price)) for t in value.tiers)
        return Rate(base, tiers)
    return None


def _from_database(
    provider: str | None, model: str, endpoint: str | None
) -> Price | None:
    from datetime import UTC, datetime

    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    try:
        if endpoint is not None:
            found = snapshot.find_provider_model(model, None, None, endpoint)
        else:
            found = snapshot.find_provider_model(model, None, provider, None)
    except LookupError:
        return None
    prices = found[1].get_prices(datetime.now(UTC))
    rate_in = _rate(getattr(prices, "input_mtok", None))
    rate_out = _rate(getattr(prices, "output_mtok", None))
    if rate_in is None:
        return None
    return Price(
        input=rate_in,
        output=rate_out or Rate(Decimal(0)),
        cache_read=_rate(getattr(prices, "cache_read_mtok", None)),
        cache_write=_rate(getattr(prices, "cache_write_mtok", None)),
        table=table_version(),
    )


def _owner(model: str) -> str | None:
    """The provider the database places a bare model name with, when overrides exist."""
    if not _REGISTERED and not _FILE[1]:
        return None
    from genai_prices import data_snapshot

    try:
        found = data_snapshot.get_snapshot().find_provider_model(
            model, None, None, None
        )
    except LookupError:
        return None
    return str(found[0].id)


# Endpoints of the built-in adapters: the provider is known, the URL adds nothing.
_DEFAULT_ENDPOINTS = frozenset(
    {"https://api.openai.com/v1", "https://api.anthropic.com"}
)


def find_price(
    provider: str | None, model: str, endpoint: str | None = None
) -> Price | None:
    """The price of ``model``, or ``None`` when neither override nor database has one.

    With an ``endpoint`` (a base URL) the provider is recognised from it, so an
    OpenAI-compatible endpoint of a known provider gets that provider's prices and a
    local server gets none. Resolved once per key and UTC day.
    """
    if endpoint in _DEFAULT_ENDPOINTS:
        endpoint = None
    key = (provider, model, endpoint, int(time.time() // 86400))
    try:
        return _RESOLVED[key]
    except KeyError:
        pass
    price = _override(provider, model)
    try:
        if price is None and provider is None and endpoint is None:
            owner = _owner(model)  # a bare name: the provider's own override wins
            if owner is not None:
                price = _override(owner, model)
        if price is None and provider not in _UNPRICED_PROVIDERS:
            price = _from_database(provider, model, endpoint)
    except Exception:  # a table that cannot be read prices nothing: unknown
        _log.warning(
            "aisys could not read genai-prices' table for %s; the price is unknown",
            model,
            exc_info=True,
        )
    with _LOCK:
        if len(_RESOLVED) > 4096:  # dates roll over; keep the table bounded
            _RESOLVED.clear()
        _RESOLVED[key] = price
    return price


def check_price_as(price_as: Any) -> str | None:
    """``price_as=`` checked: ``None``, or a provider genai-prices has a table for."""
    if price_as is None:
        return None
    ids: list[str] = []
    if isinstance(price_as, str):
        from genai_prices import data_snapshot

        ids = sorted(p.id for p in data_snapshot.get_snapshot().providers)
        if price_as.lower() in ids:
            return price_as.lower()
    shown = ", ".join(ids[:12]) + (", …" if len(ids) > 12 else "")
    msg = (
        "price_as= takes the name of a provider whose price table applies (e.g. "
        f"'openai', 'anthropic'; genai-prices knows {shown or 'none'}), got {price_as!r}"
    )
    raise ConfigError(msg, field="price_as")


# Providers whose models are never in a public price table.
_UNPRICED_PROVIDERS = frozenset({"scripted", "function"})
