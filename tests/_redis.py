"""The skip rule of the Redis tests: ``redis_url()`` or a clear skip (a failure under CI).

Tests import it as ``from _redis import redis_url, fresh_prefix`` (``tests/``
is on ``sys.path``: the test packages' rootdir). The machine's Redis is at
``127.0.0.1:6379``; ``REDIS_URL`` points elsewhere. Without a reachable
Redis the test is skipped with the reason, except under ``CI=true``, where a
missing Redis is a failure (the suite must not pass by skipping).
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit

import pytest

DEFAULT_URL = "redis://127.0.0.1:6379/0"
SKIP_REASON = "no Redis reachable at 127.0.0.1:6379 (start redis-server or set REDIS_URL)"

_reachable: dict[str, bool] = {}


def _answers(url: str) -> bool:
    """Whether a Redis server answers PING at ``url`` (a raw socket: no client needed)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1.0) as s:
            s.sendall(b"PING\r\n")
            reply = s.recv(64)
    except OSError:
        return False
    # +PONG, or -NOAUTH from a server that wants a password (the URL carries it).
    return reply.startswith((b"+PONG", b"-NOAUTH"))


def redis_url() -> str:
    """The URL of a reachable Redis; skips the test (fails under ``CI=true``) when there is none."""
    url = os.environ.get("REDIS_URL") or DEFAULT_URL
    ok = _reachable.get(url)
    if ok is None:
        ok = _reachable[url] = _answers(url)
    if not ok:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true requires Redis: {SKIP_REASON}")
        pytest.skip(SKIP_REASON)
    return url


def fresh_prefix() -> str:
    """A key prefix no other test uses (so tests never see each other's keys)."""
    return f"test-{uuid.uuid4().hex[:12]}"


def closed_port_url() -> str:
    """A ``redis://`` URL on a loopback port nobody listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return f"redis://127.0.0.1:{port}/0"
