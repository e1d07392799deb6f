"""A real OTLP/HTTP collector for tests: oteltap in its own process, that can go down.

It prints every span it receives as a JSON line; those lines, kept across restarts in one
file, are what the collector received — so a test can count deliveries exactly.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Collector:
    """``python -m oteltap`` on a fixed loopback port; ``start()``/``stop()`` at will."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.out = directory / "collector.ndjson"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.out.open("ab") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "oteltap", "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("oteltap did not start listening")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def spans(self) -> list[dict[str, Any]]:
        """Every span received so far, in arrival order (duplicates kept)."""
        if not self.out.exists():
            return []
        return [
            record
            for record in self._records()
            if "spanId" in record and "severityNumber" not in record
        ]

    def logs(self) -> list[dict[str, Any]]:
        """Every log record received so far (evaluation results among them)."""
        return [record for record in self._records() if "severityNumber" in record]

    def _records(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        return [
            json.loads(line)
            for line in self.out.read_text().splitlines()
            if line.startswith("{")
        ]

    def metrics(self) -> list[dict[str, Any]]:
        """Every metric received so far (one JSON object per metric and export)."""
        return [
            record
            for record in self._records()
            if "spanId" not in record and "severityNumber" not in record
            and "name" in record
        ]

    def wait_for(self, found: Any, timeout: float = 20.0) -> Any:
        """``found()`` once it is not empty (the receiver prints what it got a moment
        after the exporter's request returned), or its last value after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = found()
            if value:
                return value
            time.sleep(0.05)
        return found()

    def wait_for_spans(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """The spans once at least ``count`` arrived (or what arrived by ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            spans = self.spans()
            if len(spans) >= count:
                return spans
            time.sleep(0.05)
        return self.spans()

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
