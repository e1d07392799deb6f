"""``aisys report``: calls, errors, retries, tokens, cost and latency from JSONL traces.

Reads what the ``jsonl`` exporter wrote (one span per line) and summarises the logical
calls — spans with ``gen_ai.operation.name``, without the per-attempt children — per
group (model calls only, unless grouped by operation, which shows retrieval and tool
spans too). Cost is summed over priced calls only; calls whose price is unknown are counted
apart (``unpriced_calls``), never as $0.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import math
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from aisys.names import split_model

__all__ = ["Row", "add_parser", "parse_duration", "read_calls", "summarise", "total"]

GROUPS = {
    "model": ("gen_ai.request.model", "gen_ai.response.model"),
    "provider": ("gen_ai.provider.name",),
    "prompt": ("aisys.prompt.name",),
    "user": ("user.id",),
    "operation": ("gen_ai.operation.name",),
}
"""What each ``--group-by`` reads, first found wins; ``day`` groups by the UTC date.

``model`` and ``provider`` read the target that answered first (``aisys.target``, set
after fallbacks and downgrades), so a call is counted under the model that answered it.
"""
_ANSWERED_BY = frozenset({"model", "provider"})
_NOT_MODEL_CALLS = frozenset({"retrieval", "execute_tool"})
EVALUATION = "gen_ai.evaluation.result"
REVIEW = "aisys.review.submitted"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``24h``, ``7d``, ``2w`` (or a plain number of seconds)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if match is None:
        msg = f"--since takes a duration such as 30m, 24h or 7d, got {text!r}"
        raise ValueError(msg)
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


@dataclass
class Row:
    """One group's figures."""

    group: str
    calls: int = 0
    errors: int = 0
    retries: int = 0
    fallbacks: int = 0
    cache_hits: int = 0
    guard_findings: int = 0
    """Calls in which a guard found something (blocked, flagged or redacted)."""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal | None = None
    unpriced_calls: int = 0
    saved_usd: Decimal | None = None
    durations_ms: list[float] = field(default_factory=list, repr=False)
    refusals: int = 0
    """Calls the model refused: a ``refusal`` score labelled ``refused``, or a
    ``content_filter`` finish."""
    reviews: int = 0
    """Calls queued for human review."""
    corrections: int = 0
    """Reviewed calls a person corrected."""
    scores: dict[str, list[float]] = field(default_factory=dict)
    """Evaluation name → [sum of values, count] of the scores its calls got."""

    def add_score(self, name: str, value: float) -> None:
        """Count one evaluation result of one of this group's calls."""
        summed = self.scores.setdefault(name, [0.0, 0])
        summed[0] += value
        summed[1] += 1

    def add(self, attrs: dict[str, Any], failed: bool, duration_ms: float) -> None:
        """Count one logical call."""
        self.calls += 1
        self.errors += failed
        moved = int(attrs.get("aisys.fallback.index", 0) or 0)
        requests = int(attrs.get("aisys.retry.attempts", 1) or 1)
        self.retries += max(0, requests - 1 - moved)  # repeats on the same target
        self.fallbacks += moved > 0
        self.cache_hits += attrs.get("aisys.cache.hit") is True
        self.guard_findings += bool(attrs.get("aisys.guard.findings"))
        finishes = attrs.get("gen_ai.response.finish_reasons") or ()
        self.refusals += "content_filter" in finishes
        self.input_tokens += int(attrs.get("gen_ai.usage.input_tokens", 0) or 0)
        self.output_tokens += int(attrs.get("gen_ai.usage.output_tokens", 0) or 0)
        cost = attrs.get("aisys.cost.usd")
        if cost is not None:
            self.cost_usd = (self.cost_usd or Decimal(0)) + Decimal(str(cost))
        elif attrs.get("aisys.cost.status") == "unknown":
            self.unpriced_calls += 1
        saved = attrs.get("aisys.cache.saved_usd")
        if saved is not None:
            self.saved_usd = (self.saved_usd or Decimal(0)) + Decimal(str(saved))
        self.durations_ms.append(duration_ms)

    def move_cost(self, usd: Decimal, to: Row) -> None:
        """Charge ``usd`` of this row's cost to ``to`` (a failed attempt's own model)."""
        self.cost_usd = (self.cost_usd or Decimal(0)) - usd
        to.cost_usd = (to.cost_usd or Decimal(0)) + usd

    def as_dict(self) -> dict[str, Any]:
        """The row as DESIGN.md names its fields (money as a float, or null)."""
        return {
            "group": self.group,
            "calls": self.calls,
            "errors": self.errors,
            "retries": self.retries,
            "fallbacks": self.fallbacks,
            "cache_hits": self.cache_hits,
            "guard_findings": self.guard_findings,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": _money(self.cost_usd),
            "unpriced_calls": self.unpriced_calls,
            "saved_usd": _money(self.saved_usd),
            "p50_ms": _percentile(self.durations_ms, 0.50),
            "p95_ms": _percentile(self.durations_ms, 0.95),
            "refusals": self.refusals,
            "reviews": self.reviews,
            "corrections": self.corrections,
            "scores": {
                name: {"mean": round(total / n, 4), "n": int(n)}
                for name, (total, n) in sorted(self.scores.items())
            },
        }


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _money(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile, rounded to 0.1 ms."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return round(ordered[rank - 1], 1)


def read_calls(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """The logical call spans in JSONL files, billed attempts and evaluation results.

    Evaluation results are the ``"event": "gen_ai.evaluation.result"`` lines. Attempt
    children are left out (a call is counted once) unless a failed attempt was billed
    (``aisys.attempt.cost.usd``): its cost belongs to its own model. Traces and other
    spans are left out. Lines that are not span records are skipped, counted, and said
    once on stderr (with the first one's place).
    """
    skipped = 0
    first = ""
    loads = _json_loads()
    for path in paths:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    span = loads(line)
                except ValueError:
                    span = None
                if not isinstance(span, dict) or not isinstance(
                    span.get("attributes") or {}, dict
                ):
                    skipped += 1
                    first = first or f"{path}:{number}"
                    continue
                attrs = span.get("attributes") or {}
                if span.get("event") in (EVALUATION, REVIEW):
                    yield span
                    continue
                if "gen_ai.operation.name" not in attrs:
                    continue  # aisys.trace blocks and other spans
                if (
                    "aisys.attempt.number" in attrs
                    and "aisys.attempt.cost.usd" not in attrs
                ):
                    continue  # one child per attempt: the call is counted once
                yield span
    if skipped:
        print(
            f"aisys report: {skipped} line(s) are not span records (JSON objects) and "
            f"were skipped; the first is {first}",
            file=sys.stderr,
        )


def _json_loads() -> Callable[[str], Any]:
    """Orjson's parser when installed (the ``report`` extra: 3x the stdlib's), else json's."""
    try:
        import orjson
    except ImportError:
        return json.loads
    return orjson.loads


def _group_of(span: dict[str, Any], by: str) -> str:
    if by == "day":
        start = int(span.get("start_time_unix_nano") or 0) / 1e9
        return datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%d")
    attrs = span.get("attributes") or {}
    if by in _ANSWERED_BY:
        answered = attrs.get("aisys.target")
        if answered and "aisys.attempt.number" not in attrs:
            provider, model = split_model(str(answered))
            return model if by == "model" else str(provider)
    if by == "prompt" and attrs.get("aisys.prompt.name"):
        version = attrs.get("aisys.prompt.version")
        name = str(attrs["aisys.prompt.name"])
        return f"{name}@{version}" if version else name
    for key in GROUPS[by]:
        value = attrs.get(key)
        if value not in (None, ""):
            return str(value)
    return "(none)"


def _segments_of(attrs: dict[str, Any], by: str) -> list[str]:
    """A call's segments: its trace tags, or the value of one metadata key."""
    if by == "tag":
        tags = attrs.get("aisys.tags") or ()
        if isinstance(tags, list | tuple) and tags:
            return [str(t) for t in tags]
        return ["(none)"]
    value = attrs.get("aisys." + by)
    return [str(value)] if value not in (None, "") else ["(none)"]


def check_group(by: str) -> str | None:
    """Why ``--group-by`` cannot take ``by`` (naming the valid keys), or None."""
    if (
        by in GROUPS
        or by in ("day", "tag")
        or (by.startswith("metadata.") and len(by) > 9)
    ):
        return None
    valid = ", ".join([*GROUPS, "day", "tag", "metadata.KEY"])
    return f"--group-by takes one of {valid}; got {by!r}"


def summarise(
    spans: Iterable[dict[str, Any]], by: str, since_s: float | None = None
) -> list[Row]:
    """Rows per group, the costliest first (then by calls)."""
    cutoff = None if since_s is None else (time.time() - since_s) * 1e9
    rows: dict[str, Row] = {}

    def row_of(group: str) -> Row:
        row = rows.get(group)
        if row is None:
            row = rows[group] = Row(group)
        return row

    # A failed attempt that was billed is charged to its own model, not to the call's:
    # its child span may come before or after its call's span.
    # Attempts seen before their call; calls of several attempts (group, priced).
    waiting: dict[str, list[tuple[str, Decimal]]] = {}
    callers: dict[str, tuple[str, bool]] = {}
    scores: list[dict[str, Any]] = []
    groups_by_span: dict[str, str] = {}
    groups_by_trace: dict[str, str] = {}
    for span in spans:
        attrs = span.get("attributes") or {}
        if span.get("event") in (EVALUATION, REVIEW):
            scores.append(span)
            continue
        operation = attrs.get("gen_ai.operation.name")
        if by != "operation" and operation in _NOT_MODEL_CALLS:
            continue  # retrieval and tool spans have no model: see --group-by operation
        start = int(span.get("start_time_unix_nano") or 0)
        if cutoff is not None and start < cutoff:
            continue
        if by == "tag" or by.startswith("metadata."):
            end = int(span.get("end_time_unix_nano") or start)
            failed = (span.get("status") or {}).get("code") == "ERROR"
            segments = _segments_of(attrs, by)
            for segment in segments:  # a call with two tags counts in both
                row_of(segment).add(attrs, failed, (end - start) / 1e6)
            groups_by_span[str(span.get("span_id"))] = segments[0]
            groups_by_trace.setdefault(str(span.get("trace_id")), segments[0])
            continue
        group = _group_of(span, by)
        if "aisys.attempt.number" in attrs:  # a billed attempt (see read_calls)
            if by not in _ANSWERED_BY:
                continue  # the call's own group holds its cost already
            usd = Decimal(str(attrs["aisys.attempt.cost.usd"]))
            caller = callers.get(str(span.get("parent_span_id")))
            if caller is None:
                waiting.setdefault(str(span.get("parent_span_id")), []).append(
                    (group, usd)
                )
            elif caller[1] and caller[0] != group:
                row_of(caller[0]).move_cost(usd, row_of(group))
            continue
        end = int(span.get("end_time_unix_nano") or start)
        failed = (span.get("status") or {}).get("code") == "ERROR"
        row_of(group).add(attrs, failed, (end - start) / 1e6)
        groups_by_span[str(span.get("span_id"))] = group
        groups_by_trace.setdefault(str(span.get("trace_id")), group)
        if by in _ANSWERED_BY and int(attrs.get("aisys.retry.attempts", 1) or 1) > 1:
            priced = attrs.get("aisys.cost.usd") is not None
            span_id = str(span.get("span_id"))
            callers[span_id] = (group, priced)
            for attempt_group, usd in waiting.pop(span_id, ()):
                if priced and attempt_group != group:
                    row_of(group).move_cost(usd, row_of(attempt_group))
    for result in scores:  # a score belongs to its call's group (or its trace's first)
        attrs = result.get("attributes") or {}
        value = attrs.get("gen_ai.evaluation.score.value")
        name = attrs.get("gen_ai.evaluation.name")
        owner = groups_by_span.get(str(result.get("span_id"))) or groups_by_trace.get(
            str(result.get("trace_id"))
        )
        if owner is None:
            continue
        if result.get("event") == REVIEW:
            rows[owner].reviews += 1
            continue
        label = attrs.get("gen_ai.evaluation.score.label")
        if name == "human_review" and label == "corrected":
            rows[owner].corrections += 1
        if name == "refusal" and label == "refused":
            rows[owner].refusals += 1
        if isinstance(name, str) and _is_number(value):
            rows[owner].add_score(name, float(value))  # type: ignore[arg-type]
    return sorted(
        rows.values(),
        key=lambda r: (r.cost_usd or Decimal(-1), r.calls),
        reverse=True,
    )


# -- output ---------------------------------------------------------------------------


def _usd(value: float | None) -> str:
    if value is None:
        return "—"
    return f"${value:,.6f}" if value < 1 else f"${value:,.2f}"


def total(rows: Sequence[Row]) -> Row:
    """All rows added up (the table's last line): cost of priced calls only."""
    whole = Row("total")
    for row in rows:
        whole.calls += row.calls
        whole.errors += row.errors
        whole.retries += row.retries
        whole.fallbacks += row.fallbacks
        whole.cache_hits += row.cache_hits
        whole.guard_findings += row.guard_findings
        whole.input_tokens += row.input_tokens
        whole.output_tokens += row.output_tokens
        whole.unpriced_calls += row.unpriced_calls
        whole.reviews += row.reviews
        whole.refusals += row.refusals
        whole.corrections += row.corrections
        if row.cost_usd is not None:
            whole.cost_usd = (whole.cost_usd or Decimal(0)) + row.cost_usd
        if row.saved_usd is not None:
            whole.saved_usd = (whole.saved_usd or Decimal(0)) + row.saved_usd
        whole.durations_ms.extend(row.durations_ms)
        for name, (summed, n) in row.scores.items():
            into = whole.scores.setdefault(name, [0.0, 0])
            into[0] += summed
            into[1] += n
    return whole


def _cells(row: Row) -> list[str]:
    data = row.as_dict()
    return [
        row.group,
        str(row.calls),
        _usd(data["cost_usd"]),
        str(row.unpriced_calls),
        str(row.errors),
        "—" if data["p95_ms"] is None else f"{data['p95_ms']:.1f}",
        "—" if data["p50_ms"] is None else f"{data['p50_ms']:.1f}",
        f"{row.input_tokens:,}",
        f"{row.output_tokens:,}",
        str(row.fallbacks),
        str(row.retries),
        str(row.cache_hits),
        f"{row.cache_hits / row.calls:.0%}" if row.calls else "—",
        _usd(data["saved_usd"]),
        str(row.guard_findings),
        str(row.refusals),
        str(row.reviews),
        str(row.corrections),
        ", ".join(
            f"{k} {v['mean']:.2f} (n={v['n']})" for k, v in data["scores"].items()
        )
        or "—",
    ]


# Most important first: what does not fit the terminal is left out from the right.
_HEADINGS = (
    "calls",
    "cost",
    "unpriced",
    "errors",
    "p95 ms",
    "p50 ms",
    "tokens in",
    "tokens out",
    "fallbacks",
    "retries",
    "cache hits",
    "hit rate",
    "saved",
    "guard findings",
    "refusals",
    "reviews",
    "corrections",
    "scores",
)


def _table(rows: Sequence[Row], by: str, width: int | None = None) -> str:
    from rich.console import Console
    from rich.table import Table

    width = width or shutil.get_terminal_size((120, 24)).columns
    lines = [_cells(row) for row in [*rows, total(rows)]]
    headings = (by, *_HEADINGS)
    shown, used = 0, 1
    for index, heading in enumerate(headings):
        need = max(len(heading), *(len(cells[index]) for cells in lines)) + 3
        if index and used + need > width:
            break
        shown, used = index + 1, used + need
    table = Table(title=f"aisys report by {by}", title_justify="left")
    for index, heading in enumerate(headings[:shown]):
        table.add_column(heading, justify="left" if index == 0 else "right")
    for index, cells in enumerate(lines):
        table.add_row(*cells[:shown], end_section=index == len(lines) - 2)
    out = io.StringIO()
    console = Console(file=out, width=max(width, used), color_system=None)
    console.print(table)
    if shown < len(headings):
        left = ", ".join(headings[shown:])
        console.print(
            f"Not shown at this width: {left} (a wider terminal, or --format json)."
        )
    unpriced = sum(row.unpriced_calls for row in rows)
    if unpriced:
        console.print(
            f"{unpriced} call(s) had no known price: their cost is not in the totals "
            "(add prices with aisys.register_price or the prices_path setting)."
        )
    return out.getvalue()


def render(rows: Sequence[Row], by: str, fmt: str) -> str:
    """The rows as a table, JSON or CSV."""
    if fmt == "json":
        return json.dumps([row.as_dict() for row in rows], indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        fields = list(Row("").as_dict())
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: "" if v is None else v for k, v in row.as_dict().items()}
            )
        return out.getvalue()
    return _table(rows, by)


def add_parser(commands: Any) -> None:
    """Add ``report`` to the ``aisys`` command."""
    parser = commands.add_parser(
        "report",
        help="summarise calls, cost and latency from aisys JSONL traces",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument(
        "files",
        nargs="*",
        type=Path,
        help="JSONL trace files (default: the jsonl_path setting)",
    )
    parser.add_argument(
        "--group-by",
        default="model",
        help="model (default), provider, prompt, user, operation, day, tag, or "
        "metadata.KEY (a key of aisys.trace(metadata=...))",
    )
    parser.add_argument("--since", help="only calls that started within, e.g. 24h, 7d")
    parser.add_argument(
        "--format", choices=["table", "json", "csv"], default="table", dest="fmt"
    )
    parser.add_argument(
        "--drift", action="store_true", help="compare the last window with a baseline"
    )
    parser.add_argument("--window", default="1d", help="the recent period (default 1d)")
    parser.add_argument(
        "--baseline", default="7d", help="the period before it (default 7d)"
    )
    parser.add_argument(
        "--fail-on-drift", action="store_true", help="exit 1 when a row drifts"
    )
    parser.add_argument(
        "--html", type=Path, default=None, help="also write a self-contained page"
    )
    parser.set_defaults(run=run)


def expand_files(given: Sequence[Path]) -> list[Path]:
    """Files as given; a directory stands for its ``*.jsonl`` files (recursively).

    A glob (``traces/*.jsonl``, quoted from the shell) stands for its matches.
    """
    files: list[Path] = []
    for path in given:
        text = str(path)
        if path.is_dir():
            files.extend(sorted(path.rglob("*.jsonl")))
        elif any(c in text for c in "*?[") and not path.exists():
            import glob

            files.extend(Path(p) for p in sorted(glob.glob(text, recursive=True)))
        else:
            files.append(path)
    return files


def run(args: Any) -> int:
    """``aisys report``: print the summary; exit 2 on a bad argument or missing file."""
    gc.disable()  # a short-lived command building millions of acyclic records
    try:
        return _report(args)
    finally:
        gc.enable()


def _report(args: Any) -> int:
    problem = check_group(args.group_by)
    if problem is not None:
        print(f"aisys report: {problem}", file=sys.stderr)
        return 2
    files = expand_files(args.files)
    if not args.files:
        import aisys

        files = [aisys._DEFAULT.settings.jsonl_path]
    missing = [str(path) for path in files if not path.is_file()]
    if args.files and not files:
        missing = [str(path) for path in args.files]
    if missing:
        print(
            f"aisys report: no such trace file: {', '.join(missing)} (write traces "
            "with exporters=['jsonl'], or name the files to read)",
            file=sys.stderr,
        )
        return 2
    try:
        since = parse_duration(args.since) if args.since else None
    except ValueError as exc:
        print(f"aisys report: {exc}", file=sys.stderr)
        return 2
    try:
        window = parse_duration(args.window)
        baseline = parse_duration(args.baseline)
    except ValueError as exc:
        print(
            f"aisys report: {str(exc).replace('--since', '--window/--baseline')}",
            file=sys.stderr,
        )
        return 2
    if not (args.drift or args.html):
        rows = summarise(read_calls(files), args.group_by, since)
        return _print_rows(rows, args, files)
    from aisys.cli.drift import Columns, drift_rows

    columns = Columns(lambda span: groups_of(span, args.group_by))

    def collected() -> Iterator[dict[str, Any]]:
        for span in read_calls(files):  # one pass feeds the rows and the columns
            columns.add(span)
            yield span

    rows = summarise(collected(), args.group_by, since)
    columns.finish()
    drifts = drift_rows(columns, window, baseline) if args.drift else None
    if args.html:
        from aisys.cli.html import write_page

        write_page(args.html, rows, total(rows), columns, args.group_by, drifts, since)
        print(f"aisys report: wrote {args.html}", file=sys.stderr)
    if drifts is not None:
        if args.fmt == "json":
            sys.stdout.write(json.dumps(drifts, indent=2) + "\n")
        else:
            sys.stdout.write(_drift_table(drifts))
        if args.fail_on_drift and any(row["drift"] for row in drifts):
            print("aisys report: drift found (--fail-on-drift)", file=sys.stderr)
            return 1
        return 0
    return _print_rows(rows, args, files)


def groups_of(span: dict[str, Any], by: str) -> list[str]:
    """The groups a call counts in (two tags: two groups)."""
    attrs = span.get("attributes") or {}
    if by == "tag" or by.startswith("metadata."):
        return _segments_of(attrs, by)
    return [_group_of(span, by)]


def _drift_table(rows: list[dict[str, Any]]) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="aisys report --drift")
    headings = (
        "group",
        "signal",
        "baseline n",
        "window n",
        "baseline",
        "window",
        "PSI",
        "KS p",
        "drift",
    )
    for heading in headings:
        table.add_column(
            heading, justify="left" if heading in ("group", "signal") else "right"
        )
    for row in rows:
        table.add_row(
            row["group"], row["signal"], str(row["baseline_n"]), str(row["window_n"]),
            f"{row['baseline_mean']:.4g}", f"{row['window_mean']:.4g}",
            f"{row['psi']:.3f}", f"{row['ks_p']:.3g}", "DRIFT" if row["drift"] else "—",
        )  # fmt: skip
    if not rows:
        return "aisys report: no group has calls on both sides of the window\n"
    out = io.StringIO()
    width = shutil.get_terminal_size((120, 24)).columns
    Console(file=out, width=width, color_system=None).print(table)
    return out.getvalue()


def _print_rows(rows: list[Row], args: Any, files: list[Path]) -> int:
    if not rows:
        within = f" in the last {args.since}" if args.since else ""
        print(
            f"aisys report: no model calls{within} in {', '.join(map(str, files))}",
            file=sys.stderr,
        )
        if args.fmt == "table":
            return 0
    sys.stdout.write(render(rows, args.group_by, args.fmt))
    return 0
