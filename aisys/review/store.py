"""Where review items live: SQLite on one machine, PostgreSQL for a fleet.

One interface (`Store`), two backends passing the same tests. Items are rows; a decision
is an update that only an open item takes (``WHERE status = 'open'``), so deciding twice
is refused by the database itself, across processes.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Protocol

__all__ = ["FIELDS", "PostgresStore", "SqliteStore", "Store", "open_store"]

FIELDS = (
    "id",
    "created",
    "status",
    "reason",
    "trace_id",
    "span_id",
    "prompt",
    "model",
    "input",
    "output",
    "scores",
    "decided_by",
    "decided_at",
    "correction",
    "note",
    "metadata",
)
_JSON = ("scores", "metadata")


class Store(Protocol):
    """What the queue needs of a backend."""

    def add(self, item: dict[str, Any]) -> int:
        """Insert an open item; returns its id."""

    def get(self, item_id: int) -> dict[str, Any] | None:
        """One item, or None."""

    def items(self, status: str | None, limit: int | None) -> list[dict[str, Any]]:
        """Items, oldest first, of one status or all."""

    def decide(self, item_id: int, fields: dict[str, Any]) -> bool:
        """Decide an open item; False when it was not open (or does not exist)."""


def _row(values: Any) -> dict[str, Any]:
    item = dict(zip(FIELDS, values, strict=True))
    for key in _JSON:
        item[key] = json.loads(item[key]) if item[key] else {}
    return item


def _schema(table: str, serial: str, real: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {table} ("
        f"id {serial}, created {real} NOT NULL, "
        "status TEXT NOT NULL, reason TEXT, trace_id TEXT, span_id TEXT, "
        "prompt TEXT, model TEXT, input TEXT, output TEXT, scores TEXT, "
        f"decided_by TEXT, decided_at {real}, correction TEXT, note TEXT, metadata TEXT)"
    )


class _Fetched:
    """A statement's outcome, read while its connection was held."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rowcount: int, rows: list[Any]) -> None:
        self.rowcount = rowcount
        self.rows = rows


class _SqlStore:
    """The queue's statements, once; a backend gives its table, marker and connection."""

    table = "review_items"
    mark = "?"

    def _run(self, query: str, params: Any) -> _Fetched:
        raise NotImplementedError

    def add(self, item: dict[str, Any]) -> int:
        """Insert an open item; returns its id."""
        marks = ", ".join([self.mark] * (len(FIELDS) - 1))
        rows = self._run(
            f"INSERT INTO {self.table} ({', '.join(FIELDS[1:])}) "  # noqa: S608 - fixed names
            f"VALUES ({marks}) RETURNING id",
            _values(item),
        ).rows
        return int(rows[0][0])

    def get(self, item_id: int) -> dict[str, Any] | None:
        """One item, or None."""
        rows = self._run(
            f"SELECT {', '.join(FIELDS)} FROM {self.table} WHERE id = {self.mark}",  # noqa: S608
            (item_id,),
        ).rows
        return _row(rows[0]) if rows else None

    def items(self, status: str | None, limit: int | None) -> list[dict[str, Any]]:
        """Items, oldest first, of one status or all."""
        query = f"SELECT {', '.join(FIELDS)} FROM {self.table}"  # noqa: S608
        params: list[Any] = []
        if status is not None:
            query += f" WHERE status = {self.mark}"
            params.append(status)
        query += " ORDER BY id"
        if limit is not None:
            query += f" LIMIT {self.mark}"
            params.append(limit)
        return [_row(r) for r in self._run(query, params).rows]

    def decide(self, item_id: int, fields: dict[str, Any]) -> bool:
        """Decide an open item; False when it was not open (the database decides)."""
        m = self.mark
        done = self._run(
            f"UPDATE {self.table} SET status = {m}, decided_by = {m}, decided_at = {m}, "  # noqa: S608
            f"correction = {m}, note = {m} WHERE id = {m} AND status = 'open'",
            (
                fields["status"],
                fields["decided_by"],
                fields["decided_at"],
                fields["correction"],
                fields["note"],
                item_id,
            ),
        )
        return done.rowcount == 1


class SqliteStore(_SqlStore):
    """SQLite in WAL mode: safe across the threads and processes of one machine."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_schema(self.table, "INTEGER PRIMARY KEY AUTOINCREMENT", "REAL"))
            self._local.db = db
        return db

    def _run(self, query: str, params: Any) -> _Fetched:
        cursor = self._db().execute(query, params)
        rows = cursor.fetchall()
        return _Fetched(cursor.rowcount, rows)


class PostgresStore(_SqlStore):
    """PostgreSQL through psycopg 3 (the ``postgres`` extra): for many machines.

    One connection per store, its statements one at a time (each is a single
    autocommitted statement); a broken connection is made anew on the next use.
    """

    table = "aisys_review_items"
    mark = "%s"

    def __init__(self, url: str) -> None:
        self.url = url
        self._connection: Any = None
        self._lock = threading.Lock()
        self._ready = False

    def _db(self) -> Any:
        db = self._connection
        if db is None or db.closed:
            try:
                import psycopg
            except ImportError:  # pragma: no cover - the extra is missing
                from aisys.errors import ConfigError

                msg = "a PostgreSQL review queue needs psycopg: pip install 'aisys[postgres]'"
                raise ConfigError(msg, field="store") from None
            db = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
            if not self._ready:
                db.execute(
                    _schema(self.table, "BIGSERIAL PRIMARY KEY", "DOUBLE PRECISION")
                )
                self._ready = True
            self._connection = db
        return db

    def _run(self, query: str, params: Any) -> _Fetched:
        with self._lock:
            try:
                cursor = self._db().execute(query, params)
                rows = cursor.fetchall() if cursor.description else []
                return _Fetched(cursor.rowcount, rows)
            except Exception:
                self.close()  # a broken connection is made anew next time
                raise

    def close(self) -> None:
        """Close the connection (the next use opens a new one)."""
        db, self._connection = self._connection, None
        if db is not None:
            with contextlib.suppress(Exception):  # already broken: nothing to close
                db.close()


def _values(item: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        json.dumps(item.get(key) or {}) if key in _JSON else item.get(key)
        for key in FIELDS[1:]
    )


def open_store(store: Any, cache_dir: Path) -> Store:
    """``None`` (SQLite in ``cache_dir``), a ``postgresql://`` URL, or a SQLite path."""
    from aisys.errors import ConfigError

    if store is None:
        return SqliteStore(cache_dir / "review.db")
    if isinstance(store, str) and store.startswith(("postgresql://", "postgres://")):
        return PostgresStore(store)
    if isinstance(store, str | Path):
        return SqliteStore(Path(store))
    if all(hasattr(store, m) for m in ("add", "get", "items", "decide")):
        return store  # type: ignore[no-any-return]
    msg = (
        "ReviewQueue(store=) takes None (SQLite in cache_dir), 'postgresql://…' or a "
        f"SQLite file path, got {store!r:.60}"
    )
    raise ConfigError(msg, field="store")
