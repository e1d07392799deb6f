"""Reads aisys's own `ChatResponse` (from `aisys.LLM` or `aisys.testing`)."""

from __future__ import annotations

import sys
from typing import Any

from aisys.call import Call
from aisys.providers.base import StreamKind, StreamState

__all__ = ["READER"]


class _AisysReader:
    def read(self, call: Call, result: Any) -> bool:
        if type(result) is dict:  # the common plain result: no ABC instance check
            return False
        types = sys.modules.get("aisys.types")
        if types is None or not isinstance(result, types.ChatResponse):
            return False
        call.provider = call.provider or result.provider
        call.response_model = result.model
        call.response_id = result.id
        if result.finish_reason:
            call.finish_reasons = (result.finish_reason,)
        usage = result.usage
        call.set_usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_input_tokens=usage.cache_read_input_tokens,
            cache_write_input_tokens=usage.cache_write_input_tokens,
            reasoning_output_tokens=usage.reasoning_output_tokens,
        )
        call.estimated = usage.estimated
        call.output_text = result.text
        return True

    def read_chunk(self, call: Call, chunk: Any, state: StreamState) -> bool:
        return False

    def stream_kind(self, result: Any) -> StreamKind | None:
        return None


READER = _AisysReader()
