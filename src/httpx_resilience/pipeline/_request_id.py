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
import random

import httpx

__all__ = ["new_request_id", "scan_headers"]

# Request ids correlate log lines; they guard nothing, so they come from a
# fast generator (seeded from os.urandom) instead of a system call per
# request. A forked worker reseeds it, so two processes never share a sequence.
_rng = random.Random()
if hasattr(os, "register_at_fork"):  # pragma: no branch - absent only on Windows
    os.register_at_fork(after_in_child=_rng.seed)
_getrandbits = _rng.getrandbits
# The version (4) and variant (RFC 4122) bits of a UUID, as uuid.UUID sets them.
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_SET = (4 << 76) | (0x8000 << 48)


def new_request_id() -> str:
    """A random request id: a version-4 UUID, hyphenated, exactly as ``str(uuid.uuid4())`` looks.

    Built from 128 random bits with the version and variant bits set,
    skipping ``uuid.UUID``'s validation and ``os.urandom``'s system call.
    """
    h = f"{(_getrandbits(128) & _CLEAR) | _SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def scan_headers(headers: httpx.Headers, rid_header: str | None) -> tuple[str | None, bool]:
    """``(headers.get(rid_header), "idempotency-key" in headers)`` in one pass over the raw headers.

    The first lookup on a fresh ``httpx.Headers`` works out its text
    encoding by decoding every name and value (most of 2 µs per request);
    ASCII bytes read the same in each encoding httpx may pick (ASCII, UTF-8,
    Latin-1), so they are decoded here directly. A name or value that is not
    ASCII takes the ordinary lookups.

    Most requests carry neither header; that case is settled by two substring
    tests over the names joined with NUL (which no header name contains), so
    a name that matches exactly is always found, and any hit is confirmed by
    the exact pass.
    """
    if rid_header is not None and not rid_header.isascii():
        return headers.get(rid_header), "idempotency-key" in headers
    rid_key = rid_header.lower().encode("ascii") if rid_header is not None else None
    raw = headers.raw
    names = b"\0" + b"\0".join([name for name, _ in raw]).lower() + b"\0"
    if b"\0idempotency-key\0" not in names and (
        rid_key is None or b"\0" + rid_key + b"\0" not in names
    ):
        return None, False
    found: list[bytes] = []
    idempotent = False
    for name, value in raw:
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
