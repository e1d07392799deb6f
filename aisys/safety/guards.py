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
the chain instead; ``review`` lets the call go on and queues it for a person
(`aisys.ReviewQueue`); ``handoff`` withholds the answer (input: nothing is sent),
queues the call, and raises `aisys.HandoffRequired` with the item's id. Findings say
which guard, what kind, where (the message or part it
came from, and the character offsets) — never the text that was found.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from aisys.errors import ConfigError
from aisys.safety.redact import detector

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
    "guards_of",
    "injection_score",
]

Action = Literal["block", "flag", "redact", "fallback", "review", "handoff"]
Stage = Literal["input", "output"]
_ACTIONS = ("block", "flag", "redact", "fallback", "review", "handoff")


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
    per_chunk = False
    """Whether ``action="redact"`` on a stream redacts each chunk before delivery
    (what it finds never spans whitespace, but after a keyword); otherwise the
    whole answer is checked when the stream ends."""

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
        """The built-in detectors' findings of this guard's kinds."""
        return [
            Finding(self.name, kind, source, start, end)
            for start, end, kind in detector().findings(text)
            if kind in self.kinds
        ]


class Secrets(_Detected):
    """API keys, tokens, private keys, passwords in URLs (input and output)."""

    name = "secrets"
    kinds = frozenset({"SECRET"})
    per_chunk = True


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

