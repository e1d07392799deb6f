"""Guards on a call's input and answer: ``aisys.guards.Secrets()``, ``PII()`` ….

The public face of `aisys.safety.guards`, where the rules live (with redaction, which
they share their detectors with); the step that runs them is `aisys.pipeline.guard`.
"""

from aisys.safety.guards import (
    PII,
    Check,
    Exfiltration,
    Finding,
    Guard,
    MaxInputTokens,
    Pattern,
    PromptInjection,
    Secrets,
    injection_score,
)

__all__ = [
    "PII",
    "Check",
    "Exfiltration",
    "Finding",
    "Guard",
    "MaxInputTokens",
    "Pattern",
    "PromptInjection",
    "Secrets",
    "injection_score",
]
