"""An answer as the caller gets it: read into the call, metered, with its facts on it.

Also the shape a cached answer travels in (`Hit`), and counting the tokens of an answer
the provider reported no usage for (`estimate`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aisys.call import Call, requests_made
from aisys.metering.cost import public_cost
from aisys.providers.registry import read_result
from aisys.types import ChatRequest, ChatResponse, EmbeddingResponse, Usage

if TYPE_CHECKING:
    from aisys.lifecycle import CallScope

__all__ = ["Hit", "deliver", "estimate", "read_answer", "read_vectors"]


# Hits of one stored (frozen, shared) answer are delivered as the same copy, while the
# facts it carries (attempts, fallback index, cost, cached) are the same. Only answers
# the cache keeps parsed (small ones) are remembered: others are new objects each hit.
_DELIVERED: dict[int, tuple[ChatResponse, tuple[Any, ...], ChatResponse]] = {}


class Hit:
    """A cached chat answer travelling back up the chain (with its stream chunks)."""

    __slots__ = ("chunks", "response")

    def __init__(self, response: ChatResponse, chunks: list[str] | None) -> None:
        self.response = response
        self.chunks = chunks


def deliver(
    scope: CallScope, request: ChatRequest, response: ChatResponse | Hit
) -> ChatResponse:
    """The answer as the caller gets it: read, metered, with the route's facts on it.

    Usage the provider did not report is counted; attempts, fallback index and cost
    are set.
    """
    cached = isinstance(response, Hit)
    given = response.response if isinstance(response, Hit) else response
    scope.read(given, read_answer, request)
    scope.meter()
    call = scope.call
    answer: ChatResponse = call.response  # as read: with its usage counted
    route = scope.route
    trace_id, span_id = scope.tel.ids_of(scope.span)
    facts = (
        requests_made(route.attempts) if route is not None else 1,
        route.fallback_index if route is not None else 0,
        public_cost(call.cost),
        cached,
        trace_id,
        span_id,
    )
    if cached:  # a stored answer, delivered alike on every hit: copied once
        seen = _DELIVERED.get(id(answer))
        if seen is not None and seen[0] is answer and seen[1] == facts:
            return seen[2]
    delivered: ChatResponse = answer.model_copy(
        update={
            "attempts": facts[0],
            "fallback_index": facts[1],
            "cost": facts[2],
            "cached": cached,
            "trace_id": trace_id,
            "span_id": span_id,
        }
    )
    if call.online is not None or call.review is not None:
        scope.answered(delivered, (trace_id, span_id))
    if cached:
        import aisys.pipeline.cache as cache  # loaded: the answer came from it

        if cache.memoised(answer):
            if len(_DELIVERED) >= 256:
                _DELIVERED.clear()
            _DELIVERED[id(answer)] = (answer, facts, delivered)
    return delivered


def read_answer(call: Call, response: ChatResponse, request: ChatRequest) -> None:
    """A chat answer's facts, or a stream's as far as it got.

    Usage the provider did not report is counted, marked estimated.
    """
    call.response = response
    counted = True
    if response.usage.estimated:
        try:
            response = call.response = estimate(response, request)
        except Exception as exc:  # metering never fails an answered call
            call.unread = f"counting its tokens failed: {exc!r}"
            counted = False
    call.provider = response.provider or call.provider
    read_result(call, response)
    if not counted:
        call.usage = None  # not counted is unknown, never 0 tokens at $0


def read_vectors(call: Call, response: EmbeddingResponse) -> None:
    """An embeddings answer's facts."""
    call.response = response
    call.response_model = response.model
    call.provider = response.provider or call.provider
    call.set_usage(input_tokens=response.usage.input_tokens)
    call.estimated = response.usage.estimated


def estimate(response: ChatResponse, request: ChatRequest) -> ChatResponse:
    """Usage the provider did not report, counted with tiktoken and marked estimated."""
    from aisys.metering.tokens import count_tokens

    model = response.model or request.model
    usage = Usage(
        input_tokens=count_tokens(request.messages, model),
        output_tokens=count_tokens(response.text, model),
        estimated=True,
    )
    return response.model_copy(update={"usage": usage})
