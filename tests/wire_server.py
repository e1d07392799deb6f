"""A loopback HTTP server speaking the OpenAI chat-completions and embeddings protocol.

Real sockets, real JSON and server-sent events, so the official clients (and aisys's
own adapters) meet the wire format as it is. Tests script replies and faults per
request; every request is logged with its path, headers, body and arrival time.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
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

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class WireServer:
    """A threaded server on 127.0.0.1:<free port>; use as a context manager."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
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
                    reply = server.replies.popleft() if server.replies else Reply()
                server.answer(self, body, reply)

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
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
        if reply.raw is not None:
            self._send(h, reply.status, reply.raw, "application/json", reply.headers)
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
        if h.path.endswith("/embeddings"):
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
                json.dumps(_completion(body, reply.text)).encode(),
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
        model = body.get("model", "unknown")
        words = reply.text.split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]

        def event(payload: dict[str, Any]) -> None:
            h.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
            h.wfile.flush()

        base = {
            "id": "chatcmpl-stream-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": model,
        }
        event(
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "finish_reason": None,
                    }
                ],
            }
        )
        for piece in pieces:
            event(
                {
                    **base,
                    "choices": [
                        {"index": 0, "delta": {"content": piece}, "finish_reason": None}
                    ],
                }
            )
        event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if reply.include_usage if reply.include_usage is not None else wants_usage:
            event({**base, "choices": [], "usage": _usage(body, reply.text)})
        h.wfile.write(b"data: [DONE]\n\n")
        h.wfile.flush()
        h.close_connection = True


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


def _completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-wire-1",
        "object": "chat.completion",
        "created": 1,
        "model": body.get("model", "unknown") + "-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(body, text),
    }


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
