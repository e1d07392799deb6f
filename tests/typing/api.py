"""Type-checked only (mypy tests/typing): decorators keep the wrapped signatures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

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


def uses_llm() -> None:
    llm = aisys.LLM(
        "openai:gpt-4o-mini",
        fallbacks=["anthropic:claude-3-5-haiku-latest"],
        retry=aisys.Retry(max_attempts=3, initial=0.5, max_delay=20.0, jitter=True),
        deadline=30.0,
        circuit=aisys.CircuitBreaker(failure_threshold=5, reset_timeout=30.0),
    )
    aisys.LLM("openai:m", circuit=None)
    aisys.LLM("openai:m", circuit=5)  # type: ignore[arg-type]
    response: aisys.ChatResponse = llm.chat("hi", temperature=0)
    tokens: int = response.usage.input_tokens
    with llm.stream([{"role": "user", "content": "hi"}]) as stream:
        chunks: list[aisys.ChatChunk] = list(stream)
    final: aisys.ChatResponse | None = stream.response
    vectors: list[list[float]] = llm.embed(["a"]).vectors
    aisys.LLM("openai:m", deadline="soon")  # type: ignore[arg-type]
    del tokens, chunks, final, vectors
    llm.close()


async def uses_llm_async() -> None:
    async with aisys.LLM("scripted:m") as llm:
        response = await llm.achat("hi")
        pieces = [chunk.text async for chunk in llm.astream("hi")]
        vectors = (await llm.aembed(["a"])).vectors
    del response, pieces, vectors


@aisys.traced_llm(
    retry=aisys.Retry(max_attempts=2),
    fallbacks=[answer],
    deadline=5.0,
    circuit=aisys.CircuitBreaker(failure_threshold=3),
)
def answer_with_policy(question: str, *, temperature: float = 0.0) -> str:
    return question


def uses_policy() -> None:
    text: str = answer_with_policy("q")
    answer_with_policy(3)  # type: ignore[arg-type]
    del text


def uses_cost_and_budgets() -> None:
    aisys.register_price("openai:my-model", input=0.15, output="0.60", cache_read=0.075)
    cost: aisys.Cost = aisys.estimate_cost("openai:gpt-4o-mini", {"input_tokens": 10})
    usd: Decimal | None = cost.usd
    budget = aisys.Budget(5, per="day", scope="user", on_exceed="raise")
    cheaper = aisys.Budget(
        "0.50", on_exceed="downgrade", downgrade_to="openai:gpt-4o-mini"
    )
    llm = aisys.LLM("openai:gpt-4o", budget=[budget, cheaper])
    aisys.Budget(5, per="week")  # type: ignore[arg-type]
    try:
        llm.chat("hi")
    except aisys.BudgetExceededError as exc:
        print(exc.budget, exc.limit_usd, exc.resets_at)
    except aisys.BudgetStoreError:
        pass
    del usd
    llm.close()


@aisys.traced_llm(budget=aisys.Budget(1, per="hour"))
def answer_with_budget(question: str, model: str = "gpt-4o") -> str:
    return question


def uses_cache() -> None:
    llm = aisys.LLM(
        "openai:gpt-4o-mini",
        cache=aisys.Cache("redis://127.0.0.1:6379/0", ttl=3600, namespace="support"),
    )
    cached: bool = llm.chat("hi", cache=False).cached
    aisys.Cache(mode="sometimes")  # type: ignore[arg-type]
    del cached
    llm.close()


@aisys.traced_llm(cache=aisys.Cache("memory", ttl=600))
def answer_cached(question: str, model: str = "gpt-4o-mini") -> str:
    return question


def uses_prompts() -> None:
    prompt: aisys.Prompt = aisys.get_prompt("support_answer", label="production")
    messages: list[dict[str, object]] = prompt.render(question="hi")
    version: int | str = prompt.version
    llm = aisys.LLM(prompt=prompt)
    llm.chat(messages, prompt=prompt)
    aisys.get_prompt("support_answer", version="1")  # type: ignore[arg-type]
    del version
    llm.close()


def attempts_of_a_failed_chain(error: aisys.AllTargetsFailedError) -> list[str]:
    """AllTargetsFailedError.attempts are aisys.Attempt records."""
    attempts: tuple[aisys.Attempt, ...] = error.attempts
    return [f"{a.target} #{a.number}: {a.outcome}" for a in attempts]


def steps_see_one_request_protocol(
    llm_request: aisys.llm.LLMRequest,
    invocation: aisys.instrument.plan.Invocation,
) -> list[aisys.pipeline.protocol.Request]:
    """Both ends of the chain are the one `Request` the steps use (checked by mypy)."""
    return [llm_request, invocation]
