"""Guard steps: input guards before the request leaves, output guards on the answer.

The input step runs first in the chain (before budgets: a blocked call costs nothing
and reserves nothing); the output step sits outside the cache, so answers served from
the cache are checked too. Findings go on the `Call` (telemetry names them); a block
raises `aisys.GuardError`, which never carries the text that was found.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aisys.errors import GuardError
from aisys.pipeline._flow import Flow

if TYPE_CHECKING:
    from aisys.call import Call
    from aisys.guards import Finding, Guard
    from aisys.pipeline.chain import Proceed, Step

__all__ = ["guard_input_step", "guard_output_step", "redact_spans"]


def redact_spans(text: str, findings: Sequence[Finding], label: str) -> str:
    """``text`` with each finding's span replaced by ``[label]``."""
    spans = sorted({(f.start, f.end) for f in findings})
    parts = []
    last = 0
    for start, end in spans:
        if start < last:
            continue
        parts.append(text[last:start])
        parts.append(f"[{label}]")
        last = end
    parts.append(text[last:])
    return "".join(parts)


def _blocked(guard: Guard, findings: list[Finding], where: str) -> GuardError:
    kinds = ", ".join(sorted({f.kind for f in findings}))
    sources = ", ".join(sorted({f.source for f in findings}))
    return GuardError(
        f"guard {guard.name!r} blocked the {where}: {len(findings)} finding(s) "
        f"({kinds}) in {sources}"
        + (" — nothing was sent" if where == "input" else " — the answer was withheld"),
        guard=guard.name,
        action=guard.action,
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
            if guard.action == "redact":
                label = guard.name.upper()
                request = request.with_input(
                    {
                        index: redact_spans(text, found[index], label)
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
            if text is None:  # a stream: checked on its whole text when it ends
                call.output_checks.append(
                    lambda whole: _check(call, guards, whole, system)
                )
                return result
            verdict = _check(call, guards, text, system, allow_fallback=True)
            if verdict is None:
                return result
            if isinstance(verdict, str):
                return request.with_output(result, verdict)
            following = request.after(call.target)
            if following is None:
                raise verdict[1]
            request = following
            result = yield from proceed(request)

    return step


def _check(
    call: Call,
    guards: tuple[Guard, ...],
    text: str,
    system: str,
    *,
    allow_fallback: bool = False,
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
            raise _blocked(guard, findings, "answer")
        if guard.action == "fallback":
            return ("fallback", _blocked(guard, findings, "answer"))
        if guard.action == "redact":
            changed = redact_spans(
                changed if changed is not None else text, findings, guard.name.upper()
            )
    return changed
