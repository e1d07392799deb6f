"""Counters in a diskcache directory: atomic across the processes of one machine.

diskcache keeps values in SQLite; `Cache.transact` holds SQLite's write lock across the
read and the write, so a reservation made by one process is seen by every other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aisys.stores.base import LocalStore

__all__ = ["DiskStore"]


class DiskStore(LocalStore):
    """Atomic counters with expiry in ``directory`` (created on first use)."""

    kind = "diskcache"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: Any = None

    @property
    def cache(self) -> Any:
        """The diskcache `Cache`, opened on first use."""
        if self._cache is None:
            import diskcache

            self._cache = diskcache.Cache(str(self.directory), timeout=10)
        return self._cache

    def reserve(
        self, key: str, amount: int, limit: int, ttl_s: float
    ) -> tuple[bool, int]:
        """Add ``amount`` unless the total would pass ``limit``."""
        cache = self.cache
        with cache.transact(retry=True):
            total = int(cache.get(key, 0, retry=True))
            if total + amount > limit:
                return False, total
            cache.set(key, total + amount, expire=ttl_s, retry=True)
            return True, total + amount

    def add(self, key: str, amount: int, ttl_s: float) -> int:
        """Add ``amount``; the new total."""
        cache = self.cache
        with cache.transact(retry=True):
            total = int(cache.get(key, 0, retry=True)) + amount
            cache.set(key, total, expire=ttl_s, retry=True)
            return total

    def get(self, key: str) -> int:
        """The current total."""
        return int(self.cache.get(key, 0, retry=True))

    def get_blob(self, key: str) -> bytes | None:
        """The entry under ``key`` (diskcache drops expired ones)."""
        value = self.cache.get("blob:" + key, retry=True)
        return value if isinstance(value, bytes) else None

    def set_blob(self, key: str, value: bytes, ttl_s: float | None) -> None:
        """Store an entry; bytes are kept as they are (diskcache never pickles bytes)."""
        self.cache.set("blob:" + key, value, expire=ttl_s, retry=True)

    def clear(self) -> None:
        """Forget every counter in the directory."""
        self.cache.clear(retry=True)

    def close(self) -> None:
        """Close the SQLite connection."""
        if self._cache is not None:
            self._cache.close()
            self._cache = None
