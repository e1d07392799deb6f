"""Cache: an exact-match response cache step, with single flight.

The key is a SHA-256 of the canonical request (provider, model, endpoint, messages,
every generation parameter, tools, response format, ``extra``, a key version; for a
decorated function its qualified name and bound arguments), so two requests that could
get different answers never share an entry. Entries are JSON — never pickle — and hold
only successful, complete answers. A broken backend never fails a call: the call goes to
the provider, with one warning and a counted error.

Concurrent identical misses in one process (threads or asyncio tasks) make one request:
the first caller leads, the others wait for its answer (at most the call's deadline, or
its timeout) and share it. If the leader fails, each waiting caller makes its own call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from aisys import _checks
from aisys.errors import ConfigError
from aisys.pipeline._clock import wall_time
from aisys.pipeline._flow import Flow
from aisys.pipeline.keys import canonical
from aisys.stores import StoreOp, StoreRef, check_store

if TYPE_CHECKING:
    from aisys.call import Call
    from aisys.pipeline.protocol import Proceed, Step
    from aisys.stores import Store

__all__ = [
    "KEY_VERSION",
    "Cache",
    "Join",
    "cache_step",
    "check_cache_for_function",
    "canonical",
    "decode",
    "encode",
    "parse",
    "reset_warnings",
]

_log = logging.getLogger("aisys")
Mode = Literal["read_write", "read_only", "write_only", "refresh"]
_MODES = ("read_write", "read_only", "write_only", "refresh")
KEY_VERSION = 2
"""Part of every key: bumped when what a key covers changes, so old entries miss."""
_ENTRY_VERSION = 1
# Classes a decorated function's result may be restored to from a (shared) store:
# aisys's own and the official SDKs' response models. Anything else stays plain JSON.
_RESTORABLE = ("aisys.types.", "openai.types.", "anthropic.types.")


class Cache:
    """An exact-match cache for answers: memory, diskcache (default) or Redis.

    Args:
        store: ``None`` (diskcache in the ``cache_dir`` setting: shared by the
            processes of one machine), ``"memory"`` (a bounded LRU in this process) or
            ``"redis://host:port/db"`` (a fleet; the ``redis`` extra).
        ttl: Seconds an entry lives; ``None``: until evicted.
        namespace: Separates caches sharing a store (and lets you drop one).
        mode: ``read_write``; ``read_only`` (never stores); ``write_only`` (never
            answers, stores fresh answers: warming); ``refresh`` (always asks the
            provider and replaces the entry).
        store_truncated: Also store answers cut by ``max_tokens``
            (``finish_reason="length"``); off by default.

    Added in 0.1.
    """

    __slots__ = ("mode", "namespace", "opened", "store", "store_truncated", "ttl")

    def __init__(
        self,
        store: str | None = None,
        *,
        ttl: float | None = None,
        namespace: str = "default",
        mode: Mode = "read_write",
        store_truncated: bool = False,
    ) -> None:
        check_store("Cache", store)
        if ttl is not None:
            ttl = _checks.seconds("Cache", "ttl", ttl)
        _checks.flag("Cache", "store_truncated", store_truncated)
        if mode not in _MODES:
            msg = f"Cache(mode=) must be one of {', '.join(_MODES)}, got {mode!r}"
            raise ConfigError(msg, field="mode")
        if not namespace or not isinstance(namespace, str):
            msg = f"Cache(namespace=) must be a non-empty string, got {namespace!r}"
            raise ConfigError(msg, field="namespace")
        self.store = store
        self.ttl = ttl
        self.namespace = namespace
        self.mode: Mode = mode
        self.store_truncated = store_truncated
        self.opened = StoreRef(store, "cache")
        """Where the entries live, opened on first use (as `aisys.Budget` does)."""

    def __repr__(self) -> str:
        return (
            f"Cache({self.store!r}, ttl={self.ttl}, namespace={self.namespace!r}, "
            f"mode={self.mode!r})"
        )

    def key(self, material: dict[str, Any]) -> str:
        """``namespace:sha256`` of the canonical request and the key version."""
        text = canonical({**material, "key_version": KEY_VERSION})
        digest = hashlib.sha256(text.encode()).hexdigest()
        return f"{self.namespace}:{digest}"


# -- entries ------------------------------------------------------------------------


def encode(value: Any, *, expires_at: float | None, chunks: list[str] | None) -> bytes:
    """A stored entry: JSON bytes (`ValueError` when the value cannot be stored)."""
    from aisys.types import ChatResponse, EmbeddingResponse

    entry: dict[str, Any] = {"v": _ENTRY_VERSION, "expires_at": expires_at}
    if isinstance(value, ChatResponse):
        entry["kind"] = "chat"
        entry["data"] = value.model_dump(
            mode="json", exclude={"raw", "cost", "cached", "attempts", "fallback_index"}
        )
        if chunks:
            entry["chunks"] = chunks
    elif isinstance(value, EmbeddingResponse):
        entry["kind"] = "embeddings"
        entry["data"] = value.model_dump(mode="json", exclude={"raw", "cost"})
    elif hasattr(value, "model_dump"):
        cls = type(value)
        entry["kind"] = "model"
        entry["class"] = f"{cls.__module__}:{cls.__qualname__}"
        entry["data"] = value.model_dump(mode="json")
    else:
        entry["kind"] = "json"
        entry["data"] = value
    try:
        return json.dumps(entry, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        msg = f"a {type(value).__name__} cannot be stored as JSON: {exc}"
        raise ValueError(msg) from exc


def decode(blob: bytes, now: float) -> tuple[Any, list[str] | None] | None:
    """The value of an entry, and its stream chunks; ``None`` if expired.

    Raises ValueError for an entry that is not one aisys wrote (corrupt or foreign).
    """
    value, chunks, expires_at = parse(blob)
    if expires_at is not None and now >= expires_at:
        return None
    return value, chunks


def parse(blob: bytes) -> tuple[Any, list[str] | None, float | None]:
    """An entry's value, stream chunks and expiry (epoch seconds, or ``None``)."""
    entry = json.loads(blob)
    if not isinstance(entry, dict) or entry.get("v") != _ENTRY_VERSION:
        msg = "not an aisys cache entry"
        raise ValueError(msg)
    raw_expiry = entry.get("expires_at")
    expires_at = None if raw_expiry is None else float(raw_expiry)
    kind, data = entry.get("kind"), entry.get("data")
    if kind == "chat":
        from aisys.types import ChatResponse

        chunks = entry.get("chunks")
        texts = chunks if isinstance(chunks, list) else None
        return ChatResponse.model_validate(data), texts, expires_at
    if kind == "embeddings":
        from aisys.types import EmbeddingResponse

        return EmbeddingResponse.model_validate(data), None, expires_at
    if kind == "model":
        return _restore(str(entry.get("class")), data), None, expires_at
    if kind == "json":
        return data, None, expires_at
    msg = f"unknown cache entry kind {kind!r}"
    raise ValueError(msg)


