"""OTel metrics for calls: token usage, duration, errors.

Names follow the semantic conventions; ``latest`` switches to the genai repository's
newer inference metrics (OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, NoOpMeter, Observation

from aisys.call import Call
from aisys.telemetry import attributes as A
from aisys.telemetry.spans import error_type

__all__ = ["Instruments"]

_USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "reasoning_output_tokens",
)
_LATEST_USAGE_NAMES = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_input_tokens": "cache_read.input_tokens",
    "cache_write_input_tokens": "cache_write.input_tokens",
    "reasoning_output_tokens": "reasoning.output_tokens",
}


class Instruments:
    """The instruments aisys records per call, created once per meter."""

    def __init__(self, meter: Meter, *, latest: bool) -> None:
        self.latest = latest
        self._meter = meter
        self._noop = isinstance(meter, NoOpMeter)
        self.duration = meter.create_histogram(
            A.METRIC_OPERATION_DURATION,
            unit="s",
            description="Duration of GenAI operations.",
            explicit_bucket_boundaries_advisory=list(A.DURATION_BUCKETS),
        )
        self.errors = meter.create_counter(
            A.METRIC_ERRORS, unit="{error}", description="Calls that failed."
        )
        self.retries = meter.create_counter(
            A.METRIC_RETRIES,
            unit="{request}",
            description="Requests repeated after a failure.",
        )
        self.fallbacks = meter.create_counter(
            A.METRIC_FALLBACKS,
            unit="{target}",
            description="Moves to a fallback target.",
        )
        self.cost = meter.create_counter(
            A.METRIC_COST_USD,
            unit="USD",
            description="What priced calls cost (calls of unknown price are not added).",
        )
        self.cache_requests = meter.create_counter(
            A.METRIC_CACHE_REQUESTS,
            unit="{request}",
            description="Cache lookups by result: hit, miss or error.",
        )
        self.guard_findings = meter.create_counter(
            A.METRIC_GUARD_FINDINGS,
            unit="{finding}",
            description="What guards found, by guard and action.",
        )
        self.budget_spent = meter.create_counter(
            A.METRIC_BUDGET_SPENT_USD,
            unit="USD",
            description="Spend settled against budgets, by budget.",
        )
        self.spool_dropped = meter.create_counter(
            A.METRIC_SPOOL_DROPPED,
            unit="{item}",
            description="Spans and metrics dropped from a full export spool (oldest first).",
        )
        meter.create_observable_gauge(
            A.METRIC_CIRCUIT_STATE,
            callbacks=[_circuit_states],
            unit="{state}",
            description="Circuit breaker per target: 0 closed, 1 half-open, 2 open.",
        )
        if latest:
            self.inference_duration = meter.create_histogram(
                A.METRIC_INFERENCE_DURATION,
                unit="s",
                description="Duration of GenAI inference calls.",
                explicit_bucket_boundaries_advisory=list(A.DURATION_BUCKETS),
            )
            self.input_tokens = meter.create_histogram(
                A.METRIC_INFERENCE_INPUT_TOKENS,
                unit="{token}",
                explicit_bucket_boundaries_advisory=list(A.TOKEN_BUCKETS),
            )
            self.output_tokens = meter.create_histogram(
                A.METRIC_INFERENCE_OUTPUT_TOKENS,
                unit="{token}",
                explicit_bucket_boundaries_advisory=list(A.TOKEN_BUCKETS),
            )
            self.usage_counters = {
                key: meter.create_counter(
                    A.METRIC_INFERENCE_USAGE_PREFIX + name, unit="{token}"
                )
                for key, name in _LATEST_USAGE_NAMES.items()
            }
        else:
            self.token_usage = meter.create_histogram(
                A.METRIC_TOKEN_USAGE,
                unit="{token}",
                description="Tokens used per GenAI operation.",
                explicit_bucket_boundaries_advisory=list(A.TOKEN_BUCKETS),
            )

    @property
    def live(self) -> bool:
        """Whether a point recorded now reaches a meter (False: no-op, so skip the work).

        A meter from the API's global proxy comes alive when the host sets a provider.
        """
        if self._noop:
            return False
        meter = self._meter
        real = getattr(meter, "_real_meter", meter)  # the proxy's delegate, once set
        return real is meter or (real is not None and not isinstance(real, NoOpMeter))

    def _record_route(self, call: Call, attrs: dict[str, Any]) -> None:
        made = [a for a in call.attempts if a.made_request]
        retries = len(made) - len({a.fallback_index for a in made})
        if retries > 0:
            self.retries.add(retries, attrs)
        moved = max(a.fallback_index for a in call.attempts)
        if moved > 0:
            self.fallbacks.add(moved, attrs)

    def record(self, call: Call, duration_s: float) -> None:
        """Record one finished call."""
        attrs: dict[str, Any] = {A.GEN_AI_OPERATION_NAME: call.operation}
        if call.provider:
            attrs[A.GEN_AI_PROVIDER_NAME] = call.provider
        if call.request_model:
            attrs[A.GEN_AI_REQUEST_MODEL] = call.request_model
        if call.response_model:
            attrs[A.GEN_AI_RESPONSE_MODEL] = call.response_model
        if call.server_address:
            attrs[A.SERVER_ADDRESS] = call.server_address
        ok_attrs = attrs
        if call.error is not None:
            attrs = {**attrs, A.ERROR_TYPE: error_type(call.error)}
            self.errors.add(1, attrs)
        if call.attempts:
            self._record_route(call, ok_attrs)
        for guard, action, findings in call.guard_findings:
            self.guard_findings.add(
                len(findings),
                {**ok_attrs, A.AISYS_GUARD_NAME: guard, A.AISYS_GUARD_ACTION: action},
            )
        if call.cache_result is not None:
            self.cache_requests.add(
                1, {**ok_attrs, A.AISYS_CACHE_RESULT: call.cache_result}
            )
        cost = call.cost
        usd = cost.usd_float if cost is not None else None
        if usd is not None:
            cost_attrs = attrs
            if call.prompt is not None:
                cost_attrs = {**attrs, A.AISYS_PROMPT_NAME: call.prompt[0]}
            self.cost.add(usd, cost_attrs)
            if call.budget is not None:
                self.budget_spent.add(usd, {A.AISYS_BUDGET_NAME: call.budget["name"]})
        inference = call.kind == "llm" and call.operation != "embeddings"
        if self.latest and inference:
            self.inference_duration.record(duration_s, attrs)
        else:
            self.duration.record(duration_s, attrs)
        usage = call.usage
        if usage is None:
            return
        if self.latest:
            if "input_tokens" in usage:
                self.input_tokens.record(usage["input_tokens"], ok_attrs)
            if "output_tokens" in usage:
                self.output_tokens.record(usage["output_tokens"], ok_attrs)
            counted = {**ok_attrs, A.GEN_AI_TOKEN_MODALITY: "unknown"}
            for key in _USAGE_KEYS:
                if key in usage:
                    self.usage_counters[key].add(usage[key], counted)
            return
        if "input_tokens" in usage:
            self.token_usage.record(
                usage["input_tokens"], {**ok_attrs, A.GEN_AI_TOKEN_TYPE: "input"}
            )
        if "output_tokens" in usage:
            self.token_usage.record(
                usage["output_tokens"], {**ok_attrs, A.GEN_AI_TOKEN_TYPE: "output"}
            )


_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}


def _circuit_states(options: CallbackOptions) -> Iterable[Observation]:
    """Every known target's breaker state, read when metrics are collected."""
    from aisys.pipeline.route import breaker_states

    return [
        Observation(_STATE_VALUES[state], {A.AISYS_TARGET: target})
        for target, state in breaker_states().items()
    ]
