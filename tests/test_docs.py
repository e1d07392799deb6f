"""The examples in docs/testing.md run as written (offline)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "testing.md"
EXAMPLES = [
    block
    for block in re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    if "def test_" in block
]


@pytest.mark.parametrize(
    "block", EXAMPLES, ids=lambda b: b.split("def test_")[1].split("(")[0]
)
def test_testing_doc_examples_run(block: str) -> None:
    """Each documented example test passes as written."""
    namespace: dict[str, object] = {}
    exec(block, namespace)  # noqa: S102 - our own documentation
    tests = [
        value
        for name, value in namespace.items()
        if name.startswith("test_") and callable(value)
    ]
    assert tests
    for test in tests:
        test()