def _restore(path: str, data: Any) -> Any:
    """A pydantic model from its class path, for the classes aisys may restore."""
    module, _, qualname = path.partition(":")
    if not module.startswith(_RESTORABLE) and module != "aisys.types":
        return data  # a class aisys does not restore from a store: plain JSON
    import importlib

    cls: Any = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    return cls.model_validate(data)


# -- single flight ------------------------------------------------------------------


class _Flight:
    """One in-flight miss: its leader's answer, awaited by the others."""

    __slots__ = ("done", "result", "waiters")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.waiters: list[Callable[[], None]] = []


_FLIGHTS: dict[str, _Flight] = {}
_FLIGHTS_LOCK = threading.Lock()


class Join:
    """Join the flight for a key: lead it (``None``) or wait and get the leader's answer.

    Returns ``(flight, None)`` to the leader and ``(None, result)`` to a follower;
    ``result`` is ``None`` when the leader failed or the wait ran out.
    """

    __slots__ = ("key", "timeout")

    def __init__(self, key: str, timeout: float) -> None:
        self.key = key
        self.timeout = timeout

    def _enter(self) -> tuple[_Flight | None, _Flight | None]:
        with _FLIGHTS_LOCK:
            flight = _FLIGHTS.get(self.key)
            if flight is None:
                flight = _FLIGHTS[self.key] = _Flight()
                return flight, None
            return None, flight

    def run(self) -> tuple[_Flight | None, Any]:
        """Lead, or block until the leader lands (at most ``timeout``)."""
        lead, other = self._enter()
        if lead is not None:
            return lead, None
        assert other is not None  # noqa: S101 - one of the two is set
        other.done.wait(self.timeout)
        return None, other.result

    async def arun(self) -> tuple[_Flight | None, Any]:
        """Lead, or await the leader's answer (at most ``timeout``)."""
        lead, other = self._enter()
        if lead is not None:
            return lead, None
        assert other is not None  # noqa: S101 - one of the two is set
        loop = asyncio.get_running_loop()
        landed = loop.create_future()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the waiter's loop has closed
                loop.call_soon_threadsafe(_resolve, landed)

        with _FLIGHTS_LOCK:
            if other.done.is_set():
                return None, other.result
            other.waiters.append(wake)
        try:
            await asyncio.wait_for(landed, self.timeout)
        except TimeoutError:
            return None, None
        return None, other.result


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _land(key: str, flight: _Flight, result: Any) -> None:
    """The leader's answer (``None`` if it failed) goes to every waiting caller."""
    with _FLIGHTS_LOCK:
        if _FLIGHTS.get(key) is flight:
            del _FLIGHTS[key]
        flight.result = result
        flight.done.set()
        waiters, flight.waiters = flight.waiters, []
    for wake in waiters:
        wake()


