"""The provider registry, plug-ins, error translation and the parsers' properties."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aisys
from aisys.providers import base, registry
from aisys.providers.openai import ADAPTER as OPENAI
from aisys.providers.scripted import Fault, ScriptedTransport
from aisys.testing import Captured
from tests.strategies import JSON_SCALARS, nested


def _httpx2_exception_classes() -> list[type[Exception]]:
    found: list[type[Exception]] = []
    pending: list[type[Exception]] = [
        httpx2.HTTPError,
        httpx2.InvalidURL,
        httpx2.StreamError,
    ]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("cls", _httpx2_exception_classes(), ids=lambda c: c.__name__)
def test_every_httpx2_exception_is_translated(cls: type[Exception]) -> None:
    """No httpx2 exception leaks to users: each maps to a specific aisys error."""
    if cls in (httpx2.HTTPStatusError, httpx2.HTTPError):
        pytest.skip(
            "aisys never calls raise_for_status; statuses map in error_from_response"
        )
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    for args in (("boom",), ()):
        try:
            exc = cls(*args, request=request) if args else cls()  # type: ignore[call-arg]
            break
        except TypeError:
            try:
                exc = cls(*args)
                break
            except TypeError:
                continue
    with pytest.raises(aisys.AisysError) as raised, base.transport_errors("openai"):
        raise exc
    assert type(raised.value) is not aisys.ProviderError
    assert raised.value.__cause__ is exc


def test_plugin_provider_from_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seen: Captured
) -> None:
    """A package exposing `aisys.providers` entry points is found by its prefix."""
    (tmp_path / "acme_llm.py").write_text(
        textwrap.dedent(
            """
            from aisys.providers.scripted import ScriptedAdapter

            class AcmeAnswer:
                def __init__(self, text, tokens):
                    self.text, self.tokens = text, tokens

            class AcmeReader:
                def read(self, call, result):
                    if not isinstance(result, AcmeAnswer):
                        return False
                    call.provider = "acme"
                    call.response_model = "rocket-1"
                    call.output_text = result.text
                    call.set_usage(input_tokens=result.tokens, output_tokens=1)
                    return True

                def read_chunk(self, call, chunk, state):
                    return False

                def stream_kind(self, result):
                    return None

            class AcmeAdapter(ScriptedAdapter):
                name = "acme"
                reader = AcmeReader()
            """
        )
    )
    dist = tmp_path / "acme_llm-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-llm\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[aisys.providers]\nacme = acme_llm:AcmeAdapter\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._entry_points.cache_clear()
    registry.get_provider.cache_clear()
    registry._readers.cache_clear()
    try:
        assert "acme" in registry.known_providers()
        with aisys.LLM("acme:rocket-1") as llm:
            assert llm.chat("ping").text == "You said: ping"
        assert seen.span("chat rocket-1").attributes["gen_ai.provider.name"] == "acme"

        import acme_llm  # the plug-in's own SDK objects, read in decorator mode

        @aisys.traced_llm
        def ask() -> object:
            return acme_llm.AcmeAnswer("pong", 7)

        ask()
        read = seen.spans[-1].attributes or {}
        assert read["gen_ai.provider.name"] == "acme"
        assert read["gen_ai.usage.input_tokens"] == 7
    finally:
        registry._entry_points.cache_clear()
        registry.get_provider.cache_clear()
        registry._readers.cache_clear()


def test_retry_after_parsing() -> None:
    """Seconds, milliseconds and HTTP-dates; junk gives None; never negative."""
    assert base.retry_after_s({"retry-after": "3"}) == 3.0
    assert base.retry_after_s({"retry-after": "0.5"}) == 0.5
    assert base.retry_after_s({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert (
        base.retry_after_s(
            {"retry-after": "Wed, 25 Nov 2026 16:00:10 GMT"}, now=1795622400.0
        )
        == 10.0
    )
    assert base.retry_after_s({"retry-after": "-4"}) == 0.0
    assert base.retry_after_s({"retry-after": "soon"}) is None
    assert base.retry_after_s({}) is None


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"]), "content": _text}
)


@given(st.one_of(_text, st.lists(_message, min_size=1, max_size=5)))
def test_normalise_messages_properties(messages: object) -> None:
    """Strings become one user message; lists keep order and content; normalising is idempotent."""
    once = base.normalise_messages(messages)
    assert base.normalise_messages(once) == once
    if isinstance(messages, str):
        assert once == [{"role": "user", "content": messages}]
    else:
        assert once == messages


@given(st.lists(_message, min_size=1, max_size=4))
def test_message_objects_normalise_like_dicts(messages: list[dict[str, str]]) -> None:
    """aisys.Message objects give the same dicts as the equivalent plain dicts."""
    objects = [aisys.Message(**m) for m in messages]
    assert base.normalise_messages(objects) == messages


def _sse_body(pieces: list[str]) -> bytes:
    events = [
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}],
        }
        for p in pieces
    ]
    events.append(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "model": "m",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
    )
    return (
        "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    ).encode()


@settings(max_examples=100, deadline=None)
@given(
    pieces=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=30),
)
def test_sse_parsing_survives_any_chunk_boundaries(
    pieces: list[str], cuts: list[int]
) -> None:
    """However the bytes are split on the wire, the parsed text is the same."""
    body = _sse_body(pieces)
    parts, offset = [], 0
    for size in cuts:
        parts.append(body[offset : offset + size])
        offset += size
    parts.append(body[offset:])
    response = httpx2.Response(
        200,
        headers={"content-type": "text/event-stream"},
        content=iter([p for p in parts if p]),
        request=httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions"),
    )
    parser = OPENAI.stream_parser(base.Target("openai", "m", "http://x"))
    chunks = [
        c
        for event in httpx2.EventSource(response)
        for c in parser.feed(event.event, event.data)
    ]
    assert "".join(c.text for c in chunks) == "".join(pieces)
    assert parser.complete
    assert parser.response().finish_reason == "stop"


_json = nested(
    JSON_SCALARS,
    st.sampled_from(
        ["choices", "message", "content", "usage", "prompt_tokens", "id", "model"]
    ),
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(
    body=_json
    | st.fixed_dictionaries(
        {
            "choices": st.lists(
                st.fixed_dictionaries({"message": _json, "finish_reason": _json}),
                min_size=1,
                max_size=2,
            ),
            "usage": _json
            | st.fixed_dictionaries(
                {
                    "prompt_tokens": st.integers(-2, 9) | _json,
                    "completion_tokens": st.integers(-2, 9) | _json,
                    "prompt_tokens_details": _json,
                }
            ),
            "model": _json,
            "id": _json,
        }
    )
)
def test_any_json_body_is_a_response_or_a_format_error(body: object) -> None:
    """Whatever JSON a server sends, parsing gives a ChatResponse or says what came."""
    response = httpx2.Response(
        200,
        json=body,
        request=httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions"),
    )
    target = base.Target("openai", "m", "http://x")
    choices = body.get("choices") if isinstance(body, dict) else None
    if not (isinstance(choices, list) and choices):
        with pytest.raises(
            aisys.ResponseFormatError, match=r"without choices|not JSON"
        ):
            OPENAI.parse_chat(target, response)
        return
    parsed = OPENAI.parse_chat(target, response)
    assert isinstance(parsed, aisys.ChatResponse)
    assert isinstance(parsed.text, str)
    assert parsed.model is not None  # the target's model when the body names none
    usage = body.get("usage") if isinstance(body, dict) else None
    counts = isinstance(usage, dict) and all(
        type(usage.get(k)) is int and usage[k] >= 0
        for k in ("prompt_tokens", "completion_tokens")
    )
    assert parsed.usage.estimated is not counts


_FACTS = (
    "provider",
    "response_model",
    "response_id",
    "finish_reasons",
    "output_text",
    "usage",
)


@settings(max_examples=200, deadline=None)
@given(
    body=st.fixed_dictionaries(
        {"choices": st.lists(_json | st.fixed_dictionaries({"message": _json}))},
        optional={
            "object": st.sampled_from(["chat.completion", "text_completion"]) | _json,
            "model": _json,
            "id": _json,
            "usage": _json
            | st.fixed_dictionaries(
                {"prompt_tokens": st.integers(-2, 9), "completion_tokens": _json}
            ),
        },
    )
)
def test_reading_a_completion_dict_matches_the_generic_reader(
    body: dict[str, object],
) -> None:
    """Decorated functions' dict results take a fast path; it reads what the generic one does."""
    from types import MappingProxyType

    from aisys.call import Call

    fast, generic = Call("llm", "chat"), Call("llm", "chat")
    assert registry.read_result(fast, body) == registry.read_result(
        generic, MappingProxyType(body)
    )
    assert [getattr(fast, k) for k in _FACTS] == [getattr(generic, k) for k in _FACTS]


def test_scripted_default_echo_and_script(seen: Captured) -> None:
    """scripted: echoes by default; a ScriptedTransport plays replies and faults in order."""
    with aisys.LLM("scripted:echo") as echo:
        assert echo.chat("hello").text == "You said: hello"
    script = ScriptedTransport(["first", Fault(503), httpx2.ConnectError("refused")])
    with aisys.LLM("scripted:demo", transport=script, retry=None) as llm:
        assert llm.chat("a").text == "first"
        with pytest.raises(aisys.ServerError):
            llm.chat("b")
        with pytest.raises(aisys.ProviderConnectionError):
            llm.chat("c")
    assert [r["messages"][0]["content"] for r in script.requests] == ["a", "b", "c"]
    assert [s.attributes.get("error.type") for s in seen.spans] == [
        None,
        None,
        "aisys.ServerError",
        "aisys.ProviderConnectionError",
    ]
