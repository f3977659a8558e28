"""What the chaos server saw: request headers and whole requests, as recorded.

:class:`RecordedHeaders` gives case-insensitive, read-only access to the
headers of a request; :class:`RecordedRequest` is one request (method, target,
headers, de-chunked body, arrival time and connection number) as
:class:`~httpx_resilience.testing.chaos.ChaosServer` received it.

A client can declare what it uploads (:func:`upload_headers`: length and
SHA-256, and an id meant to arrive once); :func:`_check_upload` compares the
body that arrived and describes a difference as an :class:`UploadMismatch`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "EXPECT_LENGTH_HEADER",
    "EXPECT_SHA256_HEADER",
    "ONCE_HEADER",
    "RecordedHeaders",
    "RecordedRequest",
    "UploadMismatch",
    "_check_upload",
    "_wants_check",
    "upload_headers",
]


class RecordedHeaders(Mapping[str, str]):
    """Read-only request headers with case-insensitive lookup.

    Iteration yields lower-cased names; a header sent several times is joined
    with ``", "`` (use :meth:`get_list` for the separate values). Compares
    equal to a ``dict`` with lower-cased names.

    Args:
        raw: the ``(name, value)`` pairs as received.
    """

    __slots__ = ("_map", "raw")

    def __init__(self, raw: Iterable[tuple[str, str]] = ()) -> None:
        self.raw: tuple[tuple[str, str], ...] = tuple(raw)
        merged: dict[str, str] = {}
        for name, value in self.raw:
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        self._map = merged

    def __getitem__(self, key: str) -> str:
        return self._map[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def get_list(self, key: str) -> list[str]:
        """Every value sent for ``key``, in order (empty when absent)."""
        wanted = key.lower()
        return [value for name, value in self.raw if name.lower() == wanted]

    def __repr__(self) -> str:
        return f"RecordedHeaders({self._map!r})"


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server received it.

    Args:
        method: the request method, e.g. ``"POST"``.
        path: the path without the query string.
        query: the raw query string (``""`` when none).
        headers: the request headers (case-insensitive lookup).
        body: the request body, de-chunked.
        at: :func:`time.monotonic` when the request head was read; compare two
            records to measure the client's backoff.
        connection: the serial number (from 1) of the TCP connection it came
            on; equal numbers prove keep-alive reuse.
    """

    method: str
    path: str
    query: str
    headers: RecordedHeaders
    body: bytes
    at: float
    connection: int = 0

    @property
    def target(self) -> str:
        """The path with its query string, as sent on the request line."""
        return f"{self.path}?{self.query}" if self.query else self.path

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            ValueError: when the body is not JSON.
        """
        return json.loads(self.body)


# --------------------------------------------------------------------------- #
# Upload checks: what the client declared against what arrived                #
# --------------------------------------------------------------------------- #

EXPECT_LENGTH_HEADER: Final = "X-Chaos-Expect-Length"
"""Request header: the upload's length in bytes, checked by the server."""
EXPECT_SHA256_HEADER: Final = "X-Chaos-Expect-Sha256"
"""Request header: the upload's SHA-256 (hex), checked by the server."""
ONCE_HEADER: Final = "X-Chaos-Once"
"""Request header: an id the server expects to see once; a repeat is a duplicate."""


@dataclass(frozen=True, slots=True)
class UploadMismatch:
    """An upload whose body is not what its request declared.

    The checked payload is the whole body, or, for ``multipart/form-data``,
    the content of the first part that carries a file name.

    Args:
        path: the request path.
        reason: what differs, e.g. ``"length 0 != 4096"``.
        expected_length: the declared length (``None`` when not declared).
        expected_sha256: the declared SHA-256 (``None`` when not declared).
        received_length: the payload's length as received (``-1`` when the
            multipart body held no file part).
        received_sha256: the payload's SHA-256 as received.
        once: the request's ``X-Chaos-Once`` id, when it had one.
    """

    path: str
    reason: str
    expected_length: int | None
    expected_sha256: str | None
    received_length: int
    received_sha256: str
    once: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The mismatch as a JSON-serialisable mapping (the body of the 422 answer)."""
        return {
            "ok": False,
            "error": "upload mismatch",
            "path": self.path,
            "reason": self.reason,
            "expected_length": self.expected_length,
            "expected_sha256": self.expected_sha256,
            "received_length": self.received_length,
            "received_sha256": self.received_sha256,
            "once": self.once,
        }


def upload_headers(payload: bytes, *, once: str | None = None) -> dict[str, str]:
    """The request headers that make the server check ``payload`` (and count ``once``)."""
    headers = {
        EXPECT_LENGTH_HEADER: str(len(payload)),
        EXPECT_SHA256_HEADER: hashlib.sha256(payload).hexdigest(),
    }
    if once is not None:
        headers[ONCE_HEADER] = once
    return headers


def _wants_check(headers: RecordedHeaders) -> bool:
    return EXPECT_LENGTH_HEADER in headers or EXPECT_SHA256_HEADER in headers


def _multipart_file(body: bytes, content_type: str) -> bytes | None:
    """The content of the first part with a file name, or ``None`` when there is none."""
    boundary = ""
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary":
            boundary = value.strip().strip('"')
    if not boundary:
        return None
    delimiter = b"--" + boundary.encode("latin-1")
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break  # the closing delimiter
        head, sep, content = part.partition(b"\r\n\r\n")
        if sep and b"filename=" in head.lower():
            return content[:-2] if content.endswith(b"\r\n") else content
    return None


def _check_upload(request: RecordedRequest) -> UploadMismatch | None:
    """Compare the payload with the declared length and SHA-256; ``None`` when they match."""
    headers = request.headers
    declared_length = headers.get(EXPECT_LENGTH_HEADER)
    declared_sha = headers.get(EXPECT_SHA256_HEADER)
    content_type = headers.get("content-type", "")
    payload: bytes | None = request.body
    if content_type.lower().startswith("multipart/form-data"):
        payload = _multipart_file(request.body, content_type)
    received = payload if payload is not None else b""
    digest = hashlib.sha256(received).hexdigest()
    try:
        expected_length = int(declared_length) if declared_length is not None else None
    except ValueError:
        expected_length = -1
    reasons = []
    if payload is None:
        reasons.append("no file part in the multipart body")
    if expected_length is not None and expected_length != len(received):
        reasons.append(f"length {len(received)} != {declared_length}")
    if declared_sha is not None and declared_sha.lower() != digest:
        reasons.append("sha256 differs")
    if not reasons:
        return None
    return UploadMismatch(
        path=request.path,
        reason="; ".join(reasons),
        expected_length=expected_length,
        expected_sha256=declared_sha,
        received_length=len(received) if payload is not None else -1,
        received_sha256=digest,
        once=headers.get(ONCE_HEADER),
    )
