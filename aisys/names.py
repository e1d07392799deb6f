"""Model names: the one parser of ``provider:model``.

Plain string handling with no imports, so every layer (metering, telemetry, the
report) can use it without loading pydantic.
"""

from __future__ import annotations

__all__ = ["split_model"]

_NOT_PROVIDERS = frozenset({"ft"})  # OpenAI fine-tunes: "ft:gpt-4o-mini:org:id"


def split_model(spec: str, provider: str | None = None) -> tuple[str | None, str]:
    """``"openai:gpt-4o"`` → ``("openai", "gpt-4o")``: the one ``provider:model`` parser.

    The model part keeps any further colons (``"ollama:llama3:8b"`` → ``("ollama",
    "llama3:8b")``). A bare name, or an explicit ``provider``, leaves the name whole:
    ``(provider, spec)``. ``ft:`` (an OpenAI fine-tune) and ``org/model`` heads are
    names, not providers.
    """
    head, sep, tail = spec.partition(":")
    if (
        sep
        and head
        and tail
        and provider is None
        and "/" not in head
        and head not in _NOT_PROVIDERS
    ):
        return head, tail
    return provider, spec
