"""aisys: production-grade AI calls from inside application code.

Wrap the model and retrieval functions you have (`traced_llm`, `traced_retrieval`,
`traced`), group them with `trace`, and every call gets an OpenTelemetry span that
follows the GenAI semantic conventions, metrics and one structured log event.

Importing aisys does no I/O, starts no thread and reads no file; heavier parts
(pydantic models, settings, the OTel SDK) load on first use.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

from aisys import _runtime, context
from aisys._runtime import Runtime
from aisys._version import __version__
from aisys.errors import (
    AisysError,
    AisysWarning,
    AllTargetsFailedError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    BudgetStoreError,
    CircuitOpenError,
    ConfigError,
    ContextLengthError,
    GuardError,
    HandoffRequired,
    OutputValidationError,
    PromptError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)

if _typing.TYPE_CHECKING:
    from aisys.llm import LLM, AsyncChatStream, ChatStream
    from aisys.metering.prices import register_price
    from aisys.metering.tokens import count_tokens
    from aisys.pipeline.budget import Budget
    from aisys.pipeline.cache import Cache
    from aisys.pipeline.retry import Retry
    from aisys.pipeline.route import Attempt, CircuitBreaker
    from aisys.prompts import Prompt
    from aisys.settings import Settings
    from aisys.types import (
        ChatChunk,
        ChatRequest,
        ChatResponse,
        Cost,
        Document,
        EmbeddingResponse,
        Message,
        Usage,
    )

__all__ = [
    "AisysError",
    "AisysWarning",
    "AllTargetsFailedError",
    "AsyncChatStream",
    "Attempt",
    "AuthenticationError",
    "BadRequestError",
    "Budget",
    "BudgetExceededError",
    "BudgetStoreError",
    "Cache",
    "Case",
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "ChatStream",
    "CircuitBreaker",
    "CircuitOpenError",
    "ConfigError",
    "ContextLengthError",
    "Cost",
    "Dataset",
    "Document",
    "EmbeddingResponse",
    "EvalRun",
    "GuardError",
    "HandoffRequired",
    "LLM",
    "Message",
    "OutputValidationError",
    "Prompt",
    "PromptError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "ResponseFormatError",
    "Retry",
    "Review",
    "ReviewItem",
    "ReviewQueue",
    "Runtime",
    "Score",
    "ServerError",
    "Settings",
    "Usage",
    "__version__",
    "aevaluate",
    "configure",
    "context",
    "count_tokens",
    "current_trace_id",
    "estimate_cost",
    "evaluate",
    "feedback",
    "flush",
    "get_prompt",
    "guards",
    "redact",
    "register_price",
    "score",
    "scorers",
    "shutdown",
    "trace",
    "traced",
    "traced_llm",
    "traced_retrieval",
]


_DEFAULT = _runtime.DEFAULT_RUNTIME
"""The default runtime the functions below are bound to."""

estimate_cost = _DEFAULT.estimate_cost
get_prompt = _DEFAULT.get_prompt
redact = _DEFAULT.redact
score = _DEFAULT.score
feedback = _DEFAULT.feedback
current_trace_id = _DEFAULT.current_trace_id

configure = _DEFAULT.configure
flush = _DEFAULT.flush
shutdown = _DEFAULT.shutdown
trace = _DEFAULT.trace
traced = _DEFAULT.traced
traced_llm = _DEFAULT.traced_llm
traced_retrieval = _DEFAULT.traced_retrieval

# Loaded on first access so that `import aisys` stays cheap (PEP 562).
_LAZY = {
    "ChatChunk": "aisys.types",
    "ChatRequest": "aisys.types",
    "ChatResponse": "aisys.types",
    "ChatStream": "aisys.llm",
    "AsyncChatStream": "aisys.llm",
    "Retry": "aisys.pipeline.retry",
    "CircuitBreaker": "aisys.pipeline.route",
    "Attempt": "aisys.pipeline.route",
    "EmbeddingResponse": "aisys.types",
    "LLM": "aisys.llm",
    "Cost": "aisys.types",
    "Document": "aisys.types",
    "Message": "aisys.types",
    "Usage": "aisys.types",
    "Score": "aisys.types",
    "Settings": "aisys.settings",
    "count_tokens": "aisys.metering.tokens",
    "register_price": "aisys.metering.prices",
    "Budget": "aisys.pipeline.budget",
    "Cache": "aisys.pipeline.cache",
    "Prompt": "aisys.prompts",
    "Case": "aisys.evals",
    "Review": "aisys.review",
    "ReviewItem": "aisys.review",
    "ReviewQueue": "aisys.review",
    "Dataset": "aisys.evals",
    "EvalRun": "aisys.evals",
    "evaluate": "aisys.evals",
    "aevaluate": "aisys.evals",
}


def __getattr__(name: str) -> _typing.Any:
    if name == "guards":  # a module of its own: `aisys.guards.Secrets()`
        return _importlib.import_module("aisys.guards")
    if name == "scorers":  # a module of its own: `aisys.scorers.Exact()`
        return _importlib.import_module("aisys.scorers")
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'aisys' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
