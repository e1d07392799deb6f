"""A throwaway PostgreSQL cluster on loopback, for the review store tests.

Debian's ``postgresql`` package (installed by ``make test`` when missing) gives initdb
and pg_ctl; the cluster lives in a temporary folder on a free port and is removed with
it. PostgreSQL refuses to run as root, so as root the cluster belongs to the
``postgres`` user the package creates (pytest-postgresql cannot do that, hence this).
Missing PostgreSQL skips the tests, except under CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """``initdb`` once; ``start()``/``stop()`` at will; ``url`` for psycopg."""

    def __init__(self) -> None:
        bindir = _bindir()
        if bindir is None:
            message = "PostgreSQL is not installed (make test installs it: apt-get install postgresql)"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        self.bindir = bindir
        # Its own folder under /tmp: pytest's are private to root, and the server
        # (as the postgres user) must reach its data.
        self.workdir = workdir = Path(tempfile.mkdtemp(prefix="aisys-pg-"))
        self.data = workdir / "data"
        self.port = _free_port()
        self.url = f"postgresql://aisys@127.0.0.1:{self.port}/postgres"
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(workdir, "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run(
            "initdb", "-D", str(self.data), "-U", "aisys", "--auth=trust", "-E", "UTF8"
        )

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self._as, str(self.bindir / tool), *args],
            check=True,
            capture_output=True,
            cwd=self.workdir,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-w",
            "-l",
            str(self.workdir / "log"),
            "start",
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        pytest.fail("PostgreSQL did not start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        """Stop if running, and delete the cluster's folder."""
        subprocess.run(
            [*self._as, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
        )  # fmt: skip
        shutil.rmtree(self.workdir, ignore_errors=True)
