"""Which provider a ``provider:`` prefix names, and who can read a returned result.

Built-in adapters and plug-ins registered under the ``aisys.providers`` entry-point
group, resolved once. In decorator mode a result (an SDK object, a dict, a stream) is
read by aisys's own reader, the built-in providers' readers and each plug-in adapter's
``reader`` attribute, first taker wins.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

from aisys.call import Call
from aisys.errors import ConfigError
from aisys.names import split_model
from aisys.providers.base import (
    ENTRY_POINT_GROUP,
    Provider,
    ResultReader,
    StreamKind,
    StreamState,
)

__all__ = [
    "get_provider",
    "parse_model",
    "known_providers",
    "read_chunk",
    "read_result",
    "stream_kind",
]

_log = logging.getLogger("aisys")

_BUILTIN: Mapping[str, str] = {
    "anthropic": "aisys.providers.anthropic",
    "openai": "aisys.providers.openai",
    "scripted": "aisys.providers.scripted",
}


@functools.cache
def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known_providers() -> list[str]:
    """Every provider prefix aisys can resolve: built-in and installed plug-ins."""
    return sorted({*_BUILTIN, *_entry_points()})


@functools.cache
def get_provider(name: str) -> Provider:
    """The adapter for a ``provider:`` prefix; ConfigError naming the known ones if none."""
    import importlib

    module = _BUILTIN.get(name)
    if module is not None:
        adapter: Provider = importlib.import_module(module).ADAPTER
        return adapter
    entry = _entry_points().get(name)
    if entry is None:
        msg = (
            f"unknown provider {name!r}; known providers: "
            f"{', '.join(known_providers())} (plug-ins register under the "
            f"{ENTRY_POINT_GROUP!r} entry-point group)"
        )
        raise ConfigError(msg, field="model")
    loaded = entry.load()
    return loaded() if isinstance(loaded, type) else loaded  # type: ignore[no-any-return]


@functools.cache
def _readers() -> tuple[ResultReader, ...]:
    """Aisys's own responses, the built-in providers', then each plug-in's ``reader``."""
    plugins = []
    for name in sorted(_entry_points()):
        try:
            reader = getattr(get_provider(name), "reader", None)
        except Exception:  # a broken plug-in must not stop reading the others
            _log.warning("aisys: provider plug-in %r could not be loaded", name)
            reader = None
        if reader is not None:
            plugins.append(reader)
    # The built-in readers load here, on the first result read, not at `import aisys`.
    from aisys.providers import aisys_reader, anthropic, openai

    return (aisys_reader.READER, openai.READER, anthropic.READER, *plugins)


_PLAIN = frozenset({dict, str, list, tuple, type(None)})


def read_result(call: Call, result: Any) -> bool:
    """Fill ``call`` from a returned response; False if no provider recognised it."""
    for reader in _readers():  # noqa: SIM110 - a loop, not any(): no generator per call
        if reader.read(call, result):
            return True
    return False


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
    if type(result) in _PLAIN:
        return None
    for reader in _readers():
        kind = reader.stream_kind(result)
        if kind is not None:
            return kind
    return None


def parse_model(spec: str) -> tuple[str, str]:
    """``"provider:model"`` split by `aisys.types.split_model`; a provider is required."""
    provider, model = split_model(spec)
    if provider is None:
        msg = (
            f"model {spec!r} must be written 'provider:model', e.g. "
            f"'openai:gpt-4o-mini'; known providers: {', '.join(known_providers())}"
        )
        raise ConfigError(msg, field="model")
    return provider, model
