"""``aisys spool``: what waits for the OTLP collector, and sending or dropping it.

The spool is the ``spool_dir`` setting's folder (default ``cache_dir/spool``), or
``--dir``. ``replay`` sends to the collector the standard variables name
(``OTEL_EXPORTER_OTLP_ENDPOINT`` …). Exit status: 0 on success, 1 when ``replay`` could
not send everything (the collector still down), 2 for bad usage.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    """Add ``spool`` and its subcommands to the ``aisys`` command."""
    parser = commands.add_parser(
        "spool", help="OTLP batches waiting for the collector: status, replay, drop"
    )
    sub = parser.add_subparsers(dest="action", required=True)
    for name, help_text in (
        ("status", "batches, spans, bytes, the oldest and the last error"),
        ("replay", "send what waits to the collector now"),
        ("drop", "delete what waits (it is not sent)"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--dir", type=Path, default=None, help="default: spool_dir")
        cmd.add_argument(
            "--format", choices=["table", "json"], default="table", dest="fmt"
        )
        if name == "replay":
            cmd.add_argument(
                "--timeout", type=float, default=60.0, help="seconds (default 60)"
            )
        cmd.set_defaults(run=_run)


def _run(args: Any) -> int:
    from aisys.errors import ConfigError
    from aisys.settings import Settings
    from aisys.telemetry.spool import spool_of

    try:
        settings = Settings(**({"spool_dir": args.dir} if args.dir else {}))
    except ConfigError as exc:
        print(f"aisys spool: {exc}", file=sys.stderr)
        return 2
    spool = spool_of(settings)
    if not spool.path.exists():
        _say(args, {"spool": str(spool.path), "batches": 0, "spans": 0}, "empty")
        return 0
    if args.action == "drop":
        batches, items = spool.drop()
        _say(
            args,
            {
                "spool": str(spool.path),
                "dropped_batches": batches,
                "dropped_items": items,
            },
            f"dropped {batches} batches ({items} items) from {spool.path}",
        )
        return 0
    if args.action == "replay":
        from aisys.telemetry.otlp import replay

        before = spool.status()
        done, delivery = replay(settings, args.timeout)
        after = spool.status()
        sent = before.batches - after.batches
        _say(
            args,
            {
                "spool": str(spool.path),
                "sent_batches": delivery.sent,
                "left_batches": after.batches,
                "left_items": after.items,
                "last_error": after.last_error if not done else None,
            },
            f"sent {sent} batches; {after.batches} left"
            + ("" if done else f" (last error: {after.last_error})"),
        )
        return 0 if done else 1
    status = spool.status()
    record = {
        "spool": status.path,
        "batches": status.batches,
        "spans": status.kinds.get("traces", 0),
        "metrics": status.kinds.get("metrics", 0),
        "logs": status.kinds.get("logs", 0),
        "bytes": status.bytes,
        "oldest": status.oldest,
        "last_error": status.last_error,
        "dropped_batches": status.dropped_batches,
        "dropped_items": status.dropped_items,
        "corrupt": status.corrupt,
    }
    _say(args, record, _status_table(record))
    return 0


def _status_table(record: dict[str, Any]) -> str:
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"aisys spool {record['spool']}", show_header=False)
    oldest = record["oldest"]
    shown = dict(record, oldest=_ago(oldest) if oldest else "-")
    shown.pop("spool")
    for key, value in shown.items():
        table.add_row(key.replace("_", " "), "-" if value is None else str(value))
    out = StringIO()
    Console(file=out, color_system=None, width=100).print(table)
    return out.getvalue().rstrip()


def _ago(at: float) -> str:
    seconds = max(0.0, time.time() - at)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
    return f"{stamp} ({seconds:.0f} s ago)"


def _say(args: Any, record: dict[str, Any], text: str) -> None:
    print(json.dumps(record) if args.fmt == "json" else text)
