"""The request id of a logical request, and the header facts read with it.

Every logical request carries one id (``X-Request-Id`` by default, the
``request_id_header`` setting) that is the same on every attempt, so the
upstream's logs, ours and the events can be joined: a caller's own id is
kept, else :class:`~httpx_resilience.ResilientTransport` generates one.

Both halves run on every request, so both are written for speed:
:func:`new_request_id` builds the UUID string without ``uuid.UUID``, and
:func:`scan_headers` finds the id and ``Idempotency-Key`` in one pass over
the raw headers instead of two lookups that make httpx decode them all.
Each gives exactly what the slow, obvious version gives (tests compare them).
"""

from __future__ import annotations

import os

import httpx

__all__ = ["new_request_id", "scan_headers"]


def new_request_id() -> str:
    """A random request id: a version-4 UUID, hyphenated, exactly as ``str(uuid.uuid4())``.

    Built from the hex of 16 random bytes with the version and variant bits
    set, skipping ``uuid.UUID``'s validation (2.5 µs → 1.1 µs per request).
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def scan_headers(headers: httpx.Headers, rid_header: str | None) -> tuple[str | None, bool]:
    """``(headers.get(rid_header), "idempotency-key" in headers)`` in one pass over the raw headers.

    The first lookup on a fresh ``httpx.Headers`` works out its text
    encoding by decoding every name and value (most of 2 µs per request);
    ASCII bytes read the same in each encoding httpx may pick (ASCII, UTF-8,
    Latin-1), so they are decoded here directly. A name or value that is not
    ASCII takes the ordinary lookups.
    """
    if rid_header is not None and not rid_header.isascii():
        return headers.get(rid_header), "idempotency-key" in headers
    rid_key = rid_header.lower().encode("ascii") if rid_header is not None else None
    found: list[bytes] = []
    idempotent = False
    for name, value in headers.raw:
        lower = name.lower()
        if lower == rid_key:
            found.append(value)
        if lower == b"idempotency-key":
            idempotent = True
    if rid_header is None or not found:
        return None, idempotent
    if all(v.isascii() for v in found):
        return ", ".join([v.decode("ascii") for v in found]), idempotent
    return headers.get(rid_header), idempotent
