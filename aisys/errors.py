"""Every error aisys raises on purpose, in one tree.

```
AisysError
├── ConfigError(AisysError, ValueError)   a setting is wrong: names field, value, allowed
├── PromptError
├── GuardError
├── OutputValidationError(GuardError)
├── BudgetExceededError
├── BudgetStoreError                      a budget's store cannot be reached: refused
├── ProviderError                         .provider .status_code .retryable
│   ├── ProviderConnectionError           retryable
│   │   └── ProviderTimeoutError          retryable
│   ├── RateLimitError                    retryable, .retry_after_s
│   ├── ServerError                       retryable (5xx)
│   │   └── ResponseFormatError           a 2xx answer that cannot be read: a provider fault
│   ├── AuthenticationError
│   ├── BadRequestError
│   │   └── ContextLengthError            the prompt is too long for the model
│   └── CircuitOpenError                  skipped: the target's circuit breaker is open
└── AllTargetsFailedError                 .errors: each failed attempt's exception, in order;
                                          .attempts: the attempt records (aisys.Attempt)
AisysWarning(UserWarning)
```

Provider errors are filled in by the provider adapters; messages never contain prompt
text or API keys.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AisysError",
    "AisysWarning",
    "AllTargetsFailedError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "BudgetStoreError",
    "CircuitOpenError",
    "ConfigError",
    "ContextLengthError",
    "GuardError",
    "HandoffRequired",
    "OutputValidationError",
    "PromptError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "ResponseFormatError",
    "ServerError",
]


class AisysError(Exception):
    """Base of every error aisys raises on purpose."""


class AisysWarning(UserWarning):
    """Something worked, but not as well as it should (an unknown price, a dropped span)."""


class ConfigError(AisysError, ValueError):
    """A setting has a value aisys cannot use.

    The message names the field (and its environment variable), the value received
    and the values allowed.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PromptError(AisysError):
    """A prompt could not be found, rendered or approved."""


class GuardError(AisysError):
    """A guard rejected the input or the output of a call.

    Attributes:
        guard: The guard's name (``secrets``, ``prompt_injection`` …).
        action: Its action (``block``, or ``fallback`` when no target was left).
        findings: What it found — kind, source and offsets, never the text itself.
    """

    def __init__(
        self,
        message: str,
        *,
        guard: str | None = None,
        action: str | None = None,
        findings: tuple[Any, ...] = (),
    ) -> None:
        super().__init__(message)
        self.guard = guard
        self.action = action
        self.findings = findings


class HandoffRequired(GuardError):  # noqa: N818 - DESIGN.md's name: not an error to fix
    """A guard handed the call to a person: the answer was withheld, an item was queued.

    Tell your user a colleague will answer; the item is in the review queue.

    Attributes:
        item_id: The review item's id (``aisys review show ITEM_ID``).
        reason: Why (the guard and what it found, never the text).
        delivered_chunks: For a stream, how many chunks the caller already had.

    Added in 0.2.
    """

    def __init__(
        self,
        message: str,
        *,
        item_id: int | None = None,
        reason: str = "",
        guard: str | None = None,
        findings: tuple[Any, ...] = (),
        delivered_chunks: int = 0,
    ) -> None:
        super().__init__(message, guard=guard, action="handoff", findings=findings)
        self.item_id = item_id
        self.reason = reason
        self.delivered_chunks = delivered_chunks


class OutputValidationError(GuardError):
    """The model's output did not match the structure asked for, after every re-ask.

    Attributes:
        raw_text: The last answer's text.
        errors: The last validation errors (``loc``, ``msg``, ``type``).
        attempts: How many answers were asked for.
    """

    def __init__(
        self,
        message: str,
        *,
        raw_text: str = "",
        errors: list[Any] | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message, guard="response_model", action="block")
        self.raw_text = raw_text
        self.errors = errors or []
        self.attempts = attempts


class BudgetExceededError(AisysError):
    """A call would exceed a budget; nothing was sent.

    Attributes:
        budget: The budget's name.
        limit_usd: Its limit (`Decimal` USD).
        spent_usd: What its window had spent before this call.
        estimate_usd: What this call might have cost.
        resets_at: When the window starts anew (`datetime`, UTC); ``None`` for
            ``per="call"``.
    """

    def __init__(
        self,
        message: str,
        *,
        budget: str | None = None,
        limit_usd: Any = None,
        spent_usd: Any = None,
        estimate_usd: Any = None,
        resets_at: Any = None,
    ) -> None:
        super().__init__(message)
        self.budget = budget
        self.limit_usd = limit_usd
        self.spent_usd = spent_usd
        self.estimate_usd = estimate_usd
        self.resets_at = resets_at


class BudgetStoreError(AisysError):
    """A budget's store could not be reached, so the call was refused.

    Raised with ``on_store_error="fail"`` (the default); ``"allow"`` lets calls through
    with a warning instead.
    """


class ProviderError(AisysError):
    """A provider call failed.

    Attributes:
        provider: The provider name, e.g. ``"openai"``.
        status_code: The HTTP status, when there was a response.
        retryable: Whether trying again may succeed; decided by the class.
        retry_after_s: How long the provider asked to wait (``Retry-After``), if it did.
    """

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code
        self.retry_after_s = retry_after_s


class ProviderConnectionError(ProviderError):
    """The provider could not be reached, or the connection broke."""

    retryable = True


class ProviderTimeoutError(ProviderConnectionError):
    """The provider did not answer in time."""

    retryable = True


class RateLimitError(ProviderError):
    """The provider asked us to slow down (HTTP 429)."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = 429,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(
            message,
            provider=provider,
            status_code=status_code,
            retry_after_s=retry_after_s,
        )


class ServerError(ProviderError):
    """The provider failed on its side (HTTP 5xx)."""

    retryable = True


class AuthenticationError(ProviderError):
    """The provider refused the credentials (HTTP 401/403)."""


class BadRequestError(ProviderError):
    """The provider rejected the request as malformed (HTTP 400/404/422)."""


class ResponseFormatError(ServerError):
    """The provider answered something aisys cannot read: it says what was received.

    A 2xx whose body is not JSON, lacks the fields the protocol promises, or a stream
    that breaks its format before the first chunk: a fault on the provider's side, so
    retryable and a reason to move to a fallback, like a 502.
    """

    retryable = True


class ContextLengthError(BadRequestError):
    """The prompt does not fit the model's context window; a larger model may take it."""


class CircuitOpenError(ProviderError):
    """The target was skipped without a request: its circuit breaker is open."""


class AllTargetsFailedError(AisysError):
    """Every target of a fallback chain failed (or was skipped, or the deadline ran out).

    Attributes:
        errors: The exception of each attempt that failed, in the order made (a
            skipped target's `CircuitOpenError` included). ``__cause__`` is the last.
        attempts: Every attempt record in the order made, each with ``.target``,
            ``.error``, ``.outcome`` (``ok``, ``error``, ``skipped``, ``deadline``),
            ``.status_code``, ``.wait_s``, ``.elapsed_s`` and ``.fallback_index``.
    """

    def __init__(
        self,
        message: str,
        errors: tuple[BaseException, ...],
        attempts: tuple[Any, ...] = (),
    ) -> None:
        super().__init__(message)
        self.errors = errors
        self.attempts = attempts
