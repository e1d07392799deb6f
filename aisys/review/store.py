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


class SqliteStore:
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
            db.execute(
                "CREATE TABLE IF NOT EXISTS review_items ("
                "id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL, "
                "status TEXT NOT NULL, reason TEXT, trace_id TEXT, span_id TEXT, "
                "prompt TEXT, model TEXT, input TEXT, output TEXT, scores TEXT, "
                "decided_by TEXT, decided_at REAL, correction TEXT, note TEXT, metadata TEXT)"
            )
            self._local.db = db
        return db

    def add(self, item: dict[str, Any]) -> int:
        """Insert an open item; returns its id."""
        values = _values(item)
        cursor = self._db().execute(
            f"INSERT INTO review_items ({', '.join(FIELDS[1:])}) "  # noqa: S608 - fixed names
            f"VALUES ({', '.join('?' * (len(FIELDS) - 1))})",
            values,
        )
        return int(cursor.lastrowid or 0)

    def get(self, item_id: int) -> dict[str, Any] | None:
        """One item, or None."""
        row = (
            self._db()
            .execute(
                f"SELECT {', '.join(FIELDS)} FROM review_items WHERE id = ?",  # noqa: S608
                (item_id,),
            )
            .fetchone()
        )
        return None if row is None else _row(row)

    def items(self, status: str | None, limit: int | None) -> list[dict[str, Any]]:
        """Items, oldest first, of one status or all."""
        query = f"SELECT {', '.join(FIELDS)} FROM review_items"  # noqa: S608
        params: list[Any] = []
        if status is not None:
            query += " WHERE status = ?"
            params.append(status)
        query += " ORDER BY id"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        return [_row(r) for r in self._db().execute(query, params).fetchall()]

    def decide(self, item_id: int, fields: dict[str, Any]) -> bool:
        """Decide an open item; False when it was not open."""
        cursor = self._db().execute(
            "UPDATE review_items SET status = ?, decided_by = ?, decided_at = ?, "
            "correction = ?, note = ? WHERE id = ? AND status = 'open'",
            (
                fields["status"],
                fields["decided_by"],
                fields["decided_at"],
                fields["correction"],
                fields["note"],
                item_id,
            ),
        )
        return cursor.rowcount == 1


class PostgresStore:
    """PostgreSQL through psycopg 3 (the ``postgres`` extra): for many machines.

    One connection per store, its statements one at a time (each is a single
    autocommitted statement); a broken connection is made anew on the next use.
    """

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
                    "CREATE TABLE IF NOT EXISTS aisys_review_items ("
                    "id BIGSERIAL PRIMARY KEY, created DOUBLE PRECISION NOT NULL, "
                    "status TEXT NOT NULL, reason TEXT, trace_id TEXT, span_id TEXT, "
                    "prompt TEXT, model TEXT, input TEXT, output TEXT, scores TEXT, "
                    "decided_by TEXT, decided_at DOUBLE PRECISION, correction TEXT, "
                    "note TEXT, metadata TEXT)"
                )
                self._ready = True
            self._connection = db
        return db

    def _run(self, query: str, params: Any) -> Any:
        with self._lock:
            try:
                cursor = self._db().execute(query, params)
                return _Fetched(
                    cursor.rowcount, cursor.fetchall() if cursor.description else []
                )
            except Exception:
                self.close()  # a broken connection is made anew next time
                raise

    def close(self) -> None:
        """Close the connection (the next use opens a new one)."""
        db, self._connection = self._connection, None
        if db is not None:
            with contextlib.suppress(Exception):  # already broken: nothing to close
                db.close()

    def add(self, item: dict[str, Any]) -> int:
        """Insert an open item; returns its id."""
        rows = self._run(
            f"INSERT INTO aisys_review_items ({', '.join(FIELDS[1:])}) "  # noqa: S608
            f"VALUES ({', '.join(['%s'] * (len(FIELDS) - 1))}) RETURNING id",
            _values(item),
        ).rows
        return int(rows[0][0])

    def get(self, item_id: int) -> dict[str, Any] | None:
        """One item, or None."""
        rows = self._run(
            f"SELECT {', '.join(FIELDS)} FROM aisys_review_items WHERE id = %s",  # noqa: S608
            (item_id,),
        ).rows
        return _row(rows[0]) if rows else None

    def items(self, status: str | None, limit: int | None) -> list[dict[str, Any]]:
        """Items, oldest first, of one status or all."""
        query = f"SELECT {', '.join(FIELDS)} FROM aisys_review_items"  # noqa: S608
        params: list[Any] = []
        if status is not None:
            query += " WHERE status = %s"
            params.append(status)
        query += " ORDER BY id"
        if limit is not None:
            query += " LIMIT %s"
            params.append(limit)
        return [_row(r) for r in self._run(query, params).rows]

    def decide(self, item_id: int, fields: dict[str, Any]) -> bool:
        """Decide an open item; False when it was not open."""
        cursor = self._run(
            "UPDATE aisys_review_items SET status = %s, decided_by = %s, decided_at = %s, "
            "correction = %s, note = %s WHERE id = %s AND status = 'open'",
            (
                fields["status"],
                fields["decided_by"],
                fields["decided_at"],
                fields["correction"],
                fields["note"],
                item_id,
            ),
        )
        return bool(cursor.rowcount == 1)


class _Fetched:
    """A statement's outcome, read while its connection was held."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rowcount: int, rows: list[Any]) -> None:
        self.rowcount = rowcount
        self.rows = rows


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
