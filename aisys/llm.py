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

import copy
import json
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpx2

from aisys._sentinel import DEFAULT, Default
from aisys.call import Billed, Call, prompt_facts, requests_made
from aisys.context import _SCOPE, Scope
from aisys.errors import ConfigError, ProviderConnectionError
from aisys.lifecycle import CallScope
from aisys.metering.cost import public_cost, usage_tokens
from aisys.metering.prices import check_price_as
from aisys.pipeline._flow import Flow, adrive, drive
from aisys.pipeline.chain import assemble, run
from aisys.pipeline.retry import Retry
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
from aisys.pipeline.structured import structured_step
from aisys.providers.base import (
    Provider,
    StreamParser,
    Target,
    error_from_response,
    get_provider,
    normalise_messages,
    parse_model,
    read_result,
    transport_error,
    transport_errors,
)
from aisys.telemetry.spans import fixed_start
from aisys.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingResponse,
    Usage,
)

if TYPE_CHECKING:
    from aisys._runtime import Runtime
    from aisys.streams import AsyncChatStream, ChatStream

__all__ = [
    "DEFAULT_RETRY",
    "LLM",
    "LLMRequest",
    "Opened",
    "deliver",
    "estimate",
    "read_answer",
    "stream_attempt",
]

T = TypeVar("T")
_OPEN_LLMS: weakref.WeakSet[LLM] = weakref.WeakSet()
_POOL_LOCK = threading.Lock()
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
DEFAULT_RETRY = Retry()
"""The policy an LLM uses when ``retry=`` is not given: 3 attempts, 0.5 s doubling."""


# -- effects: the only code here that does I/O ----------------------------------------


class Send:
    """Send a request on the LLM's pool (reading error bodies of streamed responses)."""

    __slots__ = ("llm", "request", "stream")

    def __init__(self, llm: LLM, request: httpx2.Request, *, stream: bool) -> None:
        self.llm = llm
        self.request = request
        self.stream = stream

    def run(self) -> httpx2.Response:
        """Send with the sync client."""
        try:
            response = self.llm.client.send(self.request, stream=self.stream)
            if self.stream and response.status_code >= 400:
                response.read()
                response.close()
        except Exception as exc:
            error = transport_error(exc, self.llm.provider.name, "sending the request")
            if error is None:
                raise
            raise error from exc
        return response

    async def arun(self) -> httpx2.Response:
        """Send with the async client."""
        try:
            response = await self.llm.aclient.send(self.request, stream=self.stream)
            if self.stream and response.status_code >= 400:
                await response.aread()
                await response.aclose()
        except Exception as exc:
            error = transport_error(exc, self.llm.provider.name, "sending the request")
            if error is None:
                raise
            raise error from exc
        return response


class EventReader:
    """Read the next server-sent event of a streamed response (``None`` at the end)."""

    __slots__ = ("_async", "_sync", "provider", "response")

    def __init__(self, provider: str, response: httpx2.Response) -> None:
        self.provider = provider
        self.response = response
        self._sync: Any = None
        self._async: Any = None

    def run(self) -> httpx2.ServerSentEvent | None:
        """The next event, blocking."""
        with transport_errors(self.provider, "reading the stream"):
            if self._sync is None:
                self._sync = iter(httpx2.EventSource(self.response))
            event: httpx2.ServerSentEvent | None = next(self._sync, None)
            return event

    async def arun(self) -> httpx2.ServerSentEvent | None:
        """The next event, awaited."""
        with transport_errors(self.provider, "reading the stream"):
            if self._async is None:
                self._async = httpx2.EventSource(self.response).__aiter__()
            event: httpx2.ServerSentEvent | None = await anext(self._async, None)
            return event

    def close(self) -> None:
        """Close the response (sync)."""
        self.response.close()

    async def aclose(self) -> None:
        """Close the response (async)."""
        await self.response.aclose()


class Close:
    """Close a streamed response that will not be read to its end."""

    __slots__ = ("reader",)

    def __init__(self, reader: EventReader) -> None:
        self.reader = reader

    def run(self) -> None:
        """Close, blocking."""
        self.reader.close()

    async def arun(self) -> None:
        """Close, awaited."""
        await self.reader.aclose()


