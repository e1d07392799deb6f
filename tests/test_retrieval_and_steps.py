"""`@traced_retrieval` and `@traced`: documents, scores, top-k, tools, any step."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import aisys
from aisys.testing import Captured

DOCS = ["Refunds take five days.", "Shipping is free over $50.", "Support is 24/7."]


def test_retrieval_span_counts_documents(seen: Captured) -> None:
    """`retrieval {data_source}` with the number of documents and top_k."""

    @aisys.traced_retrieval(data_source="faq")
    def search(query: str, top_k: int = 2) -> list[str]:
        return DOCS[:top_k]

    assert search("refund", top_k=2) == DOCS[:2]

    span = seen.span("retrieval faq")
    assert span.kind.name == "CLIENT"
    assert span.attributes["gen_ai.operation.name"] == "retrieval"
    assert span.attributes["gen_ai.data_source.id"] == "faq"
    assert span.attributes["aisys.retrieval.documents.count"] == 2
    assert span.attributes["gen_ai.request.top_k"] == 2
    assert "aisys.retrieval.scores" not in span.attributes


@dataclass
class Hit:
    content: str
    score: float


def test_scores_from_dicts_objects_and_pairs(seen: Captured) -> None:
    """Scores are read from `score` keys, attributes, or (document, score) pairs."""

    @aisys.traced_retrieval(data_source="a")
    def dicts(query: str) -> list[dict[str, object]]:
        return [{"text": "x", "score": 0.9}, {"text": "y", "score": 0.4}]

    @aisys.traced_retrieval(data_source="b")
    def objects(query: str) -> list[Hit]:
        return [Hit("x", 0.8)]

    @aisys.traced_retrieval(data_source="c")
    def pairs(query: str, k: int) -> list[tuple[str, float]]:
        return [("x", 0.7), ("y", 0.6)]

    dicts("q")
    objects("q")
    pairs("q", 2)

    assert seen.span("retrieval a").attributes["aisys.retrieval.scores"] == (0.9, 0.4)
    assert seen.span("retrieval b").attributes["aisys.retrieval.scores"] == (0.8,)
    assert seen.span("retrieval c").attributes["aisys.retrieval.scores"] == (0.7, 0.6)
    assert seen.span("retrieval c").attributes["gen_ai.request.top_k"] == 2


def test_scores_are_numbers_only(seen: Captured) -> None:
    """Whole numbers become floats; booleans, text and missing scores are skipped."""
    from types import MappingProxyType

    @aisys.traced_retrieval(data_source="mixed")
    def search(query: str) -> list[object]:
        return [
            {"score": 1},
            MappingProxyType({"score": 0.5}),
            {"score": True},
            {"score": "0.3"},
            {"text": "no score"},
            Hit("x", 0.25),
            "plain text",
        ]

    search("q")

    span = seen.span("retrieval mixed")
    assert span.attributes["aisys.retrieval.scores"] == (1.0, 0.5, 0.25)
    assert span.attributes["aisys.retrieval.documents.count"] == 7


def test_retrieval_content_stays_out_by_default(seen: Captured) -> None:
    """Neither the query nor the documents reach the span or the log event."""

    @aisys.traced_retrieval(data_source="faq")
    def search(query: str) -> list[str]:
        return DOCS

    search("secret customer question")

    text = repr(dict(seen.span("retrieval faq").attributes)) + repr(seen.logs)
    assert "secret customer question" not in text
    assert "Refunds" not in text


def test_retrieval_content_when_full() -> None:
    """capture_content=full records the query and the documents."""
    from aisys.testing import capture

    @aisys.traced_retrieval(data_source="faq")
    def search(query: str) -> list[tuple[str, float]]:
        return [(DOCS[0], 0.9)]

    with capture(capture_content="full") as seen:
        search("refund?")

    attrs = seen.span("retrieval faq").attributes
    assert attrs["gen_ai.retrieval.query.text"] == "refund?"
    assert '"content": "Refunds take five days."' in attrs["gen_ai.retrieval.documents"]
    assert '"score": 0.9' in attrs["gen_ai.retrieval.documents"]


def test_non_list_result_is_explained(seen: Captured) -> None:
    """A retrieval result that is not a list is returned, and the span says so."""

    @aisys.traced_retrieval
    def search(query: str) -> object:
        return 42

    assert search("q") == 42
    assert (
        "expected a list" in seen.span("retrieval").attributes["aisys.response.unread"]
    )


def test_traced_step_is_internal(seen: Captured) -> None:
    """`@traced` names the span after the function and makes it INTERNAL."""

    @aisys.traced
    def parse_ticket(text: str) -> dict[str, str]:
        return {"text": text}

    parse_ticket("x")

    span = seen.span("test_traced_step_is_internal.<locals>.parse_ticket")
    assert span.kind.name == "INTERNAL"
    assert "gen_ai.operation.name" not in span.attributes


def test_tool_execution_span(seen: Captured) -> None:
    """`operation="execute_tool"` gives `execute_tool {name}` with the tool name."""

    @aisys.traced(operation="execute_tool", name="lookup_order")
    async def lookup(order_id: str) -> str:
        return "shipped"

    import asyncio

    assert asyncio.run(lookup("A1")) == "shipped"

    span = seen.span("execute_tool lookup_order")
    assert span.attributes["gen_ai.tool.name"] == "lookup_order"
    assert span.attributes["gen_ai.operation.name"] == "execute_tool"


def test_tool_and_step_arguments_are_not_model_parameters(seen: Captured) -> None:
    """A tool's `temperature=` is its own argument, not `gen_ai.request.temperature`."""

    @aisys.traced(operation="execute_tool", name="set_thermostat")
    def set_thermostat(room: str, temperature: float = 20.0, stop: bool = False) -> str:
        return "ok"

    @aisys.traced(name="sample")
    def sample(seed: int = 0, max_tokens: int = 10) -> int:
        return seed

    @aisys.traced_retrieval(data_source="kb")
    def search(query: str, temperature: float = 0.0) -> list[str]:
        return DOCS[:1]

    set_thermostat("kitchen", temperature=21.5, stop=True)
    sample(seed=7, max_tokens=3)
    search("q", temperature=0.3)

    for name in ("execute_tool set_thermostat", "sample", "retrieval kb"):
        attrs = seen.span(name).attributes
        assert not [
            key
            for key in attrs
            if key.startswith("gen_ai.request.") and key != "gen_ai.request.top_k"
        ], (name, dict(attrs))


def test_step_error(seen: Captured) -> None:
    """A failing step records the error and re-raises it."""

    @aisys.traced(name="step")
    def step() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError):
        step()
    assert seen.span("step").attributes["error.type"] == "KeyError"
