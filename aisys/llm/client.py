"""LLM: aisys makes the call itself, through provider adapters, with full telemetry.

```python
llm = aisys.LLM(
    "openai:gpt-4o",
    fallbacks=["anthropic:claude-3-5-haiku-latest"],
    retry=aisys.Retry(max_attempts=3),
    deadline=30.0,
)
llm.chat("hi").text
```

The decisions (route over the targets, retry, build the request, check the status,
parse) are flows shared by the sync and async methods; only the effects here touch the
network, through one ``httpx2`` connection pool per LLM.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpx2

from aisys import _checks
from aisys._runtime import DEFAULT_RUNTIME, Runtime
from aisys._sentinel import DEFAULT, Default
from aisys.call import Call, prompt_facts
from aisys.context import _SCOPE, Scope
from aisys.errors import ConfigError
from aisys.lifecycle import CallScope
from aisys.llm.answers import deliver, read_vectors
from aisys.llm.attempts import chat_attempt, embed_attempt
from aisys.llm.request import LLMRequest
from aisys.llm.streams import AsyncChatStream, ChatStream
from aisys.metering.cost import public_cost
from aisys.metering.prices import check_price_as
from aisys.pipeline._flow import Flow, adrive, drive
from aisys.pipeline.chain import assemble, run
from aisys.pipeline.retry import Retry, check_retry
from aisys.pipeline.route import (
    CircuitBreaker,
    Route,
    RouteTarget,
    breaker_key,
    check_circuit,
    check_deadline,
    default_fallback_on,
    route_flow,
)
from aisys.providers.base import Provider, Target, normalise_messages
from aisys.providers.registry import get_provider, parse_model
from aisys.review.queue import Review, review_for
from aisys.safety.guards import guards_of
from aisys.scoring import OnlineScoring, check_scoring
from aisys.telemetry.spans import fixed_start
from aisys.types import CHAT_PARAMS, ChatRequest, ChatResponse, EmbeddingResponse

if TYPE_CHECKING:
    from aisys.pipeline.budget import Budget
    from aisys.pipeline.cache import Cache
    from aisys.prompts import Prompt
    from aisys.safety.guards import Guard

__all__ = ["DEFAULT_RETRY", "LLM", "close_all"]

T = TypeVar("T")
_OPEN_LLMS: weakref.WeakSet[LLM] = weakref.WeakSet()
_POOL_LOCK = threading.Lock()
DEFAULT_RETRY = Retry()
"""The policy an LLM uses when ``retry=`` is not given: 3 attempts, 0.5 s doubling."""

# -- the LLM ----------------------------------------------------------------------------


class LLM:
    """A model behind a provider adapter, with retries, fallbacks and one deadline.

    Args:
        model: ``"openai:gpt-4o-mini"``, ``"anthropic:claude-3-5-haiku-latest"``,
            ``"scripted:any-name"``, or a plug-in's ``"name:model"``; may be left out
            when ``prompt`` names one.
        prompt: An `aisys.Prompt`: its model and parameters are the defaults (explicit
            arguments win), and every call carries its name, version and sha256.
        base_url: The endpoint; defaults to ``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL``
            or the provider's public API.
        api_key: Defaults to ``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY``. Never logged.
        timeout: Seconds for each HTTP request (shortened to what the deadline leaves).
        headers: Extra HTTP headers on every request.
        fallbacks: Targets tried in order when this one fails: ``"provider:model"``
            strings (same provider: this LLM's endpoint and key; another provider: its
            environment variables) or configured `LLM` objects (their own retry policy).
        retry: This target's `aisys.Retry` policy; default 3 attempts; ``None`` = none.
        deadline: Seconds for the whole call: every attempt, wait and fallback, and for
            streams everything up to the first chunk.
        fallback_on: Which errors move to the next target (default: retryable errors,
            open circuit breakers, prompts too long for the model).
        circuit: This target's `aisys.CircuitBreaker` thresholds (inherited by string
            fallbacks); default: the settings' ``circuit_*``; ``None``: no breaker.
        budget: An `aisys.Budget` or a list of them, checked before any request
            leaves the process (see docs/cost.md).
        cache: An `aisys.Cache` answering identical requests from a store (see
            docs/caching.md); ``llm.chat(..., cache=False)`` bypasses it for one call.
        guards: `aisys.guards` checks on the input (before anything is sent) and the
            answer (see docs/security.md).
        price_as: Price calls from this provider's table (``"openai"``) whatever
            the endpoint: for a gateway or proxy (LiteLLM, a company gateway) that
            serves a provider's models at its prices. Without it an endpoint
            genai-prices does not recognise is priced ``unknown`` (never $0).
            Inherited by string fallbacks and downgrades of the same provider.
        transport: An ``httpx2`` transport to use instead of the network (tests, e.g.
            `aisys.testing.ScriptedTransport`).
        runtime: The aisys runtime whose telemetry, clock and breakers settings apply.

    An LLM's route is fixed when it is made (planned once, not per call): ``retry``,
    ``circuit`` and ``fallbacks`` are read-only; for other settings, make another LLM.

    Added in 0.1.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        prompt: Prompt | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        headers: Mapping[str, str] | None = None,
        fallbacks: Sequence[str | LLM] = (),
        retry: Retry | Default | None = DEFAULT,
        deadline: float | None = None,
        fallback_on: Callable[[BaseException], bool] | None = None,
        circuit: CircuitBreaker | Default | None = DEFAULT,
        budget: Budget | Sequence[Budget] | None = None,
        cache: Cache | None = None,
        guards: Sequence[Guard] = (),
        price_as: str | None = None,
        scorers: Sequence[Callable[..., Any]] = (),
        score_sample: float | None = None,
        review: Review | None = None,
        transport: httpx2.BaseTransport | httpx2.AsyncBaseTransport | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        if model is not None and not isinstance(model, str):
            raise _checks.bad("LLM", "model", "'provider:model' (a string)", model)
        timeout = _checks.seconds("LLM", "timeout", timeout)
        _checks.optional_text("LLM", "base_url", base_url)
        _checks.optional_text("LLM", "api_key", api_key)
        if headers is not None:
            _checks.mapping("LLM", "headers", headers)
        if fallback_on is not None and not callable(fallback_on):
            raise _checks.bad(
                "LLM", "fallback_on", "a function of the error", fallback_on
            )
        fallbacks = _fallbacks_of(fallbacks)
        retry = check_retry("LLM", retry)
        guards = guards_of("LLM", guards)
        scoring = check_scoring("LLM", scorers, score_sample)
        self.review = review_for("LLM", review, guards, scoring is not None)
        if self.review is not None and self.review.defer is None:
            self.review.defer = lambda job: self.runtime.scoring_worker().defer(job)
        self.online: OnlineScoring | None = (
            OnlineScoring(
                *scoring,
                worker=lambda: self.runtime.scoring_worker(),
                review=self.review,
            )
            if scoring is not None
            else None
        )
        self.prompt = prompt
        self._prompt_facts = prompt_facts(prompt)
        defaults = dict(getattr(prompt, "params", None) or {})
        extra_defaults = {
            k: defaults.pop(k) for k in list(defaults) if k not in CHAT_PARAMS
        }
        if extra_defaults:
            defaults["extra"] = extra_defaults
        self._prompt_params = defaults
        if model is None:
            model = getattr(prompt, "model", None)
            if not model:
                msg = (
                    "LLM() needs a model ('provider:model'), or a prompt whose front "
                    "matter names one"
                )
                raise ConfigError(msg, field="model")
        provider_name, model_name = parse_model(model)
        self.price_as = check_price_as(price_as)
        self.provider: Provider = get_provider(provider_name)
        self.target: Target = self.provider.target(
            model_name,
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            headers=headers or {},
        )
        self.deadline = check_deadline(deadline)
        self._retry: Retry = (
            DEFAULT_RETRY
            if isinstance(retry, Default)
            else retry or Retry(max_attempts=1)
        )
        self.fallback_on = fallback_on or default_fallback_on
        self._circuit: CircuitBreaker | Default | None = check_circuit(circuit)
        self._breaker_key = breaker_key(
            self.target.spec,
            self.target.base_url,
            self.target.api_key,
            *sorted(self.target.headers.items()),
        )
        self._transport = transport
        self._runtime = runtime
        self.budgets: tuple[Any, ...] = ()
        if budget is not None:
            from aisys.pipeline.budget import budgets_of

            self.budgets = budgets_of(budget)
        self.cache = cache
        self.guards = tuple(guards)
        # Two chains, both assembled in the one place: calls asking for a
        # response_model go through structured output; the others need not.
        self._steps, self._plain_steps = (
            assemble(
                runtime=lambda: self.runtime,
                budgets=self.budgets,
                cache=cache,
                guards=self.guards,
                structured=structured,
            )
            for structured in (True, False)
        )
        self._siblings: dict[str, LLM] = {}
        self._client: httpx2.Client | None = None
        self._aclient: httpx2.AsyncClient | None = None
        try:
            url = httpx2.URL(self.target.base_url)
        except httpx2.InvalidURL as exc:
            raise ConfigError(
                f"base_url {self.target.base_url!r} is not a URL: {exc}",
                field="base_url",
            ) from exc
        self._server = (
            url.host or None,
            url.port or (443 if url.scheme == "https" else 80),
        )
        self._fixed_starts = {
            operation: fixed_start(self._new_call(operation))
            for operation in ("chat", "embeddings")
        }
        self._fallbacks: tuple[LLM, ...] = tuple(
            item if isinstance(item, LLM) else self._sibling(item) for item in fallbacks
        )
        # What the route needs of each target, made once: calls only pass their request.
        self._route_target = RouteTarget(
            label=self.target.spec,
            retry=self.retry,
            breaker_key=None if self.circuit is None else self._breaker_key,
            circuit=self.circuit if isinstance(self.circuit, CircuitBreaker) else None,
            endpoint=self.target.base_url,
            price_as=self.price_as,
            subject=self,
        )
        self._route_targets = (
            self._route_target,
            *(llm._route_target for llm in self.fallbacks),
        )

    def sibling(self, spec: str) -> LLM:
        """``spec`` as `_sibling` makes it, made once per LLM (its pool is reused)."""
        llm = self._siblings.get(spec)
        if llm is None:
            llm = self._siblings[spec] = self._sibling(spec)
        return llm

    def _sibling(self, spec: str) -> LLM:
        """A string fallback: same provider inherits endpoint, key and transport."""
        provider, _ = parse_model(spec)
        same = provider == self.provider.name
        return LLM(
            spec,
            base_url=self.target.base_url if same else None,
            api_key=self.target.api_key if same else None,
            timeout=self.target.timeout,
            headers=self.target.headers if same else None,
            retry=self.retry,
            circuit=self.circuit,
            price_as=self.price_as if same else None,
            transport=self._transport if same else None,
            runtime=self._runtime,
        )

    def __repr__(self) -> str:
        chain = (
            f", fallbacks={[f.model for f in self.fallbacks]}" if self.fallbacks else ""
        )
        return f"LLM({self.target.spec!r}, base_url={self.target.base_url!r}{chain})"

    @property
    def model(self) -> str:
        """``provider:model``."""
        return self.target.spec

    # Read-only: the route is planned from these when the LLM is made.

    @property
    def retry(self) -> Retry:
        """This target's retry policy."""
        return self._retry

    @property
    def circuit(self) -> CircuitBreaker | Default | None:
        """This target's breaker thresholds (`DEFAULT`: the settings'; ``None``: off)."""
        return self._circuit

    @property
    def fallbacks(self) -> tuple[LLM, ...]:
        """The targets tried after this one, in order."""
        return self._fallbacks

    @property
    def runtime(self) -> Runtime:
        """The runtime recording this LLM's calls."""
        return self._runtime or DEFAULT_RUNTIME

    # -- connection pools -----------------------------------------------------------

    @property
    def client(self) -> httpx2.Client:
        """The sync connection pool, created on first use."""
        client = self._client
        if client is None:
            with _POOL_LOCK:  # threads sharing an LLM must share one pool
                if self._client is None:
                    transport = self._transport or self.provider.transport()
                    self._client = httpx2.Client(
                        transport=transport,  # type: ignore[arg-type]
                        timeout=httpx2.Timeout(self.target.timeout),
                    )
                    _OPEN_LLMS.add(self)
                client = self._client
        return client

    @property
    def aclient(self) -> httpx2.AsyncClient:
        """The async connection pool, created on first use."""
        if self._aclient is None:
            transport = self._transport or self.provider.async_transport()
            self._aclient = httpx2.AsyncClient(
                transport=transport,  # type: ignore[arg-type]
                timeout=httpx2.Timeout(self.target.timeout),
            )
        return self._aclient

    def close(self) -> None:
        """Close the sync connection pools, this LLM's and its fallbacks'."""
        if self._client is not None:
            self._client.close()
            self._client = None
        _OPEN_LLMS.discard(self)
        for fallback in (*self.fallbacks, *self._siblings.values()):
            fallback.close()

    async def aclose(self) -> None:
        """Close every connection pool, sync and async, fallbacks included."""
        if self._client is not None:
            self._client.close()
            self._client = None
        _OPEN_LLMS.discard(self)
        if self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = None
        for fallback in (*self.fallbacks, *self._siblings.values()):
            await fallback.aclose()

    def __enter__(self) -> LLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> LLM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- calls --------------------------------------------------------------------

    def chat(self, messages: Any, **params: Any) -> ChatResponse:
        """Ask the model; returns the whole answer.

        ``messages`` is a string, OpenAI-style dicts, or `aisys.Message` objects.
        ``params``: ``temperature``, ``max_tokens``, ``top_p``, ``stop``, ``seed``,
        ``tools``, ``tool_choice``, ``response_format``, and ``extra={…}`` sent as is.
        ``cache=False`` bypasses this LLM's cache for the call; ``prompt=p`` (an
        `aisys.Prompt`) records which prompt version the messages were rendered from.
        """
        use_cache, prompt = _use_cache(params), params.pop("prompt", None)
        shape = _shape(params)
        request = self._request(messages, params, stream=False)
        scope = self.begin("chat", request, prompt=prompt)
        try:
            response: ChatResponse = drive(
                self._call_flow(scope, chat_attempt, request, use_cache, shape)
            )
        except BaseException as exc:
            scope.end(exc)
            raise
        scope.end()
        return response

    async def achat(self, messages: Any, **params: Any) -> ChatResponse:
        """The async twin of `chat`."""
        use_cache, prompt = _use_cache(params), params.pop("prompt", None)
        shape = _shape(params)
        request = self._request(messages, params, stream=False)
        scope = self.begin("chat", request, prompt=prompt)
        try:
            response: ChatResponse = await adrive(
                self._call_flow(scope, chat_attempt, request, use_cache, shape)
            )
        except BaseException as exc:
            await scope.aend(exc)
            raise
        await scope.aend()
        return response

    def stream(self, messages: Any, **params: Any) -> ChatStream:
        """Stream the answer: iterate the returned `ChatStream` for `ChatChunk`s.

        Nothing is sent until iteration (or ``with``) starts. Retries and fallbacks
        happen only before the first chunk reaches you. Once exhausted,
        ``stream.response`` holds the whole `ChatResponse` with usage.
        """
        _not_structured(params)
        use_cache, prompt = _use_cache(params), params.pop("prompt", None)
        request = self._request(messages, params, stream=True)
        return ChatStream(self, request, use_cache=use_cache, prompt=prompt)

    def astream(self, messages: Any, **params: Any) -> AsyncChatStream:
        """The async twin of `stream`: use with ``async for`` / ``async with``, not await."""
        _not_structured(params)
        use_cache, prompt = _use_cache(params), params.pop("prompt", None)
        request = self._request(messages, params, stream=True)
        return AsyncChatStream(self, request, use_cache=use_cache, prompt=prompt)

    def embed(
        self,
        texts: Sequence[str],
        *,
        extra: Mapping[str, Any] | None = None,
        cache: bool = True,
    ) -> EmbeddingResponse:
        """Vectors for ``texts``, in order (``cache=False`` bypasses the cache)."""
        request = _embed_request(texts, extra)
        scope = self.begin("embeddings", None, texts=request[0])
        try:
            vectors: EmbeddingResponse = drive(
                self._call_flow(scope, embed_attempt, request, cache)
            )
        except BaseException as exc:
            scope.end(exc)
            raise
        scope.end()
        return vectors

    async def aembed(
        self,
        texts: Sequence[str],
        *,
        extra: Mapping[str, Any] | None = None,
        cache: bool = True,
    ) -> EmbeddingResponse:
        """The async twin of `embed`."""
        request = _embed_request(texts, extra)
        scope = self.begin("embeddings", None, texts=request[0])
        try:
            vectors: EmbeddingResponse = await adrive(
                self._call_flow(scope, embed_attempt, request, cache)
            )
        except BaseException as exc:
            await scope.aend(exc)
            raise
        await scope.aend()
        return vectors

    def _call_flow(
        self,
        scope: CallScope,
        attempt: Callable[[LLM, Any, float | None], Flow[Any]],
        payload: Any,
        use_cache: bool = True,
        shape: tuple[Any, int] = (None, 2),
    ) -> Flow[Any]:
        """The chain with the call's span current, then the answer as delivered."""
        scope.activate()
        result = yield from self.chain_flow(scope, attempt, payload, use_cache, shape)
        scope.deactivate()
        if attempt is embed_attempt:
            return self._finished_embed(scope, result)
        return deliver(scope, payload, result)

    def chain_flow(
        self,
        scope: CallScope,
        attempt: Callable[[LLM, Any, float | None], Flow[T]],
        payload: Any,
        use_cache: bool = True,
        shape: tuple[Any, int] = (None, 2),
    ) -> Flow[T]:
        """The configured steps, ending in the route over this LLM and its fallbacks."""
        call, route = scope.call, cast("Route", scope.route)  # `begin` made it
        steps = self._steps if shape[0] is not None else self._plain_steps
        if not steps:  # straight to the route; the scope records its target
            return self._route_flow(route, attempt, payload)

        def last(request: LLMRequest) -> Flow[T]:
            asked = cast("LLM", request.llm)  # the request's targets are LLMs
            result: T = yield from asked._route_flow(
                route,
                attempt,
                request.payload,
                cast("tuple[LLM, ...] | None", request.chain),
                request.first_index,
            )
            call.target = route.target
            return result

        request = LLMRequest(
            self,
            payload,
            use_cache=use_cache,
            response_model=shape[0],
            max_retries=shape[1],
        )
        flow: Flow[T] = run(call, steps, last, request)
        return flow

    def _new_route(self) -> Route:
        runtime = self.runtime
        return Route.configured(
            runtime.clock,
            runtime.settings,
            deadline_s=self.deadline,
            fallback_on=self.fallback_on,
        )

    def _route_flow(
        self,
        route: Route,
        attempt: Callable[[LLM, Any, float | None], Flow[T]],
        request: Any,
        chain: tuple[LLM, ...] | None = None,
        first_index: int = 0,
    ) -> Flow[T]:
        targets = (
            self._route_targets
            if chain is None
            else tuple(llm._route_target for llm in chain)
        )

        def attempt_on(llm: LLM, left: float | None) -> Flow[T]:
            return attempt(llm, request, left)

        return route_flow(route, targets, attempt_on, first_index)

    def timed(self, request: httpx2.Request, timeout: float | None) -> httpx2.Request:
        """Shorten the request's timeout to what the deadline leaves."""
        if timeout is not None:
            request.extensions["timeout"] = httpx2.Timeout(
                max(0.001, min(self.target.timeout, timeout))
            ).as_dict()
        return request

    # -- telemetry ----------------------------------------------------------------

    def _request(
        self, messages: Any, params: dict[str, Any], *, stream: bool
    ) -> ChatRequest:
        if self._prompt_params:
            params = {**self._prompt_params, **params}  # explicit arguments win
        extra = params.pop("extra", None) or {}
        unknown = sorted(set(params) - CHAT_PARAMS) if params else None
        if unknown:
            msg = (
                f"unknown chat parameter(s) {', '.join(unknown)}; known: "
                f"{', '.join(sorted(CHAT_PARAMS))}. Pass provider-specific fields as "
                f"extra={{{unknown[0]!r}: ...}}"
            )
            raise TypeError(msg)
        if type(extra) is not dict and not isinstance(extra, Mapping):
            msg = f"extra= takes a dict of provider fields, got {type(extra).__name__}"
            raise TypeError(msg)
        given = {k: v for k, v in params.items() if v is not None}
        for name, value in given.items():
            _PARAM_CHECKS[name](name, value)
        # Every field is checked above (messages by normalise_messages): no need to
        # validate the model again on each call.
        return ChatRequest.model_construct(
            model=self.target.model,
            messages=normalise_messages(messages),
            params=given,
            extra=dict(extra),
            stream=stream,
        )

    def begin(
        self,
        operation: str,
        request: ChatRequest | None,
        *,
        prompt: Any = None,
        texts: Any = None,
    ) -> CallScope:
        """Begin one call: its facts from the request, its route, its span."""
        runtime = self.runtime
        tel = runtime.telemetry
        call = self._new_call(operation, _SCOPE.get())
        if prompt is not None:
            call.prompt = prompt_facts(prompt)
        if request is not None:
            call.request_params = (
                {**request.params, "stream": request.stream}
                if request.stream
                else dict(request.params)
            )
            call.input_value = request.messages
            if tel.capture:
                call.input_messages = request.messages
        elif texts is not None:
            call.input_value = texts
        return CallScope(
            tel,
            call,
            route=self._new_route(),
            fixed=self._fixed_starts[operation] if prompt is None else None,
        )

    def _new_call(self, operation: str, scope: Scope | None = None) -> Call:
        call = Call(
            "llm",
            operation,
            provider=self.provider.name,
            request_model=self.target.model,
            scope=scope,
        )
        call.server_address, call.server_port = self._server
        call.prompt = self._prompt_facts
        call.price_as = self.price_as
        call.online = self.online
        call.review = self.review
        call.input_name = "messages"
        return call

    def _finished_embed(
        self, scope: CallScope, response: EmbeddingResponse
    ) -> EmbeddingResponse:
        scope.read(response, read_vectors)
        scope.meter()
        return response.model_copy(update={"cost": public_cost(scope.call.cost)})


