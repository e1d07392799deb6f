"""The public namespace is small, sorted and importable without side effects."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types

import aisys


def test_all_is_sorted_and_complete() -> None:
    """__all__ is sorted and every name resolves."""
    assert aisys.__all__ == sorted(aisys.__all__)
    for name in aisys.__all__:
        assert getattr(aisys, name) is not None
    public = {n for n in dir(aisys) if not n.startswith("_")} - {"annotations"}
    submodules = {n for n in public if isinstance(getattr(aisys, n), types.ModuleType)}
    assert public - submodules <= set(aisys.__all__)


def test_error_tree() -> None:
    """Every aisys error derives from AisysError; retryable is decided by the class."""
    for name in aisys.__all__:
        value = getattr(aisys, name)
        if (
            isinstance(value, type)
            and issubclass(value, Exception)
            and not issubclass(value, Warning)
        ):
            assert issubclass(value, aisys.AisysError)
    assert aisys.RateLimitError.retryable
    assert aisys.ServerError.retryable
    assert issubclass(aisys.ResponseFormatError, aisys.ServerError)
    assert aisys.ResponseFormatError.retryable
    assert aisys.ProviderTimeoutError.retryable
    assert not aisys.BadRequestError.retryable
    assert not aisys.AuthenticationError.retryable
    assert issubclass(aisys.ConfigError, ValueError)
    error = aisys.RateLimitError("slow down", provider="openai", retry_after_s=2.0)
    assert (error.status_code, error.provider, error.retry_after_s) == (
        429,
        "openai",
        2.0,
    )
    first, last = aisys.ServerError("a"), aisys.RateLimitError("b")
    failed = aisys.AllTargetsFailedError("all failed", (first, last), ("r1", "r2"))
    assert failed.errors == (first, last)
    assert failed.attempts == ("r1", "r2")


def test_import_does_no_io_and_starts_no_thread() -> None:
    """`import aisys` opens no file of its own, starts no thread, loads no OTel or pydantic."""
    script = textwrap.dedent(
        """
        import sys, threading, builtins, io
        opened = []
        real_open = io.open
        def spy(file, *a, **k):
            opened.append(str(file))
            return real_open(file, *a, **k)
        builtins.open = io.open = spy
        before = threading.active_count()
        import aisys
        assert threading.active_count() == before, "thread started"
        heavy = [m for m in ("opentelemetry", "pydantic", "structlog", "tiktoken", "genai_prices", "diskcache", "redis", "rich") if m in sys.modules]
        print(heavy, [f for f in opened if "aisys" in f])

        @aisys.traced_llm
        def f():
            return "x"
        print(threading.active_count() == before)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.splitlines() == ["[] []", "True"]
