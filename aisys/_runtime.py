"""The runtime: settings plus the telemetry built from them, created on first use.

`aisys.traced_llm`, `aisys.configure`, `aisys.flush` … are bound methods of one default
runtime (as in logfire); a library or a test can make an isolated `Runtime` with its own
settings and tracer provider. Nothing here does I/O until the first call.
"""

from __future__ import annotations

import atexit
import importlib
import sys
import threading
import time
from collections.abc import Callable, Mapping, MutableSequence, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from aisys import _checks, _current
from aisys._sentinel import DEFAULT, Default
from aisys.instrument import Spec, TraceBlock, instrument
from aisys.pipeline._clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from aisys.pipeline.budget import Budget
    from aisys.pipeline.cache import Cache
    from aisys.pipeline.retry import Retry
    from aisys.pipeline.route import CircuitBreaker
    from aisys.prompts import Prompt
    from aisys.safety.guards import Guard
    from aisys.safety.redact import Redactor
    from aisys.scoring import ScoringWorker
    from aisys.settings import Settings
    from aisys.telemetry.writer import Telemetry
    from aisys.types import Cost, Score

__all__ = ["Runtime"]

F = TypeVar("F", bound=Callable[..., Any])


class Runtime:
    """Settings and telemetry for the calls made through it.

    Added in 0.1.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._settings = settings
        self.clock: Clock = clock or SYSTEM_CLOCK
        """Time for retries, deadlines and breakers (`aisys.testing.FakeClock` in tests)."""
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._telemetry: Telemetry | None = None
        self._scoring: ScoringWorker | None = None
        self._redactor: Redactor | None = None
        self._adopted = False
        """Whether the settings' prices file is in force (done on first use)."""
        self._lock = threading.RLock()

    @property
    def settings(self) -> Settings:
        """The settings in force; read from the environment on first use if never set.

        Reading them puts their prices file in force (before any call is estimated);
        a bad value or file raises `aisys.ConfigError` here, on first use.
        """
        settings = self._settings
        if settings is None or not self._adopted:
            with self._lock:
                if self._settings is None:
                    from aisys.settings import Settings

                    self._settings = Settings()
                    self._adopted = False
                if not self._adopted:
                    _adopt(self._settings)
                    self._adopted = True
                settings = self._settings
        return settings

    @property
    def telemetry(self) -> Telemetry:
        """Where calls are recorded; built from the settings on first use."""
        telemetry = self._telemetry
        if telemetry is None:
            with self._lock:
                if self._telemetry is None:
                    self._telemetry = self._build_telemetry()
                telemetry = self._telemetry
        return telemetry

    @property
    def redactor(self) -> Redactor:
        """Redaction as the settings configure it (numbering shared with telemetry)."""
        redactor = self._redactor
        if redactor is None:
            from aisys.safety.redact import Redactor

            settings = self.settings
            redactor = self._redactor = Redactor(
                settings.redact_patterns, settings.redactor
            )
        return redactor

    def _build_telemetry(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        log_sink: MutableSequence[dict[str, Any]] | None = None,
        settings: Settings | None = None,
    ) -> Telemetry:
        from aisys.telemetry.writer import Telemetry

        chosen = settings or self.settings
        return Telemetry(
            chosen,
            tracer_provider=tracer_provider or self._tracer_provider,
            meter_provider=meter_provider or self._meter_provider,
            log_sink=log_sink,
            redactor=self.redactor if chosen.capture_content == "redacted" else None,
        )

    def configure(self, **fields: Any) -> Settings:
        """Replace the settings; fields not given come from ``AISYS_*`` or defaults.

        Spans already queued are flushed to the previous exporters first. Raises
        `aisys.ConfigError` naming any bad field, its value and what is allowed.

        Added in 0.1.
        """
        from aisys.settings import Settings

        settings = Settings(**fields)
        _adopt(settings)  # a bad prices file is refused here; the old settings stay
        self._put_settings(settings, adopted=True)
        return settings

    def _put_settings(
        self, settings: Settings | None, *, adopted: bool = False
    ) -> None:
        """Put ``settings`` in force (``None``: read anew on first use); telemetry restarts."""
        self._reset_scoring()  # queued scores go out with the telemetry they began in
        with self._lock:
            old, self._telemetry = self._telemetry, None
            self._settings = settings
            self._adopted = adopted and settings is not None
            self._redactor = None
        if old is not None:
            old.shutdown()

    def flush(self, timeout: float | None = None) -> bool:
        """Export every finished span now; waits at most ``timeout`` seconds.

        Online scores still queued are recorded first. Returns False when the time ran
        out. Never hangs.

        Added in 0.1.
        """
        limit = self.settings.flush_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        scored = True
        if self._scoring is not None:
            scored = self._scoring.flush(limit)
        telemetry = self._telemetry
        if telemetry is None:
            return scored
        return telemetry.flush(max(0.0, deadline - time.monotonic())) and scored

    def _reset_scoring(self) -> None:
        """Score what is queued (briefly), then let the next use start a new worker."""
        with self._lock:
            worker, self._scoring = self._scoring, None
        if worker is not None:
            worker.close(1.0)
            atexit.unregister(worker.close)

    def scoring_worker(self) -> ScoringWorker:
        """The background worker that runs online scorers (started on first use)."""
        worker = self._scoring
        if worker is None:
            from aisys.scoring import ScoringWorker

            with self._lock:
                if self._scoring is None:
                    self._scoring = ScoringWorker(
                        lambda score, trace_id, span_id: self._record_score(
                            score, None, trace_id, span_id, {}
                        ),
                        self.settings.max_queue_size,
                    )
                    atexit.register(self._scoring.close, self.settings.flush_timeout)
                worker = self._scoring
        return worker

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush and close aisys's exporters; the next call starts fresh ones.

        Also runs at interpreter exit. Never closes the host application's provider.

        Added in 0.1.
        """
        if self._scoring is not None:  # its scores go out with this telemetry
            self._scoring.flush(
                self.settings.flush_timeout if timeout is None else timeout
            )
        with self._lock:
            telemetry, self._telemetry = self._telemetry, None
        llm = sys.modules.get("aisys.llm")
        if llm is not None:
            llm.close_all()
        if telemetry is None:
            return True
        return telemetry.shutdown(timeout)

    def _swap_telemetry(self, telemetry: Telemetry | None) -> Telemetry | None:
        """Put ``telemetry`` in force and return what was (for `aisys.testing.capture`)."""
        with self._lock:
            old, self._telemetry = self._telemetry, telemetry
        return old

    # -- what reads the settings ----------------------------------------------------

    def estimate_cost(
        self, model: str, usage: Any, *, provider: str | None = None
    ) -> Cost:
        """What ``usage`` (an `aisys.Usage` or a dict of its fields) costs on ``model``.

        ``model`` is ``"gpt-4o-mini"`` or ``"openai:gpt-4o-mini"``; dated snapshots
        match their model. Cached input is priced at the cache-read price and cache
        writes at the cache-write price, each token once; reasoning tokens are output
        tokens, once. The settings' prices file is in force.

        Added in 0.1.
        """
        from aisys.metering.cost import estimate_cost

        self.settings  # noqa: B018 - reading them puts their prices file in force
        return estimate_cost(model, usage, provider=provider)

    def get_prompt(
        self,
        name: str,
        version: int | None = None,
        label: str | None = None,
        *,
        directory: Path | str | None = None,
    ) -> Prompt:
        """A prompt from the ``prompts_dir`` setting (or ``directory``).

        No version or label: the file as it is now (`Prompt.version` is the released
        number whose hash it matches, else ``"draft"``). With ``require_approval=True``
        a protected label (``production`` by default) must point to an approved version
        whose released copy still matches its hash, else `aisys.PromptError` — before
        any request is made. The file is parsed once per change; rendering does no
        file I/O.

        Added in 0.1.
        """
        from aisys.prompts import get_prompt

        settings = self.settings
        return get_prompt(
            name,
            version,
            label,
            directory=settings.prompts_dir if directory is None else directory,
            require_approval=settings.require_approval,
        )

    def redact(self, text: str) -> str:
        """``text`` with secrets and personal data replaced by typed placeholders.

        Uses the ``redact_patterns``/``redactor`` settings; inside a trace, numbers
        follow that trace's (the same value gets the same placeholder as in its spans).

        Added in 0.1.
        """
        from aisys.telemetry.writer import current_trace_id

        return self.redactor.redact(text, current_trace_id())

    # -- evaluation -------------------------------------------------------------------

    def score(
        self,
        name: str,
        value: float | bool | None = None,
        *,
        label: str | None = None,
        explanation: str | None = None,
        response: Any = None,
        trace_id: str | None = None,
        span_id: str | None = None,
    ) -> Score:
        """Record one evaluation result for a call: ``gen_ai.evaluation.result``.

        The call is ``response`` (its `ChatResponse`, or its trace id), the ids given,
        or else the current traced call. ``value`` is in [0, 1] (a bool is 1 or 0);
        give a ``value``, a ``label`` or both. A span event while the call's span is
        open, else a log record with its ids; always a JSONL line and a log event.
        ``explanation`` is redacted unless ``capture_content="full"``.

        Added in 0.2.
        """
        from aisys.types import Score

        checked = _checks.score_value(name, value, label, explanation)
        return self._record_score(
            Score(name, checked, label, explanation), response, trace_id, span_id, {}
        )

    def feedback(
        self,
        response: Any,
        *,
        thumbs: str | None = None,
        value: float | bool | None = None,
        comment: str | None = None,
        user_id: str | None = None,
    ) -> Score:
        """A user's verdict on a call, from the app's UI: the score ``user_feedback``.

        ``response`` is the call's `ChatResponse` or its trace id; ``thumbs="up"`` /
        ``"down"`` is value 1 / 0 with that label; ``comment`` is its explanation.

        Added in 0.2.
        """
        from aisys.types import Score

        if thumbs not in (None, "up", "down"):
            raise _checks.bad("feedback", "thumbs", "'up', 'down' or None", thumbs)
        if thumbs is not None and value is None:
            value = 1.0 if thumbs == "up" else 0.0
        checked = _checks.score_value(
            "user_feedback", value, thumbs, comment, owner="feedback"
        )
        _checks.optional_text("feedback", "user_id", user_id)
        extra = {"user.id": user_id} if user_id is not None else {}
        return self._record_score(
            Score("user_feedback", checked, thumbs, comment),
            response,
            None,
            None,
            extra,
        )

    def _record_score(
        self,
        score: Score,
        response: Any,
        trace_id: str | None,
        span_id: str | None,
        extra: dict[str, Any],
    ) -> Score:
        from aisys.telemetry.evaluations import attributes, record, target_ids

        trace_hex, span_hex, response_id = target_ids(response, trace_id, span_id)
        explanation = score.explanation
        if self.settings.capture_content != "full":
            redactor = self.redactor
            if explanation is not None:
                explanation = redactor.redact(explanation, trace_hex or "")
            extra = {k: redactor.redact(v, trace_hex or "") for k, v in extra.items()}
        attrs = attributes(
            score.name,
            score.value,
            score.label,
            explanation,
            error_type=score.error,
            response_id=response_id,
            extra=extra,
        )
        try:
            record(self.telemetry, trace_hex, span_hex, attrs)
        except Exception:  # telemetry never fails the caller
            import logging

            logging.getLogger("aisys").warning(
                "aisys could not record a score", exc_info=True
            )
        return score

    def current_trace_id(self) -> str | None:
        """The current trace's id (32 hex digits), or ``None`` outside any trace.

        For decorator mode: `aisys.score(..., trace_id=aisys.current_trace_id())`.

        Added in 0.2.
        """
        from aisys.telemetry.writer import current_trace_id

        return current_trace_id() or None

    # -- instrumentation ------------------------------------------------------------

    @overload
    def traced_llm(self, fn: F, /) -> F: ...
    @overload
    def traced_llm(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        operation: str = "chat",
        retry: Retry | None = None,
        fallbacks: Sequence[Callable[..., Any]] = (),
        deadline: float | None = None,
        circuit: CircuitBreaker | Default | None = DEFAULT,
        budget: Budget | Sequence[Budget] | None = None,
        cache: Cache | None = None,
        prompt: Prompt | None = None,
        guards: Sequence[Guard] = (),
        price_as: str | None = None,
        scorers: Sequence[Callable[..., Any]] = (),
        score_sample: float | None = None,
        review: Any = None,
    ) -> Callable[[F], F]: ...
    def traced_llm(
        self,
        fn: F | None = None,
        /,
        *,
        name: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        operation: str = "chat",
        retry: Retry | None = None,
        fallbacks: Sequence[Callable[..., Any]] = (),
        deadline: float | None = None,
        circuit: CircuitBreaker | Default | None = DEFAULT,
        budget: Budget | Sequence[Budget] | None = None,
        cache: Cache | None = None,
        prompt: Prompt | None = None,
        guards: Sequence[Guard] = (),
        price_as: str | None = None,
        scorers: Sequence[Callable[..., Any]] = (),
        score_sample: float | None = None,
        review: Any = None,
    ) -> F | Callable[[F], F]:
        """Trace a function that calls a model; it returns exactly what it returned.

        Usage, model, response id and finish reasons are read from the result: an
        ``openai`` or ``anthropic`` SDK object, the same as a dict, a `ChatResponse`,
        or a plain string (tokens then counted offline, marked estimated). A provider
        stream is passed through and its span ends when the stream does.

        ``retry=aisys.Retry(...)``, ``fallbacks=[other_fn, ...]`` (same arguments) and
        ``deadline=`` give the function the same policy as `aisys.LLM`: official SDK
        errors (429, 5xx, timeouts, connection errors) are recognised as retryable.
        Each function gets a circuit breaker (``circuit=aisys.CircuitBreaker(...)``
        for other thresholds, ``circuit=None`` for none). ``budget=aisys.Budget(...)``
        (or a list) is checked before each call, as for `aisys.LLM`; a budget that
        downgrades needs a ``model`` parameter to change. ``cache=aisys.Cache(...)``
        answers repeated calls with the same arguments from the cache, without calling
        the function (its result must be JSON or a pydantic model, e.g. an SDK response).
        ``prompt=aisys.get_prompt(...)`` records the prompt's name, version and sha256 on
        every call (and its model, when ``model=`` is not given). ``guards=[...]``
        (`aisys.guards`) check the prompt argument before the call and the answer after.
        ``price_as="openai"`` prices calls from that provider's table (a gateway
        serving its models). ``scorers=[...]`` score ``score_sample`` (default all) of
        the answers on a background worker, recorded on each call's span.
        ``review=aisys.Review(...)`` queues calls for a person (guards with
        ``action="review"``/``"handoff"`` use it, or the default queue).

        Added in 0.1.
        """
        owner = "traced_llm"
        for label, value in (("name", name), ("provider", provider), ("model", model)):
            _checks.optional_text(owner, label, value)
        _checks.text(owner, "operation", operation)
        if not isinstance(guards, tuple) or guards:
            from aisys.safety.guards import guards_of  # its detectors load with it

            guards = guards_of(owner, guards)
        fallbacks = _functions_of(owner, fallbacks)
        if deadline is not None:
            deadline = _checks.seconds(owner, "deadline", deadline)
        if retry is not None:
            from aisys.pipeline.retry import check_retry  # loads tenacity: it is needed

            check_retry(owner, retry)
        online = None
        scoring = None
        if scorers or score_sample is not None:
            from aisys.scoring import OnlineScoring, check_scoring

            scoring = check_scoring(owner, scorers, score_sample)
        if review is not None or any(
            getattr(g, "action", None) in ("review", "handoff") for g in guards
        ):
            # The review queue sits above the decorators (it records through the
            # runtime): it is looked up here, when asked for, not imported.
            review_for = importlib.import_module("aisys.review.queue").review_for
            review = review_for(owner, review, guards, scoring is not None)
            if review.defer is None:
                review.defer = lambda job: self.scoring_worker().defer(job)
        if scoring is not None:
            from aisys.scoring import OnlineScoring

            online = OnlineScoring(*scoring, worker=self.scoring_worker, review=review)

        def decorate(func: F) -> F:
            _callable(owner, func)
            spec = Spec(
                func,
                "llm",
                operation=operation,
                name=name,
                provider=provider,
                model=model,
                prompt=prompt,
                price_as=price_as,
                online=online,
                review=review,
            )
            from aisys.pipeline.budget import budgets_for_function
            from aisys.pipeline.cache import check_cache_for_function
            from aisys.pipeline.chain import assemble

            budgets = budgets_for_function(budget, func, spec.model_param is not None)
            if cache is not None:
                check_cache_for_function(cache, func)
            steps = assemble(
                runtime=lambda: self, budgets=budgets, cache=cache, guards=guards
            )
            route = None
            if (
                retry is not None
                or fallbacks
                or deadline is not None
                or not isinstance(circuit, Default | None)
            ):
                from aisys.instrument.failover import FunctionRoute  # loads tenacity
                from aisys.pipeline.route import CircuitBreaker, check_circuit

                check_circuit(circuit)
                route = FunctionRoute(
                    func,
                    fallbacks=fallbacks,
                    retry=retry,
                    deadline=deadline,
                    provider=provider,
                    circuit=circuit if isinstance(circuit, CircuitBreaker) else None,
                    use_circuit=circuit is not None,
                    price_as=spec.price_as,
                )
            plan = None
            if steps or route is not None:
                from aisys.instrument.plan import Plan

                plan = Plan(spec, func, steps, route)
            return instrument(self, spec, func, plan)  # type: ignore[return-value]

        return decorate(fn) if fn is not None else decorate

    @overload
    def traced_retrieval(self, fn: F, /) -> F: ...
    @overload
    def traced_retrieval(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        data_source: str | None = None,
    ) -> Callable[[F], F]: ...
    def traced_retrieval(
        self,
        fn: F | None = None,
        /,
        *,
        name: str | None = None,
        data_source: str | None = None,
    ) -> F | Callable[[F], F]:
        """Trace a function that returns documents: span ``retrieval {data_source}``.

        Records how many documents came back, their scores where given (``score``
        keys or attributes, or ``(document, score)`` pairs) and ``top_k``/``k``.

        Added in 0.1.
        """
        _checks.optional_text("traced_retrieval", "name", name)
        _checks.optional_text("traced_retrieval", "data_source", data_source)

        def decorate(func: F) -> F:
            _callable("traced_retrieval", func)
            spec = Spec(
                func,
                "retrieval",
                operation="retrieval",
                name=name,
                data_source=data_source,
            )
            return instrument(self, spec, func)  # type: ignore[return-value]

        return decorate(fn) if fn is not None else decorate

    @overload
    def traced(self, fn: F, /) -> F: ...
    @overload
    def traced(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        operation: str | None = None,
    ) -> Callable[[F], F]: ...
    def traced(
        self,
        fn: F | None = None,
        /,
        *,
        name: str | None = None,
        operation: str | None = None,
    ) -> F | Callable[[F], F]:
        """Trace any step (a tool, a parser, a post-processor) as an internal span.

        With ``operation="execute_tool"`` the span is ``execute_tool {name}`` as the
        conventions name tool calls.

        Added in 0.1.
        """
        _checks.optional_text("traced", "name", name)
        _checks.optional_text("traced", "operation", operation)

        def decorate(func: F) -> F:
            _callable("traced", func)
            spec = Spec(func, "step", operation=operation, name=name)
            return instrument(self, spec, func)  # type: ignore[return-value]

        return decorate(fn) if fn is not None else decorate

    def trace(
        self,
        name: str,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> TraceBlock:
        """Group the calls inside a ``with``/``async with`` block under one parent span.

        Calls inside inherit ``user.id``, ``session.id``, ``aisys.tags`` and
        ``aisys.metadata.<key>``, on their spans and their log events.

        Added in 0.1.
        """
        return TraceBlock(
            self,
            _checks.text("trace", "name", name),
            user_id=_checks.optional_text("trace", "user_id", user_id),
            session_id=_checks.optional_text("trace", "session_id", session_id),
            tags=_checks.strings("trace", "tags", tags),
            metadata=None
            if metadata is None
            else _checks.mapping("trace", "metadata", metadata),
        )


def _callable(owner: str, fn: Any) -> None:
    if not callable(fn):
        raise _checks.bad(owner, "fn", "a function to decorate", fn)


def _functions_of(owner: str, fallbacks: Any) -> tuple[Callable[..., Any], ...]:
    """A decorator's ``fallbacks=``: functions taking the same arguments."""
    if isinstance(fallbacks, list | tuple) and all(callable(f) for f in fallbacks):
        return tuple(fallbacks)
    raise _checks.bad(
        owner,
        "fallbacks",
        "a list of functions taking the same arguments",
        fallbacks,
        "use aisys.LLM(fallbacks=[...]) for 'provider:model' strings"
        if isinstance(fallbacks, str)
        or (
            isinstance(fallbacks, list | tuple)
            and any(isinstance(f, str) for f in fallbacks)
        )
        else "",
    )


def _adopt(settings: Settings) -> None:
    """Put what settings decide process-wide in force: the prices file, price updates."""
    if settings.prices_path is None and not settings.price_updates:
        prices = sys.modules.get("aisys.metering.prices")
        if prices is None or prices._FILE[0] is None:
            return  # nothing to load, nothing to forget: keep import light
    from aisys.metering.cost import use_settings

    use_settings(settings)


DEFAULT_RUNTIME = Runtime()
"""The runtime `aisys.configure`, `aisys.traced_llm` … are bound to, and that an
`aisys.LLM` made without ``runtime=`` records its calls in."""
_current.runtime = DEFAULT_RUNTIME  # for the parts above that need it by default
