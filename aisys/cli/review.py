"""``aisys review``: the review queue from the shell.

``list [--status S] [--format table|json]``, ``show ID``, ``accept ID``, ``correct ID
--output TEXT``, ``reject ID [--note TEXT]`` and ``export --dataset FILE.jsonl``; each
takes ``--store`` (default: SQLite in ``cache_dir``; ``postgresql://…``) and the deciding
ones ``--by WHO`` (default: ``git config user.email``, else the OS user). Exit status: 0;
1 when a decision is refused (decided already); 2 for a bad id or bad usage — one line
on stderr, no traceback.
"""

from __future__ import annotations

import json
import sys
import time
from io import StringIO
from typing import Any

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    """Add ``review`` and its subcommands to the ``aisys`` command."""
    parser = commands.add_parser("review", help="the human review queue")
    sub = parser.add_subparsers(dest="action", required=True)

    def command(name: str, help_text: str) -> Any:
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--store", default=None, help="default: SQLite in cache_dir")
        cmd.set_defaults(run=_run)
        return cmd

    listing = command("list", "items, oldest first")
    listing.add_argument(
        "--status", choices=["open", "accepted", "corrected", "rejected"]
    )
    listing.add_argument(
        "--format", choices=["table", "json"], default="table", dest="fmt"
    )
    show = command("show", "one item, all of it")
    show.add_argument("id", type=int)
    show.add_argument("--format", choices=["text", "json"], default="text", dest="fmt")
    for name, help_text in (
        ("accept", "the answer was right"),
        ("correct", "the answer should have been --output"),
        ("reject", "the answer was wrong"),
    ):
        decide = command(name, help_text)
        decide.add_argument("id", type=int)
        decide.add_argument("--by", default=None)
        decide.add_argument("--note", default=None)
        if name == "correct":
            decide.add_argument("--output", required=True, help="the right answer")
    export = command("export", "accepted and corrected items as dataset cases")
    export.add_argument("--dataset", required=True, help="a .jsonl file to write")


def _who(by: str | None) -> str:
    if by:
        return by
    from aisys.prompts.registry import who

    return who()


def _run(args: Any) -> int:
    from aisys.errors import ConfigError
    from aisys.review import ReviewQueue

    try:
        queue = ReviewQueue(args.store)
        if args.action == "list":
            items = queue.items(args.status)
            if args.fmt == "json":
                print(json.dumps([i.as_dict() for i in items], indent=1))
            else:
                print(_table(items))
            return 0
        if args.action == "show":
            item = queue.get(args.id)
            if args.fmt == "json":
                print(json.dumps(item.as_dict(), indent=1))
            else:
                for key, value in item.as_dict().items():
                    print(f"{key:>11}: {value}")
            return 0
        if args.action == "export":
            count = queue.export(args.dataset)
            print(f"wrote {count} cases to {args.dataset}")
            return 0
        decision = {"accept": "accepted", "correct": "corrected", "reject": "rejected"}
        queue.get(args.id)  # a bad id is bad usage (2), a second decision a refusal (1)
    except ConfigError as exc:
        print(f"aisys review {args.action}: {exc}", file=sys.stderr)
        return 2
    try:
        item = queue.decide(
            args.id,
            decision[args.action],
            by=_who(args.by),
            correction=getattr(args, "output", None),
            note=args.note,
        )
    except ConfigError as exc:
        print(f"aisys review {args.action}: {exc}", file=sys.stderr)
        return 1
    print(f"review item {item.id}: {item.status} by {item.decided_by}")
    return 0


def _table(items: list[Any]) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="aisys review")
    for heading in ("id", "status", "age", "model", "reason", "output"):
        table.add_column(heading, overflow="fold")
    now = time.time()
    for item in items:
        table.add_row(
            str(item.id),
            item.status,
            _age(now - item.created),
            item.model or "—",
            item.reason,
            (item.output or "—")[:60],
        )
    out = StringIO()
    Console(file=out, color_system=None, width=120).print(table)
    return out.getvalue().rstrip()


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
