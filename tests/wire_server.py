"""A loopback HTTP server speaking OpenAI chat completions/embeddings and Anthropic messages.

Real sockets, real JSON and server-sent events, so the official clients (and aisys's
own adapters) meet the wire format as it is. Tests script replies and faults per
request; every request is logged with its path, headers, body and arrival time.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer: a status, headers and a JSON body, or a stream of chunks."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str = "Hello from the wire."
    include_usage: bool | None = None
    """For streams: None = as the request asked; False = never (like llama.cpp)."""
    delay_s: float = 0.0
    raw: bytes | None = None
    """Bytes sent as is (garbage bodies)."""
    content_type: str = "application/json"
    cut_after: int | None = None
    """For streams: stop after this many text chunks, without finishing."""
    reset: bool = False
    """Close the connection without answering."""
    tool_call: tuple[str, str] | None = None
    """Answer with a call of this tool (name, JSON arguments) instead of text."""
    usage: dict[str, int] | None = None
    """Override the usage numbers (Anthropic keys for /messages)."""
    error_event: bool = False
    """For Anthropic streams: send an overloaded error event right after message_start."""
    pieces: list[str] | None = None
    """For streams: the text chunks as sent (default: one per word of ``text``)."""


@dataclass
class Request:
    """What the server received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up mid-stream are part of the tests, not server errors."""

    daemon_threads = True
    request_queue_size = 256  # chaos runs open dozens of connections at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError | TimeoutError):
            traceback.print_exc()


class WireServer:
    """A threaded server on 127.0.0.1:<free port>; use as a context manager."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.default = Reply()
        """The answer when nothing is scripted."""
        self.chooser: Callable[[], Reply] | None = None
        """Picks each unscripted answer instead of `default` (chaos runs)."""
        self.answerer: Callable[[dict[str, Any]], Reply] | None = None
        """Picks each unscripted answer from the request body (wins over `chooser`)."""
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else {}
                with server._lock:
                    server.requests.append(
                        Request(self.path, dict(self.headers), body, time.monotonic())
                    )
                    if server.replies:
                        reply = server.replies.popleft()
                    elif server.answerer is not None:
                        reply = server.answerer(body)
                    elif server.chooser is not None:
                        reply = server.chooser()
                    else:
                        reply = server.default
                server.answer(self, body, reply)

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.root_url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.root_url}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> WireServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order (default: a 200 answer)."""
        with self._lock:
            self.replies.extend(replies)

    def reset(self) -> None:
        """Forget scripted replies and logged requests."""
        with self._lock:
            self.replies.clear()
            self.requests.clear()

    # -- answering --------------------------------------------------------------------

    def answer(
        self, h: BaseHTTPRequestHandler, body: dict[str, Any], reply: Reply
    ) -> None:
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.reset:
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        if reply.raw is not None:
            self._send(h, reply.status, reply.raw, reply.content_type, reply.headers)
            return
        if reply.status >= 400 or reply.body is not None:
            payload = reply.body if reply.body is not None else _error(reply.status)
            self._send(
                h,
                reply.status,
                json.dumps(payload).encode(),
                "application/json",
                reply.headers,
            )
            return
        if h.path.endswith("/messages"):
            if body.get("stream"):
                self._anthropic_stream(h, body, reply)
            else:
                self._send(
                    h,
                    200,
                    json.dumps(_message(body, reply)).encode(),
                    "application/json",
                    reply.headers,
                )
        elif h.path.endswith("/embeddings"):
            self._send(
                h,
                200,
                json.dumps(_embeddings(body)).encode(),
                "application/json",
                reply.headers,
            )
        elif body.get("stream"):
            self._stream(h, body, reply)
        else:
            self._send(
                h,
                200,
                json.dumps(_completion(body, reply)).encode(),
                "application/json",
                reply.headers,
            )

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler,
        status: int,
        data: bytes,
        content_type: str,
        headers: dict[str, str],
    ) -> None:
        h.send_response(status)
        h.send_header("content-type", content_type)
        h.send_header("content-length", str(len(data)))
        for key, value in headers.items():
            h.send_header(key, value)
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _stream(h: BaseHTTPRequestHandler, body: dict[str, Any], reply: Reply) -> None:
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("cache-control", "no-cache")
        h.send_header("connection", "close")
        h.end_headers()
        h.close_connection = True
        model = body.get("model", "unknown")
        pieces = _pieces(reply)
        base = {
            "id": "chatcmpl-stream-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": model,
        }

        def event(delta: dict[str, Any], finish: str | None = None) -> None:
            payload = {
                **base,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            h.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
            h.wfile.flush()

        event({"role": "assistant", "content": ""})
        if reply.cut_after is not None:
            for piece in pieces[: reply.cut_after]:
                event({"content": piece})
            return
        if reply.tool_call is not None:
            name, arguments = reply.tool_call
            half = len(arguments) // 2
            event(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": name, "arguments": arguments[:half]},
                        }
                    ]
                }
            )
            event(
                {
                    "tool_calls": [
                        {"index": 0, "function": {"arguments": arguments[half:]}}
                    ]
                }
            )
            event({}, "tool_calls")
        else:
            for piece in pieces:
                event({"content": piece})
            event({}, "stop")
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if reply.include_usage if reply.include_usage is not None else wants_usage:
            usage = {**base, "choices": [], "usage": _usage(body, reply.text)}
            h.wfile.write(b"data: " + json.dumps(usage).encode() + b"\n\n")
        h.wfile.write(b"data: [DONE]\n\n")
        h.wfile.flush()

    @staticmethod
    def _anthropic_stream(
        h: BaseHTTPRequestHandler, body: dict[str, Any], reply: Reply
    ) -> None:
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("connection", "close")
        h.end_headers()

        def event(name: str, payload: dict[str, Any]) -> None:
            h.wfile.write(f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode())
            h.wfile.flush()

        usage = _anthropic_usage(body, reply)
        message = _message(body, reply)
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {**usage, "output_tokens": 1},
        }
        event("message_start", {"type": "message_start", "message": start})
        if reply.error_event:
            event(
                "error",
                {
                    "type": "error",
                    "error": {"type": "overloaded_error", "message": "Overloaded"},
                },
            )
            return
        event("ping", {"type": "ping"})
        if reply.tool_call is not None:
            name, arguments = reply.tool_call
            event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": name,
                        "input": {},
                    },
                },
            )
            half = len(arguments) // 2
            for part in (arguments[:half], arguments[half:]):
                event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "input_json_delta", "partial_json": part},
                    },
                )
            stop = "tool_use"
        else:
            event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            pieces = _pieces(reply)
            if reply.cut_after is not None:
                pieces = pieces[: reply.cut_after]
            for piece in pieces:
                event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
            if reply.cut_after is not None:
                h.close_connection = True
                return
            stop = "end_turn"
        event("content_block_stop", {"type": "content_block_stop", "index": 0})
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
        event("message_stop", {"type": "message_stop"})
        h.close_connection = True


def _anthropic_usage(body: dict[str, Any], reply: Reply) -> dict[str, int]:
    if reply.usage is not None:
        return {"input_tokens": 0, "output_tokens": 0, **reply.usage}
    prompt = sum(
        len(str(m.get("content", "")).split()) for m in body.get("messages", [])
    )
    return {
        "input_tokens": prompt + len(str(body.get("system", "")).split()),
        "output_tokens": len(reply.text.split()),
    }


def _message(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    if reply.tool_call is not None:
        name, arguments = reply.tool_call
        content: list[dict[str, Any]] = [
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": name,
                "input": json.loads(arguments),
            }
        ]
        stop = "tool_use"
    else:
        content = [{"type": "text", "text": reply.text}]
        stop = "end_turn"
    return {
        "id": "msg_wire_1",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "unknown"),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": _anthropic_usage(body, reply),
    }


def _usage(body: dict[str, Any], text: str) -> dict[str, Any]:
    prompt = sum(
        len(str(m.get("content", "")).split()) + 3 for m in body.get("messages", [])
    )
    completion = len(text.split())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def _completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    text = reply.text
    message: dict[str, Any] = {"role": "assistant", "content": text}
    finish = "stop"
    if reply.tool_call is not None:
        name, arguments = reply.tool_call
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        }
        finish = "tool_calls"
    usage = _usage(body, text)
    if reply.usage is not None:
        usage.update(reply.usage)
    return {
        "id": "chatcmpl-wire-1",
        "object": "chat.completion",
        "created": 1,
        "model": _snapshot(body.get("model", "unknown")),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }


_SNAPSHOTS = {"gpt-4o": "gpt-4o-2024-08-06"}  # what OpenAI's alias answers with


def _snapshot(model: str) -> str:
    """The dated model an answer names, as OpenAI's do (``gpt-4o-mini-2024-07-18``)."""
    return _SNAPSHOTS.get(model, f"{model}-2024-07-18")


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    inputs = body.get("input", [])
    inputs = [inputs] if isinstance(inputs, str) else inputs
    return {
        "object": "list",
        "model": body.get("model", "unknown"),
        "data": [
            {"object": "embedding", "index": i, "embedding": [0.1 * (i + 1), 0.2, 0.3]}
            for i, _ in enumerate(inputs)
        ],
        "usage": {
            "prompt_tokens": sum(len(str(t).split()) for t in inputs),
            "total_tokens": 0,
        },
    }


def _error(status: int) -> dict[str, Any]:
    return {
        "error": {
            "message": f"scripted failure {status}",
            "type": "server_error" if status >= 500 else "invalid_request_error",
            "code": None,
        }
    }


def _pieces(reply: Reply) -> list[str]:
    """A streamed reply's text chunks: as scripted, or one per word."""
    if reply.pieces is not None:
        return list(reply.pieces)
    words = reply.text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]
