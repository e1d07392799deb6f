"""The examples in docs/testing.md run as written (offline)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parent.parent / "docs" / "testing.md"
EXAMPLES = [
    block
    for block in re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    if "def test_" in block
]


def _tests(block: str) -> list[object]:
    namespace: dict[str, object] = {}
    exec(block, namespace)  # noqa: S102 - our own documentation
    return [
        value
        for name, value in namespace.items()
        if name.startswith("test_") and callable(value)
    ]


@pytest.mark.parametrize(
    "block", EXAMPLES, ids=lambda b: b.split("def test_")[1].split("(")[0]
)
def test_testing_doc_examples_run(block: str, pytester: pytest.Pytester) -> None:
    """Each documented example test passes as written; fixture users under real pytest."""
    tests = _tests(block)
    assert tests
    if any(inspect.signature(test).parameters for test in tests):  # type: ignore[arg-type]
        pytester.makepyfile(test_example=block)
        result = pytester.runpytest_subprocess("-p", "no:randomly")
        result.assert_outcomes(passed=len(tests))
        return
    for test in tests:
        test()  # type: ignore[operator]
