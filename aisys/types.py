"""The data users see: messages, responses, usage, cost, documents.

Frozen pydantic models, so they validate on the way in and cannot change under a span.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CHAT_PARAMS",
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "Cost",
    "Document",
    "EmbeddingResponse",
    "Message",
    "ToolCall",
    "Usage",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


CHAT_PARAMS = frozenset(
    {
        "frequency_penalty",
        "max_tokens",
        "n",
        "presence_penalty",
        "response_format",
        "seed",
        "stop",
        "temperature",
        "tool_choice",
        "tools",
        "top_k",
        "top_p",
        "user",
    }
)
"""The provider-neutral chat parameters; anything else goes in ``extra={...}``."""


class Usage(BaseModel):
    """Tokens of one call.

    ``input_tokens`` includes cached input tokens, as in the GenAI semantic conventions;
    ``output_tokens`` includes reasoning tokens. ``estimated`` is true when aisys counted
    the tokens itself because the provider did not report them.

    Added in 0.1.
    """

    model_config = _FROZEN

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cache_read_input_tokens: int = Field(default=0, ge=0)
    cache_write_input_tokens: int = Field(default=0, ge=0)
    reasoning_output_tokens: int = Field(default=0, ge=0)
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        """Both calls' tokens (estimated if either was): usage adds, as bills do.

        Added in 0.1.
        """
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens
            + other.cache_read_input_tokens,
            cache_write_input_tokens=self.cache_write_input_tokens
            + other.cache_write_input_tokens,
            reasoning_output_tokens=self.reasoning_output_tokens
            + other.reasoning_output_tokens,
            estimated=self.estimated or other.estimated,
        )


class Cost(BaseModel):
    """What a call cost in USD; ``usd`` is ``None`` when the price is unknown, never 0.

    ``status`` is ``priced`` (reported usage times a known price), ``estimated`` (usage
    aisys counted itself, because the provider reported none) or ``unknown`` (no
    price: ``usd``, ``input_usd`` and ``output_usd`` are ``None``). ``input_usd``
    includes cache reads and writes; ``price_table`` says where the price came from
    (``"genai-prices 0.2.3"`` or ``"override"``).

    Added in 0.1.
    """

    model_config = _FROZEN

    usd: Decimal | None = None
    status: Literal["priced", "unknown", "estimated"] = "unknown"
    price_table: str | None = None
    input_usd: Decimal | None = None
    output_usd: Decimal | None = None


class ToolCall(BaseModel):
    """A tool the model asked to call, with its arguments as a JSON string."""

    model_config = _FROZEN

    id: str
    name: str
    arguments: str = "{}"


class Message(BaseModel):
    """One chat message in the OpenAI shape (``role`` and ``content``).

    Added in 0.1.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()


class ChatResponse(BaseModel):
    """A model's answer, normalised across providers.

    Added in 0.1.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    model: str | None = None
    provider: str | None = None
    id: str | None = None
    usage: Usage = Usage()  # frozen: one shared default, no factory call per answer
    cost: Cost = Cost()
    cached: bool = False
    attempts: int = 1
    fallback_index: int = 0
    parsed: Any = None
    """The answer validated as the call's ``response_model`` (structured output)."""
    raw: Any = Field(default=None, repr=False)
    trace_id: str | None = None
    """The call's trace (32 hex digits), for `aisys.score` and `aisys.feedback`."""
    span_id: str | None = None
    """The call's span (16 hex digits); ``None`` when no span was recorded."""

    @property
    def message(self) -> Message:
        """The answer as an assistant `Message`."""
        return Message(
            role="assistant", content=self.text or None, tool_calls=self.tool_calls
        )


class Document(BaseModel):
    """A retrieved document: its text, an id and a relevance score where known.

    Added in 0.1.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    content: str = ""
    id: str | None = None
    score: float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ChatChunk(BaseModel):
    """One piece of a streamed answer: new text, and the finish reason on the last one.

    Added in 0.1.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    text: str = ""
    finish_reason: str | None = None
    raw: Any = Field(default=None, repr=False)


class EmbeddingResponse(BaseModel):
    """Vectors for a list of texts, in the order given.

    Added in 0.1.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    vectors: list[list[float]]
    model: str | None = None
    provider: str | None = None
    usage: Usage = Usage()
    raw: Any = Field(default=None, repr=False)


class ChatRequest(BaseModel):
    """A provider-neutral chat request: what adapters translate to their wire format.

    ``messages`` are OpenAI-style dicts; ``params`` holds ``temperature``,
    ``max_tokens``, ``tools`` … and ``extra`` fields passed to the provider as is.

    Added in 0.1.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)
    stream: bool = False


@dataclass(frozen=True, slots=True)
class Score:
    """One evaluation result: a value in [0, 1] and/or a label, and why.

    What scorers return (a float or a bool is turned into one) and what `aisys.score`
    records as a ``gen_ai.evaluation.result``. ``error`` is the exception type when the
    scorer raised (the value is then ``None``).

    Added in 0.2.
    """

    name: str
    value: float | None = None
    label: str | None = None
    explanation: str | None = None
    error: str | None = None
    cost_usd: Decimal | None = None
    """What producing the score cost (a judge's call); ``None`` for free scorers."""
