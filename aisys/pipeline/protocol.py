"""What a step is, and what it may ask of the request travelling down the chain.

Steps import these names from here, never from `aisys.pipeline.chain` (which imports
the steps to assemble them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from aisys.pipeline._flow import Flow

if TYPE_CHECKING:
    from aisys.call import Billed, Call

__all__ = ["Proceed", "Request", "Step"]

Proceed: TypeAlias = Callable[[Any], Flow[Any]]
Step: TypeAlias = Callable[["Call", Any, Proceed], Flow[Any]]


class Request(Protocol):
    """What a step may ask of the request travelling down the chain."""

    def priced_as(self) -> tuple[str | None, str | None, str | None]:
        """Provider, model and endpoint this request would be priced at."""

    @property
    def use_cache(self) -> bool:
        """False when the caller asked to bypass the cache for this call."""

    @property
    def shares_flights(self) -> bool:
        """Whether identical concurrent misses may share one answer (not for streams)."""

    def cache_material(self) -> Any:
        """What the cache key covers (JSON-able); TypeError if it cannot be."""

    def from_cache(
        self, value: Any, chunks: list[str] | None, *, shared: bool = True
    ) -> Any:
        """A stored answer in the shape the rest of the call expects.

        ``shared``: other callers hold the same object (a single-flight leader's
        answer), so a mutable value must be copied; ``False`` for a value read from
        the store for this call.
        """

    def wait_limit(self) -> float:
        """Seconds a single-flight follower waits for its leader at most."""

    def input_parts(self) -> list[tuple[int, str, str]]:
        """(index, source, text) of what the call sends: messages by role."""

    def with_input(self, replaced: dict[int, str]) -> Request:
        """The same request with the texts at ``replaced``'s indexes replaced."""

    def output_text(self, result: Any) -> str | None:
        """The answer's text (``None`` for a stream, checked when it ends)."""

    def with_output(self, result: Any, text: str) -> Any:
        """The answer with its text replaced (redaction)."""

    def billed_by(self, result: Any, target: str | None) -> Billed | None:
        """What answering ``result`` cost, for an answer a step refuses.

        ``target`` is the target that answered; ``None`` when nothing was billed (a
        cache hit, or no usage).
        """

    def after(self, target: str | None) -> Request | None:
        """The request to the targets after ``target``; ``None`` if there are none."""

    @property
    def response_model(self) -> Any:
        """The pydantic model the answer must validate as (``None``: any answer)."""

    @property
    def max_retries(self) -> int:
        """How many times structured output may ask again."""

    def asking_for(self, response_format: dict[str, Any] | None, model: Any) -> Request:
        """The request asking for JSON of ``model``'s schema (``None``: in a message)."""

    def followed_by(self, answer: str, feedback: str) -> Request:
        """The conversation so far, the model's answer, and a user message after it."""

    def with_parsed(self, result: Any, parsed: Any, earlier: list[Any]) -> Any:
        """The answer with ``parsed`` set and the usage of every attempt added up."""

    def retarget(self, model: Any) -> Request:
        """The same request aimed at another model (a budget's downgrade).

        ``model`` is a ``provider:model`` string or an `aisys.LLM`.
        """
