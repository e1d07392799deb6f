"""Every span, metric and log attribute name aisys emits, in one place.

Names follow the OpenTelemetry GenAI semantic conventions (see docs/telemetry.md);
aisys's own facts live under ``aisys.*``. The strings are owned here rather than
imported from the incubating semconv module, whose GenAI names are deprecated there.
"""

from __future__ import annotations

from typing import Final

# GenAI semantic conventions: spans.
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = (
    "gen_ai.usage.cache_creation.input_tokens"
)
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_REQUEST_TOP_K: Final = "gen_ai.request.top_k"
GEN_AI_RETRIEVAL_TOP_K: Final = "gen_ai.retrieval.top_k"
GEN_AI_DATA_SOURCE_ID: Final = "gen_ai.data_source.id"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_PROMPT_NAME: Final = "gen_ai.prompt.name"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_RETRIEVAL_QUERY_TEXT: Final = "gen_ai.retrieval.query.text"
GEN_AI_RETRIEVAL_DOCUMENTS: Final = "gen_ai.retrieval.documents"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"
USER_ID: Final = "user.id"
SESSION_ID: Final = "session.id"

# GenAI semantic conventions: metrics and their attributes.
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_TOKEN_MODALITY: Final = "gen_ai.token.modality"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
# The genai repository's newer names, behind OTEL_SEMCONV_STABILITY_OPT_IN.
METRIC_INFERENCE_DURATION: Final = "gen_ai.client.inference.duration"
METRIC_INFERENCE_INPUT_TOKENS: Final = "gen_ai.client.inference.operation.input_tokens"
METRIC_INFERENCE_OUTPUT_TOKENS: Final = (
    "gen_ai.client.inference.operation.output_tokens"
)
METRIC_INFERENCE_USAGE_PREFIX: Final = "gen_ai.client.inference.usage."

# aisys's own facts.
AISYS_TAGS: Final = "aisys.tags"
AISYS_METADATA_PREFIX: Final = "aisys.metadata."
AISYS_USAGE_ESTIMATED: Final = "aisys.usage.estimated"
AISYS_RESPONSE_UNREAD: Final = "aisys.response.unread"
AISYS_STREAM_CLOSED_EARLY: Final = "aisys.stream.closed_early"
AISYS_STREAM_CHUNKS: Final = "aisys.stream.chunks"
AISYS_STREAM_TTFT_MS: Final = "aisys.stream.ttft_ms"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
AISYS_RETRIEVAL_DOCUMENTS_COUNT: Final = "aisys.retrieval.documents.count"
AISYS_RETRIEVAL_SCORES: Final = "aisys.retrieval.scores"
AISYS_COST_USD: Final = "aisys.cost.usd"
AISYS_COST_STATUS: Final = "aisys.cost.status"
AISYS_PRICE_TABLE: Final = "aisys.price_table"
AISYS_CACHE_HIT: Final = "aisys.cache.hit"
AISYS_CACHE_BACKEND: Final = "aisys.cache.backend"
AISYS_CACHE_SAVED_USD: Final = "aisys.cache.saved_usd"
AISYS_CACHE_RESULT: Final = "aisys.cache.result"
AISYS_RETRY_ATTEMPTS: Final = "aisys.retry.attempts"
AISYS_FALLBACK_INDEX: Final = "aisys.fallback.index"
AISYS_TARGET: Final = "aisys.target"
AISYS_ATTEMPT_NUMBER: Final = "aisys.attempt.number"
AISYS_ATTEMPT_OUTCOME: Final = "aisys.attempt.outcome"
AISYS_ATTEMPT_WAIT_S: Final = "aisys.attempt.wait_s"
AISYS_ATTEMPT_RETRY_AFTER_S: Final = "aisys.attempt.retry_after_s"
AISYS_ATTEMPTS: Final = "aisys.attempts"
AISYS_ATTEMPT_COST_USD: Final = "aisys.attempt.cost.usd"
AISYS_GUARD_FINDINGS: Final = "aisys.guard.findings"
AISYS_GUARD_NAME: Final = "aisys.guard.name"
AISYS_GUARD_ACTION: Final = "aisys.guard.action"
AISYS_PROMPT_NAME: Final = "aisys.prompt.name"
AISYS_PROMPT_VERSION: Final = "aisys.prompt.version"
AISYS_PROMPT_SHA256: Final = "aisys.prompt.sha256"
AISYS_BUDGET_NAME: Final = "aisys.budget.name"
AISYS_BUDGET_LIMIT_USD: Final = "aisys.budget.limit_usd"
AISYS_BUDGET_SPENT_USD: Final = "aisys.budget.spent_usd"
AISYS_BUDGET_EXCEEDED: Final = "aisys.budget.exceeded"
AISYS_BUDGET_DOWNGRADED_TO: Final = "aisys.budget.downgraded_to"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
METRIC_ERRORS: Final = "aisys.errors"
METRIC_RETRIES: Final = "aisys.retries"
METRIC_FALLBACKS: Final = "aisys.fallbacks"
METRIC_CIRCUIT_STATE: Final = "aisys.circuit.state"
METRIC_SPANS_DROPPED: Final = "aisys.spans.dropped"
METRIC_COST_USD: Final = "aisys.cost.usd"
METRIC_CACHE_REQUESTS: Final = "aisys.cache.requests"
METRIC_GUARD_FINDINGS: Final = "aisys.guard.findings"
METRIC_BUDGET_SPENT_USD: Final = "aisys.budget.spent_usd"
METRIC_SPOOL_DROPPED: Final = "aisys.spool.dropped"

# The log event every call emits.
LOG_EVENT_CALL: Final = "gen_ai.call"
LOG_EVENT_TRACE: Final = "aisys.trace"

# Token buckets and duration buckets the conventions advise.
TOKEN_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
    16777216, 67108864,
)  # fmt: skip
DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
    40.96, 81.92,
)  # fmt: skip