# -- the step -----------------------------------------------------------------------

_WARNED: set[str] = set()


def reset_warnings() -> None:
    """Warn again about cache problems already warned about; forget parsed entries."""
    _WARNED.clear()
    _PARSED.clear()
    _PARSED_IDS.clear()


def _warn(kind: str, message: str, *args: Any) -> None:
    if kind not in _WARNED:
        _WARNED.add(kind)
        _log.warning(message, *args)


def check_cache_for_function(cache: Any, fn: Callable[..., Any]) -> None:
    """A decorator's ``cache=`` needs a function that returns its whole answer."""
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        msg = (
            f"cache= cannot wrap the generator function {fn.__qualname__}; cache the "
            "call that makes the whole answer, or use aisys.LLM(cache=...).stream()"
        )
        raise ConfigError(msg, field="cache")


def cache_step(cache: Cache, runtime: Callable[[], Any]) -> Step:
    """The step answering from ``cache`` and storing fresh, complete answers."""

    def step(call: Call, request: Any, proceed: Proceed) -> Flow[Any]:
        if not request.use_cache:
            return (yield from proceed(request))
        try:
            material = request.cache_material()
            if call.prompt is not None:
                material["prompt"] = call.prompt  # name, version, sha256
            key = cache.key(material)
        except (TypeError, ValueError) as exc:
            _warn(
                f"key:{type(exc).__name__}",
                "aisys cache: a call's arguments cannot be part of a key (%s); such "
                "calls are not cached",
                exc,
            )
            call.cache_result = "miss"
            return (yield from proceed(request))
        current = runtime()
        store = cache.opened.get(current.settings.cache_dir)
        call.cache_backend = store.kind
        wall = wall_time(current.clock)
        if cache.mode in ("read_write", "read_only"):
            found = yield from _lookup(call, store, key, wall)
            if found is not None:
                call.cache_hit = True
                call.cache_result = "hit"
                # A memoised entry is frozen, any other was just parsed: never shared.
                return request.from_cache(*found, shared=False)
        call.cache_result = call.cache_result or "miss"
        store_later = None
        if cache.mode != "read_only":
            store_later = _store_later(cache, store, key, wall)
            call.finishers.append(store_later)
        if not request.shares_flights:
            return (yield from proceed(request))
        flight, shared = yield Join(key, request.wait_limit())
        if flight is None:
            if shared is not None:
                call.cache_hit = True
                call.cache_result = "hit"
                if store_later is not None:  # the leader stores it; nothing new here
                    call.finishers.remove(store_later)
                return request.from_cache(shared, None)
            return (yield from proceed(request))  # the leader failed: ask ourselves
        answer = None
        try:
            answer = yield from proceed(request)
        finally:
            _land(key, flight, answer)
        return answer

    return step


