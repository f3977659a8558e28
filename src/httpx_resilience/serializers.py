"""Body serializers: JSON (with dates, UUIDs, decimals, dataclasses, pydantic models),
URL-encoded forms and multipart.

Each turns a Python value into ``(content_bytes, content_type)`` ready to send, so
the body is plain bytes and can be replayed on every retry.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import json
import uuid
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlencode

from .exceptions import InvalidRequestError

__all__ = ["FormSerializer", "JSONSerializer", "Serializer"]


class Serializer(Protocol):
    """Turns a value into body bytes and a ``Content-Type``."""

    content_type: str

    def dumps(self, value: Any) -> bytes:
        """Serialize ``value``; raise :class:`InvalidRequestError` when it cannot be."""


def _default(value: Any) -> Any:
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    dump = getattr(value, "model_dump", None)  # pydantic v2 models
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class JSONSerializer:
    """Compact UTF-8 JSON.

    Handles ``datetime``/``date``/``time`` (ISO 8601), ``UUID``, ``Decimal``
    (as strings, so no precision is lost), enums, dataclasses, pydantic models
    and sets.
    """

    content_type = "application/json"

    def __init__(self, *, ensure_ascii: bool = False, sort_keys: bool = False) -> None:
        self.ensure_ascii = ensure_ascii
        self.sort_keys = sort_keys

    def dumps(self, value: Any) -> bytes:
        try:
            return json.dumps(
                value,
                default=_default,
                ensure_ascii=self.ensure_ascii,
                sort_keys=self.sort_keys,
                separators=(",", ":"),
                allow_nan=False,
            ).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise InvalidRequestError(
                f"json= body cannot be serialized: {exc}",
                hint="Pass JSON-compatible data (dict, list, str, numbers, dates, UUIDs)",
            ) from exc


class FormSerializer:
    """``application/x-www-form-urlencoded``; list values repeat the key (``a=1&a=2``)."""

    content_type = "application/x-www-form-urlencoded"

    def dumps(self, value: Any) -> bytes:
        if not isinstance(value, Mapping):
            raise InvalidRequestError(
                f"data= must be a mapping for a form body, got {type(value).__name__}",
                hint="Pass a dict, or raw bytes via content=",
            )
        pairs: list[tuple[str, str]] = []
        for key, item in value.items():
            items = item if isinstance(item, (list, tuple)) else [item]
            for v in items:
                if v is None:
                    continue
                if isinstance(v, bool):
                    v = "true" if v else "false"
                pairs.append((str(key), str(v)))
        return urlencode(pairs).encode("ascii")