# -- helpers ------------------------------------------------------------------------


def _shape(params: dict[str, Any]) -> tuple[Any, int]:
    """Take ``response_model`` and ``max_retries`` out of the chat parameters."""
    model = params.pop("response_model", None)
    retries = params.pop("max_retries", 2)
    if model is not None and not hasattr(model, "model_validate_json"):
        msg = f"response_model must be a pydantic model class, got {model!r}"
        raise TypeError(msg)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        msg = f"max_retries must be a whole number >= 0, got {retries!r}"
        raise TypeError(msg)
    return model, retries


def _use_cache(params: dict[str, Any]) -> bool:
    """Take the per-call ``cache=`` flag out of the chat parameters."""
    use = params.pop("cache", True)
    if not isinstance(use, bool):
        msg = f"cache= takes True or False for one call, got {use!r}"
        raise TypeError(msg)
    return use


def _embed_request(
    texts: Sequence[str], extra: Mapping[str, Any] | None
) -> tuple[list[str], Mapping[str, Any]]:
    if isinstance(texts, str):
        listed = [texts]
    else:
        listed = list(texts)
        if not all(isinstance(text, str) for text in listed):
            msg = "embed() takes a string or a list of strings"
            raise TypeError(msg)
    return listed, extra or {}


def _not_structured(params: dict[str, Any]) -> None:
    """Streams deliver text as it comes: structured output is `chat`'s."""
    asked = [name for name in ("response_model", "max_retries") if name in params]
    if asked:
        msg = (
            f"stream() does not take {asked[0]}=: structured output is validated when "
            "the whole answer is in, so it is for chat() and achat(); use those, or "
            "validate the streamed text yourself (stream.response.text once exhausted)"
        )
        raise TypeError(msg)


