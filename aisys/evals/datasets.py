"""Datasets: the cases an experiment runs, from JSONL, CSV or YAML files.

A case has ``inputs`` (the target's keyword arguments), an ``id`` (default: a hash of
the inputs), ``expected``, ``tags`` and ``metadata``. A malformed file is refused with
its file, line and field, so a broken dataset never reaches a run half-read.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aisys.errors import ConfigError

__all__ = ["Case", "Dataset"]

_FIELDS = ("id", "inputs", "expected", "tags", "metadata")
_CSV_SPECIAL = ("id", "expected", "tags")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class Case:
    """One case: the target is called as ``target(**case.inputs)``.

    Added in 0.2.
    """

    inputs: Mapping[str, Any]
    id: str = ""
    expected: Any = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id:
            digest = hashlib.sha256(_canonical(dict(self.inputs)).encode()).hexdigest()
            object.__setattr__(self, "id", digest[:12])

    def as_dict(self) -> dict[str, Any]:
        """The case as a dataset line holds it."""
        return {
            "id": self.id,
            "inputs": dict(self.inputs),
            "expected": self.expected,
            "tags": list(self.tags),
            "metadata": dict(self.metadata),
        }


class Dataset:
    """Cases in order, with the file they came from and a hash of their content.

    Added in 0.2.
    """

    def __init__(self, cases: Iterable[Case], path: Path | None = None) -> None:
        self.cases = list(cases)
        self.path = path
        seen: dict[str, int] = {}
        for index, case in enumerate(self.cases):
            if case.id in seen:
                msg = (
                    f"{path or 'dataset'}: case {index + 1} has the id {case.id!r} of "
                    f"case {seen[case.id] + 1}; ids must be unique"
                )
                raise ConfigError(msg, field="id")
            seen[case.id] = index

    @classmethod
    def load(cls, path: str | Path) -> Dataset:
        """Read a JSONL, CSV or YAML file (by its suffix)."""
        path = Path(path)
        if not path.is_file():
            msg = f"no dataset file {str(path)!r}"
            raise ConfigError(msg, field="path")
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".ndjson"):
            return cls(_jsonl(path), path)
        if suffix == ".csv":
            return cls(_csv(path), path)
        if suffix in (".yaml", ".yml"):
            return cls(_yaml(path), path)
        msg = f"{path}: a dataset is a .jsonl, .csv or .yaml file, got {suffix or 'no suffix'!r}"
        raise ConfigError(msg, field="path")

    @property
    def sha256(self) -> str:
        """A hash of the canonical cases (ids, inputs, expected, tags, metadata)."""
        return hashlib.sha256(
            _canonical([case.as_dict() for case in self.cases]).encode()
        ).hexdigest()

    def __iter__(self) -> Iterator[Case]:
        return iter(self.cases)

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, index: int) -> Case:
        return self.cases[index]

    def __repr__(self) -> str:
        return f"Dataset({len(self)} cases from {str(self.path) if self.path else 'memory'})"


def _bad(path: Path, line: int, name: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}:{line}: {name}: {problem}", field=name)


def case_from(record: Any, path: Path, line: int) -> Case:
    """One case from a mapping, checked field by field."""
    if not isinstance(record, Mapping):
        raise _bad(
            path, line, "case", f"a case is an object with 'inputs', got {record!r:.60}"
        )
    unknown = sorted(set(record) - set(_FIELDS))
    if unknown:
        raise _bad(
            path,
            line,
            unknown[0],
            f"unknown field (a case has {', '.join(_FIELDS)}; put other data in metadata)",
        )
    inputs = record.get("inputs")
    if not isinstance(inputs, Mapping) or not all(isinstance(k, str) for k in inputs):
        raise _bad(
            path,
            line,
            "inputs",
            "required: an object of the target's keyword arguments",
        )
    case_id = record.get("id", "")
    if isinstance(case_id, int) and not isinstance(case_id, bool):
        case_id = str(case_id)
    if not isinstance(case_id, str):
        raise _bad(path, line, "id", f"a string, got {case_id!r}")
    tags = record.get("tags", [])
    if (
        isinstance(tags, str)
        or not isinstance(tags, list)
        or not all(isinstance(t, str) for t in tags)
    ):
        raise _bad(path, line, "tags", f"a list of strings, got {tags!r}")
    metadata = record.get("metadata", {})
    if not isinstance(metadata, Mapping):
        raise _bad(path, line, "metadata", f"an object, got {metadata!r}")
    return Case(
        dict(inputs), case_id, record.get("expected"), tuple(tags), dict(metadata)
    )


def _jsonl(path: Path) -> Iterator[Case]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _bad(path, number, "line", f"not JSON ({exc.msg})") from None
            yield case_from(record, path, number)


def _csv(path: Path) -> Iterator[Case]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames:
            raise _bad(path, 1, "header", "a CSV dataset starts with a header row")
        columns = [c for c in reader.fieldnames if c not in _CSV_SPECIAL]
        if not columns:
            raise _bad(
                path,
                1,
                "inputs",
                "no input columns (every column but id, expected, tags)",
            )
        for row in reader:
            number = reader.line_num
            if None in row:
                raise _bad(
                    path, number, "row", "more cells than the header has columns"
                )
            tags = [t.strip() for t in (row.get("tags") or "").split(";") if t.strip()]
            yield case_from(
                {
                    "id": row.get("id") or "",
                    "inputs": {c: row[c] for c in columns},
                    "expected": row.get("expected"),
                    "tags": tags,
                },
                path,
                number,
            )


def _yaml(path: Path) -> Iterator[Case]:
    import yaml

    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise _bad(path, line, "yaml", str(getattr(exc, "problem", exc))) from None
    items = root.value if isinstance(root, yaml.SequenceNode) else None
    if (
        isinstance(data, dict)
        and "cases" in data
        and isinstance(root, yaml.MappingNode)
    ):
        data = data["cases"]
        items = next(v.value for k, v in root.value if k.value == "cases")
    if not isinstance(data, list) or items is None:
        raise _bad(
            path, 1, "cases", "a YAML dataset is a list of cases (or 'cases:' with one)"
        )
    for node, record in zip(items, data, strict=True):
        yield case_from(record, path, node.start_mark.line + 1)
