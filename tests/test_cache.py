"""The response cache, against the loopback wire server's request log and a real Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import enum
import gc
import json
import logging
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import aisys
from aisys.metering.prices import clear_overrides
from aisys.pipeline.cache import canonical
from aisys.pipeline.keys import key_data
from aisys.stores.memory import MemoryStore
from aisys.testing import Captured, FakeClock, fake_clock
from tests.strategies import JSON_SCALARS, nested
from tests.wire_server import Reply, WireServer


@pytest.fixture(autouse=True)
def _setup(tmp_path: Path) -> Iterator[None]:
    clear_overrides()
    aisys.register_price("openai:gpt-test", input=1000, output=1000)
    aisys.configure(cache_dir=tmp_path / "cache")
    yield
    clear_overrides()


def _llm(
    server: WireServer, cache: aisys.Cache | None = None, **kwargs: Any
) -> aisys.LLM:
    kwargs.setdefault("model", "openai:gpt-test")
    model = kwargs.pop("model")
    return aisys.LLM(
        model,
        base_url=server.base_url,
        api_key="sk-aisys-test-key-k",
        retry=None,
        cache=cache if cache is not None else aisys.Cache(),
        **kwargs,
    )


def test_a_repeated_call_is_answered_from_the_cache(
    server: WireServer, seen: Captured
) -> None:
    with _llm(server) as llm:
        first = llm.chat("hi", max_tokens=10)
        second = llm.chat("hi", max_tokens=10)
    assert len(server.requests) == 1
    assert (first.cached, second.cached) == (False, True)
    assert second.text == first.text
    assert second.usage == first.usage  # the original usage
    assert second.cost.usd == 0  # nothing spent
    assert second.attempts == 0  # no request made
    spans = [s for s in seen.spans if s.parent is None]
    assert spans[0].attributes["aisys.cache.hit"] is False
    assert spans[1].attributes["aisys.cache.hit"] is True
    assert spans[1].attributes["aisys.cache.backend"] == "diskcache"
    assert spans[1].attributes["aisys.cache.saved_usd"] == pytest.approx(0.008)
    assert spans[1].attributes["aisys.cost.usd"] == 0
    results = {
        p.attributes["aisys.cache.result"]: p.value
        for p in seen.metric_points("aisys.cache.requests")
    }
    assert results == {"miss": 1, "hit": 1}


VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("temperature", {"temperature": 0.5}),
    ("max_tokens", {"max_tokens": 11}),
    ("top_p", {"top_p": 0.9}),
    ("stop", {"stop": ["\n"]}),
    ("seed", {"seed": 7}),
    (
        "tools",
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
    ),
    ("tool_choice", {"tool_choice": "none"}),
    ("response_format", {"response_format": {"type": "json_object"}}),
    ("extra", {"extra": {"logprobs": True}}),
]


@pytest.mark.parametrize(("name", "change"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_every_parameter_is_part_of_the_key(
    server: WireServer, name: str, change: dict[str, Any]
) -> None:
    """A request that could get a different answer is a miss; the same one a hit."""
    with _llm(server) as llm:
        llm.chat("hi", max_tokens=10)
        llm.chat("hi", **{"max_tokens": 10, **change})
        assert len(server.requests) == 2
        llm.chat("hi", **{"max_tokens": 10, **change})
        assert len(server.requests) == 2


def test_model_messages_and_endpoint_are_part_of_the_key(
    server: WireServer, tmp_path: Path
) -> None:
    cache = aisys.Cache("memory")
    with (
        _llm(server, cache) as llm,
        _llm(server, cache, model="openai:gpt-other") as other,
    ):
        llm.chat("hi")
        llm.chat("hello")
        other.chat("hi")
        assert len(server.requests) == 3
    with (
        WireServer() as second,
        aisys.LLM(
            "openai:gpt-test",
            base_url=second.base_url,
            api_key="sk-aisys-test-key-k",
            cache=cache,
        ) as elsewhere,
    ):
        elsewhere.chat("hi")
        assert len(second.requests) == 1


_JSON = nested(JSON_SCALARS, max_leaves=8)


@settings(max_examples=200)
@given(st.dictionaries(st.text(max_size=6), _JSON, max_size=5), st.randoms())
def test_key_ignores_dict_order(params: dict[str, Any], rnd: Any) -> None:
    cache = aisys.Cache("memory")
    shuffled_items = list(params.items())
    rnd.shuffle(shuffled_items)
    shuffled = dict(shuffled_items)
    assert cache.key({"params": params}) == cache.key({"params": shuffled})


_CHAT_CALLS = st.fixed_dictionaries(
    {
        "messages": st.sampled_from(
            [
                "hi",
                "hi ",
                [{"role": "user", "content": "hi"}],
                [aisys.Message(role="user", content="hi")],
                [{"role": "system", "content": "hi"}],
            ]
        ),
        "temperature": st.sampled_from([None, 0, 0.0, 1]),
        "stop": st.sampled_from([None, "x", ["x"]]),
        "tools": st.sampled_from(
            [None, [{"type": "function", "function": {"name": "f"}}]]
        ),
        "extra": st.sampled_from([None, {}, {"user": "a"}, {"seed": 1}]),
        "seed": st.sampled_from([None, 1]),
    }
)


@settings(max_examples=300)
@given(_CHAT_CALLS, _CHAT_CALLS)
@example({"messages": "hi", "temperature": 0}, {"messages": "hi", "temperature": 0.0})
def test_requests_share_a_key_only_when_the_provider_gets_the_same_body(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    """Whatever reaches the wire is in the key: one key, one request body."""
    from aisys.llm import LLMRequest

    llm = aisys.LLM("openai:gpt-test", api_key="sk-aisys-test-key-k")
    cache = aisys.Cache("memory")

    def key_and_body(call: dict[str, Any]) -> tuple[str, Any]:
        params = {k: v for k, v in call.items() if k != "messages"}
        request = llm._request(call["messages"], params, stream=False)
        body = json.loads(llm.provider.chat_request(llm.target, request).content)
        return cache.key(LLMRequest(llm, request).cache_material()), body

    key_a, body_a = key_and_body(a)
    key_b, body_b = key_and_body(b)
    if key_a == key_b:
        assert body_a == body_b
    if repr(a) == repr(b):  # the same call (== would also take 0 for 0.0)
        assert key_a == key_b


class _Colour(enum.Enum):
    RED = 1


@dataclasses.dataclass(frozen=True)
class _Point:
    x: int
    y: int


_KEYABLE_SCALARS = (
    JSON_SCALARS
    | st.binary(max_size=4)
    | st.decimals(allow_nan=False, places=2)
    | st.datetimes()
    | st.dates()
    | st.uuids()
    | st.sampled_from([_Colour.RED, _Point(1, 2), _Point(2, 1)])
    | st.floats(allow_nan=True, allow_infinity=True)
)
_KEYABLE = st.recursive(
    _KEYABLE_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.frozensets(st.integers() | st.text(max_size=3), max_size=3)
        | st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=3)
    ),
    max_leaves=8,
)


def _typed(value: Any) -> Any:
    """``value`` with every type made explicit: equal only for the same argument."""
    if isinstance(value, dict):
        return ("dict", frozenset((_typed(k), _typed(v)) for k, v in value.items()))
    if isinstance(value, frozenset):
        return ("set", frozenset(_typed(v) for v in value))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(_typed(v) for v in value))
    if isinstance(value, float | Decimal | datetime.datetime):
        return (type(value).__name__, repr(value))  # nan and 1.0 vs 1.00 alike
    return (type(value).__name__, value)


@settings(max_examples=300)
@given(_KEYABLE, _KEYABLE)
def test_decorated_arguments_share_a_key_only_when_they_are_the_same(
    a: Any, b: Any
) -> None:
    """JSON would merge b"ab" and a dict, {1: x} and {"1": x}, Decimal and str: keys don't."""
    same_key = canonical(key_data(a)) == canonical(key_data(b))
    assert same_key == (_typed(a) == _typed(b))