def _number(low: float, high: float) -> Callable[[str, Any], Any]:
    return lambda name, value: _checks.number("chat", name, value, low=low, high=high)


def _whole(low: int) -> Callable[[str, Any], Any]:
    return lambda name, value: _checks.whole("chat", name, value, low=low)


def _of(takes: str, *kinds: type) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> None:
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise _checks.bad("chat", name, takes, value)

    return check


def _stop(name: str, value: Any) -> None:
    if not isinstance(value, str):
        _checks.strings("chat", name, value)


_PARAM_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "temperature": _number(0.0, 2.0),
    "top_p": _number(0.0, 1.0),
    "frequency_penalty": _number(-2.0, 2.0),
    "presence_penalty": _number(-2.0, 2.0),
    "max_tokens": _whole(1),
    "n": _whole(1),
    "top_k": _whole(0),
    "seed": _of("a whole number", int),
    "stop": _stop,
    "tools": _of("a list of tool definitions (dicts)", list, tuple),
    "tool_choice": _of("'auto', 'none', 'required' or a dict naming a tool", str, dict),
    "response_format": _of("a dict, e.g. {'type': 'json_object'}", dict),
    "user": _of("a string", str),
}
"""How each of `aisys.types.CHAT_PARAMS` is checked before anything is sent."""


def _fallbacks_of(fallbacks: Any) -> tuple[str | LLM, ...]:
    """``fallbacks=`` checked: a list of ``provider:model`` strings and `LLM` objects."""
    if isinstance(fallbacks, str):
        raise _checks.bad(
            "LLM",
            "fallbacks",
            "a list of 'provider:model' strings or aisys.LLM objects",
            fallbacks,
            f"did you mean fallbacks={[fallbacks]!r}?",
        )
    items = tuple(fallbacks) if isinstance(fallbacks, list | tuple) else None
    if items is None or not all(isinstance(item, str | LLM) for item in items):
        raise _checks.bad(
            "LLM",
            "fallbacks",
            "a list of 'provider:model' strings or aisys.LLM objects",
            fallbacks,
        )
    return items


def close_all() -> None:
    """Close the sync pools of every LLM still open (`aisys.shutdown` calls this)."""
    for llm in list(_OPEN_LLMS):
        llm.close()
