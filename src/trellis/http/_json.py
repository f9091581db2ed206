"""JSON encoding for responses: orjson with the types web handlers return."""

from __future__ import annotations

import dataclasses
import decimal
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["dumps", "loads"]

loads = orjson.loads

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _default(obj: Any) -> Any:
    # pydantic models are found by duck typing so that encoding never imports pydantic.
    dump: Callable[..., Any] | None = getattr(obj, "model_dump", None)
    if dump is not None and callable(dump):
        return dump(mode="json")
    if isinstance(obj, decimal.Decimal):
        return str(obj)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    # Lazy translated strings (trellis.i18n.LazyString) and other objects that say how.
    as_json: Callable[[], Any] | None = getattr(obj, "__json__", None)
    if as_json is not None and callable(as_json):
        return as_json()
    if hasattr(obj, "__html__"):
        return str(obj.__html__())
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` as compact UTF-8 JSON bytes.

    Handles what orjson does natively (dict, list, str, numbers, dataclasses, datetime, date,
    UUID, Enum) plus pydantic models, Decimal (as a string, exact), sets and tuples.
    """
    return orjson.dumps(obj, default=_default, option=_OPTIONS)