def test_decorated_arguments_of_common_types_are_cached_apart() -> None:
    """Dates, UUIDs, enums, dataclasses and models are keyed; look-alikes miss."""
    calls: list[Any] = []

    @aisys.traced_llm(cache=aisys.Cache("memory"))
    def ask(value: Any) -> str:
        calls.append(value)
        return f"answer {len(calls)}"

    day = datetime.date(2026, 12, 5)
    values = [
        b"ab",
        {"bytes": "YWI="},
        {1: "a"},
        {"1": "a"},
        Decimal("1.5"),
        "1.5",
        (1, 2),
        [1, 2],
        _Colour.RED,
        1,
        _Point(1, 2),
        {"x": 1, "y": 2},
        day,
        day.isoformat(),
        uuid.UUID(int=7),
        Path("/srv/kb"),
        aisys.ChatResponse(text="a"),
    ]
    first = [ask(value) for value in values]
    assert len(calls) == len(values)  # no two of them shared an entry
    assert [ask(value) for value in values] == first  # and each was stored
    assert len(calls) == len(values)


def test_ttl_expires_with_the_fake_clock(server: WireServer) -> None:
    with fake_clock() as clock, _llm(server, aisys.Cache(ttl=60)) as llm:
        llm.chat("hi")
        clock.advance(59)
        assert llm.chat("hi").cached
        clock.advance(2)
        assert not llm.chat("hi").cached
    assert len(server.requests) == 2


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_stream_hits_replay_and_live_streams_are_stored(
    server: WireServer, mode: str
) -> None:
    async def stream(llm: aisys.LLM) -> tuple[list[str], Any]:
        if mode == "sync":
            s = llm.stream("tell me")
            return [c.text for c in s], s
        a = llm.astream("tell me")
        return [c.text async for c in a], a

    async with _llm(server, aisys.Cache("memory")) as llm:
        live, first = await stream(llm)
        replayed, second = await stream(llm)
        answer = await llm.achat("tell me")  # a chat call shares the stored answer
    assert len(server.requests) == 1
    assert replayed == live  # chunks of the same shape
    assert second.response.cached
    assert not first.response.cached
    assert second.response.text == first.response.text
    assert answer.cached
    assert answer.text == first.response.text


