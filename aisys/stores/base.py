"""What a store offers, and the effect that runs its operations.

A store's operations are blocking methods (``reserve``, ``add``, ``get``) with awaitable
twins (``areserve`` …). Local stores (memory, diskcache) answer the twins with the
blocking body (a local lock or SQLite transaction, microseconds); Redis awaits its
asyncio client. Steps never call a store directly: they yield a `StoreOp`.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = [
    "LocalStore",
    "Store",
    "StoreOp",
]


class Store(Protocol):
    """Atomic integer counters with expiry, shared as widely as the backend reaches."""

    kind: str
    """``memory``, ``diskcache`` or ``redis``."""

    def reserve(
        self, key: str, amount: int, limit: int, ttl_s: float
    ) -> tuple[bool, int]:
        """Add ``amount`` unless the total would pass ``limit``: (added, total)."""

    def add(self, key: str, amount: int, ttl_s: float) -> int:
        """Add ``amount`` (may be negative); the new total."""

    def get(self, key: str) -> int:
        """The current total (0 if none)."""

    async def areserve(
        self, key: str, amount: int, limit: int, ttl_s: float
    ) -> tuple[bool, int]:
        """The awaitable twin of `reserve`."""

    async def aadd(self, key: str, amount: int, ttl_s: float) -> int:
        """The awaitable twin of `add`."""

    async def aget(self, key: str) -> int:
        """The awaitable twin of `get`."""

    def clear(self) -> None:
        """Forget every counter and entry (tests)."""

    def get_blob(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or ``None`` (absent or expired)."""

    def set_blob(self, key: str, value: bytes, ttl_s: float | None) -> None:
        """Store ``value`` under ``key`` (``ttl_s=None``: until evicted)."""

    async def aget_blob(self, key: str) -> bytes | None:
        """The awaitable twin of `get_blob`."""

    async def aset_blob(self, key: str, value: bytes, ttl_s: float | None) -> None:
        """The awaitable twin of `set_blob`."""


class LocalStore:
    """The awaitable twins of a local store: its blocking body, run in place.

    A lock held for microseconds (memory) or a local SQLite transaction (diskcache)
    costs less than a hop to a thread and back.
    """

    def reserve(
        self, key: str, amount: int, limit: int, ttl_s: float
    ) -> tuple[bool, int]:
        """Provided by the store."""
        raise NotImplementedError

    def add(self, key: str, amount: int, ttl_s: float) -> int:
        """Provided by the store."""
        raise NotImplementedError

    def get(self, key: str) -> int:
        """Provided by the store."""
        raise NotImplementedError

    async def areserve(
        self, key: str, amount: int, limit: int, ttl_s: float
    ) -> tuple[bool, int]:
        """`reserve`, run in place."""
        return self.reserve(key, amount, limit, ttl_s)

    async def aadd(self, key: str, amount: int, ttl_s: float) -> int:
        """`add`, run in place."""
        return self.add(key, amount, ttl_s)

    async def aget(self, key: str) -> int:
        """`get`, run in place."""
        return self.get(key)

    def get_blob(self, key: str) -> bytes | None:
        """Provided by the store."""
        raise NotImplementedError

    def set_blob(self, key: str, value: bytes, ttl_s: float | None) -> None:
        """Provided by the store."""
        raise NotImplementedError

    async def aget_blob(self, key: str) -> bytes | None:
        """`get_blob`, run in place."""
        return self.get_blob(key)

    async def aset_blob(self, key: str, value: bytes, ttl_s: float | None) -> None:
        """`set_blob`, run in place."""
        self.set_blob(key, value, ttl_s)


class StoreOp:
    """The effect of one store operation (``reserve``, ``add`` or ``get``)."""

    __slots__ = ("args", "op", "store")

    def __init__(self, store: Store, op: str, *args: Any) -> None:
        self.store = store
        self.op = op
        self.args = args

    def run(self) -> Any:
        """Run it, blocking."""
        return getattr(self.store, self.op)(*self.args)

    async def arun(self) -> Any:
        """Run it on the event loop."""
        return await getattr(self.store, "a" + self.op)(*self.args)
