"""``aisys prompts``: release, review, approve, promote, roll back and verify prompts.

Every subcommand takes ``--dir`` (default: the ``prompts_dir`` setting). Who acts
defaults to ``git config user.email``, else the operating-system user. Exit status: 0
on success, 1 when ``verify`` finds problems or an action is refused, 2 for bad usage.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aisys.errors import PromptError

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    """Add ``prompts`` and its subcommands to the ``aisys`` command."""
    parser = commands.add_parser(
        "prompts", help="versioned prompts: release, approve, promote, verify"
    )
    sub = parser.add_subparsers(dest="action", required=True)

    def command(name: str, help_text: str) -> Any:
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--dir", type=Path, default=None, help="default: prompts_dir")
        return cmd

    command("list", "every prompt, its versions and labels")
    show = command("show", "a prompt's front matter and body")
    show.add_argument("name")
    pick = show.add_mutually_exclusive_group()
    pick.add_argument("--version", type=int)
    pick.add_argument("--label")
    diff = command("diff", "a unified diff of two versions ('draft' = the file)")
    diff.add_argument("name")
    diff.add_argument("a")
    diff.add_argument("b")
    release = command("release", "make the current file an immutable version")
    release.add_argument("name")
    release.add_argument("--by")
    release.add_argument("--reason")
    release.add_argument("--key", help="SSH private key to sign with (allowed_signers)")
    approve = command("approve", "approve a released version")
    approve.add_argument("name")
    approve.add_argument("--version", type=int, required=True)
    approve.add_argument("--by")
    approve.add_argument("--reason")
    approve.add_argument("--key", help="SSH private key to sign with (allowed_signers)")
    promote = command("promote", "point a label at a version")
    promote.add_argument("name")
    promote.add_argument("--version", type=int, required=True)
    promote.add_argument("--label", required=True)
    promote.add_argument("--by")
    promote.add_argument("--reason")
    rollback = command("rollback", "move a label back to its previous version")
    rollback.add_argument("name")
    rollback.add_argument("--label", required=True)
    rollback.add_argument("--by")
    rollback.add_argument("--reason")
    log = command("log", "the audit trail of a prompt")
    log.add_argument("name")
    verify = command(
        "verify", "check approvals, released copies and the audit chain (for CI)"
    )
    verify.add_argument(
        "--against",
        help="the git commit whose audit.jsonl must start the working copy "
        "(default HEAD, in a git repository)",
    )
    check = command("check", "find mistakes in .prompty files before release (for CI)")
    check.add_argument("names", nargs="*", help="default: every .prompty file")
    parser.set_defaults(run=run)


def run(args: Any) -> int:
    """Run one ``aisys prompts`` subcommand."""
    from aisys.prompts.registry import Registry, who

    directory = args.dir
    if directory is None:
        import aisys

        directory = aisys._DEFAULT.settings.prompts_dir
    registry = Registry(directory)
    by = getattr(args, "by", None) or who()
    try:
        return _ACTIONS[args.action](registry, args, by)
    except PromptError as exc:
        print(f"aisys prompts {args.action}: {exc}", file=sys.stderr)
        return 1


def _list(registry: Any, args: Any, by: str) -> int:
    lock = registry.lock()
    rows = []
    for name in registry.names():
        entry = registry.entry(name, lock)
        versions = sorted(int(v) for v in entry["versions"])
        try:
            current = registry.get(name).version
        except PromptError as exc:
            exists = registry.file_path(name).exists()
            current = f"error: {exc}" if exists else "(no file)"
        labels = ", ".join(f"{k}→v{v}" for k, v in sorted(entry["labels"].items()))
        approved = [
            str(v) for v in versions if entry["versions"][str(v)].get("approvals")
        ]
        rows.append(
            (
                name,
                f"v{versions[-1]}" if versions else "—",
                str(current) if not isinstance(current, int) else f"v{current}",
                labels or "—",
                ", ".join(f"v{v}" for v in approved) or "—",
            )
        )
    _table(
        f"prompts in {registry.directory}",
        ("prompt", "latest", "file is", "labels", "approved"),
        rows,
    )
    return 0


def _show(registry: Any, args: Any, by: str) -> int:
    prompt = registry.get(args.name, version=args.version, label=args.label)
    print(f"# {prompt.name} version {prompt.version}  sha256 {prompt.sha256}")
    sys.stdout.write(prompt.file.text)
    return 0


def _diff(registry: Any, args: Any, by: str) -> int:
    sys.stdout.write(registry.diff(args.name, args.a, args.b))
    return 0


def _release(registry: Any, args: Any, by: str) -> int:
    print(registry.release(args.name, by=by, reason=args.reason, key=args.key))
    return 0


def _approve(registry: Any, args: Any, by: str) -> int:
    registry.approve(args.name, args.version, by=by, reason=args.reason, key=args.key)
    print(f"{args.name} v{args.version} approved by {by}")
    return 0


def _promote(registry: Any, args: Any, by: str) -> int:
    registry.promote(args.name, args.version, args.label, by=by, reason=args.reason)
    print(f"{args.name}: {args.label} → v{args.version}")
    return 0


def _rollback(registry: Any, args: Any, by: str) -> int:
    version = registry.rollback(args.name, args.label, by=by, reason=args.reason)
    print(f"{args.name}: {args.label} → v{version} (rolled back)")
    return 0


def _log(registry: Any, args: Any, by: str) -> int:
    if args.name not in registry.names():
        print(f"aisys prompts log: no prompt {args.name!r}", file=sys.stderr)
        return 1
    rows = [
        (
            str(r.get("at")),
            str(r.get("action")),
            "" if r.get("version") is None else f"v{r['version']}",
            str(r.get("label") or ""),
            str(r.get("by")),
            str(r.get("reason") or ""),
        )
        for r in registry.records()
        if r.get("name") == args.name
    ]
    _table(
        f"audit of {args.name}", ("at", "action", "version", "label", "by", "why"), rows
    )
    return 0


def _check(registry: Any, args: Any, by: str) -> int:
    names = args.names or [p.stem for p in sorted(registry.directory.glob("*.prompty"))]
    problems = [problem for name in names for problem in registry.check(name)]
    if not problems:
        print(f"{len(names)} prompt file(s) in {registry.directory}: no mistakes found")
        return 0
    for problem in problems:
        print(f"- {problem}")
    return 1


def _verify(registry: Any, args: Any, by: str) -> int:
    problems = registry.verify(args.against)
    if not problems:
        signed = registry.signers_path.exists()
        print(
            f"prompts in {registry.directory}: all verified"
            + (
                ""
                if signed
                else " (identities are unsigned: add allowed_signers to sign them)"
            )
        )
        return 0
    print(f"prompts in {registry.directory}: {len(problems)} problem(s)")
    for problem in problems:
        print(f"- {problem}")
    return 1


_ACTIONS = {
    "list": _list,
    "show": _show,
    "diff": _diff,
    "release": _release,
    "approve": _approve,
    "promote": _promote,
    "rollback": _rollback,
    "log": _log,
    "verify": _verify,
    "check": _check,
}


def _table(
    title: str, headings: tuple[str, ...], rows: Sequence[tuple[str, ...]]
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for heading in headings:
        table.add_column(heading, no_wrap=heading != "why")
    for row in rows:
        table.add_row(*row)
    Console(width=160, color_system=None, soft_wrap=True).print(table)
