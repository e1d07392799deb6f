"""The aisys pytest plugin: fixtures that give each test fresh aisys state.

Registered through the ``pytest11`` entry point, so it is active wherever aisys is
installed; it changes nothing for a test that uses none of its fixtures.

- ``aisys_state``: process-wide state (circuit breakers, and later memory caches and
  budget stores) is reset before and after the test, and settings changed with
  `aisys.configure` inside it are put back afterwards.
- ``aisys_capture``: the spans, metrics and log events of the test (`aisys.testing.Captured`).
- ``aisys_clock``: a `aisys.testing.FakeClock` for retries, deadlines and breakers.

Both of the last two include ``aisys_state``. To give *every* test fresh state, set
``aisys_isolation = true`` in the ``[pytest]`` / ``[tool.pytest.ini_options]`` section.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from aisys.testing import Captured, FakeClock

__all__ = ["aisys_capture", "aisys_clock", "aisys_state", "pytest_addoption"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the ``aisys_isolation`` ini option."""
    parser.addini(
        "aisys_isolation",
        type="bool",
        default=False,
        help="aisys: reset aisys's process-wide state around every test",
    )


@pytest.fixture
def aisys_state() -> Iterator[None]:
    """Fresh aisys state for the test: breakers (and stores) reset, settings restored."""
    import aisys
    from aisys.testing import reset

    runtime = aisys._DEFAULT
    settings, clock = runtime._settings, runtime.clock
    reset()
    yield
    reset()
    runtime.clock = clock
    if runtime._settings is not settings:
        runtime._put_settings(settings)


@pytest.fixture
def aisys_capture(aisys_state: None) -> Iterator[Captured]:
    """The spans, metrics and log events aisys records during the test."""
    from aisys.testing import capture

    with capture() as captured:
        yield captured


@pytest.fixture
def aisys_clock(aisys_state: None) -> Iterator[FakeClock]:
    """A fake clock: retry waits are recorded, not slept; ``advance()`` moves time."""
    from aisys.testing import fake_clock

    with fake_clock() as clock:
        yield clock


@pytest.fixture(autouse=True)
def _aisys_isolation(request: pytest.FixtureRequest) -> None:
    """With ``aisys_isolation = true``, every test gets ``aisys_state``."""
    if request.config.getini("aisys_isolation"):
        request.getfixturevalue("aisys_state")