# (category, weight, needles, pattern): weights combine as independent evidence. The
# patterns are written in lower case and run on the lower-cased text (twice as fast as
# case-blind matching), each only when one of its needles is there.
_INJECTION_RULES: list[tuple[str, float, tuple[str, ...], re.Pattern[str]]] = [
    (
        "instruction_override",
        0.7,
        (
            "ignore",
            "disregard",
            "forget",
            "skip",
            "override",
            "bypass",
            "abandon",
            "let go",
        ),
        re.compile(
            r"\b(ignore|disregard|forget|skip|override|bypass|abandon|let\s+go\s+of)\b"
            r"[^.\n]{0,40}\b(previous|prior|above|earlier|all|any|your|the|these|this|"
            r"that|rest\s+of)\b[^.\n]{0,30}\b(instructions?|prompts?|rules|guidelines|"
            r"directions|directives|context|commands?|orders|constraints|restrictions|"
            r"polic(y|ies)|programming)\b",
        ),
    ),
    (
        # Weaker nouns: "ignore my previous message" is what customers write too.
        "instruction_override",
        0.4,
        ("ignore", "disregard", "forget", "skip"),
        re.compile(
            r"\b(ignore|disregard|forget|skip)\b[^.\n]{0,40}\b(all|any|the\s+rest\s+of)"
            r"\b[^.\n]{0,20}\b(inputs?|messages?|data|info(rmation)?|content|text)\b",
        ),
    ),
    (
        "instruction_override",
        0.6,
        ("ignore", "disregard"),
        re.compile(
            r"\b(ignore|disregard)\s+(all\s+)?(instructions|directions|rules)\b",
        ),
    ),
    (
        "addressed_to_ai",
        0.5,
        ("note", "message", "instruction", "notice"),
        re.compile(
            r"\b(note|message|instructions?|notice)\s+(to|for)\s+(the\s+|any\s+)?"
            r"(automated|ai|llm|language\s+model|assistant|chatbot|bot|gpt|screening)\b",
        ),
    ),
    (
        "instruction_override",
        0.5,
        ("new", "updated", "real", "actual", "prompt", "you are now"),
        re.compile(
            r"\b(new|updated|real|actual)\s+(system\s+)?(instructions?|prompt|rules)\s*:"
            r"|\bsystem\s*prompt\s*:|\byou\s+are\s+now\b",
        ),
    ),
    (
        "role_play_jailbreak",
        0.6,
        (
            "dan",
            "do anything",
            "mode",
            "jailbr",
            "unfilt",
            "uncensored",
            "unrestricted",
            "amoral",
            "unlocked",
            "pretend",
            "no ",
            "without",
            "bound by",
            "never refuse",
            "character",
            "polic",
            "laws",
            "morals",
            "ethics",
        ),
        re.compile(
            r"\b(dan|do anything now|developer mode|debug(ging)? mode|jailbr(eak|oken)"
            r"|unfilt(e)?red|uncensored|unrestricted|amoral|(fully\s+)?unlocked)\b"
            r"|\bpretend\s+(to\s+be|you\s+are)\b"
            r"|\bno\s+(restrictions|filters|limitations|rules|censorship|morals|ethics)\b"
            r"|\bwithout\s+(any\s+)?(restrictions|filters|limitations|censorship|morals"
            r"|ethics|ethical)\b"
            r"|\bnot\s+bound\s+by\b|\bnever\s+refuses?\b|\bstays?\s+in\s+character\b"
            r"|\b(openai|content|usage)\s+polic(y|ies)\b"
            r"|\b(disregards?|ignores?|breaks?)\s+(all\s+)?(laws|morals|ethics)\b",
        ),
    ),
    (
        "persona_switch",
        0.35,
        (
            "from now on",
            "going to",
            "about to",
            "act as",
            "hypothetical",
            "simulate",
            "role",
        ),
        re.compile(
            r"\bfrom\s+now\s+on\b|\b(you\s+are|you're)\s+(now\s+)?(going|about)\s+to\s+"
            r"(act|pretend|play|simulate|imitate|be)\b|\bact\s+as\b|\bhypothetical\b"
            r"|\bsimulate\b|\brole\s*-?\s*play\b",
        ),
    ),
    (
        "secret_request",
        0.5,
        ("reveal", "print", "show", "repeat", "output", "tell me"),
        re.compile(
            r"\b(reveal|print|show|repeat|output|tell me)\b[^.\n]{0,30}\b(system prompt|"
            r"your instructions|hidden instructions|initial prompt|api key|password|"
            r"secret)\b",
        ),
    ),
    (
        "goal_hijack",
        0.4,
        (
            "just",
            "only",
            "simply",
            "nothing else",
            "focus",
            "repeat",
            "print",
            "say",
            "output",
        ),
        re.compile(
            r"\b(just|only|simply)\s+(say|print|reply|respond|output|repeat|write)\b"
            r"|\b(reply|respond|answer)\s+(with\s+)?only\b|\bnothing\s+else\b"
            r"|\bfocus\s+(only|exclusively|solely)\s+on\b"
            r"|\b(repeat|print|say|output)\s+(the\s+following|exactly)\b",
        ),
    ),
    (
        "role_marker",
        0.4,
        (
            "system",
            "assistant",
            "user",
            "human",
            "<|im_",
            "[inst",
            "[/inst",
            "[sys",
            "[/sys",
            "<<sys>>",
            "<end of session>",
        ),
        re.compile(
            r"(^|\n)[ \t>]*(system|assistant|user|human)\s*:"
            r"|<\|im_(start|end)\|>|\[/?(inst|sys)\]|<<sys>>|<end of session>",
        ),
    ),
    (
        "tool_coercion",
        0.5,
        ("call", "invoke", "use", "run", "execute", "send", "curl", "wget"),
        re.compile(
            r"\b(call|invoke|use|run|execute)\s+(the\s+)?(\w+\s+)?(tool|function|command"
            r"|shell|code)\b[^.\n]{0,40}\b(now|immediately|without)\b|\bsend\b[^.\n]{0,40}"
            r"\b(conversation|data|contents|history|credentials)\b[^.\n]{0,20}\bto\b"
            r"|\b(curl|wget)\s+https?://",
        ),
    ),
    (
        "hidden_text",
        0.4,
        ("<!--", "display", "font-size", "white", "invisible"),
        re.compile(
            r"<!--(?s:.)*?-->|display\s*:\s*none|font-size\s*:\s*0|white[- ]text"
            r"|invisible\s+to\s+(humans|people|readers)",
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
    lowered = text.lower()
    for category, weight, needles, pattern in _INJECTION_RULES:
        if not any(needle in lowered for needle in needles):
            continue
        match = pattern.search(lowered)
        if match is not None:
            hits.append((category, match.start(), match.end()))
            seen[category] = max(seen.get(category, 0.0), weight)
    invisible = _INVISIBLE.search(text)
    if invisible is not None or (
        not text.isascii()
        and any(unicodedata.category(c) == "Cf" for c in text[:4000] if ord(c) > 0x2000)
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


def guards_of(owner: str, value: Any) -> tuple[Guard, ...]:
    """``guards=`` checked: one `Guard` or a list of them (never their names)."""
    items = (value,) if isinstance(value, Guard) else value
    if isinstance(items, list | tuple) and all(isinstance(g, Guard) for g in items):
        return tuple(items)
    wrong = (
        next((g for g in items if not isinstance(g, Guard)), value)
        if isinstance(items, list | tuple)
        else value
    )
    hint = (
        f"write the guard itself, e.g. aisys.guards.{_GUARD_NAMES.get(wrong.lower(), 'PII')}()"
        if isinstance(wrong, str)
        else ""
    )
    raise ConfigError(
        f"{owner}(guards=) takes aisys.guards objects (one or a list), got {wrong!r}"
        + (f"; {hint}" if hint else ""),
        field="guards",
    )


_GUARD_NAMES = {
    "pii": "PII",
    "secrets": "Secrets",
    "secret": "Secrets",
    "prompt_injection": "PromptInjection",
    "injection": "PromptInjection",
    "exfiltration": "Exfiltration",
    "max_input_tokens": "MaxInputTokens",
    "pattern": "Pattern",
    "check": "Check",
}
