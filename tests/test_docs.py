"""The examples in docs/testing.md run as written (offline)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "testing.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


@pytest.mark.parametrize("index", [0, 2])
def test_testing_doc_examples_run(index: int) -> None:
    """The capture() and fake_clock() examples define tests that pass."""
    namespace: dict[str, object] = {}
    exec(BLOCKS[index], namespace)  # noqa: S102 - our own documentation
    tests = [
        value
        for name, value in namespace.items()
        if name.startswith("test_") and callable(value)
    ]
    assert tests
    for test in tests:
        test()
