"""What the parts of an `aisys.LLM` call see of the LLM they ask: `LLMView`.

The attempts, effects, request and streams modules work against this protocol, so
they never import the `LLM` class (which imports them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    import httpx2

    from aisys.lifecycle import CallScope
    from aisys.pipeline._flow import Flow
    from aisys.providers.base import Provider, Target
    from aisys.types import ChatRequest

__all__ = ["LLMView"]

T = TypeVar("T")


class LLMView(Protocol):
    """An LLM as a call's parts use it: its adapter, target, pools and chain."""

    provider: Provider
    target: Target
    price_as: str | None
    deadline: float | None

    @property
    def model(self) -> str:
        """``provider:model``."""

    @property
    def fallbacks(self) -> tuple[LLMView, ...]:
        """The targets tried after this one, in order."""

    @property
    def client(self) -> httpx2.Client:
        """The sync connection pool."""

    @property
    def aclient(self) -> httpx2.AsyncClient:
        """The async connection pool."""

    def sibling(self, spec: str) -> LLMView:
        """``spec`` as a string fallback of this LLM (same endpoint and key)."""

    def timed(self, request: httpx2.Request, timeout: float | None) -> httpx2.Request:
        """``request`` with its timeout shortened to what the deadline leaves."""

    def begin(
        self,
        operation: str,
        request: ChatRequest | None,
        *,
        prompt: Any = None,
        texts: Any = None,
    ) -> CallScope:
        """Begin one call: its facts, its route, its span."""

    def chain_flow(
        self,
        scope: CallScope,
        attempt: Callable[[LLMView, Any, float | None], Flow[T]],
        payload: Any,
        use_cache: bool = True,
        shape: tuple[Any, int] = (None, 2),
    ) -> Flow[T]:
        """The configured steps, ending in the route over this LLM and its fallbacks."""
