"""A tiny support bot, traced end to end by aisys: no key, no server.

Run it with `make demo`. It answers three questions: each one retrieves from a few local
documents (`@aisys.traced_retrieval`) and asks a scripted model (`@aisys.traced_llm`),
inside `aisys.trace(...)`. The console exporter prints one tree per question on stderr,
and every span is appended to aisys-traces.jsonl.
"""

from __future__ import annotations

import re
from typing import Any

import aisys
from aisys.testing import ScriptedModel

DOCUMENTS = {
    "refunds": "Refunds are paid back to the original card within five business days.",
    "shipping": "Shipping is free on orders over $50; other orders pay a flat $4.99.",
    "returns": "Items can be returned within 30 days if they are unused and in their box.",
    "support-hours": "Human support answers chat messages every day from 8:00 to 20:00 CET.",
}


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


@aisys.traced_retrieval(data_source="faq")
def search(query: str, top_k: int = 2) -> list[dict[str, Any]]:
    """Rank the local documents by words shared with the query."""
    wanted = _words(query)
    scored = [
        {
            "id": doc_id,
            "content": text,
            "score": len(wanted & _words(text)) / len(wanted),
        }
        for doc_id, text in DOCUMENTS.items()
    ]
    scored.sort(key=lambda doc: doc["score"], reverse=True)
    return scored[:top_k]


def _compose(messages: list[dict[str, Any]]) -> str:
    """The scripted model's 'reasoning': quote the best document it was given."""
    context = messages[0]["content"].split("\n", 1)[1]
    best = context.splitlines()[0].removeprefix("- ")
    return f"Here is what I found: {best}"


model = ScriptedModel(_compose, model="scripted-support-1")


@aisys.traced_llm
def answer(messages: list[dict[str, Any]]) -> aisys.ChatResponse:
    """Ask the (scripted) model; aisys reads usage and model from its response."""
    return model.chat(messages)


def handle(ticket_id: int, user_id: str, question: str) -> str:
    """One support ticket: retrieve, then answer, inside one trace."""
    with aisys.trace(
        "answer-ticket",
        user_id=user_id,
        session_id=f"chat-{ticket_id}",
        tags=["demo", "support"],
        metadata={"ticket_id": ticket_id},
    ):
        docs = search(question, top_k=2)
        context = "\n".join(f"- {doc['content']}" for doc in docs)
        messages = [
            {"role": "system", "content": f"Answer from these notes:\n{context}"},
            {"role": "user", "content": question},
        ]
        return answer(messages).text


def main() -> None:
    """Answer three questions and flush the traces."""
    settings = aisys.configure(
        exporters=["console", "jsonl"], service_name="support-bot"
    )
    questions = [
        (101, "ana", "How long do refunds take to reach my card?"),
        (102, "ben", "Is shipping free for my order?"),
        (103, "chloe", "When can I chat with human support?"),
    ]
    for ticket_id, user_id, question in questions:
        print(f"Q: {question}")
        print(f"A: {handle(ticket_id, user_id, question)}\n")
    aisys.flush()
    print(f"Spans written to {settings.jsonl_path.resolve()}")


if __name__ == "__main__":
    main()
