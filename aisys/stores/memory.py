"""Counters in this process's memory, behind one lock."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from aisys.stores.base import LocalStore

__all__ = ["MemoryStore"]


class MemoryStore(LocalStore):
    """Atomic counters with expiry, for one process."""

    kind = "memory"
    max_entries = 4096
    """Cache entries kept at most; the least recently used go first."""
    max_bytes = 64 * 1024 * 1024
    """Bytes of cache entries kept at most (64 MiB); an entry alone above it is not kept."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[int, float]] = {}
        self._blobs: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get_blob(self, key: str) -> bytes | None:
        """The entry under ``key``, marked as recently used."""
        with self._lock:
            entry = self._blobs.get(key)
            if entry is None:
                return None
            if entry[1] <= time.monotonic():
                del self._blobs[key]
                self._bytes -= len(entry[0])
                return None
            self._blobs.move_to_end(key)
            return entry[0]

    def set_blob(self, key: str, value: bytes, ttl_s: float | None) -> None:
        """Store an entry, evicting the least recently used beyond the bounds."""
        expires = float("inf") if ttl_s is None else time.monotonic() + ttl_s
        with self._lock:
            old = self._blobs.pop(key, None)
            if old is not None:
                self._bytes -= len(old[0])
            if len(value) > self.max_bytes:
                return  # it would push out everything else, and still not fit
            self._blobs[key] = (value, expires)
            self._bytes += len(value)
            blobs = self._blobs
            while len(blobs) > self.max_entries or self._bytes > self.max_bytes:
                self._bytes -= len(blobs.popitem(last=False)[1][0])

    def _current(self, key: str, now: float) -> int:
        entry = self._values.get(key)
        if entry is None or entry[1] <= now:
            return 0
        return entry[0]

    def reserve(
        self, key: str, amount: int, limit: int, ttl_s: float
    ) -> tuple[bool, int]:
        """Add ``amount`` unless the total would pass ``limit``."""
        now = time.monotonic()
        with self._lock:
            total = self._current(key, now)
            if total + amount > limit:
                return False, total
            self._values[key] = (total + amount, now + ttl_s)
            return True, total + amount

    def add(self, key: str, amount: int, ttl_s: float) -> int:
        """Add ``amount``; the new total."""
        now = time.monotonic()
        with self._lock:
            total = self._current(key, now) + amount
            self._values[key] = (total, now + ttl_s)
            return total

    def clear(self) -> None:
        """Forget every counter."""
        with self._lock:
            self._values.clear()
            self._blobs.clear()
            self._bytes = 0

    def get(self, key: str) -> int:
        """The current total."""
        with self._lock:
            return self._current(key, time.monotonic())
