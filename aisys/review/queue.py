"""The review queue: submit, list, decide once, export; and `Review`, what an LLM queues."""

from __future__ import annotations

import functools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aisys.errors import ConfigError
from aisys.review.store import Store, open_store

__all__ = ["DECISIONS", "Review", "ReviewItem", "ReviewQueue"]

_log = logging.getLogger("aisys")

DECISIONS = ("accepted", "corrected", "rejected")
_STATUSES = ("open", *DECISIONS)
_HUMAN_VALUE = {"accepted": 1.0, "corrected": 0.5, "rejected": 0.0}


@dataclass(frozen=True)
class ReviewItem:
    """One call waiting for, or carrying, a person's decision.

    Added in 0.2.
    """

    id: int
    created: float
    status: str
    reason: str
    trace_id: str | None = None
    span_id: str | None = None
    prompt: str | None = None
    model: str | None = None
    input: str | None = None
    output: str | None = None
    scores: Mapping[str, Any] = field(default_factory=dict)
    decided_by: str | None = None
    decided_at: float | None = None
    correction: str | None = None
    note: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The item as JSON (``aisys review list --format json``)."""
        return asdict(self)


class ReviewQueue:
    """Calls for a person to check: SQLite on one machine, PostgreSQL for a fleet.

    ``store``: ``None`` (``cache_dir/review.db``), ``"postgresql://…"``, or a SQLite
    file path. ``on_decision``: functions called with each decided `ReviewItem`. A
    store that cannot be reached never fails a call: the item waits in a local file
    (``cache_dir/review-pending.jsonl``) and is sent by the next submit that gets
    through, with one warning and a counted error (``errors``).

    Added in 0.2.
    """

    def __init__(
        self,
        store: Any = None,
        *,
        on_decision: Callable[[ReviewItem], Any]
        | Sequence[Callable[[ReviewItem], Any]] = (),
        runtime: Any = None,
    ) -> None:
        from aisys._current import default_runtime

        self._runtime = runtime or default_runtime()
        settings = self._runtime.settings
        self.store: Store = open_store(store, settings.cache_dir)
        self._pending_path = settings.cache_dir / "review-pending.jsonl"
        callbacks = [on_decision] if callable(on_decision) else list(on_decision)
        for callback in callbacks:
            if not callable(callback):
                msg = f"ReviewQueue(on_decision=) takes functions of the item, got {callback!r:.60}"
                raise ConfigError(msg, field="on_decision")
        self.on_decision = callbacks
        self.errors = 0
        """Submits the store refused (kept in the local file until it answers)."""
        self._lock = threading.Lock()
        self._warned = False

    # -- in ------------------------------------------------------------------------

    def submit(
        self,
        response: Any = None,
        *,
        reason: str,
        input: Any = None,
        output: Any = None,
        trace_id: str | None = None,
        span_id: str | None = None,
        model: str | None = None,
        prompt: str | None = None,
        scores: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> ReviewItem:
        """Queue a call for review: its `ChatResponse` (or trace id), and why.

        ``input``/``output`` are kept as ``review_content`` says (secrets always
        masked); a response gives its own text, model and ids.
        """
        if not isinstance(reason, str) or not reason:
            raise ConfigError(
                "submit(reason=) takes a non-empty string", field="reason"
            )
        if isinstance(response, str):
            trace_id = trace_id or response
        elif response is not None:
            trace_id = trace_id or getattr(response, "trace_id", None)
            span_id = span_id or getattr(response, "span_id", None)
            model = model or getattr(response, "model", None)
            if output is None:
                output = getattr(response, "text", None)
        record = {
            "created": time.time(),
            "status": "open",
            "reason": reason,
            "trace_id": trace_id,
            "span_id": span_id,
            "prompt": prompt,
            "model": model,
            "input": self._kept(input, trace_id),
            "output": self._kept(output, trace_id),
            "scores": dict(scores or {}),
            "metadata": dict(metadata or {}),
        }
        item_id = self._add(record)
        self._note(
            "aisys.review.submitted", trace_id, span_id, {"aisys.review.reason": reason}
        )
        return ReviewItem(id=item_id, **record)  # type: ignore[arg-type]

    def _kept(self, value: Any, trace_id: str | None) -> str | None:
        """The text a reviewer sees: redacted, or full with secrets masked."""
        if value is None:
            return None
        text = value if isinstance(value, str) else _text(value)
        redactor = self._runtime.redactor
        if self._runtime.settings.review_content == "full":
            from aisys.safety.redact import placeholders

            secrets = [f for f in redactor.findings(text) if f[2] == "SECRET"]
            return placeholders(text, secrets, {}) if secrets else text
        return str(redactor.redact(text, trace_id or ""))

    def _add(self, record: dict[str, Any]) -> int:
        self._send_pending()
        try:
            return self.store.add(record)
        except ConfigError:
            raise
        except Exception as exc:
            self._keep(record, exc)
            return 0

    def _keep(self, record: dict[str, Any], exc: Exception) -> None:
        with self._lock:
            self.errors += 1
            self._pending_path.parent.mkdir(parents=True, exist_ok=True)
            with self._pending_path.open("a", encoding="utf-8") as pending:
                pending.write(json.dumps(record) + "\n")
            if not self._warned:
                self._warned = True
                _log.warning(
                    "aisys: the review queue's store could not be reached (%s: %s); "
                    "items wait in %s and are sent when it answers",
                    type(exc).__name__,
                    exc,
                    self._pending_path,
                )

    def _send_pending(self) -> None:
        if not self._pending_path.exists():
            return
        with self._lock:
            try:
                lines = self._pending_path.read_text(encoding="utf-8").splitlines()
            except OSError:
                return
            left: list[str] = []
            for index, line in enumerate(lines):
                try:
                    self.store.add(json.loads(line))
                except Exception:
                    left = lines[index:]
                    break
            if left:
                self._pending_path.write_text("\n".join(left) + "\n", encoding="utf-8")
            else:
                self._pending_path.unlink(missing_ok=True)

    def close(self) -> None:
        """Close the store's connection (PostgreSQL); the queue reconnects if used again."""
        close = getattr(self.store, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> ReviewQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pending(self) -> int:
        """Items waiting in the local file for the store to answer."""
        if not self._pending_path.exists():
            return 0
        return len(self._pending_path.read_text(encoding="utf-8").splitlines())

    # -- out -----------------------------------------------------------------------

    def items(
        self, status: str | None = None, *, limit: int | None = None
    ) -> list[ReviewItem]:
        """Items, oldest first: all, or those of one ``status``."""
        if status is not None and status not in _STATUSES:
            msg = f"items(status=) takes one of {', '.join(_STATUSES)} or None, got {status!r}"
            raise ConfigError(msg, field="status")
        return [ReviewItem(**row) for row in self.store.items(status, limit)]

    def get(self, item_id: int) -> ReviewItem:
        """One item; `ConfigError` naming the id when there is none."""
        row = self.store.get(int(item_id))
        if row is None:
            msg = f"no review item {item_id}"
            raise ConfigError(msg, field="id")
        return ReviewItem(**row)

    def decide(
        self,
        item_id: int,
        decision: str,
        *,
        by: str,
        correction: str | None = None,
        note: str | None = None,
    ) -> ReviewItem:
        """Record a person's decision, once: ``accepted``, ``corrected`` or ``rejected``.

        A correction needs ``correction=`` (the answer it should have been). Deciding an
        item twice is refused (`ConfigError`). The decision is also the score
        ``human_review`` on the reviewed call, and goes to ``on_decision``.
        """
        if decision not in DECISIONS:
            msg = f"decide() takes one of {', '.join(DECISIONS)}, got {decision!r}"
            raise ConfigError(msg, field="decision")
        if not isinstance(by, str) or not by:
            raise ConfigError(
                "decide(by=) takes who decides (a non-empty string)", field="by"
            )
        if decision == "corrected" and not correction:
            msg = (
                "decide('corrected') needs correction= (the answer it should have been)"
            )
            raise ConfigError(msg, field="correction")
        item = self.get(item_id)
        fields = {
            "status": decision,
            "decided_by": by,
            "decided_at": time.time(),
            "correction": correction,
            "note": note,
        }
        if not self.store.decide(item.id, fields):
            current = self.get(item_id)
            msg = (
                f"review item {item_id} was already decided: {current.status} by "
                f"{current.decided_by}; a decision is recorded once"
            )
            raise ConfigError(msg, field="id")
        decided = ReviewItem(**{**item.as_dict(), **fields})
        self._score(decided)
        for callback in self.on_decision:
            try:
                callback(decided)
            except Exception:
                _log.warning("aisys: an on_decision callback raised", exc_info=True)
        return decided

    def _score(self, item: ReviewItem) -> None:
        if item.trace_id is None:
            return
        from aisys.types import Score

        score = Score("human_review", _HUMAN_VALUE[item.status], item.status, item.note)
        try:
            self._runtime._record_score(score, None, item.trace_id, item.span_id, {})
        except Exception:  # the decision stands; its score is telemetry
            _log.warning("aisys could not record a human_review score", exc_info=True)

    def _note(
        self,
        event: str,
        trace_id: str | None,
        span_id: str | None,
        attrs: dict[str, Any],
    ) -> None:
        """A JSONL line for the report (items per group), next to the call's spans."""
        if trace_id is None:
            return
        try:
            for exporter in self._runtime.telemetry.jsonl_exporters():
                exporter.write_record(
                    {
                        "event": event,
                        "trace_id": trace_id,
                        "span_id": span_id,
                        "time_unix_nano": time.time_ns(),
                        "attributes": attrs,
                    }
                )
        except Exception:
            _log.warning("aisys could not write a review record", exc_info=True)

    def export(self, path: str | Path) -> int:
        """Write accepted and corrected items as dataset cases (JSONL); returns how many.

        ``expected`` is the correction, or the accepted answer; ``inputs`` holds the
        call's input under the name it was given (``metadata.input_name``, default
        ``input``). `aisys.Dataset.load` reads the file back.
        """
        path = Path(path)
        cases = []
        for item in self.items():
            if item.status not in ("accepted", "corrected"):
                continue
            name = str(item.metadata.get("input_name") or "input")
            cases.append(
                {
                    "id": f"review-{item.id}",
                    "inputs": {name: item.input},
                    "expected": item.correction
                    if item.status == "corrected"
                    else item.output,
                    "tags": ["review", item.status],
                    "metadata": {
                        "trace_id": item.trace_id,
                        "decided_by": item.decided_by,
                    },
                }
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
        return len(cases)


def _text(value: Any) -> str:
    """Messages or any value as the text a reviewer reads."""
    if isinstance(value, list) and all(isinstance(m, Mapping) for m in value):
        return "\n".join(f"{m.get('role', '')}: {m.get('content', '')}" for m in value)
    text = getattr(value, "text", None)
    if isinstance(text, str):
        return text
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return repr(value)


class _Snapshot:
    """The facts of a call a deferred review item needs (the call object moves on)."""

    def __init__(self, call: Any) -> None:
        self.input_value = call.input_value
        self.trace_id = call.trace_id
        self.span_id = call.span_id
        self.request_model = call.request_model
        self.prompt = call.prompt
        self.input_name = call.input_name


class Review:
    """What an `aisys.LLM` (or decorated function) queues for review, besides guards.

    ``sample``: the fraction of calls queued at random; ``below``: a score name → a
    threshold; a call whose online score (``scorers=``) falls below it is queued.
    Both are queued off the caller's path. ``queue``: a `ReviewQueue` (default: the
    one in ``cache_dir``).

    Added in 0.2.
    """

    def __init__(
        self,
        queue: ReviewQueue | None = None,
        *,
        sample: float = 0.0,
        below: Mapping[str, float] | None = None,
    ) -> None:
        if queue is not None and not isinstance(queue, ReviewQueue):
            msg = f"Review(queue=) takes an aisys.ReviewQueue, got {queue!r:.60}"
            raise ConfigError(msg, field="queue")
        if (
            not isinstance(sample, int | float)
            or isinstance(sample, bool)
            or not 0 <= sample <= 1
        ):
            msg = f"Review(sample=) takes a fraction from 0 to 1, got {sample!r}"
            raise ConfigError(msg, field="sample")
        below = dict(below or {})
        for name, threshold in below.items():
            if not isinstance(name, str) or not isinstance(threshold, int | float):
                msg = (
                    f"Review(below=) takes {{score name: threshold}}, got {below!r:.80}"
                )
                raise ConfigError(msg, field="below")
        self._queue = queue
        self.sample = float(sample)
        self.below = below
        self._lock = threading.Lock()
        self.defer: Callable[[Callable[[], object]], None] | None = None
        """Runs a job off the caller's path (the runtime's background worker)."""

    @property
    def queue(self) -> ReviewQueue:
        """The queue items go to (made on first use)."""
        if self._queue is None:
            with self._lock:
                if self._queue is None:
                    self._queue = ReviewQueue()
        return self._queue

    def sampled(self) -> bool:
        """Whether this call is drawn for review (one draw)."""
        return self.sample > 0 and random.random() < self.sample  # noqa: S311

    def guard_item(self, call: Any, reason: str, output: Any) -> ReviewItem:
        """Queue ``call`` now (a guard asked for it): the item, for `HandoffRequired`."""
        return self.queue.submit(
            reason=reason,
            input=call.input_value,
            output=output,
            trace_id=call.trace_id,
            span_id=call.span_id,
            model=call.request_model,
            prompt=f"{call.prompt[0]}@{call.prompt[1]}" if call.prompt else None,
            metadata={"input_name": call.input_name} if call.input_name else None,
        )

    def after_call(self, call: Any, output: Any) -> None:
        """At the end of an answered call: queue it if a guard asked, or if drawn.

        A guard's request is queued now (the item exists when the call returns); a
        drawn call is queued on the background worker. Never raises.
        """
        try:
            if call.review_reasons:
                self.guard_item(call, "; ".join(call.review_reasons), output)
            elif self.sampled():
                job = functools.partial(
                    self.guard_item, _Snapshot(call), "sampled for review", output
                )
                if self.defer is not None:
                    self.defer(job)
                else:
                    job()
        except Exception:  # review never fails the call it is about
            _log.warning("aisys could not queue a call for review", exc_info=True)

    def low_scores(self, scores: Iterable[Any]) -> list[str]:
        """The ``below`` thresholds these scores fall under, as reasons."""
        return [
            f"score {s.name} = {s.value:g} is below {self.below[s.name]:g}"
            for s in scores
            if s.name in self.below
            and s.value is not None
            and s.value < self.below[s.name]
        ]


def review_for(
    owner: str, review: Any, guards: Sequence[Any], scored: bool
) -> Review | None:
    """``review=`` checked; a default `Review` when a guard reviews or hands off."""
    if review is not None and not isinstance(review, Review):
        msg = f"{owner}(review=) takes an aisys.Review, got {review!r:.60}"
        raise ConfigError(msg, field="review")
    if review is not None and review.below and not scored:
        msg = (
            f"{owner}(review=Review(below=...)) queues calls by their online scores: "
            "give scorers= too"
        )
        raise ConfigError(msg, field="review")
    if review is None and any(g.action in ("review", "handoff") for g in guards):
        return Review()
    return review
