"""Turn a `Call` into span attributes: the one place that decides what a span says.

Knows the semantic-convention names (from `attributes`) and the content rules; knows
nothing about providers or about how the call was made.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from aisys.call import Call, requests_made
from aisys.names import split_model
from aisys.telemetry import attributes as A

__all__ = [
    "attempt_attributes",
    "attempts_summary",
    "end_attributes",
    "error_type",
    "start_attributes",
]

_PARAM_ATTRIBUTES: Mapping[str, str] = {
    "temperature": A.GEN_AI_REQUEST_TEMPERATURE,
    "max_tokens": A.GEN_AI_REQUEST_MAX_TOKENS,
    "max_completion_tokens": A.GEN_AI_REQUEST_MAX_TOKENS,
    "top_p": A.GEN_AI_REQUEST_TOP_P,
    "stop": A.GEN_AI_REQUEST_STOP_SEQUENCES,
    "seed": A.GEN_AI_REQUEST_SEED,
    "frequency_penalty": A.GEN_AI_REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": A.GEN_AI_REQUEST_PRESENCE_PENALTY,
    "stream": A.GEN_AI_REQUEST_STREAM,
}


def start_attributes(call: Call) -> dict[str, Any]:
    """Attributes known before the call runs (the ones samplers may look at)."""
    attrs: dict[str, Any] = {}
    if call.operation:
        attrs[A.GEN_AI_OPERATION_NAME] = call.operation
    if call.provider:
        attrs[A.GEN_AI_PROVIDER_NAME] = call.provider
    if call.request_model:
        attrs[A.GEN_AI_REQUEST_MODEL] = call.request_model
    if call.data_source:
        attrs[A.GEN_AI_DATA_SOURCE_ID] = call.data_source
    if call.prompt is not None:
        attrs[A.AISYS_PROMPT_NAME] = call.prompt[0]
        attrs[A.AISYS_PROMPT_VERSION] = call.prompt[1]
        attrs[A.AISYS_PROMPT_SHA256] = call.prompt[2]
    if call.tool_name:
        attrs[A.GEN_AI_TOOL_NAME] = call.tool_name
    scope = call.scope
    if scope is not None:
        if scope.user_id is not None:
            attrs[A.USER_ID] = scope.user_id
        if scope.session_id is not None:
            attrs[A.SESSION_ID] = scope.session_id
        if scope.tags:
            attrs[A.AISYS_TAGS] = scope.tags
        for key, value in scope.metadata.items():
            attrs[A.AISYS_METADATA_PREFIX + key] = _attribute_value(value)
    return attrs


def fixed_start(call: Call) -> tuple[str, Mapping[str, Any]]:
    """The span name and start attributes of ``call``, to share with every call alike.

    For calls whose start facts are fixed when a function is decorated or an `LLM` is
    made; OTel copies start attributes into each span, so one read-only mapping serves
    them all (a sampler cannot change it for later calls).
    """
    return call.span_name(), MappingProxyType(start_attributes(call))


def end_attributes(
    call: Call,
    *,
    latest: bool,
    capture: bool,
    redact: Callable[[Any], Any] | None = None,
    max_chars: int = 8000,
) -> dict[str, Any]:
    """Attributes learnt from the result (or the failure) of the call."""
    attrs: dict[str, Any] = {}
    if latest and call.prompt is not None:
        attrs[A.GEN_AI_PROMPT_NAME] = call.prompt[0]
    # What the span started with is not set again (an OTel attribute write per key);
    # a result may still change both (an embeddings answer, a provider read from it).
    started = call.started_with or ("", None)
    if call.operation and call.operation != started[0]:
        attrs[A.GEN_AI_OPERATION_NAME] = call.operation
    if call.provider and call.provider != started[1]:
        attrs[A.GEN_AI_PROVIDER_NAME] = call.provider
    if call.response_model:
        attrs[A.GEN_AI_RESPONSE_MODEL] = call.response_model
    if call.response_id:
        attrs[A.GEN_AI_RESPONSE_ID] = call.response_id
    if call.finish_reasons:
        attrs[A.GEN_AI_RESPONSE_FINISH_REASONS] = call.finish_reasons
    for key, value in call.request_params.items():
        name = _PARAM_ATTRIBUTES.get(key)
        if name is not None and value is not None:
            attrs[name] = (
                [value]
                if name == A.GEN_AI_REQUEST_STOP_SEQUENCES and isinstance(value, str)
                else value
            )
    if call.server_address:
        attrs[A.SERVER_ADDRESS] = call.server_address
        if call.server_port:
            attrs[A.SERVER_PORT] = call.server_port
    usage = call.usage
    if usage is not None:
        _usage_attributes(attrs, usage, latest=latest)
        if call.estimated:
            attrs[A.AISYS_USAGE_ESTIMATED] = True
    if call.kind == "retrieval":
        _retrieval_attributes(attrs, call, latest=latest)
    if call.unread:
        attrs[A.AISYS_RESPONSE_UNREAD] = call.unread
    if call.closed_early:
        attrs[A.AISYS_STREAM_CLOSED_EARLY] = True
    if call.stream_chunks is not None:
        attrs[A.AISYS_STREAM_CHUNKS] = call.stream_chunks
    if call.ttft_s is not None:
        attrs[A.AISYS_STREAM_TTFT_MS] = round(call.ttft_s * 1000, 3)
        attrs[A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = call.ttft_s
    if call.attempts:
        attrs[A.AISYS_RETRY_ATTEMPTS] = requests_made(call.attempts)
        if call.fallback_index is not None:
            attrs[A.AISYS_FALLBACK_INDEX] = call.fallback_index
        if call.target:
            attrs[A.AISYS_TARGET] = call.target
    if call.cost is not None:
        _cost_attributes(attrs, call.cost)
    if call.budget is not None:
        _budget_attributes(attrs, call.budget)
    if call.guard_findings:
        attrs[A.AISYS_GUARD_FINDINGS] = [name for name, _, _ in call.guard_findings]
    if call.cache_result is not None:
        attrs[A.AISYS_CACHE_HIT] = call.cache_hit
        if call.cache_backend:
            attrs[A.AISYS_CACHE_BACKEND] = call.cache_backend
        if call.cache_saved_usd is not None:
            attrs[A.AISYS_CACHE_SAVED_USD] = call.cache_saved_usd
    if call.error is not None:
        attrs[A.ERROR_TYPE] = error_type(call.error)
    if capture:
        _content_attributes(attrs, call, redact or _same, max_chars)
    if redact is not None and call.scope is not None:
        _scope_attributes(attrs, call.scope, redact)
    if call.attributes:
        attrs.update(call.attributes)
    return attrs


def attempt_attributes(call: Call, attempt: Any) -> dict[str, Any]:
    """Attributes of one attempt's child span."""
    provider, model = split_model(attempt.target)
    attrs: dict[str, Any] = {
        A.GEN_AI_OPERATION_NAME: call.operation,
        A.GEN_AI_PROVIDER_NAME: provider,
        A.GEN_AI_REQUEST_MODEL: model,
        A.AISYS_ATTEMPT_NUMBER: attempt.number,
        A.AISYS_ATTEMPT_OUTCOME: attempt.outcome,
        A.AISYS_FALLBACK_INDEX: attempt.fallback_index,
    }
    if attempt.wait_s:
        attrs[A.AISYS_ATTEMPT_WAIT_S] = attempt.wait_s
    if attempt.retry_after_s is not None:
        attrs[A.AISYS_ATTEMPT_RETRY_AFTER_S] = attempt.retry_after_s
    if attempt.status_code is not None:
        attrs[A.HTTP_RESPONSE_STATUS_CODE] = attempt.status_code
    if attempt.error is not None:
        attrs[A.ERROR_TYPE] = error_type(attempt.error)
    if attempt.cost is not None:
        attrs[A.AISYS_ATTEMPT_COST_USD] = float(attempt.cost)
    return attrs


