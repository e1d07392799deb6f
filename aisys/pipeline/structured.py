"""Structured output: validate the answer against a pydantic model, re-ask on failure.

``llm.chat(messages, response_model=Invoice, max_retries=2)``: the JSON schema goes to
the provider's structured-output parameter where it has one (``response_format`` for
OpenAI-compatible servers), else into a system message. When the answer does not
validate, the model is asked again — its answer and a user message stating the
validation errors are appended — at most ``max_retries`` more times. Usage and cost add
up every attempt; each attempt is a child span (the route records them).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aisys.errors import OutputValidationError, ProviderError
from aisys.pipeline._flow import Flow

if TYPE_CHECKING:
    from aisys.call import Call
    from aisys.pipeline.protocol import Proceed, Step

__all__ = ["schema_format", "structured_step"]


def schema_format(model: Any) -> dict[str, Any]:
    """The OpenAI-style ``response_format`` asking for ``model``'s JSON schema."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": model.__name__,
            "schema": model.model_json_schema(),
        },
    }


def _errors(exc: Exception) -> list[dict[str, Any]]:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in errors()
        ]
    return [{"loc": [], "msg": str(exc), "type": type(exc).__name__}]


def structured_step() -> Step:
    """The step that parses answers into the call's ``response_model``, re-asking.

    One function for every chain (it keeps no state), so a chain can tell it apart.
    """
    return _step


def _step(call: Call, request: Any, proceed: Proceed) -> Flow[Any]:
    model = request.response_model
    if model is None:
        return (yield from proceed(request))
    # OpenAI-compatible servers differ: json_schema first, then json_object with a
    # schema (llama.cpp), then the schema in a system message, as each is refused.
    formats: list[dict[str, Any] | None] = [
        schema_format(model),
        {"type": "json_object", "schema": model.model_json_schema()},
        None,
    ]
    plain = request
    request = plain.asking_for(formats.pop(0), model)
    earlier: list[Any] = []
    tries = request.max_retries + 1
    last_text = ""
    last_errors: list[dict[str, Any]] = []
    for attempt in range(tries):
        while True:
            try:
                result = yield from proceed(request)
            except ProviderError as exc:
                if not formats or "response_format" not in str(exc):
                    raise
                request = plain.asking_for(formats.pop(0), model)
                continue
            break
        text = request.output_text(result) or ""
        try:
            parsed = model.model_validate_json(text)
        except Exception as exc:  # pydantic's ValidationError, or not JSON at all
            last_text, last_errors = text, _errors(exc)
            earlier.append(result)
            if attempt + 1 < tries:
                feedback = (
                    "Your answer did not match the required JSON schema. Errors: "
                    + json.dumps(last_errors)
                    + ". Answer again with only the corrected JSON."
                )
                request = request.followed_by(text, feedback)
            continue
        return request.with_parsed(result, parsed, earlier)
    for refused in earlier:  # none was delivered, each was billed
        billed = request.billed_by(refused, call.target)
        if billed is not None:
            call.billed.append(billed)
    raise OutputValidationError(
        f"the answer did not match {model.__name__} after {tries} attempt(s): "
        f"{len(last_errors)} error(s), e.g. {last_errors[0]['msg'] if last_errors else ''}",
        raw_text=last_text,
        errors=last_errors,
        attempts=tries,
    )
