"""Guards: checks on a call's input (before anything is sent) and on its answer.

```python
llm = aisys.LLM("openai:gpt-4o-mini", guards=[
    guards.MaxInputTokens(4000),
    guards.PromptInjection(threshold=0.5),
    guards.Secrets(action="redact"),
    guards.Exfiltration(allowed_hosts=["acme.com"]),
])
```

Each guard has an ``action``: ``block`` (input: nothing is sent; output: the answer is
withheld) raises `aisys.GuardError`; ``flag`` records the finding on the span and the
``aisys.guard.findings`` metric and lets the call go on; ``redact`` replaces what was
found (before sending / before returning); ``fallback`` (output) asks the next target of
the chain instead. Findings say which guard, what kind, where (the message or part it
came from, and the character offsets) — never the text that was found.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from aisys.errors import ConfigError

__all__ = [
    "Check",
    "Exfiltration",
    "Finding",
    "Guard",
    "MaxInputTokens",
    "PII",
    "Pattern",
    "PromptInjection",
    "Secrets",
    "injection_score",
]

Action = Literal["block", "flag", "redact", "fallback"]
Stage = Literal["input", "output"]
_ACTIONS = ("block", "flag", "redact", "fallback")


@dataclass(frozen=True)
class Finding:
    """What a guard found: its kind, where (source and offsets), never the text."""

    guard: str
    kind: str
    source: str
    """``user``, ``system``, ``assistant``, ``tool``, ``document`` or ``output``."""
    start: int
    end: int
    score: float | None = None


class Guard:
    """A check on text; subclasses say what they find and where they apply."""

    name = "guard"
    stages: tuple[Stage, ...] = ("input",)
    redactable = False
    untrusted_only = False
    """Input guards that read only what users, tools and documents wrote."""

    def __init__(self, action: Action = "block") -> None:
        if action not in _ACTIONS:
            msg = f"{type(self).__name__}(action=) must be one of {', '.join(_ACTIONS)}, got {action!r}"
            raise ConfigError(msg, field="action")
        if action == "redact" and not self.redactable:
            msg = f"{type(self).__name__} cannot redact: it finds no span of text to replace"
            raise ConfigError(msg, field="action")
        if action == "fallback" and "output" not in self.stages:
            msg = f"{type(self).__name__} checks input; fallback= is for output guards"
            raise ConfigError(msg, field="action")
        self.action: Action = action

    def find(self, text: str, source: str) -> list[Finding]:
        """What this guard finds in one piece of text."""
        raise NotImplementedError

    def check_output(self, text: str, system: str) -> list[Finding]:
        """Findings in an answer (``system``: the call's system instructions)."""
        return self.find(text, "output")

    def check_all(self, parts: Sequence[tuple[str, str]]) -> list[Finding]:
        """Findings across (source, text) parts; input guards may look at them together."""
        found: list[Finding] = []
        for source, text in parts:
            if self.untrusted_only and source in ("system", "developer", "assistant"):
                continue
            found.extend(self.find(text, source))
        return found

    def __repr__(self) -> str:
        return f"{type(self).__name__}(action={self.action!r})"


class MaxInputTokens(Guard):
    """The input may hold at most ``n`` tokens (counted offline with tiktoken)."""

    name = "max_input_tokens"

    def __init__(self, n: int, *, action: Action = "block") -> None:
        super().__init__(action)
        self.n = n

    def find(self, text: str, source: str) -> list[Finding]:
        """Never per part: see `check_all`."""
        return []

    def check_all(self, parts: Sequence[tuple[str, str]]) -> list[Finding]:
        """One finding when all the parts together are over the limit."""
        from aisys.metering.tokens import count_tokens

        total = sum(count_tokens(text) for _, text in parts)
        if total <= self.n:
            return []
        return [Finding(self.name, f"{total} tokens > {self.n}", "input", 0, total)]


class Pattern(Guard):
    """Text matching a regular expression (``name`` names the finding)."""

    redactable = True
    stages: tuple[Stage, ...] = ("input", "output")

    def __init__(
        self, regex: str, *, name: str = "pattern", action: Action = "block"
    ) -> None:
        self.name = name
        super().__init__(action)
        try:
            self.regex = re.compile(regex)
        except re.error as exc:
            msg = f"Pattern({regex!r}) is not a valid regular expression: {exc}"
            raise ConfigError(msg, field="regex") from None

    def find(self, text: str, source: str) -> list[Finding]:
        """Every match."""
        return [
            Finding(self.name, self.name, source, m.start(), m.end())
            for m in self.regex.finditer(text)
        ]


class _Detected(Guard):
    """Secrets or personal data, as redaction finds them."""

    redactable = True
    stages: tuple[Stage, ...] = ("input", "output")
    kinds: frozenset[str] = frozenset()

    def find(self, text: str, source: str) -> list[Finding]:
        """The redactor's findings of this guard's kinds."""
        import aisys

        return [
            Finding(self.name, kind, source, start, end)
            for start, end, kind in aisys._DEFAULT.redactor.findings(text)
            if kind in self.kinds
        ]


class Secrets(_Detected):
    """API keys, tokens, private keys, passwords in URLs (input and output)."""

    name = "secrets"
    kinds = frozenset({"SECRET"})


class PII(_Detected):
    """Emails, phone numbers, payment cards, IBANs, IP addresses (input and output)."""

    name = "pii"
    kinds = frozenset({"EMAIL", "PHONE", "CARD", "IBAN", "IP"})


class Exfiltration(Guard):
    """Links and markdown images to hosts not allowed, and the system prompt echoed back.

    An allowed host allows its subdomains too.
    """

    name = "exfiltration"
    stages: tuple[Stage, ...] = ("output",)
    redactable = True
    _URL = re.compile(r"https?://[^\s)\]>\"']+", re.IGNORECASE)

    def __init__(
        self, allowed_hosts: Iterable[str] = (), *, action: Action = "block"
    ) -> None:
        super().__init__(action)
        self.allowed = tuple(host.lower().lstrip(".") for host in allowed_hosts)

    def _allowed(self, host: str) -> bool:
        return any(host == a or host.endswith("." + a) for a in self.allowed)

    def find(self, text: str, source: str) -> list[Finding]:
        """Links and markdown images to hosts that are not allowed."""
        found = []
        for match in self._URL.finditer(text):
            host = (urlsplit(match.group()).hostname or "").lower()
            if host and not self._allowed(host):
                found.append(
                    Finding(self.name, "link", source, match.start(), match.end())
                )
        return found

    def check_output(self, text: str, system: str) -> list[Finding]:
        """Links to other hosts, and the system prompt echoed back (40+ characters)."""
        found = self.find(text, "output")
        probe = system.strip()[:40]
        if len(probe) >= 40:
            at = text.find(probe)
            if at >= 0:
                found.append(Finding(self.name, "system_prompt", "output", at, at + 40))
        return found


class Check(Guard):
    """Your own check of the answer: ``fn(text)`` returns True when it is fine."""

    name = "check"
    stages: tuple[Stage, ...] = ("output",)

    def __init__(
        self,
        fn: Callable[[str], bool],
        *,
        name: str | None = None,
        action: Action = "block",
    ) -> None:
        super().__init__(action)
        self.fn = fn
        self.name = name or str(getattr(fn, "__name__", "check"))

    def find(self, text: str, source: str) -> list[Finding]:
        """One finding when ``fn`` says no."""
        return (
            [] if self.fn(text) else [Finding(self.name, "check", source, 0, len(text))]
        )


# -- prompt injection ----------------------------------------------------------------

# (category, weight, pattern): weights combine as independent evidence.
_INJECTION_RULES: list[tuple[str, float, re.Pattern[str]]] = [
    (
        "instruction_override",
        0.7,
        re.compile(
            r"\b(ignore|disregard|forget|skip|override)\b[^.\n]{0,40}\b(previous|prior|above|earlier|all|any|your|the)\b[^.\n]{0,30}\b(instructions?|prompts?|rules|guidelines|directions|context)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "instruction_override",
        0.5,
        re.compile(
            r"\b(new|updated|real|actual)\s+(system\s+)?(instructions?|prompt|rules)\s*:|\bsystem\s*prompt\s*:|\byou\s+are\s+now\b",
            re.IGNORECASE,
        ),
    ),
    (
        "role_play_jailbreak",
        0.6,
        re.compile(
            r"\b(DAN|do anything now|developer mode|jailbr(eak|oken)|unfiltered|uncensored)\b|\bpretend\s+(to\s+be|you\s+are)\b|\bact\s+as\s+(an?\s+)?(unrestricted|evil|unfiltered)|\bno\s+(restrictions|filters|limitations|rules)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "secret_request",
        0.5,
        re.compile(
            r"\b(reveal|print|show|repeat|output|tell me)\b[^.\n]{0,30}\b(system prompt|your instructions|hidden instructions|initial prompt|api key|password|secret)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "tool_coercion",
        0.5,
        re.compile(
            r"\b(call|invoke|use|run|execute)\s+(the\s+)?(\w+\s+)?(tool|function|command|shell|code)\b[^.\n]{0,40}\b(now|immediately|without)\b|\bsend\b[^.\n]{0,40}\b(conversation|data|contents|history|credentials)\b[^.\n]{0,20}\bto\b|\b(curl|wget)\s+https?://",
            re.IGNORECASE,
        ),
    ),
    (
        "hidden_text",
        0.4,
        re.compile(
            r"<!--[\s\S]*?-->|display\s*:\s*none|font-size\s*:\s*0", re.IGNORECASE
        ),
    ),
]
_INVISIBLE = re.compile(
    "[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]"
)


def injection_score(text: str) -> tuple[float, list[tuple[str, int, int]]]:
    """A heuristic score in [0, 1] and the (category, start, end) that made it.

    Instruction-override phrases, role-play jailbreak patterns, requests for the system
    prompt or secrets, tool-call coercion, and hidden text or invisible Unicode
    (zero-width characters, bidirectional overrides, tag characters). Each category
    counts once; the score is 1 - Π(1 - weight).
    """
    hits: list[tuple[str, int, int]] = []
    seen: dict[str, float] = {}
    for category, weight, pattern in _INJECTION_RULES:
        match = pattern.search(text)
        if match is not None:
            hits.append((category, match.start(), match.end()))
            seen[category] = max(seen.get(category, 0.0), weight)
    invisible = _INVISIBLE.search(text)
    if invisible is not None or any(
        unicodedata.category(c) == "Cf" for c in text[:4000] if ord(c) > 0x2000
    ):
        start = invisible.start() if invisible is not None else 0
        hits.append(("hidden_text", start, start + 1))
        seen["hidden_text"] = max(seen.get("hidden_text", 0.0), 0.5)
    remaining = 1.0
    for weight in seen.values():
        remaining *= 1.0 - weight
    return 1.0 - remaining, hits


class PromptInjection(Guard):
    """A heuristic injection score on untrusted text: users, tools, retrieved documents.

    ``classifier``: a function of the text returning a score in [0, 1] (a model-based
    detector); the higher of the two scores counts.
    """

    name = "prompt_injection"
    untrusted_only = True

    def __init__(
        self,
        threshold: float = 0.5,
        *,
        classifier: Callable[[str], float] | None = None,
        action: Action = "block",
    ) -> None:
        super().__init__(action)
        if not 0 < threshold <= 1:
            msg = f"PromptInjection(threshold=) must be in (0, 1], got {threshold!r}"
            raise ConfigError(msg, field="threshold")
        self.threshold = threshold
        self.classifier = classifier

    def find(self, text: str, source: str) -> list[Finding]:
        """One finding per category when the text's score reaches the threshold."""
        score, hits = injection_score(text)
        if self.classifier is not None:
            score = max(score, float(self.classifier(text)))
            if not hits:
                hits = [("classifier", 0, len(text))]
        if score < self.threshold:
            return []
        return [
            Finding(self.name, category, source, start, end, round(score, 3))
            for category, start, end in hits
        ]
