"""The pytest plugin isolates users' own test suites (pytest run inside pytest)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

# A user's suite: the first test drives their model function into an outage (opening its
# circuit breaker); the second, unrelated, expects a healthy provider.
USER_SUITE = """
import aisys
import pytest

provider = {"down": True}


@aisys.traced_llm(
    retry=aisys.Retry(max_attempts=1),
    circuit=aisys.CircuitBreaker(failure_threshold=2),
)
def ask(question):
    if provider["down"]:
        raise ConnectionError("provider down")
    return "fine"


def test_outage_opens_the_breaker({fixture}):
    for _ in range(2):
        with pytest.raises(ConnectionError):
            ask("x")
    with pytest.raises(aisys.CircuitOpenError):
        ask("x")
    provider["down"] = False


def test_the_next_test_sees_a_closed_breaker():
    assert ask("y") == "fine"
"""


def _run(pytester: pytest.Pytester, fixture: str, ini: str = "") -> pytest.RunResult:
    pytester.makepyfile(test_user=USER_SUITE.replace("{fixture}", fixture))
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    return pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")


@pytest.mark.parametrize("fixture", ["aisys_state", "aisys_capture", "aisys_clock"])
def test_a_fixture_keeps_a_breaker_from_leaking(
    pytester: pytest.Pytester, fixture: str
) -> None:
    """A test using any aisys fixture leaves no open breaker for the next test."""
    result = _run(pytester, fixture)
    result.assert_outcomes(passed=2)


def test_without_the_fixtures_nothing_changes(pytester: pytest.Pytester) -> None:
    """The plugin is inert unless asked: the breaker does leak (the reason it exists)."""
    result = _run(pytester, "")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*CircuitOpenError*"])


def test_isolation_for_every_test_from_the_ini(pytester: pytest.Pytester) -> None:
    """``aisys_isolation = true`` gives every test fresh state without naming a fixture."""
    result = _run(pytester, "", ini="aisys_isolation = true")
    result.assert_outcomes(passed=2)


def test_capture_and_clock_fixtures(pytester: pytest.Pytester) -> None:
    """aisys_capture sees the test's spans and log events; aisys_clock records waits."""
    pytester.makepyfile(
        test_user="""
import aisys
from aisys.testing import Fault, ScriptedTransport


def test_retry_waits_as_asked(aisys_capture, aisys_clock):
    script = ScriptedTransport([Fault(503, headers={"retry-after": "2"}), "ok"])
    with aisys.LLM("scripted:m", transport=script) as llm:
        assert llm.chat("hi").text == "ok"
    assert aisys_clock.sleeps == [2.0]
    (call,) = [s for s in aisys_capture.spans if s.parent is None]
    assert call.attributes["aisys.retry.attempts"] == 2
    assert [e["event"] for e in aisys_capture.logs] == ["gen_ai.call"]


def test_configure_is_undone(aisys_state):
    aisys.configure(service_name="changed-in-a-test")


def test_after_it(aisys_state):
    assert aisys._DEFAULT.settings.service_name != "changed-in-a-test"
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=3)


def test_the_plugin_loads_cheaply() -> None:
    """pytest imports the plugin in every run: it must not pull in pydantic or httpx2."""
    import subprocess
    import sys

    code = (
        "import sys, aisys.testing.pytest_plugin;"
        "print(sorted(m for m in ('pydantic', 'httpx2', 'opentelemetry.sdk') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
