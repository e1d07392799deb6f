"""Which store a spec names, opened once per process: the stores' registry.

``None`` is diskcache under ``cache_dir``, ``"memory"`` this process, ``"redis://…"`` a
Redis server; each backend's library loads when its first store opens.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from aisys.errors import ConfigError
from aisys.stores.base import Store

__all__ = ["StoreRef", "check_store", "open_store", "reset_memory_stores"]

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def check_store(owner: str, spec: Any) -> str | None:
    """``store=`` checked when it is given: None, ``"memory"`` or a Redis URL."""
    if spec is None:
        return None
    if isinstance(spec, str) and (spec == "memory" or spec.startswith(_REDIS_SCHEMES)):
        return str(spec)
    hint = (
        f"for entries that expire, pass ttl={spec}"
        if owner == "Cache" and isinstance(spec, int | float)
        else ""
    )
    message = (
        f"{owner}(store=) takes None (diskcache in cache_dir), 'memory' or "
        f"'redis://host:port/db', got {spec!r}" + (f"; {hint}" if hint else "")
    )
    raise ConfigError(message, field="store")


_STORES: dict[tuple[str, str], Store] = {}
_LOCK = threading.Lock()


def open_store(spec: str | None, cache_dir: Path, *, purpose: str) -> Store:
    """The store ``spec`` names, one instance per spec and purpose in the process.

    ``None`` is diskcache under ``cache_dir``; also ``"memory"`` and ``"redis://…"``.
    """
    key = (spec or f"diskcache:{cache_dir}", purpose)
    with _LOCK:
        store = _STORES.get(key)
        if store is None:
            store = _STORES[key] = _make(spec, cache_dir, purpose)
        return store


class StoreRef:
    """A store named by its spec, opened once per cache directory (calls are hot)."""

    __slots__ = ("_opened", "purpose", "spec")

    def __init__(self, spec: str | None, purpose: str) -> None:
        self.spec = spec
        self.purpose = purpose
        self._opened: tuple[Path, Store] | None = None

    def get(self, cache_dir: Path) -> Store:
        """The store, for the ``cache_dir`` setting in force."""
        opened = self._opened
        if opened is not None and opened[0] is cache_dir:
            return opened[1]
        store = open_store(self.spec, cache_dir, purpose=self.purpose)
        self._opened = (cache_dir, store)
        return store


def _make(spec: str | None, cache_dir: Path, purpose: str) -> Store:
    if spec is None:
        from aisys.stores.disk import DiskStore

        return DiskStore(cache_dir / purpose)
    if spec == "memory":
        from aisys.stores.memory import MemoryStore

        return MemoryStore()
    if spec.startswith(_REDIS_SCHEMES):
        from aisys.stores.redis import RedisStore

        return RedisStore(spec, prefix=f"aisys:{purpose}:")
    msg = (
        f"store {spec!r} is not one aisys knows: use None (diskcache in cache_dir), "
        "'memory' or 'redis://host:port/db'"
    )
    raise ConfigError(msg, field="store")


def reset_memory_stores() -> None:
    """Empty every memory store (tests): counters start from zero again."""
    with _LOCK:
        stores = [store for store in _STORES.values() if store.kind == "memory"]
    for store in stores:
        store.clear()
