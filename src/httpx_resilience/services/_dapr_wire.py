"""The shapes of the Dapr sidecar's HTTP API: path segments, query parameters and bodies.

Pure functions, no I/O: :class:`~httpx_resilience.services.DaprClient` builds
its requests and reads its answers with them. A component name or key that is
empty raises :class:`~httpx_resilience.InvalidRequestError` before anything
is sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from ..exceptions import InvalidRequestError

__all__ = [
    "IDEMPOTENT",
    "bulk_values",
    "metadata_params",
    "path_segment",
    "publish_body",
    "state_item",
    "state_value",
]

#: State writes are upserts and bulk reads are reads: safe to retry although they are POSTs.
IDEMPOTENT: Mapping[str, Any] = {"extensions": {"resilience": {"idempotent": True}}}


def path_segment(kind: str, value: str) -> str:
    """``value`` quoted as one path segment; ``kind`` names it in the error.

    Raises:
        InvalidRequestError: ``value`` is not a non-empty string.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(f"Dapr {kind} must be a non-empty string, got {value!r}")
    return quote(value, safe="")


def metadata_params(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """Dapr metadata as ``metadata.<key>`` query parameters."""
    return {f"metadata.{k}": str(v) for k, v in (metadata or {}).items()}


def publish_body(data: Any, content_type: str | None) -> dict[str, Any]:
    """The request keywords of a publish: ``json=`` (or ``content=`` for raw data) and headers.

    ``bytes`` are sent as is (``application/octet-stream`` by default), and so
    is a ``str`` with a non-JSON ``content_type``; anything else as JSON.
    """
    body: dict[str, Any] = {"json": data}
    if isinstance(data, (bytes, bytearray)) or (
        isinstance(data, str) and content_type and "json" not in content_type.lower()
    ):
        raw = data.encode() if isinstance(data, str) else bytes(data)
        content_type = content_type or "application/octet-stream"
        body = {"content": raw}
    if content_type:
        body["headers"] = {"Content-Type": content_type}
    return body


def state_item(
    key: str, value: Any, etag: str | None, meta: Mapping[str, str] | None
) -> dict[str, Any]:
    """One item of a state save: ``key``, ``value`` and the ``etag``/``metadata`` when set.

    Raises:
        InvalidRequestError: ``key`` is empty.
    """
    path_segment("key", key)
    extra = {"etag": etag, "metadata": dict(meta or {})}
    return {"key": key, "value": value, **{k: v for k, v in extra.items() if v}}


def state_value(content: bytes) -> Any:
    """A stored value: parsed JSON, or the text when it is not JSON."""
    try:
        return json.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace")


def bulk_values(keys: Iterable[str], items: Any) -> dict[str, Any]:
    """Every key of a bulk read mapped to its ``data`` in the answer (``None`` when absent)."""
    found: dict[str, Any] = dict.fromkeys(keys)
    for item in items if isinstance(items, list) else []:
        if isinstance(item, Mapping) and isinstance(item.get("key"), str):
            found[item["key"]] = item.get("data")
    return found