class Opened:
    """A stream that has produced its first chunks (or ended cleanly without any)."""

    __slots__ = ("chunks", "llm", "parser", "reader")

    def __init__(
        self,
        llm: LLM,
        reader: EventReader,
        parser: StreamParser,
        chunks: list[ChatChunk],
    ) -> None:
        self.llm = llm
        self.reader = reader
        self.parser = parser
        self.chunks = chunks


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
        llm: LLM,
        payload: Any,
        *,
        use_cache: bool = True,
        chain: tuple[LLM, ...] | None = None,
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
        hit = isinstance(result, _Hit)
        response: ChatResponse = result.response if hit else result
        usages = [
            (r.response if isinstance(r, _Hit) else r).usage
            for r in [*earlier, response]
        ]
        total = Usage(
            input_tokens=sum(u.input_tokens for u in usages),
            output_tokens=sum(u.output_tokens for u in usages),
            cache_read_input_tokens=sum(u.cache_read_input_tokens for u in usages),
            cache_write_input_tokens=sum(u.cache_write_input_tokens for u in usages),
            reasoning_output_tokens=sum(u.reasoning_output_tokens for u in usages),
            estimated=any(u.estimated for u in usages),
        )
        response = response.model_copy(update={"parsed": parsed, "usage": total})
        return _Hit(response, result.chunks) if hit else response

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
        if isinstance(result, _Hit):
            return result.response.text
        if isinstance(result, ChatResponse):
            return result.text
        if isinstance(result, EmbeddingResponse):
            return ""
        return None

    def with_output(self, result: Any, text: str) -> Any:
        """The answer with its text replaced (an output guard's redaction)."""
        if isinstance(result, _Hit):
            return _Hit(result.response.model_copy(update={"text": text}), None)
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
            return _Hit(value, chunks)
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

    def retarget(self, model: str | LLM) -> LLMRequest:
        """The same request to another model (a budget's downgrade)."""
        llm = model if isinstance(model, LLM) else self.llm.sibling(model)
        return self._copy(llm=llm, chain=None, first_index=0)


# Hits of one stored (frozen, shared) answer are delivered as the same copy, while the
# facts it carries (attempts, fallback index, cost, cached) are the same. Only answers
# the cache keeps parsed (small ones) are remembered: others are new objects each hit.
_DELIVERED: dict[int, tuple[ChatResponse, tuple[Any, ...], ChatResponse]] = {}


