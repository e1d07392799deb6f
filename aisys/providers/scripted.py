"""The ``scripted`` provider: deterministic, offline answers for tests and demos.

It speaks the OpenAI wire format through an in-process ``httpx2.MockTransport``, so a
scripted call goes through the same request building, parsing, streaming and error
mapping as a real one, without a network. By default it echoes the last user message;
`ScriptedTransport` plays a script of replies and faults instead.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx2

from aisys.providers.openai import OpenAIAdapter

__all__ = ["ADAPTER", "Fault", "ScriptedAdapter", "ScriptedTransport"]


@dataclass(frozen=True)
class Fault:
    """A scripted failure: an HTTP status with headers and body, or a stream cut short.

    ``Fault(429, headers={"retry-after": "2"})`` answers 429; ``Fault(cut_after=2,
    text="…")`` streams two chunks of ``text`` and then stops without finishing.
    """

    status: int = 500
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    cut_after: int | None = None
    text: str = "partial answer that never finishes"


Reply = str | Fault | BaseException
Script = Iterable[Reply] | Callable[[dict[str, Any]], Reply]


def _echo(body: dict[str, Any]) -> Reply:
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    content = users[-1].get("content", "") if users else ""
    if not isinstance(content, str):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return f"You said: {content}"


class ScriptedTransport(httpx2.MockTransport):
    """Answers chat and embeddings requests from a script, in order (cycled).

    Replies are strings (answered with token counts from tiktoken), `Fault`s, or
    exceptions to raise as if the connection failed (``httpx2.ConnectError(...)``).
    A callable gets the request body and returns a reply. Every request body is kept in
    ``requests``.
    """

    def __init__(self, script: Script | None = None) -> None:
        if script is None:
            self._next: Callable[[dict[str, Any]], Reply] = _echo
        elif callable(script):
            self._next = script
        else:
            cycle = itertools.cycle(list(script))
            self._next = lambda _body: next(cycle)
        self.requests: list[dict[str, Any]] = []
        super().__init__(self._answer)

    def _answer(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content or b"{}")
        self.requests.append(body)
        if request.url.path.endswith("/embeddings"):
            return _embeddings(body)
        reply = self._next(body)
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, Fault) and reply.cut_after is None:
            payload = (
                reply.body
                if reply.body is not None
                else {
                    "error": {
                        "message": f"scripted fault {reply.status}",
                        "type": "scripted",
                    }
                }
            )
            return httpx2.Response(
                reply.status, headers=dict(reply.headers), json=payload
            )
        if isinstance(reply, Fault):
            return _stream(body, reply.text, cut_after=reply.cut_after)
        if body.get("stream"):
            return _stream(body, reply)
        return httpx2.Response(200, json=_completion(body, reply))


def _usage(body: dict[str, Any], text: str) -> dict[str, int]:
    from aisys.metering.tokens import count_tokens

    prompt = count_tokens(body.get("messages", []), body.get("model"))
    completion = count_tokens(text, body.get("model"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "id": "scripted-1",
        "object": "chat.completion",
        "model": body.get("model", "scripted"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(body, text),
    }


def _stream(
    body: dict[str, Any], text: str, cut_after: int | None = None
) -> httpx2.Response:
    base = {
        "id": "scripted-1",
        "object": "chat.completion.chunk",
        "model": body.get("model", "scripted"),
    }
    words = text.split(" ")
    pieces = [word if i == 0 else f" {word}" for i, word in enumerate(words)]
    events = [
        {
            **base,
            "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}],
        }
        for p in pieces
    ]
    if cut_after is not None:
        events = events[:cut_after]
    else:
        events.append(
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        )
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**base, "choices": [], "usage": _usage(body, text)})
    data = "".join(f"data: {json.dumps(event)}\n\n" for event in events)
    if cut_after is None:
        data += "data: [DONE]\n\n"
    return httpx2.Response(
        200, headers={"content-type": "text/event-stream"}, content=data.encode()
    )


def _embeddings(body: dict[str, Any]) -> httpx2.Response:
    texts = body.get("input", [])
    texts = [texts] if isinstance(texts, str) else texts
    from aisys.metering.tokens import count_tokens

    vectors = [
        {
            "object": "embedding",
            "index": i,
            "embedding": [round((len(t) % 7) / 7, 3), 0.5, 1.0],
        }
        for i, t in enumerate(texts)
    ]
    tokens = sum(count_tokens(t, body.get("model")) for t in texts)
    return httpx2.Response(
        200,
        json={
            "object": "list",
            "model": body.get("model", "scripted"),
            "data": vectors,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        },
    )


class ScriptedAdapter(OpenAIAdapter):
    """The OpenAI wire format, answered in-process by a `ScriptedTransport`."""

    name = "scripted"
    env_prefix = "AISYS_SCRIPTED"
    default_base_url = "http://scripted.invalid/v1"

    def __init__(self) -> None:
        self._echo = ScriptedTransport()

    def transport(self) -> httpx2.BaseTransport | None:
        """The echoing in-process transport (an LLM's ``transport=`` replaces it)."""
        return self._echo

    def async_transport(self) -> httpx2.AsyncBaseTransport | None:
        """The same transport: MockTransport serves both."""
        return self._echo


ADAPTER = ScriptedAdapter()
