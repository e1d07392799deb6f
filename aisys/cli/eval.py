"""``aisys eval run`` and ``aisys eval compare``: experiments as CI gates.

``run`` exits 0, or 1 when a ``--fail-under`` mean is below its minimum, or 2 on bad
input (no such dataset, target or scorer); ``compare`` exits 1 with
``--fail-on-regression`` when a scorer's interval lies wholly below zero. Bad input is
one line on stderr, never a traceback.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from io import StringIO
from typing import Any

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    """Add ``eval`` and its subcommands to the ``aisys`` command."""
    parser = commands.add_parser(
        "eval", help="experiments: run a dataset, compare runs"
    )
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="run a target over a dataset and score it")
    run.add_argument("dataset", help="a .jsonl, .csv or .yaml dataset")
    run.add_argument("--target", required=True, help="module:function to call per case")
    run.add_argument(
        "--scorer",
        action="append",
        default=[],
        help="exact, contains, json_valid, refusal, numeric, or module:attr (repeat)",
    )
    run.add_argument("--concurrency", type=int, default=4)
    run.add_argument("--name", default=None)
    run.add_argument("--out", default="aisys-runs", help="folder for the run file")
    run.add_argument("--resume", default=None, help="a run file whose cases are kept")
    run.add_argument(
        "--fail-under",
        action="append",
        default=[],
        metavar="SCORER=MIN",
        help="exit 1 when the scorer's mean is below MIN (repeat)",
    )
    run.set_defaults(run=_run)
    compare = sub.add_parser("compare", help="compare run B with run A, case by case")
    compare.add_argument("a", help="the base run file")
    compare.add_argument("b", help="the candidate run file")
    compare.add_argument(
        "--format", choices=["table", "json"], default="table", dest="fmt"
    )
    compare.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit 1 when a scorer's 95 %% interval is wholly below zero",
    )
    compare.set_defaults(run=_compare)


def _fail(action: str, message: str) -> int:
    print(f"aisys eval {action}: {message}", file=sys.stderr)
    return 2


def _load(spec: str, what: str) -> Any:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        msg = f"{what} {spec!r}: write it as module:attribute (e.g. app.bot:answer)"
        raise ValueError(msg)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        msg = f"{what} {spec!r}: cannot import {module_name!r} ({exc})"
        raise ValueError(msg) from None
    value: Any = module
    for part in attr.split("."):
        if not hasattr(value, part):
            msg = f"{what} {spec!r}: {module_name!r} has no attribute {attr!r}"
            raise ValueError(msg)
        value = getattr(value, part)
    return value


def _scorer(spec: str) -> Any:
    from aisys.evals.scorers import BUILT_IN

    if spec in BUILT_IN:
        return BUILT_IN[spec]()
    if ":" not in spec:
        known = ", ".join(sorted(BUILT_IN))
        msg = f"no scorer named {spec!r} (built in: {known}; or module:attr)"
        raise ValueError(msg)
    found = _load(spec, "scorer")
    if isinstance(found, type):
        found = found()
    if not callable(found):
        msg = f"scorer {spec!r} is not callable (a scorer is called as scorer(case, output))"
        raise ValueError(msg)
    return found


def _bars(specs: list[str]) -> dict[str, float]:
    bars = {}
    for spec in specs:
        name, _, minimum = spec.partition("=")
        try:
            bars[name] = float(minimum)
        except ValueError:
            msg = f"--fail-under takes SCORER=MIN (e.g. exact=0.9), got {spec!r}"
            raise ValueError(msg) from None
    return bars


def _run(args: Any) -> int:
    from aisys.errors import ConfigError
    from aisys.evals import Dataset, evaluate

    try:
        bars = _bars(args.fail_under)
        dataset = Dataset.load(args.dataset)
        target = _load(args.target, "target")
        if not callable(target):
            return _fail("run", f"target {args.target!r} is not callable")
        scorers = [_scorer(spec) for spec in args.scorer]
        names = {
            getattr(s, "name", None) or getattr(s, "__name__", "") for s in scorers
        }
        unknown = sorted(set(bars) - names)
        if unknown:
            return _fail(
                "run",
                f"--fail-under names {unknown[0]!r}, which is not a scorer of this run",
            )
        run = evaluate(
            dataset,
            target,
            scorers,
            concurrency=args.concurrency,
            name=args.name,
            out_dir=args.out,
            resume=args.resume,
        )
    except (ConfigError, ValueError) as exc:
        return _fail("run", str(exc))
    print(_summary_table(run.summary, bars))
    failed = [
        name
        for name, minimum in bars.items()
        if (run.summary.get(name, {}).get("mean") or 0.0) < minimum
    ]
    for name in failed:
        print(
            f"FAIL {name}: mean {run.summary[name]['mean']} is below {bars[name]}",
            file=sys.stderr,
        )
    print(run.path)
    return 1 if failed else 0


def _summary_table(summary: dict[str, dict[str, Any]], bars: dict[str, float]) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="aisys eval run")
    for heading in ("scorer", "mean", "n", "errors", "bar"):
        table.add_column(heading, justify="left" if heading == "scorer" else "right")
    for name, row in summary.items():
        mean = row.get("mean")
        table.add_row(
            name,
            "—" if mean is None else f"{mean:.3f}",
            str(row.get("n", 0)),
            str(row.get("errors", 0)),
            f"{bars[name]:g}" if name in bars else "—",
        )
    out = StringIO()
    Console(file=out, color_system=None, width=100).print(table)
    return out.getvalue().rstrip()


def _compare(args: Any) -> int:
    from aisys.errors import ConfigError
    from aisys.evals.compare import compare
    from aisys.evals.experiment import load_run

    try:
        result = compare(load_run(args.a), load_run(args.b))
    except ConfigError as exc:
        return _fail("compare", str(exc))
    if args.fmt == "json":
        print(json.dumps(result, indent=1))
    else:
        print(_compare_table(result))
    worse = [row["scorer"] for row in result["scorers"] if row["ci_high"] < 0]
    if args.fail_on_regression and worse:
        print(f"FAIL regression in {', '.join(worse)}", file=sys.stderr)
        return 1
    return 0


def _compare_table(result: dict[str, Any]) -> str:
    from rich.console import Console
    from rich.table import Table

    out = StringIO()
    console = Console(file=out, color_system=None, width=120)
    for title, rows, key in (
        ("by scorer", result["scorers"], "scorer"),
        ("by tag", result["tags"], "tag"),
    ):
        if not rows:
            continue
        table = Table(title=f"aisys eval compare {title}")
        columns = (["tag", "scorer"] if key == "tag" else ["scorer"]) + [
            "mean A",
            "mean B",
            "delta",
            "95% CI",
            "n",
        ]
        for heading in columns:
            table.add_column(
                heading, justify="left" if heading in ("tag", "scorer") else "right"
            )
        for row in rows:
            cells = [row["tag"], row["scorer"]] if key == "tag" else [row["scorer"]]
            cells += [
                f"{row['mean_a']:.3f}",
                f"{row['mean_b']:.3f}",
                f"{row['delta']:+.3f}",
                f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]",
                str(row["n"]),
            ]
            table.add_row(*cells)
        console.print(table)
    console.print(
        f"regressions ({len(result['regressions'])}): {', '.join(result['regressions']) or '—'}"
    )
    console.print(
        f"improvements ({len(result['improvements'])}): {', '.join(result['improvements']) or '—'}"
    )
    return out.getvalue().rstrip()
