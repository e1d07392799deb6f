"""aisys.LLM: aisys makes the call itself, through provider adapters.

The client, by concern: `client` (the `LLM`: configuration, pools, the call methods),
`request` (what travels down its chain), `attempts` (one try at one target, as a flow),
`effects` (the only I/O), `answers` (an answer as the caller gets it) and `streams`
(`ChatStream` and `AsyncChatStream`).
"""

from aisys.llm.answers import deliver, estimate, read_answer
from aisys.llm.attempts import Opened, stream_attempt
from aisys.llm.client import DEFAULT_RETRY, LLM, close_all
from aisys.llm.request import LLMRequest
from aisys.llm.streams import AsyncChatStream, ChatStream

__all__ = [
    "DEFAULT_RETRY",
    "LLM",
    "AsyncChatStream",
    "ChatStream",
    "LLMRequest",
    "Opened",
    "close_all",
    "deliver",
    "estimate",
    "read_answer",
    "stream_attempt",
]
