"""What an adapter offers, and the registry that finds the right one for a result.

In decorator mode aisys reads whatever the user's function returned. Each provider
module knows its own SDK objects and JSON shapes; `read_result` asks them in turn, so
`traced_llm` itself stays provider-neutral.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Literal, Protocol

from aisys.call import Call

__all__ = [
    "ResultReader",
    "StreamState",
    "field",
    "read_chunk",
    "read_result",
    "stream_kind",
]

StreamKind = Literal["sync", "async"]


def field(obj: Any, name: str) -> Any:
    """``obj[name]`` for mappings, ``obj.name`` otherwise; ``None`` when absent."""
    if type(obj) is dict or isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


class StreamState:
    """What a stream has delivered so far: its text and how many chunks."""

    __slots__ = ("chunks", "parts")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.chunks = 0

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self.parts)


class ResultReader(Protocol):
    """Reads one provider's responses, chunks and streams into a `Call`."""

    def read(self, call: Call, result: Any) -> bool:
        """Fill ``call`` from a full response; False if it is not this provider's."""

    def read_chunk(self, call: Call, chunk: Any, state: StreamState) -> bool:
        """Fill ``call`` from one stream chunk; False if it is not this provider's."""

    def stream_kind(self, result: Any) -> StreamKind | None:
        """``"sync"``/``"async"`` when ``result`` is this provider's stream object."""


@functools.cache
def _readers() -> tuple[ResultReader, ...]:
    from aisys.providers import aisys_types, openai

    return (aisys_types.READER, openai.READER)


def read_result(call: Call, result: Any) -> bool:
    """Fill ``call`` from a returned response; False if no provider recognised it."""
    return any(reader.read(call, result) for reader in _readers())


def read_chunk(call: Call, chunk: Any, state: StreamState) -> None:
    """Fill ``call`` from one chunk a stream yielded; plain strings count as text."""
    state.chunks += 1
    if isinstance(chunk, str):
        state.parts.append(chunk)
        return
    for reader in _readers():
        if reader.read_chunk(call, chunk, state):
            return


def stream_kind(result: Any) -> StreamKind | None:
    """Whether ``result`` is a provider stream aisys should wrap, and of which kind."""
    for reader in _readers():
        kind = reader.stream_kind(result)
        if kind is not None:
            return kind
    return None
