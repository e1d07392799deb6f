"""How one decorated function is observed, decided once at decoration time: `Spec`.

Its parameters (which one is the model, the prompt, ``top_k``), its span name and start
attributes, and how its result is read into a call — a model's answer, retrieved
documents — where `aisys.providers` says what a result means.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aisys._arguments import Binder
from aisys.call import Call, prompt_facts
from aisys.context import _SCOPE, Scope
from aisys.lifecycle import CallScope
from aisys.names import split_model
from aisys.providers.registry import read_result
from aisys.telemetry.spans import fixed_start

if TYPE_CHECKING:
    from aisys.lifecycle import RuntimeView
    from aisys.pipeline.route import Route

__all__ = ["Spec"]

# Parameters whose value is the prompt or the query, in order of preference.
_INPUT_PARAMS = ("messages", "prompt", "question", "query", "input", "text")
_TOP_K_PARAMS = ("top_k", "k", "limit", "n_results")
_REQUEST_PARAMS = (
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "top_p",
    "stop",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "stream",
)


class Spec:
    """How one decorated function is observed; computed once, at decoration time."""

    __slots__ = (
        "binder",
        "data_source",
        "fixed_start",
        "input_param",
        "kind",
        "model",
        "model_default",
        "model_param",
        "name",
        "online",
        "operation",
        "price_as",
        "prompt",
        "provider",
        "reads",
        "review",
        "tool_name",
        "top_k_param",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        kind: str,
        *,
        operation: str | None,
        name: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        data_source: str | None = None,
        prompt: Any = None,
        price_as: str | None = None,
        online: Any = None,
        review: Any = None,
    ) -> None:
        self.kind = kind
        self.online = online
        """The `aisys.scoring.OnlineScoring` a sample of results is offered to."""
        self.review = review
        """The `aisys.Review` its calls are queued to (guards, sampling), if any."""
        self.reads = kind in ("llm", "retrieval")
        """Whether a result says something (a model's answer, documents); a step's not."""
        self.prompt = prompt_facts(prompt)
        if price_as is not None:
            from aisys.metering.prices import check_price_as

            price_as = check_price_as(price_as)
        self.price_as = price_as
        if model is None and prompt is not None and getattr(prompt, "model", None):
            named, model = split_model(str(prompt.model))
            provider = provider or named
        self.operation = operation or ""
        self.provider = provider
        self.model = model
        self.data_source = data_source
        self.tool_name = None
        if kind == "step" and self.operation == "execute_tool":
            self.tool_name = name or fn.__name__
            name = None
        elif kind == "step":
            name = name or fn.__qualname__
        self.name = name
        signature = _signature(fn)
        self.binder = Binder(signature) if signature is not None else None
        """Binds a call's arguments (``None`` if Python cannot tell the signature)."""
        params = list(signature.parameters.values()) if signature else []
        self.model_param = _find(params, ("model",))
        self.model_default = _default_of(params, self.model_param)
        """The ``model`` parameter's default, for calls that do not pass one."""
        self.input_param = _find(params, _INPUT_PARAMS) or _first_argument(params)
        self.top_k_param = _find(params, _TOP_K_PARAMS)
        self.fixed_start = (
            None if self.model_param is not None else fixed_start(self._call(model))
        )
        """Span name and start attributes, when no argument can change them."""

    def new_call(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Call:
        """A fresh `Call` for one invocation with the given arguments."""
        model = self.model
        if model is None and self.model_param is not None:
            value = _argument(self.model_param, args, kwargs, self.model_default)
            model = value if isinstance(value, str) else None
        call = self._call(model, _SCOPE.get())
        if kwargs and self.kind == "llm":  # a tool's own `temperature=` is not one
            params = {key: kwargs[key] for key in _REQUEST_PARAMS if key in kwargs}
            if params:
                call.request_params = params
        return call

    def begin(
        self,
        runtime: RuntimeView,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        route: Route | None = None,
        *,
        chained: bool = False,
    ) -> CallScope:
        """Begin one invocation's call: its facts, its span, its ``route`` if any.

        ``chained``: the call runs through steps, which read its input.
        """
        call = self.new_call(args, kwargs)
        if chained:
            call.input_value = self.input_of(args, kwargs)
        return CallScope(runtime.telemetry, call, route=route, fixed=self.fixed_start)

    def _call(self, model: str | None, scope: Scope | None = None) -> Call:
        call = Call(
            self.kind,
            self.operation,
            name=self.name,
            provider=self.provider,
            request_model=model,
            scope=scope,
        )
        call.data_source = self.data_source
        call.tool_name = self.tool_name
        call.prompt = self.prompt
        call.price_as = self.price_as
        call.online = self.online
        call.review = self.review
        call.input_name = self.input_param[0] if self.input_param is not None else None
        return call

    def input_of(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        """The prompt argument of one call (for steps that count it), or ``None``."""
        return _argument(self.input_param, args, kwargs) if self.input_param else None

    def observe(
        self,
        call: Call,
        result: Any,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        capture: bool,
    ) -> None:
        """Read what the function returned into ``call`` (`CallScope.read` calls it)."""
        if self.kind == "llm":
            call.response = result
            self._observe_llm(call, result, args, kwargs, capture)
        elif self.kind == "retrieval":
            self._observe_retrieval(call, result, args, kwargs, capture)

    def _observe_llm(
        self,
        call: Call,
        result: Any,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        capture: bool,
    ) -> None:
        if isinstance(result, str):
            call.output_text = result
        elif not read_result(call, result):
            call.unread = (
                f"returned {type(result).__name__}: not a response aisys can read "
                "(no model, id or usage)"
            )
        self.finish_llm(call, args, kwargs, capture)

    def finish_llm(
        self,
        call: Call,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        capture: bool,
    ) -> None:
        """Count tokens the provider did not report, and keep the prompt if asked to."""
        prompt = _argument(self.input_param, args, kwargs) if self.input_param else None
        if call.output_text is not None and (
            call.usage is None or "output_tokens" not in call.usage
        ):
            _estimate_usage(call, prompt)
        if capture and prompt is not None:
            call.input_messages = prompt

    def _observe_retrieval(
        self,
        call: Call,
        result: Any,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        capture: bool,
    ) -> None:
        if self.top_k_param is not None:
            top_k = _argument(self.top_k_param, args, kwargs)
            if isinstance(top_k, int) and not isinstance(top_k, bool):
                call.top_k = top_k
        if not isinstance(result, list | tuple):
            call.unread = (
                f"returned {type(result).__name__}: expected a list of documents"
            )
            return
        scores = []
        for doc in result:
            score = _score(doc)
            if score is not None:
                scores.append(score)
        call.scores = scores or None
        call.documents = [_document(doc) for doc in result] if capture else list(result)
        if capture and self.input_param is not None:
            query = _argument(self.input_param, args, kwargs)
            call.query = query if isinstance(query, str) else None


# -- helpers ----------------------------------------------------------------------------


def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def _find(
    params: list[inspect.Parameter], names: tuple[str, ...]
) -> tuple[str, int | None] | None:
    """The first parameter called one of ``names``: its name and position, if positional."""
    for wanted in names:
        for index, param in enumerate(params):
            if param.name == wanted and param.kind not in (
                param.VAR_POSITIONAL,
                param.VAR_KEYWORD,
            ):
                positional = param.kind in (
                    param.POSITIONAL_ONLY,
                    param.POSITIONAL_OR_KEYWORD,
                )
                return wanted, index if positional else None
    return None


def _first_argument(params: list[inspect.Parameter]) -> tuple[str, int | None] | None:
    """The first real argument (not ``self``/``cls``), as a fallback input."""
    for index, param in enumerate(params):
        if param.name in ("self", "cls"):
            continue
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            return param.name, index
        return None
    return None


def _default_of(
    params: list[inspect.Parameter], param: tuple[str, int | None] | None
) -> Any:
    """The default value of ``param`` (``None`` when it has none)."""
    if param is None:
        return None
    for candidate in params:
        if candidate.name == param[0] and candidate.default is not candidate.empty:
            return candidate.default
    return None


def _argument(
    param: tuple[str, int | None],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    default: Any = None,
) -> Any:
    name, index = param
    if name in kwargs:
        return kwargs[name]
    if index is not None and index < len(args):
        return args[index]
    return default


def _estimate_usage(call: Call, prompt: Any) -> None:
    """Count tokens offline when the provider reported none; marks them estimated."""
    from aisys.metering.tokens import count_tokens

    model = call.request_model or call.response_model
    text = call.output_text or ""
    input_tokens = None
    if isinstance(prompt, str) or (
        isinstance(prompt, list | tuple) and all(isinstance(m, Mapping) for m in prompt)
    ):
        input_tokens = count_tokens(prompt, model)
    call.set_usage(input_tokens=input_tokens, output_tokens=count_tokens(text, model))
    call.estimated = True


def _score(doc: Any) -> float | None:
    """``doc["score"]``, ``doc.score`` or the number of a ``(doc, score)`` pair."""
    if type(doc) is dict:  # the common case first: no ABC check per document
        value = doc.get("score")
    elif isinstance(doc, tuple) and len(doc) == 2 and isinstance(doc[1], int | float):
        return float(doc[1])
    elif isinstance(doc, Mapping):
        value = doc.get("score")
    else:
        value = getattr(doc, "score", None)
    if type(value) is float:
        return value
    return (
        float(value)
        if isinstance(value, int | float) and not isinstance(value, bool)
        else None
    )


def _document(doc: Any) -> dict[str, Any]:
    """A retrieved item as ``{id, content, score}`` for content capture."""
    score = _score(doc)
    if isinstance(doc, tuple) and len(doc) == 2:
        doc = doc[0]
    ident = None
    if isinstance(doc, str):
        content: Any = doc
    elif isinstance(doc, Mapping):
        content = doc.get("content", doc.get("text", doc.get("page_content")))
        ident = doc.get("id")
    else:
        content = getattr(doc, "content", None) or getattr(doc, "page_content", None)
        ident = getattr(doc, "id", None)
    out: dict[str, Any] = {"content": content if isinstance(content, str) else str(doc)}
    if ident is not None:
        out["id"] = str(ident)
    if score is not None:
        out["score"] = score
    return out
