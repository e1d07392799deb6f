"""Counters in Redis, for fleets: each operation is one server-side script (atomic).

Needs the ``redis`` extra (redis-py); sync and asyncio clients, made on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RedisStore"]

# Adds ARGV[1] to KEYS[1] unless that passes ARGV[2]; (1|0, total). Expiry ARGV[3] ms.
_RESERVE = """
local total = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if total + amount > tonumber(ARGV[2]) then
  return {0, total}
end
total = redis.call('INCRBY', KEYS[1], amount)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, total}
"""
_ADD = """
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return total
"""


class RedisStore:
    """Atomic counters with expiry on a Redis server."""

    kind = "redis"

    def __init__(self, url: str, *, prefix: str = "aisys:") -> None:
        self.url = url
        self.prefix = prefix
        self._sync: Any = None
        self._scripts: tuple[Any, Any] | None = None
        self._async: dict[int, tuple[Any, Any, Any]] = {}

    def _client(self) -> Any:
        if self._sync is None:
            try:
                import redis
            except ImportError as exc:  # pragma: no cover - the extra is missing
                from aisys.errors import ConfigError

                msg = (
                    "a redis:// store needs the redis extra: pip install 'aisys[redis]'"
                )
                raise ConfigError(msg, field="store") from exc
            self._sync = redis.Redis.from_url(
                self.url, socket_timeout=2.0, socket_connect_timeout=2.0
            )
            # EVALSHA: the script body travels once, then each call is one round trip.
            self._scripts = (
                self._sync.register_script(_RESERVE),
                self._sync.register_script(_ADD),
            )
        return self._sync

    def _aclient(self) -> Any:
        # One asyncio client per event loop: a connection belongs to the loop it was
        # made on.
        import asyncio

        loop = id(asyncio.get_running_loop())
        entry = self._async.get(loop)
        if entry is None:
            import redis.asyncio

            client = redis.asyncio.Redis.from_url(
                self.url, socket_timeout=2.0, socket_connect_timeout=2.0
            )
            entry = self._async[loop] = (
                client,
                client.register_script(_RESERVE),
                client.register_script(_ADD),
            )
        return entry

    def reserve(
        self, key: str, amount: int, limit: int, ttl_s: float
    ) -> tuple[bool, int]:
        """Add ``amount`` unless the total would pass ``limit``: one round trip."""
        self._client()
        assert self._scripts is not None  # noqa: S101 - set with the client
        ok, total = self._scripts[0](
            keys=[self.prefix + key], args=[amount, limit, int(ttl_s * 1000)]
        )
        return bool(ok), int(total)

    def add(self, key: str, amount: int, ttl_s: float) -> int:
        """Add ``amount``; the new total (one round trip)."""
        self._client()
        assert self._scripts is not None  # noqa: S101 - set with the client
        return int(
            self._scripts[1](keys=[self.prefix + key], args=[amount, int(ttl_s * 1000)])
        )

    def get(self, key: str) -> int:
        """The current total."""
        return int(self._client().get(self.prefix + key) or 0)

    def get_blob(self, key: str) -> bytes | None:
        """GET: one round trip."""
        value = self._client().get(self.prefix + key)
        return value if isinstance(value, bytes) else None

    def set_blob(self, key: str, value: bytes, ttl_s: float | None) -> None:
        """SET with PX when there is a TTL: one round trip."""
        px = None if ttl_s is None else max(1, int(ttl_s * 1000))
        self._client().set(self.prefix + key, value, px=px)

    async def aget_blob(self, key: str) -> bytes | None:
        """`get_blob` on the asyncio client."""
        client, _, _ = self._aclient()
        value = await client.get(self.prefix + key)
        return value if isinstance(value, bytes) else None

    async def aset_blob(self, key: str, value: bytes, ttl_s: float | None) -> None:
        """`set_blob` on the asyncio client."""
        client, _, _ = self._aclient()
        px = None if ttl_s is None else max(1, int(ttl_s * 1000))
        await client.set(self.prefix + key, value, px=px)

    def clear(self) -> None:
        """Forget every counter under this store's prefix."""
        client = self._client()
        for key in client.scan_iter(match=self.prefix + "*"):
            client.delete(key)

    async def areserve(
        self, key: str, amount: int, limit: int, ttl_s: float
    ) -> tuple[bool, int]:
        """`reserve` on the asyncio client."""
        _, reserve, _ = self._aclient()
        ok, total = await reserve(
            keys=[self.prefix + key], args=[amount, limit, int(ttl_s * 1000)]
        )
        return bool(ok), int(total)

    async def aadd(self, key: str, amount: int, ttl_s: float) -> int:
        """`add` on the asyncio client."""
        _, _, add = self._aclient()
        total = await add(keys=[self.prefix + key], args=[amount, int(ttl_s * 1000)])
        return int(total)

    async def aget(self, key: str) -> int:
        """`get` on the asyncio client."""
        client, _, _ = self._aclient()
        return int(await client.get(self.prefix + key) or 0)
