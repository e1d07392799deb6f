"""Guard steps: input guards before the request leaves, output guards on the answer.

The input step runs first in the chain (before budgets: a blocked call costs nothing
and reserves nothing); the output step sits outside the cache, so answers served from
the cache are checked too. Findings go on the `Call` (telemetry names them); a block
raises `aisys.GuardError`, which never carries the text that was found.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aisys.errors import GuardError, HandoffRequired
from aisys.pipeline._flow import Flow
from aisys.safety.redact import placeholders

if TYPE_CHECKING:
    from aisys.call import Call
    from aisys.pipeline.protocol import Proceed, Step
    from aisys.safety.guards import Finding, Guard

__all__ = ["ChunkRedactor", "guard_input_step", "guard_output_step", "redact_spans"]


def redact_spans(call: Call, text: str, findings: Sequence[Finding]) -> str:
    """``text`` with each finding replaced by its typed, numbered placeholder.

    The format `aisys.redact` writes (``[SECRET_1]``, ``[EMAIL_1]``, ``[LINK_1]``),
    numbered across the call's input and output.
    """
    return placeholders(
        text,
        ((f.start, f.end, _kind(f.kind)) for f in findings),
        call.placeholders,
    )


def _kind(kind: str) -> str:
    """A finding's kind as a placeholder names it: ``link`` → ``LINK``."""
    return re.sub(r"[^A-Z0-9]+", "_", kind.upper()).strip("_") or "REDACTED"


_OUTCOMES = {
    "input": " — nothing was sent",
    "answer": " — the answer was withheld",
    "stream": " — at the end of the stream, whose chunks were already delivered "
    "(Secrets(action='redact') redacts chunks before delivery)",
}


def _blocked(guard: Guard, findings: list[Finding], where: str) -> GuardError:
    kinds = ", ".join(sorted({f.kind for f in findings}))
    sources = ", ".join(sorted({f.source for f in findings}))
    return GuardError(
        f"guard {guard.name!r} blocked the {where}: {len(findings)} finding(s) "
        f"({kinds}) in {sources}" + _OUTCOMES[where],
        guard=guard.name,
        action=guard.action,
        findings=tuple(findings),
    )


def _reason(guard: Guard, findings: Sequence[Finding], stage: str) -> str:
    kinds = ", ".join(sorted({_kind(f.kind) for f in findings}))
    return f"guard {guard.name!r} found {kinds} in the {stage}"


def handoff(
    call: Call,
    guard: Guard,
    findings: Sequence[Finding],
    reason: str,
    output: str | None,
    *,
    streamed: bool = False,
) -> HandoffRequired:
    """Queue the call for a person now and say so: the error the caller gets."""
    review = call.review
    item_id = None
    if review is not None:
        try:
            item_id = review.guard_item(call, reason, output).id or None
        except Exception:  # the handoff stands even if the queue failed
            _log.warning("aisys could not queue a handed-off call", exc_info=True)
    withheld = (
        "the answer's chunks were already delivered; its end is withheld"
        if streamed
        else "nothing was sent"
        if output is None
        else "the answer was withheld"
    )
    return HandoffRequired(
        f"{reason}: handed to a person (review item {item_id}); {withheld}",
        item_id=item_id,
        reason=reason,
        guard=guard.name,
        findings=tuple(findings),
    )


def guard_input_step(guards: tuple[Guard, ...]) -> Step:
    """The step checking the request's input before anything is sent."""

    def step(call: Call, request: Any, proceed: Proceed) -> Flow[Any]:
        for guard in guards:
            parts = request.input_parts()
            if guard.action == "redact":  # per part: each part's spans are replaced
                found = {i: guard.check_all([(src, text)]) for i, src, text in parts}
                findings = [f for part in found.values() for f in part]
            else:
                findings = guard.check_all([(src, text) for _, src, text in parts])
            if not findings:
                continue
            call.guard_findings.append((guard.name, guard.action, tuple(findings)))
            if guard.action == "block":
                raise _blocked(guard, findings, "input")
            if guard.action in ("review", "handoff"):
                reason = _reason(guard, findings, "input")
                if guard.action == "handoff":  # nothing is sent; a person answers
                    raise handoff(call, guard, findings, reason, None)
                call.review_reasons.append(reason)
            if guard.action == "redact":
                request = request.with_input(
                    {
                        index: redact_spans(call, text, found[index])
                        for index, _, text in parts
                        if found[index]
                    }
                )
        return (yield from proceed(request))

    return step


def guard_output_step(guards: tuple[Guard, ...]) -> Step:
    """The step checking the answer: block, flag, redact, or ask the next target."""

    def step(call: Call, request: Any, proceed: Proceed) -> Flow[Any]:
        system = "\n".join(
            t for _, source, t in request.input_parts() if source == "system"
        )
        result = yield from proceed(request)
        while True:
            text = request.output_text(result)
            if text is None:  # a stream: per chunk, or on its whole text at the end
                chunked = tuple(
                    g for g in guards if g.per_chunk and g.action == "redact"
                )
                rest = tuple(g for g in guards if g not in chunked)
                if chunked:
                    call.chunk_redactor = ChunkRedactor(call, chunked, system)
                if rest:
                    call.output_checks.append(
                        lambda whole, rest=rest: _check(
                            call, rest, whole, system, where="stream"
                        )
                    )
                return result
            try:
                verdict = _check(call, guards, text, system, allow_fallback=True)
            except GuardError:
                _refused(call, request, result)  # withheld, but billed
                raise
            if verdict is None:
                return result
            if isinstance(verdict, str):
                return request.with_output(result, verdict)
            _refused(call, request, result)
            following = request.after(call.target)
            if following is None:
                raise verdict[1]
            request = following
            result = yield from proceed(request)

    return step