class _Hit:
    """A cached chat answer travelling back up the chain (with its stream chunks)."""

    __slots__ = ("chunks", "response")

    def __init__(self, response: ChatResponse, chunks: list[str] | None) -> None:
        self.response = response
        self.chunks = chunks


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
        prompt: Any = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        headers: Mapping[str, str] | None = None,
        fallbacks: Sequence[str | LLM] = (),
        retry: Retry | Default | None = DEFAULT,
        deadline: float | None = None,
        fallback_on: Callable[[BaseException], bool] | None = None,
        circuit: CircuitBreaker | Default | None = DEFAULT,
        budget: Any = None,
        cache: Any = None,
        guards: Sequence[Any] = (),
        price_as: str | None = None,
        transport: httpx2.BaseTransport | httpx2.AsyncBaseTransport | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        if not timeout > 0:
            raise ConfigError(
                f"timeout must be positive seconds, got {timeout!r}", field="timeout"
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
        self._steps = assemble(
            runtime=lambda: self.runtime,
            budgets=self.budgets,
            cache=cache,
            guards=self.guards,
            structured=True,
        )
        # Without a response_model the structured step only passes the request on.
        self._plain_steps = tuple(s for s in self._steps if s is not structured_step())
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
        if self._runtime is not None:
            return self._runtime
        import aisys

        return aisys._DEFAULT

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
                self._call_flow(scope, _chat_attempt, request, use_cache, shape)
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
                self._call_flow(scope, _chat_attempt, request, use_cache, shape)
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
        from aisys.streams import ChatStream

        use_cache, prompt = _use_cache(params), params.pop("prompt", None)
        request = self._request(messages, params, stream=True)
        return ChatStream(self, request, use_cache=use_cache, prompt=prompt)

    def astream(self, messages: Any, **params: Any) -> AsyncChatStream:
        """The async twin of `stream`: use with ``async for`` / ``async with``, not await."""
        from aisys.streams import AsyncChatStream

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
                self._call_flow(scope, _embed_attempt, request, cache)
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
                self._call_flow(scope, _embed_attempt, request, cache)
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
        if attempt is _embed_attempt:
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
            result = yield from request.llm._route_flow(
                route, attempt, request.payload, request.chain, request.first_index
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

    def _http(self, request: httpx2.Request, timeout: float | None) -> httpx2.Request:
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
        # Every field is checked above (messages by normalise_messages): no need to
        # validate the model again on each call.
        return ChatRequest.model_construct(
            model=self.target.model,
            messages=normalise_messages(messages),
            params={k: v for k, v in params.items() if v is not None},
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
        return call

    def _finished_embed(
        self, scope: CallScope, response: EmbeddingResponse
    ) -> EmbeddingResponse:
        scope.read(response, _read_vectors)
        scope.meter()
        return response.model_copy(update={"cost": public_cost(scope.call.cost)})


def deliver(
    scope: CallScope, request: ChatRequest, response: ChatResponse | _Hit
) -> ChatResponse:
    """The answer as the caller gets it: read, metered, with the route's facts on it.

    Usage the provider did not report is counted; attempts, fallback index and cost
    are set.
    """
    cached = isinstance(response, _Hit)
    given = response.response if isinstance(response, _Hit) else response
    scope.read(given, read_answer, request)
    scope.meter()
    call = scope.call
    answer: ChatResponse = call.response  # as read: with its usage counted
    route = scope.route
    facts = (
        requests_made(route.attempts) if route is not None else 1,
        route.fallback_index if route is not None else 0,
        public_cost(call.cost),
        cached,
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
        }
    )
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


def _read_vectors(call: Call, response: EmbeddingResponse) -> None:
    """An embeddings answer's facts."""
    call.response = response
    call.response_model = response.model
    call.provider = response.provider or call.provider
    call.set_usage(input_tokens=response.usage.input_tokens)
    call.estimated = response.usage.estimated


# -- attempts (flows) ---------------------------------------------------------------


def _chat_attempt(
    llm: LLM, request: ChatRequest, timeout: float | None
) -> Flow[ChatResponse]:
    http_request = llm._http(llm.provider.chat_request(llm.target, request), timeout)
    response = yield Send(llm, http_request, stream=False)
    if response.status_code >= 400:
        raise error_from_response(llm.provider.name, response)
    return llm.provider.parse_chat(llm.target, response)


def stream_attempt(
    llm: LLM, request: ChatRequest, timeout: float | None
) -> Flow[Opened]:
    """Open a stream and read up to its first chunk: the part that may be retried."""
    http_request = llm._http(llm.provider.chat_request(llm.target, request), timeout)
    response = yield Send(llm, http_request, stream=True)
    if response.status_code >= 400:
        raise error_from_response(llm.provider.name, response)
    reader = EventReader(llm.provider.name, response)
    parser = llm.provider.stream_parser(llm.target)
    try:
        while True:
            event = yield reader
            if event is None:
                if parser.complete:
                    return Opened(llm, reader, parser, [])
                raise ProviderConnectionError(
                    f"the {llm.provider.name} stream ended before its first chunk",
                    provider=llm.provider.name,
                )
            chunks = parser.feed(event.event, event.data)
            if chunks:
                return Opened(llm, reader, parser, chunks)
    except GeneratorExit:
        raise  # the caller was cancelled: nothing may be yielded any more
    except BaseException as exc:
        reported = parser.response().usage
        if not reported.estimated:
            # Billed even though the attempt failed (e.g. an error after message_start).
            exc.usage = reported  # type: ignore[attr-defined]
        yield Close(reader)
        raise


def _embed_attempt(
    llm: LLM, request: tuple[list[str], Mapping[str, Any]], timeout: float | None
) -> Flow[EmbeddingResponse]:
    texts, extra = request
    http_request = llm._http(
        llm.provider.embed_request(llm.target, texts, extra), timeout
    )
    response = yield Send(llm, http_request, stream=False)
    if response.status_code >= 400:
        raise error_from_response(llm.provider.name, response)
    return llm.provider.parse_embed(llm.target, response)


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


def close_all() -> None:
    """Close the sync pools of every LLM still open (`aisys.shutdown` calls this)."""
    for llm in list(_OPEN_LLMS):
        llm.close()