# Recently parsed entries, by key: a hit whose bytes are unchanged skips JSON parsing
# and validation. Only frozen models are kept (safe to hand to several callers), and
# only small ones: big answers stay in the store (on disk), not in this process.
_PARSED: dict[str, tuple[bytes, Any, list[str] | None, float | None]] = {}
_PARSED_IDS: set[int] = set()
_PARSED_MAX = 256
_PARSED_MAX_ENTRY_BYTES = 32 * 1024
"""Entries of up to 256 x 32 KiB: at most 8 MiB of bytes (and their parsed values)."""


def memoised(value: Any) -> bool:
    """Whether ``value`` is a parsed entry kept for later hits (the same object again)."""
    return id(value) in _PARSED_IDS


def _lookup(
    call: Call, store: Store, key: str, now: float
) -> Flow[tuple[Any, list[str] | None] | None]:
    try:
        blob = yield StoreOp(store, "get_blob", key)
    except Exception as exc:
        _failed(call, "reading", exc)
        return None
    if blob is None:
        return None
    seen = _PARSED.get(key)
    if seen is not None and seen[0] == blob:
        _, value, chunks, expires_at = seen
    else:
        try:
            value, chunks, expires_at = parse(blob)
        except Exception as exc:
            _failed(call, "decoding an entry of", exc)
            return None
        if len(blob) <= _PARSED_MAX_ENTRY_BYTES and _frozen(value):
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.clear()
                _PARSED_IDS.clear()
            if seen is not None:
                _PARSED_IDS.discard(id(seen[1]))
            _PARSED[key] = (blob, value, chunks, expires_at)
            _PARSED_IDS.add(id(value))
    if expires_at is not None and now >= expires_at:
        return None
    return value, chunks


def _frozen(value: Any) -> bool:
    config = getattr(type(value), "model_config", None)
    return isinstance(config, dict) and bool(config.get("frozen"))


def _failed(call: Call, doing: str, exc: Exception) -> None:
    call.cache_result = "error"
    _warn(
        f"{doing}:{type(exc).__name__}",
        "aisys cache: %s the cache failed (%s: %s); the call goes to the provider",
        doing,
        type(exc).__name__,
        exc,
    )


def _store_later(
    cache: Cache, store: Store, key: str, wall: float
) -> Callable[[Call], Flow[None]]:
    """Store the call's answer once it is complete (streams: once they ended)."""

    def finisher(call: Call) -> Flow[None]:
        value = call.response
        if call.error is not None or call.closed_early or value is None:
            return
        if not cache.store_truncated and "length" in call.finish_reasons:
            return
        try:
            blob = encode(
                value,
                expires_at=None if cache.ttl is None else wall + cache.ttl,
                chunks=call.stream_texts,
            )
        except ValueError as exc:
            _warn(
                f"encode:{type(value).__name__}",
                "aisys cache: %s; such answers are not stored",
                exc,
            )
            return
        try:
            # The backend's own expiry trails the entry's, which aisys checks itself.
            ttl = None if cache.ttl is None else cache.ttl + 60
            yield StoreOp(store, "set_blob", key, blob, ttl)
        except Exception as exc:
            _failed(call, "writing", exc)

    return finisher