def _refused(call: Call, request: Any, result: Any) -> None:
    """Keep what a refused answer was billed on the call, for metering."""
    billed = request.billed_by(result, call.target)
    if billed is not None:
        call.billed.append(billed)


def _check(
    call: Call,
    guards: tuple[Guard, ...],
    text: str,
    system: str,
    *,
    allow_fallback: bool = False,
    where: str = "answer",
) -> Any:
    """``None`` (fine), a redacted text, or ``("fallback", error)``; raises on block."""
    changed = None
    for guard in guards:
        findings = guard.check_output(changed if changed is not None else text, system)
        if not findings:
            continue
        call.guard_findings.append((guard.name, guard.action, tuple(findings)))
        if guard.action == "block" or (
            guard.action == "fallback" and not allow_fallback
        ):
            raise _blocked(guard, findings, where)
        if guard.action in ("review", "handoff"):
            reason = _reason(guard, findings, "output")
            if guard.action == "handoff":  # the answer is withheld; a person answers
                raise handoff(
                    call, guard, findings, reason, text, streamed=where == "stream"
                )
            call.review_reasons.append(reason)
            continue
        if guard.action == "fallback":
            return ("fallback", _blocked(guard, findings, "answer"))
        if guard.action == "redact":
            changed = redact_spans(
                call, changed if changed is not None else text, findings
            )
    return changed


_log = logging.getLogger("aisys")
_KEY_END = re.compile(r"-----end [a-z ]*private key-----")


class ChunkRedactor:
    """Redacts a stream's chunks before the caller sees them (``Secrets(action="redact")``).

    A secret is one token, or a token after a keyword (``password: …``, ``Bearer …``), so
    text is released up to its last whitespace and the rest waits for the next chunk
    (the last one releases everything). The released text's tail stays as context, so a
    keyword in one chunk still marks the token in the next. A private key block waits
    until it ends; past `max_held` characters it is released as one placeholder.
    """

    context_chars = 64
    max_held = 16384

    def __init__(self, call: Call, guards: tuple[Guard, ...], system: str) -> None:
        self._call = call
        self._guards = guards
        self._system = system
        self._held = ""
        self._context = ""
        self._entries: dict[str, int] = {}

    def feed(self, text: str) -> str:
        """Take a chunk's text; return what may be delivered now (maybe ``""``)."""
        self._held += text
        cut = self._cut()
        return self._release(cut) if cut else ""

    def flush(self) -> str:
        """Everything still held, redacted (the stream has ended)."""
        return self._release(len(self._held)) if self._held else ""

    def check_whole(self, text: str) -> None:
        """Record what the guards find in a whole streamed answer: flagged, not redacted.

        For streams whose chunks aisys cannot rewrite (an SDK's stream objects).
        """
        if not self._entries:
            _log.warning(
                "aisys: %s cannot redact the chunks of an SDK stream; what it finds "
                "is flagged on the span. Yield strings, use aisys.LLM.stream(), or "
                "action='block'",
                ", ".join(repr(g) for g in self._guards),
            )
        for guard in self._guards:
            found = guard.check_output(text, self._system)
            if found:
                self._record(guard, found)

    def _cut(self) -> int:
        held = self._held
        if len(held) > self.max_held:
            return len(held)
        cut = max(held.rfind(c) for c in " \n\t\r") + 1
        window = (self._context + held).lower()
        begin = window.rfind("-----begin")
        if begin >= 0:
            end = _KEY_END.search(window, begin)
            if end is None:  # hold the block from its start until it ends
                return max(0, begin - len(self._context))
            cut = max(cut, end.end() - len(self._context))  # never inside the block
        return cut

    def _release(self, cut: int) -> str:
        ready, self._held = self._held[:cut], self._held[cut:]
        raw = ready
        offset = len(self._context)
        for guard in self._guards:
            whole = self._context + ready
            found = [
                dataclasses.replace(
                    f, start=max(f.start, offset) - offset, end=f.end - offset
                )
                for f in guard.check_output(whole, self._system)
                if f.end > offset
            ]
            if found:
                self._record(guard, found)
                ready = redact_spans(self._call, ready, found)
        if len(raw) > self.max_held and "-----begin" in raw.lower() and ready == raw:
            # An unterminated key block: released as one placeholder.
            ready = placeholders(
                raw, [(0, len(raw), "SECRET")], self._call.placeholders
            )
        self._context = (self._context + raw)[-self.context_chars :]
        return ready

    def _record(self, guard: Guard, found: list[Finding]) -> None:
        """One entry per guard on the call, growing as chunks bring more."""
        findings = self._call.guard_findings
        index = self._entries.get(guard.name)
        if index is None:
            self._entries[guard.name] = len(findings)
            findings.append((guard.name, guard.action, tuple(found)))
        else:
            name, action, earlier = findings[index]
            findings[index] = (name, action, earlier + tuple(found))