def test_errors_and_truncated_answers_are_not_stored(server: WireServer) -> None:
    with _llm(server, aisys.Cache("memory")) as llm:
        server.script(Reply(status=500))
        with pytest.raises(aisys.ServerError):
            llm.chat("hi")
        assert not llm.chat("hi").cached  # the error was not stored
        cut = llm.stream("cut me")
        server.script(Reply(cut_after=1))
        with pytest.raises(aisys.ProviderConnectionError):
            list(cut)
        assert not llm.chat("cut me").cached  # the truncated stream was not stored
        abandoned = llm.stream("leave me")
        next(iter(abandoned))
        abandoned.close()
        assert not llm.chat("leave me").cached  # nor the abandoned one


def test_length_cut_answers_are_stored_only_when_asked(server: WireServer) -> None:
    long = {
        "id": "x",
        "object": "chat.completion",
        "model": "gpt-test",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "cut"},
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }
    for store_truncated, cached in ((False, False), (True, True)):
        server.reset()
        server.script(Reply(body=long), Reply(body=long))
        with _llm(
            server, aisys.Cache("memory", store_truncated=store_truncated)
        ) as llm:
            llm.chat(f"long {store_truncated}")
            assert llm.chat(f"long {store_truncated}").cached is cached


def test_modes(server: WireServer) -> None:
    shared = "memory"
    with _llm(server, aisys.Cache(shared, mode="read_only")) as reader:
        reader.chat("hi")
        assert not reader.chat("hi").cached  # read_only never stores
    with _llm(server, aisys.Cache(shared, mode="write_only")) as writer:
        writer.chat("hi")
        assert not writer.chat("hi").cached  # write_only never answers
    with _llm(server, aisys.Cache(shared)) as normal:
        assert normal.chat("hi").cached  # ...but it stored
        server.script(Reply(text="newer"))
    with _llm(server, aisys.Cache(shared, mode="refresh")) as refresher:
        assert refresher.chat("hi").text == "newer"  # refresh always asks
    with _llm(server, aisys.Cache(shared)) as normal:
        assert normal.chat("hi").text == "newer"  # ...and replaced the entry


