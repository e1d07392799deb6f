"""What travels down an LLM's chain: the LLM to ask and the neutral request.

`LLMRequest` is how the steps see an `aisys.LLM` call (the `aisys.pipeline.protocol`
`Request`): its input and output text, its cache material, what it would be priced at,
and the same request aimed at another target (a fallback, a downgrade).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aisys.llm.answers import Hit, estimate
from aisys.metering.cost import usage_tokens
from aisys.types import ChatRequest, ChatResponse, EmbeddingResponse

if TYPE_CHECKING:
    from aisys.call import Billed
    from aisys.llm.view import LLMView

__all__ = ["LLMRequest"]


class LLMRequest:
    """What travels down an LLM's chain: the LLM to ask, and the neutral request.

    The LLM brings its fallbacks; a budget's downgrade swaps it for a cheaper one.
    """

    __slots__ = (
        "chain",
        "first_index",
        "llm",
        "max_retries",
        "payload",
        "response_model",
        "use_cache",
    )

    def __init__(
        self,
        llm: LLMView,
        payload: Any,
        *,
        use_cache: bool = True,
        chain: tuple[LLMView, ...] | None = None,
        response_model: Any = None,
        max_retries: int = 2,
    ) -> None:
        self.llm = llm
        self.payload = payload
        self.use_cache = use_cache
        self.chain = chain
        """The targets to route over, when not ``llm`` and its fallbacks."""
        self.response_model = response_model
        self.max_retries = max_retries
        self.first_index = 0
        """Where ``chain`` starts in the whole chain (past targets an output guard
        refused), so fallback indexes count from the primary."""

    def _copy(self, **changes: Any) -> LLMRequest:
        clone = copy.copy(self)
        for name, value in changes.items():
            setattr(clone, name, value)
        return clone

    def asking_for(
        self, response_format: dict[str, Any] | None, model: Any
    ) -> LLMRequest:
        """The request asking for JSON of ``model``'s schema.

        As ``response_format`` where the provider has it, else (or with ``None``) in a
        system message.
        """
        payload = self.payload
        native = getattr(self.llm.provider, "takes_response_format", True)
        if response_format is not None and native:
            params = {**payload.params, "response_format": response_format}
            return self._copy(payload=payload.model_copy(update={"params": params}))
        schema = json.dumps(model.model_json_schema())
        instruction = {
            "role": "system",
            "content": f"Answer with only a JSON object matching this JSON schema: {schema}",
        }
        messages = [instruction, *payload.messages]
        return self._copy(payload=payload.model_copy(update={"messages": messages}))

    def followed_by(self, answer: str, feedback: str) -> LLMRequest:
        """The conversation so far, the model's answer, and a user message after it."""
        messages = [
            *self.payload.messages,
            {"role": "assistant", "content": answer},
            {"role": "user", "content": feedback},
        ]
        return self._copy(
            payload=self.payload.model_copy(update={"messages": messages})
        )

    def with_parsed(self, result: Any, parsed: Any, earlier: list[Any]) -> Any:
        """The answer with ``parsed`` set and the usage of every attempt added up."""
        hit = isinstance(result, Hit)
        response: ChatResponse = result.response if hit else result
        total = sum(
            ((r.response if isinstance(r, Hit) else r).usage for r in earlier),
            response.usage,
        )
        response = response.model_copy(update={"parsed": parsed, "usage": total})
        return Hit(response, result.chunks) if hit else response

    def input_parts(self) -> list[tuple[int, str, str]]:
        """Each message's text by role (embeddings: each text, as the user's)."""
        payload = self.payload
        if not isinstance(payload, ChatRequest):
            return [(i, "user", text) for i, text in enumerate(payload[0])]
        parts = []
        for index, message in enumerate(payload.messages):
            content = message.get("content")
            if isinstance(content, list):
                content = "".join(
                    p.get("text", "") for p in content if isinstance(p, Mapping)
                )
            if isinstance(content, str) and content:
                parts.append((index, str(message.get("role", "user")), content))
        return parts

    def with_input(self, replaced: dict[int, str]) -> LLMRequest:
        """The request with some message texts replaced (an input guard's redaction)."""
        payload = self.payload
        if not isinstance(payload, ChatRequest):
            texts = [replaced.get(i, t) for i, t in enumerate(payload[0])]
            return self._copy(payload=(texts, payload[1]))
        messages = [
            {**message, "content": replaced[index]} if index in replaced else message
            for index, message in enumerate(payload.messages)
        ]
        return self._copy(payload=payload.model_copy(update={"messages": messages}))

    def output_text(self, result: Any) -> str | None:
        """The answer's text; ``None`` for a stream (checked once it has ended)."""
        if isinstance(result, Hit):
            return result.response.text
        if isinstance(result, ChatResponse):
            return result.text
        if isinstance(result, EmbeddingResponse):
            return ""
        return None

    def with_output(self, result: Any, text: str) -> Any:
        """The answer with its text replaced (an output guard's redaction)."""
        if isinstance(result, Hit):
            return Hit(result.response.model_copy(update={"text": text}), None)
        return result.model_copy(update={"text": text})

    def billed_by(self, result: Any, target: str | None) -> Billed | None:
        """What a refused answer was billed: its usage, at the target that answered."""
        if not isinstance(result, ChatResponse):
            return None  # a cache hit (or a stream, read as it ends) bills nothing here
        if result.usage.estimated:
            try:
                result = estimate(result, self.payload)
            except Exception:  # metering never fails the call
                return None
        chain = self.chain or (self.llm, *self.llm.fallbacks)
        llm = next((each for each in chain if each.model == target), self.llm)
        tokens, _ = usage_tokens(result.usage)
        return (
            result.provider or llm.provider.name,
            result.model or llm.target.model,
            llm.target.base_url,
            llm.price_as,
            tokens,
        )

    def after(self, target: str | None) -> LLMRequest | None:
        """The request to the targets after ``target`` in this request's chain."""
        chain = self.chain or (self.llm, *self.llm.fallbacks)
        labels = [llm.model for llm in chain]
        if target not in labels:
            return None
        place = labels.index(target) + 1
        rest = chain[place:]
        if not rest:
            return None
        return self._copy(
            llm=rest[0],
            chain=tuple(rest),
            use_cache=False,
            first_index=self.first_index + place,
        )

    @property
    def shares_flights(self) -> bool:
        """Chat and embeddings share an in-flight answer; streams do not."""
        return not (isinstance(self.payload, ChatRequest) and self.payload.stream)

    def cache_material(self) -> dict[str, Any]:
        """Provider, model, endpoint and the whole request, but not ``stream``."""
        target = self.llm.target
        material: dict[str, Any] = {
            "provider": target.provider,
            "model": target.model,
            "endpoint": target.base_url,
        }
        payload = self.payload
        if isinstance(payload, ChatRequest):
            material["messages"] = payload.messages
            material["params"] = payload.params
            material["extra"] = payload.extra
        else:
            texts, extra = payload
            material["embed"] = texts
            material["extra"] = dict(extra)
        return material

    def from_cache(
        self, value: Any, chunks: list[str] | None, *, shared: bool = True
    ) -> Any:
        """A stored answer, to be marked as cached (streams replay it: `ChatStream`).

        Answers are frozen models: shared or not, one object serves every caller.
        """
        if isinstance(value, ChatResponse):
            return Hit(value, chunks)
        return value

    def wait_limit(self) -> float:
        """The deadline, or the request timeout."""
        return self.llm.deadline or self.llm.target.timeout

    def priced_as(self) -> tuple[str | None, str | None, str | None]:
        """Provider, model and endpoint of the LLM asked first (``price_as`` wins)."""
        llm = self.llm
        target = llm.target
        if llm.price_as is not None:
            return llm.price_as, target.model, None
        return target.provider, target.model, target.base_url

    def retarget(self, model: str | LLMView) -> LLMRequest:
        """The same request to another model (a budget's downgrade)."""
        llm = self.llm.sibling(model) if isinstance(model, str) else model
        return self._copy(llm=llm, chain=None, first_index=0)
