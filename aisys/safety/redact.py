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

import functools
import ipaddress
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

__all__ = ["Redactor", "detector", "placeholders"]

# Secrets: each pattern is tried only where one of its needles starts (the text is never
# scanned for them as a whole), so ordinary prose costs a few substring searches. Needles
# are looked for in the lower-cased text, or as written when the pattern's flag says so;
# group "s" is the secret when it is only part of the match.
_SECRETS: list[tuple[str, tuple[str, ...], bool]] = [
    (
        r"(?i)-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
        ("-----begin",),
        False,
    ),
    (r"\bsk-ant-[A-Za-z0-9_\-]{20,}", ("sk-ant-",), False),  # Anthropic
    (r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}", ("sk-",), False),  # OpenAI
    (
        r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",
        ("AKIA", "ASIA", "ABIA", "ACCA"),
        True,
    ),  # AWS access key id
    (
        r"(?i)aws_?secret_?access_?key\s*[=:]\s*[\"']?(?P<s>[A-Za-z0-9/+=]{40})",
        ("aws",),
        False,
    ),
    (
        r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        True,
    ),  # GitHub
    (r"\bgithub_pat_[A-Za-z0-9_]{22,}\b", ("github_pat_",), True),
    (r"\bglpat-[A-Za-z0-9_\-]{20,}\b", ("glpat-",), True),  # GitLab
    (r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b", ("xox",), True),  # Slack
    (
        r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}\b",
        ("sk_live_", "rk_live_", "sk_test_", "rk_test_"),
        True,
    ),  # Stripe
    (r"\bAIza[0-9A-Za-z_\-]{35}\b", ("AIza",), True),  # Google API key
    (
        r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b",
        ("SG.",),
        True,
    ),  # SendGrid
    (r"\b(?:AC|SK)[0-9a-f]{32}\b", ("AC", "SK"), True),  # Twilio
    (r"\bnpm_[A-Za-z0-9]{36}\b", ("npm_",), True),  # npm
    (r"\bhf_[A-Za-z0-9]{30,}\b", ("hf_",), True),  # Hugging Face
    (
        r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
        ("eyJ",),
        True,
    ),  # JWT
    (
        # After an Authorization header's scheme, any value is a credential.
        r"(?i)\bauthorization\s*[=:]\s*(?:bearer|basic|token|apikey)\s+"
        r"(?P<s>[^\s\"',;]+)",
        ("authorization",),
        False,
    ),
    (
        # A bare "Bearer <token>": long, or with a digit (not "the bearer of news").
        r"(?i)\bbearer\s+(?P<s>[A-Za-z0-9._~+/\-]{16,}=*"
        r"|(?=[A-Za-z._~+/\-]*\d)[A-Za-z0-9._~+/\-]{6,}=*)",
        ("bearer",),
        False,
    ),
    (r"://[^\s:/@]+:(?P<s>[^\s@/]+)@", ("://",), True),  # password in a URL
    (
        # A value after a secret's keyword, on the same line, is a secret whatever its
        # length; it must end where a value ends: `token = jwt.encode(...)` is code,
        # and `if not token:` ends its line.
        r"(?i)\b(?:password|passwd|pwd|secret|api_?key|token)[ \t]*[=:][ \t]*[\"']?"
        r"(?P<s>[^\s\"',;(){}\[\]]+)(?=[\s\"',;]|$)",
        ("password", "passwd", "pwd", "secret", "apikey", "api_key", "token"),
        False,
    ),
]
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9._%+\-]+\Z")
_EMAIL_DOMAIN = re.compile(r"[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b")
# One pass finds every run of digits that could be a card, a phone number, an IP or
# the body of an IBAN (a leading "+" or "(" is taken in afterwards: cheaper).
_DIGITS = re.compile(r"\d[\d \-.()]{5,}\d")
_IBAN = re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}$|^\d{2}[./-]\d{2}[./-]\d{2,4}$")


_NON_DIGIT = re.compile(r"\D")


def _digit_findings(
    text: str,
    runs: list[re.Match[str]],
    region: str,
    taken: list[tuple[int, int]],
) -> Iterator[tuple[int, int, str]]:
    """Cards (Luhn), IPv4 addresses and phone numbers (libphonenumber) in digit runs.

    ``taken``: spans already found (IBANs), blanked out of the runs first.
    """
    for match in runs:
        start = match.start()
        if start and text[start - 1] == "(":
            start -= 1
        if start and text[start - 1] == "+":
            start -= 1
        end = match.end()
        run = text[start:end]
        for lo, hi in taken:
            if lo < end and hi > start:
                lo, hi = max(lo, start) - start, min(hi, end) - start
                run = run[:lo] + " " * (hi - lo) + run[hi:]
        if run.count(".") >= 3:
            for ip in _IPV4.finditer(run):
                try:
                    ipaddress.ip_address(ip.group())
                except ValueError:
                    continue
                yield start + ip.start(), start + ip.end(), "IP"
                # Blank the address out, keeping offsets, and look at the rest.
                run = (
                    run[: ip.start()] + " " * (ip.end() - ip.start()) + run[ip.end() :]
                )
        card = _card_in(run)
        if card is not None:
            yield start + card[0], start + card[1], "CARD"
            run = run[: card[0]] + " " * (card[1] - card[0]) + run[card[1] :]
        digits = _NON_DIGIT.sub("", run)
        if len(digits) >= 7 and not _DATE_LIKE.match(run.strip()):
            yield from _phone(run, start, region)


_GROUP = re.compile(r"\d+")


