"""RedisBackend for threads: a synchronous client running the same scripts.

A thread (``acquire_sync`` of a limiter with ``backend=``) cannot use the
``redis.asyncio`` client: it has no event loop, and borrowing another
thread's would block that loop. :class:`SyncScripts` gives the backend a
``redis.Redis`` client of its own, built on first use from the backend's URL
with the same timeouts and connection cap, and runs the same Lua scripts the
same way: ``EVALSHA``, then ``EVAL`` once after ``NOSCRIPT``. A fault is the
backend's fault as on the async path: it enters (or stays in) fallback, and
:class:`~httpx_resilience.backends._errors.BackendDown` tells the policy to
apply its ``fail_mode``.

A backend built from a client (not a URL) has no URL to build a sync client
from: its sync callers keep to the policy's local state (``None`` here;
documented on the limiters).

Also here, shared by both paths: the scripts' sources and digests, the
arguments of the limiter scripts, how a fault is worded, how a client is named.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Sequence
from importlib import resources
from typing import Any, Protocol

from ..clock import Clock
from ..exceptions import ConfigurationError
from ._contract import Grant
from ._errors import BackendDown

__all__ = ["US", "SyncScripts", "bucket_call", "import_redis", "reason", "script", "window_call"]

INSTALL_HINT = "pip install 'httpx-resilience[redis]'"
US = 1_000_000.0  # microseconds per second: the scripts' unit
_scripts: dict[str, tuple[str, str]] = {}  # name -> (source, sha1)

Call = tuple[str, tuple[str, ...], tuple[str | int | float, ...]]
"""A script's name, keys and arguments."""


class _Backend(Protocol):
    """What this module reads and calls of a ``RedisBackend`` (``_redis`` imports this module)."""

    _url: str
    _down_since: float | None
    _probing: bool
    _retry_at: float
    _clock: Clock
    _no_script: type[Exception]
    max_connections: int
    timeout: float

    def key(self, kind: str, name: str, *parts: str) -> str: ...
    def describe(self) -> str: ...
    def _member_nonce(self) -> str: ...
    def _fall_back(self, reason: str) -> None: ...
    def _recover(self) -> None: ...


def script(name: str) -> tuple[str, str]:
    """The source and SHA1 of ``lua/<name>.lua``, read once."""
    found = _scripts.get(name)
    if found is None:
        path = resources.files(__package__ or "httpx_resilience.backends") / "lua" / f"{name}.lua"
        source = path.read_text("utf-8")
        found = (source, hashlib.sha1(source.encode("utf-8")).hexdigest())
        _scripts[name] = found
    return found


def import_redis() -> Any:
    """The ``redis`` package, or a :class:`ConfigurationError` saying how to install it."""
    try:
        import redis.asyncio
        import redis.exceptions
    except ImportError as exc:
        raise ConfigurationError(
            f"RedisBackend needs the 'redis' package, which is not installed: {INSTALL_HINT}",
            field="url_or_client",
            hint=f"Install the extra: {INSTALL_HINT}",
        ) from exc
    return redis


def us(seconds: float | None) -> float:
    """Seconds as the scripts' microseconds; ``None`` (no bound) as -1."""
    return -1.0 if seconds is None else max(0.0, seconds) * US


def bucket_call(
    backend: _Backend, name: str, rate: float, burst: int, tokens: int,
    horizon: float | None, paused_for: float,
) -> Call:
    """The ``token_bucket`` script's keys and arguments."""
    keys = (backend.key("limiter", name, "bucket"), backend.key("limiter", name, "pause"))
    return "token_bucket", keys, (US / rate, burst, tokens, us(horizon), us(paused_for))


def window_call(
    backend: _Backend, name: str, limit: int, window: float, tokens: int,
    horizon: float | None, paused_for: float,
) -> Call:
    """The ``sliding_window`` script's keys and arguments (a fresh member nonce)."""
    keys = (backend.key("limiter", name, "window"), backend.key("limiter", name, "pause"))
    args = (limit, window * US, tokens, us(horizon), us(paused_for), backend._member_nonce())
    return "sliding_window", keys, args


def as_grant(reply: Any) -> Grant:
    """A limiter script's reply ``(granted, wait in µs)`` as a :class:`Grant`."""
    granted, wait = reply
    return Grant(bool(granted), int(wait) / US)


def reason(exc: BaseException, timeout: float) -> str:
    """A fault in words, for the fallback's log line."""
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return f"no answer within timeout={timeout:g} s"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def describe_client(client: Any) -> str:
    """``redis://host:port/db`` of a given client, or its class name (never a password)."""
    try:
        kw = client.connection_pool.connection_kwargs
        if "path" in kw:
            return f"unix://{kw['path']}"
        return f"redis://{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"
    except AttributeError:
        return type(client).__name__


class SyncScripts:
    """The synchronous half of one :class:`~.RedisBackend` (see the module doc)."""

    __slots__ = ("_backend", "_client", "_lock")

    def __init__(self, backend: _Backend) -> None:
        self._backend = backend
        self._client: Any = None
        self._lock = threading.Lock()  # one client, built once

    def client(self) -> Any:
        """The ``redis.Redis`` client (built on first use); ``None`` without a URL."""
        b = self._backend
        if self._client is None and b._url:
            with self._lock:
                if self._client is None:
                    redis = import_redis()
                    pool = redis.BlockingConnectionPool.from_url(
                        b._url, max_connections=b.max_connections, timeout=b.timeout,
                        socket_timeout=b.timeout, socket_connect_timeout=b.timeout,
                    )
                    self._client = redis.Redis(connection_pool=pool)
        return self._client

    def run(self, name: str, keys: Sequence[str], args: Sequence[str | int | float]) -> Any:
        """Run the script ``name``; its reply, or ``None`` when there is no sync client.

        Raises:
            BackendDown: Redis failed or timed out, or the backend is in fallback.
        """
        client = self.client()
        if client is None:
            return None
        b = self._backend
        key = keys[0] if keys else name
        if b._down_since is not None:
            if b._probing or b._clock.monotonic() < b._retry_at:
                raise BackendDown(b.describe(), key, "in fallback, not retried yet")
            b._probing = True  # this call probes; the others keep falling back
        source, sha = script(name)
        try:
            try:
                reply = client.evalsha(sha, len(keys), *keys, *args)
            except b._no_script:  # the server lost its script cache: EVAL caches it again
                reply = client.eval(source, len(keys), *keys, *args)
        except Exception as exc:  # any fault at all: redis, OS, timeout
            b._probing = False
            b._fall_back(reason(exc, b.timeout))
            raise BackendDown(b.describe(), key, reason(exc, b.timeout)) from None
        if b._down_since is not None:
            b._recover()
        return reply

    def grant(self, call: Call) -> Grant | None:
        """A limiter script's :class:`Grant`; ``None`` when there is no sync client."""
        reply = self.run(*call)
        return None if reply is None else as_grant(reply)

    def close(self) -> None:
        """Close the sync client, if one was built."""
        client, self._client = self._client, None
        if client is not None:
            client.close()