def _cost_attributes(attrs: dict[str, Any], cost: Any) -> None:
    """Cost in USD (a float: OTel has no decimal); none at all when unknown, never 0."""
    attrs[A.AISYS_COST_STATUS] = cost.status
    usd = cost.usd_float
    if usd is not None:  # the input/output split stays on `ChatResponse.cost`
        attrs[A.AISYS_COST_USD] = usd
    if cost.price_table:
        attrs[A.AISYS_PRICE_TABLE] = cost.price_table


def _budget_attributes(attrs: dict[str, Any], budget: Mapping[str, Any]) -> None:
    attrs[A.AISYS_BUDGET_NAME] = budget["name"]
    attrs[A.AISYS_BUDGET_LIMIT_USD] = float(budget["limit_usd"])
    if budget.get("spent_usd") is not None:
        attrs[A.AISYS_BUDGET_SPENT_USD] = float(budget["spent_usd"])
    attrs[A.AISYS_BUDGET_EXCEEDED] = bool(budget.get("exceeded"))
    if budget.get("downgraded_to"):
        attrs[A.AISYS_BUDGET_DOWNGRADED_TO] = budget["downgraded_to"]


def attempts_summary(call: Call) -> list[dict[str, Any]]:
    """The attempts as plain dicts, for the call's log event."""
    return [
        {
            "target": a.target,
            "number": a.number,
            "outcome": a.outcome,
            "error.type": error_type(a.error) if a.error is not None else None,
            "status": a.status_code,
            "elapsed_s": round(a.elapsed_s, 6),
            "wait_s": round(a.wait_s, 6),
            "retry_after_s": a.retry_after_s,
            "cost_usd": float(a.cost) if a.cost is not None else None,
        }
        for a in call.attempts
    ]