def _card_in(run: str) -> tuple[int, int] | None:
    """A Luhn-valid card number made of consecutive digit groups of ``run``."""
    from stdnum import luhn

    groups = [(m.start(), m.end()) for m in _GROUP.finditer(run)]
    for first in range(len(groups)):
        digits = ""
        for last in range(first, len(groups)):
            if last > first and run[groups[last - 1][1] : groups[last][0]] not in (
                " ",
                "-",
            ):
                break
            digits += run[groups[last][0] : groups[last][1]]
            if len(digits) > 19:
                break
            if len(digits) >= 13 and luhn.is_valid(digits):
                return groups[first][0], groups[last][1]
    return None


def _phone(run: str, start: int, region: str) -> Iterator[tuple[int, int, str]]:
    """Phone numbers in a digit run.

    When the whole run is not one, its windows of whitespace-separated tokens are
    tried, longest first (a number written next to another).
    """
    import phonenumbers

    try:
        found = list(phonenumbers.PhoneNumberMatcher(run, region))
    except Exception:
        found = []
    if found:
        for item in found:
            yield start + item.start, start + item.end, "PHONE"
        return
    tokens = [(m.start(), m.end()) for m in re.finditer(r"\S+", run)]
    for size in range(min(len(tokens) - 1, 6), 0, -1):  # a number is a few tokens
        for first in range(len(tokens) - size + 1):
            left, right = tokens[first][0], tokens[first + size - 1][1]
            window = run[left:right]
            if not 7 <= len(_NON_DIGIT.sub("", window)) <= 15:
                continue
            try:
                number = phonenumbers.parse(window, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                yield start + left, start + right, "PHONE"
                return


def _ibans(text: str, runs: list[re.Match[str]]) -> Iterator[tuple[int, int]]:
    """IBANs with a valid checksum: each starts a little before a run of digits."""
    from stdnum import iban

    seen = -1
    for run in runs:
        lo = max(0, run.start() - 12, seen)
        for head in _IBAN_START.finditer(text, lo, run.start() + 2):
            match = _IBAN.match(text, head.start())
            if match is None:
                continue
            candidate = match.group()
            # The pattern may run into a following number: drop trailing groups
            # until the checksum holds (or too little is left).
            while len(candidate.replace(" ", "")) >= 15:
                if iban.is_valid(candidate):
                    seen = match.start() + len(candidate)
                    yield match.start(), seen
                    break
                if " " not in candidate:
                    break
                candidate = candidate.rsplit(" ", 1)[0]
            if seen > head.start():
                break


def _emails(text: str) -> Iterator[tuple[int, int]]:
    """Addresses around each "@" (the text is never scanned for them as a whole)."""
    at = text.find("@")
    while at >= 0:
        local = _EMAIL_LOCAL.search(text, max(0, at - 64), at) if at else None
        domain = _EMAIL_DOMAIN.match(text, at + 1)
        if local is not None and domain is not None:
            start = local.start()
            while start < at and not text[start].isalnum():
                start += 1  # an address starts with a letter or digit
            if start < at:
                yield start, domain.end()
        at = text.find("@", at + 1)


def _ipv6(text: str) -> Iterator[tuple[int, int]]:
    if text.count(":") < 2:
        return
    for match in _IPV6.finditer(text):
        candidate = match.group()
        if not re.search(r"[0-9A-Fa-f]", candidate):
            continue
        try:
            ipaddress.ip_address(candidate)
        except ValueError:
            continue
        yield match.span()


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
        self.secrets = [
            (re.compile(p), needles, cased) for p, needles, cased in _SECRETS
        ]
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
        lowered = text.lower()
        underscore = (
            "_" in text
        )  # a third of the needles have one: one search skips them
        for pattern, needles, cased in self.secrets:
            within = text if cased else lowered
            group = "s" if "s" in pattern.groupindex else 0
            for needle in needles:
                if not underscore and "_" in needle:
                    continue
                at = within.find(needle)
                while at >= 0:
                    match = pattern.match(text, at)
                    if match is not None:
                        found.append((match.start(group), match.end(group), "SECRET"))
                    at = within.find(needle, at + 1)
        for kind, pattern in self.custom:
            found.extend((m.start(), m.end(), kind) for m in pattern.finditer(text))
        found.extend((s, e, "EMAIL") for s, e in _emails(text))
        runs = list(_DIGITS.finditer(text))
        if runs:
            ibans = list(_ibans(text, runs))
            found.extend((s, e, "IBAN") for s, e in ibans)
            found.extend(_digit_findings(text, runs, self.phone_region, ibans))
        found.extend((s, e, "IP") for s, e in _ipv6(text))
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
                text = placeholders(text, findings, numbers)
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


@functools.cache
def detector() -> Redactor:
    """The built-in detectors alone (no settings): what the guards look for."""
    return Redactor()


def placeholders(
    text: str,
    findings: Iterable[tuple[int, int, str]],
    numbers: dict[tuple[str, str], str],
) -> str:
    """``text`` with each (start, end, kind) replaced by its typed, numbered placeholder.

    The one placeholder format of aisys (``[EMAIL_1]``, ``[SECRET_2]``): ``numbers``
    holds the ones given so far, so the same value keeps its placeholder. Findings are
    taken left to right, the longer first; one that overlaps an earlier one is left
    out.
    """
    parts = []
    last = 0
    for start, end, kind in sorted(findings, key=lambda f: (f[0], f[0] - f[1])):
        if start < last:
            continue
        value = text[start:end]
        placeholder = numbers.get((kind, value))
        if placeholder is None:
            count = sum(1 for k, _ in numbers if k == kind) + 1
            placeholder = numbers[(kind, value)] = f"[{kind}_{count}]"
        parts.append(text[last:start])
        parts.append(placeholder)
        last = end
    parts.append(text[last:])
    return "".join(parts)
