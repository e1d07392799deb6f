"""Offline token counting with the shipped vocabularies."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aisys
from aisys.metering.tokens import encoding_for_model


def test_known_counts() -> None:
    """Counts match tiktoken's published behaviour for o200k and cl100k models."""
    assert aisys.count_tokens("hello world", "gpt-4o-mini") == 2
    assert aisys.count_tokens("hello world", "gpt-4") == 2
    assert encoding_for_model("gpt-4o").name == "o200k_base"
    assert encoding_for_model("gpt-3.5-turbo").name == "cl100k_base"
    assert encoding_for_model("smollm2").name == "o200k_base"
    assert encoding_for_model("openai:gpt-4").name == "cl100k_base"


def test_message_overhead() -> None:
    """Chat messages add OpenAI's documented 3 per message and 3 for the reply."""
    messages = [{"role": "user", "content": "hello world"}]
    expected = (
        3
        + aisys.count_tokens("user", "gpt-4o")
        + aisys.count_tokens("hello world", "gpt-4o")
        + 3
    )
    assert aisys.count_tokens(messages, "gpt-4o") == expected
    named = [{"role": "user", "content": "hello world", "name": "bob"}]
    assert aisys.count_tokens(named, "gpt-4o") == expected + 1 + aisys.count_tokens(
        "bob", "gpt-4o"
    )


def test_message_models_and_content_parts() -> None:
    """aisys.Message objects and text content parts count like their text."""
    as_dict = [{"role": "user", "content": "hello world"}]
    as_model = [aisys.Message(role="user", content="hello world")]
    as_parts = [{"role": "user", "content": [{"type": "text", "text": "hello world"}]}]
    assert (
        aisys.count_tokens(as_model)
        == aisys.count_tokens(as_dict)
        == aisys.count_tokens(as_parts)
    )


def test_counting_needs_no_network(tmp_path: object) -> None:
    """With every socket refused and an empty tiktoken cache, counting still works."""
    script = textwrap.dedent(
        """
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network is off")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        import aisys
        print(aisys.count_tokens("hello world", "gpt-4o"), aisys.count_tokens("hello world", "gpt-4"))
        """
    )
    env = {"TIKTOKEN_CACHE_DIR": str(tmp_path), "PATH": ""}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.split() == ["2", "2"]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_roundtrip_and_bounds(text: str) -> None:
    """Encoding is lossless and never more tokens than UTF-8 bytes."""
    encoding = encoding_for_model("gpt-4o")
    tokens = encoding.encode_ordinary(text)
    assert encoding.decode(tokens) == text
    assert len(tokens) <= len(text.encode("utf-8"))
    assert aisys.count_tokens(text, "gpt-4o") == len(tokens)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("openai:gpt-4o-mini", ("openai", "gpt-4o-mini")),
        ("ollama:llama3:8b", ("ollama", "llama3:8b")),
        ("gpt-4o-mini", (None, "gpt-4o-mini")),
        ("ft:gpt-4o-mini:acme:x1", (None, "ft:gpt-4o-mini:acme:x1")),
        ("meta/llama:3", (None, "meta/llama:3")),
    ],
)
def test_one_provider_model_parser(spec: str, expected: tuple[str | None, str]) -> None:
    """Every layer splits `provider:model` the same way: the model keeps its colons."""
    from aisys.names import split_model

    assert split_model(spec) == expected


def test_a_model_name_with_colons_counts_with_its_own_name() -> None:
    """A fine-tune's name keeps its colons: it counts with its base model's encoding."""
    from aisys.metering import tokens

    fine_tune = "ft:gpt-3.5-turbo:acme::abc123"
    assert tokens._encoding_name(fine_tune) == "cl100k_base"  # gpt-3.5-turbo's
    assert tokens._encoding_name(f"openai:{fine_tune}") == "cl100k_base"
    assert tokens._encoding_name("ollama:llama3:8b") == tokens._encoding_name(
        "llama3:8b"
    )
