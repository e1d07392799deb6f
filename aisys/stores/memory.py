"""Counters in this process's memory, behind one lock."""

from __future__ import annotations

import threading
import time

from aisys.stores.base import LocalStore

__all__ = ["MemoryStore"]


class MemoryStore(LocalStore):
    """Atomic counters with expiry, for one process."""

    kind = "memory"

    def __init__(self) -> None:
        self._values: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

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

    def get(self, key: str) -> int:
        """The current total."""
        with self._lock:
            return self._current(key, time.monotonic())
