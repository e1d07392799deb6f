"""Call: the facts about one logical call, gathered as it runs.

Instrumentation and, later, pipeline steps write facts here; only `aisys.telemetry`
turns them into spans, metrics and log events. A plain slotted class: it is made on
every call, so it stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aisys.context import Scope

__all__ = ["Billed", "Call", "prompt_facts", "requests_made"]

Billed = tuple[str | None, str | None, str | None, str | None, dict[str, int]]
"""An answer billed but not delivered: provider, model, endpoint, ``price_as``, usage."""


def prompt_facts(prompt: Any) -> tuple[str, str, str] | None:
    """(name, version, sha256) of an `aisys.Prompt`, as calls carry it."""
    if prompt is None:
        return None
    return (str(prompt.name), str(prompt.version), str(prompt.sha256))


def requests_made(attempts: list[Any]) -> int:
    """How many requests the attempts sent (skipped and out-of-time ones send none)."""
    return sum(1 for attempt in attempts if attempt.made_request)


class Call:
    """What aisys knows about one call: request, response, usage, outcome."""

    __slots__ = (
        "attempts",
        "attributes",
        "billed",
        "budget",
        "cache_backend",
        "cache_hit",
        "cache_result",
        "cache_saved_usd",
        "chunk_redactor",
        "closed_early",
        "cost",
        "data_source",
        "documents",
        "endpoint",
        "error",
        "estimated",
        "fallback_index",
        "finish_reasons",
        "finishers",
        "guard_findings",
        "input_messages",
        "input_name",
        "input_value",
        "kind",
        "name",
        "online",
        "operation",
        "output_checks",
        "output_text",
        "placeholders",
        "price_as",
        "prompt",
        "provider",
        "query",
        "request_model",
        "request_params",
        "response",
        "response_id",
        "response_model",
        "review",
        "review_reasons",
        "scope",
        "scores",
        "server_address",
        "server_port",
        "span_id",
        "started_as",
        "started_with",
        "stream_chunks",
        "stream_texts",
        "target",
        "tool_name",
        "top_k",
        "trace_id",
        "ttft_s",
        "unread",
        "usage",
    )

    def __init__(
        self,
        kind: str,
        operation: str,
        *,
        name: str | None = None,
        provider: str | None = None,
        request_model: str | None = None,
        scope: Scope | None = None,
    ) -> None:
        self.kind = kind
        """``llm``, ``retrieval``, ``step`` or ``trace``: what sort of span this call makes."""
        self.operation = operation
        self.name = name
        """A span name fixed by the user; otherwise derived from operation and model."""
        self.provider = provider
        self.request_model = request_model
        self.scope = scope
        self.response_model: str | None = None
        self.response_id: str | None = None
        self.finish_reasons: tuple[str, ...] = ()
        self.usage: dict[str, int] | None = None
        """Token counts keyed as `aisys.Usage` fields; ``None`` when nothing was read."""
        self.estimated = False
        self.request_params: dict[str, Any] = {}
        self.server_address: str | None = None
        self.server_port: int | None = None
        self.input_messages: Any = None
        self.output_text: str | None = None
        self.query: str | None = None
        self.documents: list[Any] | None = None
        self.scores: list[float] | None = None
        self.data_source: str | None = None
        self.top_k: int | None = None
        self.error: BaseException | None = None
        self.closed_early = False
        self.started_as = ""
        """The span name given at start; the span is renamed if the result changes it."""
        self.started_with: tuple[str, str | None] | None = None
        """(operation, provider) the span started with: set again only if they change."""
        self.stream_chunks: int | None = None
        self.tool_name: str | None = None
        self.ttft_s: float | None = None
        """Seconds from the start of a streamed call to its first chunk."""
        self.unread: str | None = None
        """Why the result could not be read, when it could not."""
        self.attributes: dict[str, Any] = {}
        self.attempts: list[Any] = []
        """Every try at every target (`aisys.pipeline.route.Attempt`), when routed."""
        self.fallback_index: int | None = None
        """Which target answered (0 = the first); ``None`` if none did."""
        self.target: str | None = None
        """The ``provider:model`` that answered."""
        self.endpoint: str | None = None
        """The base URL of the target that answered (prices are matched by it)."""
        self.price_as: str | None = None
        """The provider whose price table prices the call (a gateway's ``price_as``)."""
        self.input_value: Any = None
        """The prompt (a string or messages), for steps that count it; never exported."""
        self.cost: Any = None
        """The call's `aisys.Cost`, once metered; ``None`` when nothing was billed."""
        self.billed: list[Billed] = []
        """Answers a step refused (an output guard, structured output that never
        validated): the provider billed them all the same, so they are metered."""
        self.budget: dict[str, Any] | None = None
        """What the budget step decided: ``name``, ``limit_usd``, ``spent_usd``,
        ``exceeded``, ``downgraded_to``."""
        self.review: Any = None
        """The `aisys.Review` a guard's ``review``/``handoff`` queues the call to."""
        self.review_reasons: list[str] = []
        """Why guards asked for a review of this call (queued when it ends)."""
        self.trace_id: str | None = None
        self.span_id: str | None = None
        """The call's ids, set only when it may be queued for review."""
        self.input_name: str | None = None
        """The name of the argument holding the input (a dataset case's input key)."""
        self.online: Any = None
        """The `aisys.scoring.OnlineScoring` its answer is offered to, if any."""
        self.prompt: tuple[str, str, str] | None = None
        """(name, version, sha256) of the prompt the call was made with."""
        self.response: Any = None
        """The answer as the caller got it (for steps that store it); never exported."""
        self.stream_texts: list[str] | None = None
        """The texts of a streamed answer's chunks, in order (to replay them)."""
        self.cache_hit = False
        self.cache_result: str | None = None
        """``hit``, ``miss`` or ``error`` when a cache was consulted."""
        self.cache_backend: str | None = None
        self.cache_saved_usd: float | None = None
        """What a hit would have cost (``None`` when the price is unknown)."""
        self.finishers: list[Any] = []
        """Flows steps left to run once the call's outcome and cost are known."""
        self.guard_findings: list[tuple[str, str, tuple[Any, ...]]] = []
        """(guard, action, findings) for every guard that found something."""
        self.output_checks: list[Any] = []
        """Checks a streamed answer's whole text must pass when the stream ends."""
        self.placeholders: dict[tuple[str, str], str] = {}
        """The placeholders guards gave this call's text, so a value keeps its own."""
        self.chunk_redactor: Any = None
        """Redacts a streamed answer's chunks before delivery (see `ChunkRedactor`)."""

    def span_name(self) -> str:
        """The span name the conventions ask for: ``{operation} {model}``."""
        if self.name:
            return self.name
        if self.operation == "execute_tool" and self.tool_name:
            return f"execute_tool {self.tool_name}"
        if self.kind == "retrieval":
            return f"retrieval {self.data_source}" if self.data_source else "retrieval"
        model = self.request_model or self.response_model
        return f"{self.operation} {model}" if model else self.operation

    def set_usage(self, **tokens: int | None) -> None:
        """Record token counts (``input_tokens=…``); ``None`` leaves a count as it was."""
        usage = self.usage if self.usage is not None else {}
        for key, value in tokens.items():
            if value is not None:
                usage[key] = value
        self.usage = usage
