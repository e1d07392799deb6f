"""Redaction: secrets and personal data become typed, numbered placeholders.

``[EMAIL_1]``, ``[PHONE_1]``, ``[CARD_1]``, ``[IBAN_1]``, ``[IP_1]``, ``[SECRET_1]`` (every
kind of secret), and the user's own kinds (``configure(redact_patterns={...})``).
Numbers are per trace: the same value keeps the same placeholder across the calls,
inputs and outputs of one trace, so a redacted trace still reads as a conversation.

Detection leans on the field's libraries where they fit: Google's libphonenumber
(``phonenumbers``) validates phone numbers, ``python-stdnum`` the Luhn check of payment
cards and the IBAN checksum; candidates are found first with cheap regular expressions,
so ordinary text costs little. The secret patterns follow what ``detect-secrets`` covers
(provider API keys, tokens, private keys, passwords in URLs).
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["Redactor", "redact"]

# Secrets: each pattern matches the secret itself (group "s" when only part of the match).
_SECRET_PATTERNS = [
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
    r"\bsk-ant-[A-Za-z0-9_\-]{20,}",  # Anthropic
    r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",  # OpenAI
    r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",  # AWS access key id
    r"(?i)aws_?secret_?access_?key\s*[=:]\s*[\"']?(?P<s>[A-Za-z0-9/+=]{40})",
    r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",  # GitHub
    r"\bgithub_pat_[A-Za-z0-9_]{22,}\b",
    r"\bglpat-[A-Za-z0-9_\-]{20,}\b",  # GitLab
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b",  # Slack
    r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}\b",  # Stripe
    r"\bAIza[0-9A-Za-z_\-]{35}\b",  # Google API key
    r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b",  # SendGrid
    r"\b(?:AC|SK)[0-9a-f]{32}\b",  # Twilio
    r"\bnpm_[A-Za-z0-9]{36}\b",  # npm
    r"\bhf_[A-Za-z0-9]{30,}\b",  # Hugging Face
    r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",  # JWT
    r"(?i)\bbearer\s+(?P<s>[A-Za-z0-9._~+/\-]{16,}=*)",
    r"\b[a-z][a-z0-9+.\-]*://[^\s:/@]+:(?P<s>[^\s@/]+)@",  # password in a URL
    r"(?i)\b(?:password|passwd|pwd|secret|api_?key|token)\s*[=:]\s*[\"']?(?P<s>[^\s\"',;]{8,})",
]
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"(?<![\d-])(?:\d[ \-]?){12,18}\d(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
# Phone candidates: 7+ digits with the usual separators, optionally international.
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.\-]?)?(?:\(\d{1,4}\)[\s.\-]?)?\d[\d\s.\-]{5,16}\d(?!\w)"
)
_DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}$|^\d{2}[./-]\d{2}[./-]\d{2,4}$")


def _cards(text: str) -> Iterator[tuple[int, int]]:
    from stdnum import luhn

    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and luhn.is_valid(digits):
            yield match.span()


def _ibans(text: str) -> Iterator[tuple[int, int]]:
    from stdnum import iban

    for match in _IBAN.finditer(text):
        if iban.is_valid(match.group()):
            yield match.span()


def _ips(text: str) -> Iterator[tuple[int, int]]:
    for pattern in (_IPV4, _IPV6):
        for match in pattern.finditer(text):
            candidate = match.group()
            if candidate.count(":") >= 2 and not re.search(r"[0-9A-Fa-f]", candidate):
                continue
            try:
                ipaddress.ip_address(candidate)
            except ValueError:
                continue
            yield match.span()


def _phones(text: str, region: str) -> Iterator[tuple[int, int]]:
    import phonenumbers

    for match in _PHONE.finditer(text):
        candidate = match.group().strip()
        if _DATE_LIKE.match(candidate):
            continue
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            start = match.start() + (len(match.group()) - len(match.group().lstrip()))
            yield start, start + len(candidate)


class Redactor:
    r"""Finds what to hide in text and replaces it with numbered placeholders.

    Args:
        patterns: Extra kinds: ``{"EMPLOYEE_ID": r"E-\\d{6}"}``.
        redactor: A function of the text run after the built-in detectors (e.g. a
            model-based PII detector); returns the text to keep.
        phone_region: Region for numbers written without a country code.
    """

    def __init__(
        self,
        patterns: Mapping[str, str] | None = None,
        redactor: Callable[[str], str] | None = None,
        phone_region: str = "US",
    ) -> None:
        self.secrets = [re.compile(p) for p in _SECRET_PATTERNS]
        self.custom = [
            (kind.upper(), re.compile(p)) for kind, p in (patterns or {}).items()
        ]
        self.redactor = redactor
        self.phone_region = phone_region
        self._numbers: OrderedDict[str, dict[tuple[str, str], str]] = OrderedDict()
        self._lock = threading.Lock()

    def findings(self, text: str) -> list[tuple[int, int, str]]:
        """Where secrets and personal data are: (start, end, kind), left to right."""
        found: list[tuple[int, int, str]] = []
        for pattern in self.secrets:
            for match in pattern.finditer(text):
                group = "s" if "s" in pattern.groupindex and match.group("s") else 0
                found.append((match.start(group), match.end(group), "SECRET"))
        for kind, pattern in self.custom:
            found.extend((m.start(), m.end(), kind) for m in pattern.finditer(text))
        found.extend((m.start(), m.end(), "EMAIL") for m in _EMAIL.finditer(text))
        if any(c.isdigit() for c in text):
            found.extend((s, e, "CARD") for s, e in _cards(text))
            found.extend((s, e, "IBAN") for s, e in _ibans(text))
            found.extend((s, e, "IP") for s, e in _ips(text))
            found.extend((s, e, "PHONE") for s, e in _phones(text, self.phone_region))
        # Earlier and longer findings win where two overlap.
        found.sort(key=lambda f: (f[0], -(f[1] - f[0])))
        kept: list[tuple[int, int, str]] = []
        for start, end, kind in found:
            if kept and start < kept[-1][1]:
                continue
            kept.append((start, end, kind))
        return kept

    def redact(self, text: str, scope: str = "") -> str:
        """``text`` with every finding replaced by its placeholder (numbered per scope)."""
        findings = self.findings(text)
        if findings:
            with self._lock:
                numbers = self._numbers.get(scope)
                if numbers is None:
                    numbers = self._numbers[scope] = {}
                    while len(self._numbers) > 1024:  # old traces are forgotten
                        self._numbers.popitem(last=False)
                parts = []
                last = 0
                for start, end, kind in findings:
                    value = text[start:end]
                    placeholder = numbers.get((kind, value))
                    if placeholder is None:
                        count = sum(1 for k, _ in numbers if k == kind) + 1
                        placeholder = numbers[(kind, value)] = f"[{kind}_{count}]"
                    parts.append(text[last:start])
                    parts.append(placeholder)
                    last = end
                parts.append(text[last:])
                text = "".join(parts)
        if self.redactor is not None:
            text = self.redactor(text)
        return text

    def redact_value(self, value: Any, scope: str = "") -> Any:
        """Every string inside ``value`` (dicts, lists) redacted."""
        if isinstance(value, str):
            return self.redact(value, scope)
        if isinstance(value, Mapping):
            return {k: self.redact_value(v, scope) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_value(v, scope) for v in value]
        return value


_DEFAULT: Redactor | None = None


def redact(text: str) -> str:
    """``text`` with secrets and personal data replaced by typed placeholders.

    Uses the ``redact_patterns``/``redactor`` settings; inside a trace, numbers follow
    that trace's (the same value gets the same placeholder as in its spans).

    Added in 0.1.
    """
    import aisys

    runtime = aisys._DEFAULT
    return runtime.redactor.redact(text, _current_trace())


def _current_trace() -> str:
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else ""
