"""The spool: OTLP batches the collector could not take, kept on disk until it can.

One SQLite database in WAL mode (``spool_dir/spool.sqlite3``): each row is one batch in
its OTLP protobuf encoding, never pickled. Rows are claimed before they are sent and
deleted once the collector took them, inside ``BEGIN IMMEDIATE`` transactions, so two
processes sharing the folder never send a batch twice, and a process killed mid-send
leaves its claim to expire and the batch to be sent by the next. The size is bounded:
past ``max_bytes`` the oldest batches are dropped and counted.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Batch", "Spool", "SpoolStatus", "spool_of"]

_log = logging.getLogger("aisys")

FILE_NAME = "spool.sqlite3"
LEASE_S = 60.0
"""How long a claim holds: a process killed mid-send releases its batch after this."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    created REAL NOT NULL,
    items INTEGER NOT NULL,
    size INTEGER NOT NULL,
    body BLOB NOT NULL,
    claimed_at REAL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value);
"""


@dataclass(frozen=True)
class Batch:
    """One spooled OTLP request body: ``kind`` is ``traces``, ``metrics`` or ``logs``."""

    id: int
    kind: str
    created: float
    items: int
    body: bytes


@dataclass(frozen=True)
class SpoolStatus:
    """What waits in a spool, for ``aisys spool status``."""

    path: str
    batches: int
    items: int
    """Spans, metrics and log records, all kinds together (``kinds`` splits them)."""
    kinds: dict[str, int]
    bytes: int
    oldest: float | None
    last_error: str | None
    dropped_batches: int
    dropped_items: int
    corrupt: int


class Spool:
    """A bounded on-disk queue of OTLP batches, safe across threads and processes."""

    def __init__(self, directory: Path | str, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.path = self.directory / FILE_NAME
        self.max_bytes = max_bytes
        self._local = threading.local()
        self._lock = threading.Lock()

    # -- connection ----------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "db", None)
        if connection is not None:
            return connection
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            connection = self._open()
        except (
            sqlite3.DatabaseError
        ) as exc:  # not a database: keep it aside, start anew
            aside = self.path.with_name(f"{FILE_NAME}.corrupt-{int(time.time())}")
            with self._lock:
                if self.path.exists():
                    os.replace(self.path, aside)
                for suffix in ("-wal", "-shm"):
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            _log.warning(
                "aisys: the export spool %s could not be read (%s); it was moved to %s "
                "and a new spool started",
                self.path,
                exc,
                aside.name,
            )
            connection = self._open()
            self._add(connection, "corrupt", 1)
        self._local.db = connection
        return connection

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
            connection.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError:
            connection.close()
            raise
        return connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        connection = self._connect()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    @staticmethod
    def _add(connection: sqlite3.Connection, name: str, amount: int) -> None:
        connection.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, amount),
        )

    @staticmethod
    def _last_error(connection: sqlite3.Connection, error: str) -> None:
        connection.execute(
            "INSERT INTO counters (name, value) VALUES ('last_error', ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (error[:500],),
        )

    # -- queue ---------------------------------------------------------------------

    def push(
        self, kind: str, body: bytes, items: int, error: str | None = None
    ) -> tuple[int, int]:
        """Append a batch; returns the (batches, items) dropped to stay in bounds.

        ``error`` is why it could not be sent (kept as the last error).
        """
        dropped_batches = dropped_items = 0
        with self._transaction() as db:
            if error is not None:
                self._last_error(db, error)
            db.execute(
                "INSERT INTO batches (kind, created, items, size, body) "
                "VALUES (?, ?, ?, ?, ?)",
                (kind, time.time(), items, len(body), body),
            )
            (total,) = db.execute(
                "SELECT COALESCE(SUM(size), 0) FROM batches"
            ).fetchone()
            while total > self.max_bytes:
                oldest = db.execute(
                    "SELECT id, items, size FROM batches ORDER BY id LIMIT 1"
                ).fetchone()
                if oldest is None:
                    break
                db.execute("DELETE FROM batches WHERE id = ?", (oldest[0],))
                dropped_batches += 1
                dropped_items += oldest[1]
                total -= oldest[2]
            if dropped_batches:
                self._add(db, "dropped_batches", dropped_batches)
                self._add(db, "dropped_items", dropped_items)
        return dropped_batches, dropped_items

    def claim(self, kinds: Collection[str]) -> Batch | None:
        """The oldest batch of ``kinds`` no live process is sending, now claimed by this one."""
        now = time.time()
        marks = ", ".join("?" * len(kinds))
        with self._transaction() as db:
            row = db.execute(
                "SELECT id, kind, created, items, body FROM batches "  # noqa: S608 - marks
                f"WHERE kind IN ({marks}) AND (claimed_at IS NULL OR claimed_at < ?) "
                "ORDER BY id LIMIT 1",
                (*kinds, now - LEASE_S),
            ).fetchone()
            if row is None:
                return None
            db.execute("UPDATE batches SET claimed_at = ? WHERE id = ?", (now, row[0]))
        return Batch(*row)

    def done(self, batch: Batch) -> None:
        """The collector took ``batch``: it is gone."""
        with self._transaction() as db:
            db.execute("DELETE FROM batches WHERE id = ?", (batch.id,))

    def release(self, batch: Batch, error: str) -> None:
        """``batch`` could not be sent: back in line, first, with why."""
        with self._transaction() as db:
            db.execute("UPDATE batches SET claimed_at = NULL WHERE id = ?", (batch.id,))
            self._last_error(db, error)

    def reject(self, batch: Batch, error: str) -> None:
        """The collector refused ``batch`` for good (a malformed body): drop, count it."""
        with self._transaction() as db:
            db.execute("DELETE FROM batches WHERE id = ?", (batch.id,))
            self._add(db, "rejected_batches", 1)
            self._last_error(db, error)

    def pending(self) -> int:
        """Batches waiting (claimed ones included)."""
        (count,) = self._connect().execute("SELECT COUNT(*) FROM batches").fetchone()
        return int(count)

    def status(self) -> SpoolStatus:
        """Batches, items, bytes, the oldest batch's time and the last error."""
        db = self._connect()
        batches, items, size, oldest = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(items), 0), COALESCE(SUM(size), 0), "
            "MIN(created) FROM batches"
        ).fetchone()
        counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
        kinds = dict(
            db.execute("SELECT kind, SUM(items) FROM batches GROUP BY kind").fetchall()
        )
        return SpoolStatus(
            path=str(self.path),
            batches=int(batches),
            items=int(items),
            kinds={kind: int(count) for kind, count in kinds.items()},
            bytes=int(size),
            oldest=oldest,
            last_error=counters.get("last_error"),
            dropped_batches=int(counters.get("dropped_batches", 0)),
            dropped_items=int(counters.get("dropped_items", 0)),
            corrupt=int(counters.get("corrupt", 0))
            + int(counters.get("rejected_batches", 0)),
        )

    def drop(self) -> tuple[int, int]:
        """Delete every batch; returns the (batches, items) deleted."""
        with self._transaction() as db:
            batches, items = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(items), 0) FROM batches"
            ).fetchone()
            db.execute("DELETE FROM batches")
        return int(batches), int(items)

    def close(self) -> None:
        """Close this thread's connection."""
        connection = getattr(self._local, "db", None)
        if connection is not None:
            connection.close()
            self._local.db = None


def spool_of(settings: Any, directory: Path | None = None) -> Spool:
    """The settings' spool: ``spool_path`` (or ``directory``), ``spool_max_mb`` big."""
    path = settings.spool_path if directory is None else directory
    return Spool(path, int(settings.spool_max_mb * 1024 * 1024))
