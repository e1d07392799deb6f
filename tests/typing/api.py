"""Type-checked only (mypy tests/typing): decorators keep the wrapped signatures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aisys


@aisys.traced_llm
def answer(question: str, *, temperature: float = 0.0) -> str:
    return question


@aisys.traced_llm(model="gpt-4o-mini")
async def answer_async(question: str) -> str:
    return question


@aisys.traced_retrieval(data_source="faq")
def search(query: str, top_k: int = 3) -> list[str]:
    return [query] * top_k


@aisys.traced
def stream(prompt: str) -> Iterator[str]:
    yield prompt


@aisys.traced_llm
async def astream(prompt: str) -> AsyncIterator[str]:
    yield prompt


def uses() -> None:
    text: str = answer("q", temperature=0.5)
    docs: list[str] = search("q", top_k=2)
    pieces: list[str] = list(stream("p"))
    answer(1)  # type: ignore[arg-type]
    search("q", top_k="2")  # type: ignore[arg-type]
    with aisys.trace("t", user_id="u", tags=["a"]) as t:
        trace_id: str | None = t.trace_id
    settings: aisys.Settings = aisys.configure(exporters=["console"])
    del text, docs, pieces, trace_id, settings


async def uses_async() -> None:
    text: str = await answer_async("q")
    async with aisys.trace("t"):
        pieces = [p async for p in astream("p")]
    del text, pieces