def _usage_attributes(
    attrs: dict[str, Any], usage: Mapping[str, int], *, latest: bool
) -> None:
    if "input_tokens" in usage:
        attrs[A.GEN_AI_USAGE_INPUT_TOKENS] = usage["input_tokens"]
    if "output_tokens" in usage:
        attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] = usage["output_tokens"]
    if usage.get("cache_read_input_tokens"):
        attrs[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage["cache_read_input_tokens"]
    if usage.get("cache_write_input_tokens"):
        name = (
            A.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS
            if latest
            else A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
        )
        attrs[name] = usage["cache_write_input_tokens"]
    if latest and usage.get("reasoning_output_tokens"):
        attrs[A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage["reasoning_output_tokens"]


def _retrieval_attributes(attrs: dict[str, Any], call: Call, *, latest: bool) -> None:
    if call.top_k is not None:
        attrs[A.GEN_AI_RETRIEVAL_TOP_K if latest else A.GEN_AI_REQUEST_TOP_K] = (
            call.top_k
        )
    if call.documents is not None:
        attrs[A.AISYS_RETRIEVAL_DOCUMENTS_COUNT] = len(call.documents)
    if call.scores:
        attrs[A.AISYS_RETRIEVAL_SCORES] = call.scores


def _same(value: Any) -> Any:
    return value


def _content_attributes(
    attrs: dict[str, Any],
    call: Call,
    redact: Callable[[Any], Any],
    max_chars: int,
) -> None:
    """Prompts, completions and documents, in the conventions' message shape.

    Every string passes through ``redact`` before it is serialised (the identity with
    ``capture_content="full"``), and each field is cut to ``max_chars`` as valid JSON.
    """
    if call.kind == "retrieval":
        if call.query is not None:
            attrs[A.GEN_AI_RETRIEVAL_QUERY_TEXT] = _cut(redact(call.query), max_chars)
        if call.documents is not None:
            attrs[A.GEN_AI_RETRIEVAL_DOCUMENTS] = _limited(
                redact(_plain(call.documents)), max_chars
            )
        return
    if call.input_messages is not None:
        messages = redact(_messages(call.input_messages))
        # The chat history keeps its system messages (as sent); their text parts are
        # also the conventions' system instructions.
        system = [
            part
            for message in messages
            if message["role"] in ("system", "developer")
            for part in message["parts"]
            if part.get("type") == "text"
        ]
        if system:
            attrs[A.GEN_AI_SYSTEM_INSTRUCTIONS] = _limited(system, max_chars)
        attrs[A.GEN_AI_INPUT_MESSAGES] = _limited(messages, max_chars)
    if call.output_text is not None:
        output: dict[str, Any] = {
            "role": "assistant",
            "parts": [{"type": "text", "content": call.output_text}],
        }
        if call.finish_reasons:
            output["finish_reason"] = call.finish_reasons[0]
        attrs[A.GEN_AI_OUTPUT_MESSAGES] = _limited(redact([output]), max_chars)


def _plain(value: Any) -> Any:
    """JSON-able data (pydantic models dumped), so redaction sees every string."""
    return json.loads(_json(value))


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[: max(0, max_chars - 30)] + f"…[{len(text) - max_chars + 30} chars cut]"


def _limited(value: Any, max_chars: int) -> str:
    """``value`` as JSON of at most ``max_chars``, still valid JSON.

    The longest strings are cut first, each saying how much was cut.
    """
    text = _json(value)
    if len(text) <= max_chars:
        return text
    budget = max_chars
    for _ in range(8):
        strings = sorted(_strings(value), key=len, reverse=True)
        if not strings:
            break
        over = len(text) - budget
        longest = len(strings[0])
        value = _shorten(value, max(16, longest - over - 40))
        text = _json(value)
        if len(text) <= budget:
            return text
    return _json({"truncated": True, "chars": len(_json(value))})


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _shorten(value: Any, keep: int) -> Any:
    if isinstance(value, str):
        return _cut(value, keep) if len(value) > keep else value
    if isinstance(value, Mapping):
        return {k: _shorten(v, keep) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_shorten(v, keep) for v in value]
    return value


def _messages(value: Any) -> list[dict[str, Any]]:
    """Input messages (a string, OpenAI-style dicts, or models) as role + parts."""
    if isinstance(value, str):
        return [{"role": "user", "parts": [{"type": "text", "content": value}]}]
    messages = []
    for message in value:
        fields = message if isinstance(message, Mapping) else _dump(message)
        content = fields.get("content")
        if isinstance(content, str):
            parts: list[Any] = [{"type": "text", "content": content}]
        elif isinstance(content, list):
            parts = [
                {"type": "text", "content": part.get("text", "")}
                if isinstance(part, Mapping) and part.get("type") == "text"
                else {"type": "generic", "content": part}
                for part in content
            ]
        else:
            parts = []
        messages.append({"role": fields.get("role", "user"), "parts": parts})
    return messages


def _dump(value: Any) -> Mapping[str, Any]:
    dump = getattr(value, "model_dump", None)
    result = dump() if callable(dump) else vars(value)
    return result if isinstance(result, Mapping) else {}


def _json(value: Any) -> str:
    return json.dumps(value, default=_jsonable, ensure_ascii=False)


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    return str(value)


def _scope_attributes(
    attrs: dict[str, Any], scope: Any, redact: Callable[[Any], Any]
) -> None:
    """The trace's user, session, tags and metadata, redacted (they are user data too).

    They override what the span started with, before anything is exported.
    """
    if scope.user_id is not None:
        attrs[A.USER_ID] = redact(scope.user_id)
    if scope.session_id is not None:
        attrs[A.SESSION_ID] = redact(scope.session_id)
    if scope.tags:
        attrs[A.AISYS_TAGS] = [redact(tag) for tag in scope.tags]
    for key, value in scope.metadata.items():
        attrs[A.AISYS_METADATA_PREFIX + key] = redact(_attribute_value(value))


def _attribute_value(value: Any) -> Any:
    """A metadata value as an OTel attribute: primitives as is, the rest as JSON."""
    if isinstance(value, str | bool | int | float):
        return value
    return _json(value)


def error_type(exc: BaseException) -> str:
    """A low-cardinality name for an error: its class, qualified unless builtin."""
    cls = type(exc)
    module = cls.__module__
    if module == "builtins":
        return cls.__qualname__
    # Prefer the public package name over a private module (openai._exceptions).
    public = module.split("._", 1)[0]
    if public.startswith("aisys."):
        public = "aisys"
    return f"{public}.{cls.__qualname__}"