def test_cache_false_bypasses_for_one_call(server: WireServer) -> None:
    with _llm(server) as llm:
        llm.chat("hi")
        assert not llm.chat("hi", cache=False).cached
        assert llm.chat("hi").cached
    assert len(server.requests) == 2


def test_single_flight_threads(server: WireServer) -> None:
    """50 threads ask the same thing at once: one request reaches the server."""
    server.default = Reply(delay_s=0.3)
    llm = _llm(server, aisys.Cache("memory"))
    results: list[aisys.ChatResponse] = []
    lock = threading.Lock()

    def one() -> None:
        response = llm.chat("same question")
        with lock:
            results.append(response)

    try:
        threads = [threading.Thread(target=one) for _ in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.default = Reply()
        llm.close()
    assert len(server.requests) == 1
    assert len(results) == 50
    assert sum(r.cached for r in results) == 49


async def test_single_flight_tasks(server: WireServer) -> None:
    server.default = Reply(delay_s=0.3)
    try:
        async with _llm(server, aisys.Cache("memory")) as llm:
            results = await asyncio.gather(*(llm.achat("same") for _ in range(50)))
    finally:
        server.default = Reply()
    assert len(server.requests) == 1
    assert sum(r.cached for r in results) == 49


async def test_single_flight_leader_failure_lets_each_try(server: WireServer) -> None:
    """If the one request fails, the waiting callers each make their own."""
    server.script(Reply(status=400, delay_s=0.3))
    async with _llm(server, aisys.Cache("memory")) as llm:
        results = await asyncio.gather(
            *(llm.achat("same") for _ in range(5)), return_exceptions=True
        )
    assert sum(isinstance(r, aisys.BadRequestError) for r in results) == 1
    assert sum(isinstance(r, aisys.ChatResponse) for r in results) == 4
    assert len(server.requests) >= 2


def test_redis_backend_shared_and_killed_mid_run(
    server: WireServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two LLMs share answers through Redis; with Redis gone calls still succeed."""
    from tests.conftest import own_redis_server

    with own_redis_server(tmp_path) as url:
        with _llm(server, aisys.Cache(url, namespace="fleet")) as one:
            one.chat("hi")
        with _llm(server, aisys.Cache(url, namespace="fleet")) as two:
            assert two.chat("hi").cached
        import redis

        client = redis.Redis.from_url(url)
        (key,) = client.keys("aisys:cache:fleet:*")
        raw = client.get(key)
        client.close()
        assert raw is not None
        assert raw.startswith(b"{")  # JSON, never pickle
        json.loads(raw)
    with (
        caplog.at_level(logging.WARNING, logger="aisys"),
        _llm(server, aisys.Cache(url, namespace="fleet")) as three,
    ):
        assert three.chat("hi").text == "Hello from the wire."  # to the provider
    assert any("cache" in r.getMessage() for r in caplog.records)


def test_corrupt_entry_is_a_counted_miss(server: WireServer, seen: Captured) -> None:
    import diskcache

    cache_dir = aisys._DEFAULT.settings.cache_dir
    with _llm(server) as llm:
        llm.chat("hi")
        disk = diskcache.Cache(str(cache_dir / "cache"))
        keys = [k for k in disk.iterkeys() if str(k).startswith("blob:")]
        assert len(keys) == 1
        raw = disk.get(keys[0])
        assert isinstance(raw, bytes)
        assert raw.startswith(b"{")  # JSON, never pickle
        disk.set(keys[0], b"\x80\x04garbage")
        disk.close()
        assert not llm.chat("hi").cached
    assert len(server.requests) == 2
    results = [
        p.attributes["aisys.cache.result"]
        for p in seen.metric_points("aisys.cache.requests")
    ]
    assert "error" in results


def test_two_processes_share_one_diskcache(server: WireServer, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import aisys
        aisys.configure(cache_dir={str(tmp_path / "shared")!r})
        with aisys.LLM("openai:gpt-test", base_url={server.base_url!r}, api_key="sk-aisys-test-key-k",
                       cache=aisys.Cache()) as llm:
            print(llm.chat("hi").cached)
        """
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert outputs == ["False", "True"]
    assert len(server.requests) == 1


def test_decorator_mode_with_the_official_client(
    client: openai.OpenAI, server: WireServer, seen: Captured
) -> None:
    calls = 0

    @aisys.traced_llm(cache=aisys.Cache("memory"))
    def ask(question: str, model: str = "gpt-4o-mini", temperature: float = 0.0) -> Any:
        nonlocal calls
        calls += 1
        return client.chat.completions.create(
            model=model,
            temperature=temperature,
            messages=[{"role": "user", "content": question}],
        )

    first = ask("How long do refunds take?")
    again = ask("How long do refunds take?", temperature=0.0)  # the default, given
    other = ask("How long do refunds take?", temperature=0.5)
    assert calls == 2
    assert len(server.requests) == 2
    assert type(again) is type(first)  # restored to the SDK's own class
    assert again.choices[0].message.content == first.choices[0].message.content
    assert other is not None
    spans = [s for s in seen.spans if s.parent is None]
    assert [s.attributes["aisys.cache.hit"] for s in spans] == [False, True, False]
    assert spans[1].attributes["aisys.cost.usd"] == 0
    assert spans[1].attributes["aisys.cache.saved_usd"] > 0


def test_each_decorated_hit_is_the_caller_s_own_value() -> None:
    """Changing a returned dict changes neither the stored answer nor a later hit."""
    answers = []

    @aisys.traced_llm(cache=aisys.Cache("memory"), model="gpt-4o-mini")
    def ask(question: str) -> dict[str, Any]:
        answer = {"text": "five days", "sources": ["faq"]}
        answers.append(answer)
        return answer

    first = ask("refunds?")
    first["sources"].append("changed by the first caller")
    hit = ask("refunds?")
    assert hit == {"text": "five days", "sources": ["faq"]}
    hit["text"] = "changed by the second caller"
    assert ask("refunds?") == {"text": "five days", "sources": ["faq"]}
    assert len(answers) == 1


def test_single_flight_followers_get_their_own_copy() -> None:
    """Threads sharing one leader's dict each get a copy of their own."""
    release = threading.Event()

    @aisys.traced_llm(cache=aisys.Cache("memory"), model="gpt-4o-mini")
    def ask(question: str) -> dict[str, Any]:
        release.wait(5)
        return {"sources": ["faq"]}

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(ask, "same") for _ in range(4)]
        time.sleep(0.2)  # let every thread join the flight
        release.set()
        results = [f.result() for f in futures]
    assert all(r == {"sources": ["faq"]} for r in results)
    assert len({id(r) for r in results}) == 4


def test_big_answers_stay_on_disk_not_in_memory(server: WireServer) -> None:
    """Hits of big diskcache entries re-read them: none is kept in the process."""
    big = "word " * 60_000  # a 300 KB answer
    server.script(*[Reply(text=f"{big}{i}") for i in range(12)])
    with _llm(server) as llm:
        llm.chat("warm up", cache=False)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for i in range(11):
                llm.chat(f"question {i}")
                hit = llm.chat(f"question {i}")
                assert hit.cached
                assert hit.text == f"{big}{i + 1}"
            del hit
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert kept < 2_000_000, f"{kept / 1e6:.1f} MB kept for 11 answers of 300 KB"


def test_memory_backend_is_bounded_by_bytes_too() -> None:
    """The least recently used entries go when the bytes run out; a too-big one is not kept."""
    store = MemoryStore()
    store.max_bytes = 1_000
    for i in range(10):
        store.set_blob(f"k{i}", b"x" * 300, None)
    assert [store.get_blob(f"k{i}") is not None for i in range(10)] == [False] * 7 + [
        True
    ] * 3
    store.get_blob("k7")  # used: k8 is now the least recent
    store.set_blob("k10", b"y" * 300, None)
    assert store.get_blob("k8") is None
    assert store.get_blob("k7") == b"x" * 300
    store.set_blob("huge", b"z" * 2_000, None)
    assert store.get_blob("huge") is None
    assert store.get_blob("k10") == b"y" * 300
    store.set_blob("k10", b"w" * 100, None)  # replaced: its old bytes no longer count
    for i in range(3):
        store.set_blob(f"s{i}", b"s" * 200, None)
    assert store.get_blob("k10") == b"w" * 100


def _looped() -> list[Any]:
    looped: list[Any] = []
    looped.append(looped)
    return looped


@pytest.mark.parametrize(
    ("argument", "reason"),
    [(object, "object cannot be part of a cache key"), (_looped, "contain themselves")],
)
def test_decorator_arguments_that_cannot_be_keyed_are_a_miss(
    caplog: pytest.LogCaptureFixture, argument: Any, reason: str
) -> None:
    """An open file, a client, an argument that contains itself: a miss, one warning."""
    calls = 0

    @aisys.traced_llm(cache=aisys.Cache("memory"))
    def ask(question: Any) -> str:
        nonlocal calls
        calls += 1
        return "answer"

    with caplog.at_level(logging.WARNING, logger="aisys"):
        assert ask(argument()) == ask(argument()) == "answer"
    assert calls == 2
    warnings = [r.getMessage() for r in caplog.records]
    assert sum("cannot be part of a key" in w for w in warnings) == 1
    assert reason in warnings[0]


def test_a_cache_hit_settles_the_budget_at_zero(
    server: WireServer, seen: Captured
) -> None:
    """The budget (outside the cache) reserves the estimate, and a hit gives it back."""
    budget = aisys.Budget("0.05", per="day", store="memory")
    with _llm(server, aisys.Cache("memory"), budget=budget) as llm:
        llm.chat("hi", max_tokens=10)  # $0.008 spent
        for _ in range(10):  # 10 x the ~$0.018 estimate would pass $0.05
            assert llm.chat("hi", max_tokens=10).cached
    last = [s for s in seen.spans if s.parent is None][-1]
    assert last.attributes["aisys.budget.spent_usd"] == pytest.approx(0.008)


def test_cache_arguments_are_checked() -> None:
    with pytest.raises(aisys.ConfigError, match="mode"):
        aisys.Cache(mode="sometimes")  # type: ignore[arg-type]
    with pytest.raises(aisys.ConfigError, match="ttl"):
        aisys.Cache(ttl=0)
    with pytest.raises(aisys.ConfigError, match="store"):
        aisys.Cache("postgres")
    with pytest.raises(aisys.ConfigError, match="cache"):
        aisys.LLM("openai:m", cache="memory")  # type: ignore[arg-type]


def test_no_raw_prompt_reaches_telemetry_because_of_the_cache(
    server: WireServer, seen: Captured
) -> None:
    secret = "my card is 4111 1111 1111 1111"
    with _llm(server) as llm:
        llm.chat(secret)
        llm.chat(secret)
    dumped = json.dumps(
        [dict(s.attributes or {}) for s in seen.spans] + seen.logs, default=str
    )
    # Not just "4111": ids, timestamps and durations contain it by chance.
    assert "4111 1111 1111 1111" not in dumped
    assert "my card" not in dumped


def test_fake_clock_fixture_type() -> None:
    assert isinstance(FakeClock().time(), float)
    assert Decimal(0) == 0


async def test_single_flight_followers_keep_their_budget(server: WireServer) -> None:
    """A follower sharing the leader's answer still settles its own budget reservation."""
    server.default = Reply(delay_s=1.0)
    budget = aisys.Budget("1", per="day", store="memory")
    try:
        async with _llm(server, aisys.Cache("memory"), budget=budget) as llm:
            results = await asyncio.gather(
                *(llm.achat("same", max_tokens=10) for _ in range(10))
            )
    finally:
        server.default = Reply()
    assert sum(r.cached for r in results) == 9
    from aisys.stores import open_store

    store = open_store("memory", aisys._DEFAULT.settings.cache_dir, purpose="budgets")
    label = budget.window(__import__("time").time())[0]
    spent = store.get(f"{budget.name}|*|{label}")
    assert spent == 8_000_000  # $0.008 in nano-USD: the leader's call only
