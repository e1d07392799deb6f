"""What cache keys are made of: canonical JSON, and a decorated call's arguments as data.

`canonical` writes a request as one JSON text per meaning (`aisys.LLM` requests go
through it as the provider would get them).

Written that way, a decorated function's arguments ``b"ab"`` and
``{"bytes": "YWI="}``, ``{1: "a"}`` and ``{"1": "a"}``, or ``Decimal("1.5")`` and
``"1.5"`` would share a key although the function may answer them differently.
`key_data` writes every value that is not plain JSON as a
tagged object — ``{"$bytes": …}``, ``{"$dict": [[key, value], …]}``, ``{"$tuple": […]}``
— and keeps a dict as an object only when its keys are strings not starting with
``$``, so no argument can pass for another. Dates, UUIDs, enums, paths, dataclasses
and pydantic models are keyed too; anything else raises TypeError (the call is then a
miss, with one warning).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import json
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any

__all__ = ["canonical", "key_data"]


def _canonical_default(value: Any) -> Any:
    """Request fields JSON cannot write, as the provider would get them (`aisys.LLM`)."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    if isinstance(value, set | frozenset):
        return sorted(value, key=canonical)  # repr order may differ between processes
    if isinstance(value, bytes):
        return {"bytes": base64.b64encode(value).decode()}
    if isinstance(value, Decimal):
        return str(value)
    msg = f"{type(value).__name__} cannot be part of a cache key"
    raise TypeError(msg)


_CANONICAL = json.JSONEncoder(
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
    default=_canonical_default,
    allow_nan=False,
)
"""Made once: `json.dumps` with these options builds an encoder per call."""


def canonical(material: Any) -> str:
    """One JSON text per meaning: sorted keys, no spaces; TypeError if not possible."""
    return _CANONICAL.encode(material)


def key_data(value: Any) -> Any:
    """``value`` as JSON data whose canonical text is different for different values.

    Raises TypeError for a value that cannot be keyed, ValueError for one that refers to
    itself or nests too deeply.
    """
    try:
        return _data(value)
    except RecursionError:
        msg = "the arguments nest too deeply or contain themselves"
        raise ValueError(msg) from None


def _data(value: Any) -> Any:
    cls = type(value)
    if cls is str or cls is int or cls is bool or value is None:
        return value
    if cls is float:
        return value if math.isfinite(value) else {"$float": repr(value)}
    if cls is list:
        return [_data(item) for item in value]
    if cls is dict:
        return _mapping(value)
    return _other(value)


_PLAIN = frozenset({str, int, bool, type(None)})


def _mapping(value: Mapping[Any, Any]) -> dict[str, Any]:
    data = {}
    for k, v in value.items():  # the common case in one pass: str keys, plain values
        if type(k) is not str or k[:1] == "$":
            break
        data[k] = v if type(v) in _PLAIN else _data(v)
    else:
        return data
    pairs = [[_data(k), _data(v)] for k, v in value.items()]
    pairs.sort(key=lambda pair: canonical(pair[0]))
    return {"$dict": pairs}


def _other(value: Any) -> Any:
    """Everything but exact str, int, bool, None, float, list and dict."""
    if isinstance(value, enum.Enum):  # before str and int: StrEnum, IntEnum
        cls = type(value)
        return {
            "$enum": f"{cls.__module__}.{cls.__qualname__}",
            "value": _data(value.value),
        }
    # Subclasses of str, int and float key as their plain value (read through the base
    # type's own method: a subclass may override __str__ and the like).
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return _data(float.__float__(value))
    if isinstance(value, type):
        return {"$class": f"{value.__module__}.{value.__qualname__}"}
    if isinstance(value, tuple):
        return {"$tuple": [_data(item) for item in value]}
    if isinstance(value, list):
        return [_data(item) for item in value]
    if isinstance(value, Mapping):
        return _mapping(value)
    if isinstance(value, set | frozenset):
        return {"$set": sorted((_data(item) for item in value), key=canonical)}
    if isinstance(value, bytes | bytearray):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime.datetime):  # before date: a datetime is a date
        return {"$datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"$date": value.isoformat()}
    if isinstance(value, datetime.time):
        return {"$time": value.isoformat()}
    if isinstance(value, datetime.timedelta):
        return {"$timedelta": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, PurePath):
        return {"$path": str(value)}
    cls = type(value)
    name = f"{cls.__module__}.{cls.__qualname__}"
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # a pydantic model: its class and its JSON form
        return {"$model": name, "data": _data(dump(mode="json"))}
    if dataclasses.is_dataclass(value):
        fields = {
            f.name: _data(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
        return {"$dataclass": name, "fields": fields}
    msg = f"{cls.__name__} cannot be part of a cache key"
    raise TypeError(msg)
