"""RedisBackend: the contract's atomic operations as Lua scripts on Redis.

One script per operation (``lua/<name>.lua``), run with ``EVALSHA``, once more
with ``EVAL`` after ``NOSCRIPT`` (a restart, ``SCRIPT FLUSH``). Time comes from
Redis ``TIME`` inside the scripts, never from this host; every key has a TTL.

A fault never escapes as a ``redis`` exception and never stalls a call
beyond ``timeout``: it raises the internal
:class:`~httpx_resilience.backends._errors.BackendDown`, and the backend
enters *fallback* (one WARNING on ``httpx_resilience.backend``). In fallback
every call raises ``BackendDown`` at once, without touching Redis, until
``retry_interval`` has passed; then one call probes Redis, and a success
leaves fallback (logged at INFO). The policies turn ``BackendDown`` into
their ``fail_mode``.

Threads (``acquire_sync``) run the same scripts through a sync client of the
backend's own (``_redis_sync``), with the same fallback; ``close()`` closes it.

The ``redis`` package is an optional extra (``pip install
'httpx-resilience[redis]'``), imported only when a backend is built.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from ..clock import SYSTEM_CLOCK, Clock
from ..exceptions import ConfigurationError
from ..observe.redact import redact_url
from ._contract import Grant, SharedBackend, check_fail_mode, check_prefix
from ._errors import BackendDown, FailMode
from ._events import (
    BackendFallbackEntered,
    BackendFallbackLeft,
    BackendObserver,
    BackendScriptRan,
    emit_backend,
    logger,
)
from ._redis_sync import (
    US,
    SyncScripts,
    as_grant,
    bucket_call,
    reason,
    script,
    us,
    window_call,
)
from ._redis_sync import describe_client as _describe_client
from ._redis_sync import import_redis as _import_redis

__all__ = ["RedisBackend"]

_script = script  # the name the tests know


def _seconds(value: object, field: str) -> float:
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    ):
        return float(value)
    raise ConfigurationError(f"{field} must be a finite number > 0, got {value!r}", field=field)


class RedisBackend(SharedBackend):
    """Shared state on Redis (or Redis Cluster), through ``redis.asyncio``.

    Args:
        url_or_client: a ``redis://``, ``rediss://`` or ``unix://`` URL, or a
            ready ``redis.asyncio.Redis`` / ``redis.asyncio.RedisCluster``
            client (which stays yours to close).
        prefix: the first part of every key (no braces).
        fail_mode: while Redis is unreachable, ``"local"`` (the default: each
            policy falls back to in-process state), ``"open"`` (allow) or
            ``"closed"`` (refuse with
            :class:`~httpx_resilience.SharedStateUnavailableError`).
        timeout: the longest one call may take, in seconds (connecting
            included); beyond it the call counts as a fault.
        retry_interval: seconds in fallback before Redis is tried again.
        max_connections: the most connections a backend built from a URL opens
            (more concurrent calls wait for one, within ``timeout``), so a burst
            of callers does not open a connection each.
        observers: callables given each backend event (fallback entered and
            left, each script's latency).
        clock: this host's clock, for when to try Redis again after a fault
            (the scripts themselves read Redis ``TIME``).

    Raises:
        ConfigurationError: a bad value (the message names the field), or the
            ``redis`` package is missing.
    """

    def __init__(
        self,
        url_or_client: Any,
        prefix: str = "httpx-resilience",
        fail_mode: FailMode = "local",
        *,
        timeout: float = 0.25,
        retry_interval: float = 1.0,
        max_connections: int = 50,
        observers: Iterable[BackendObserver] = (),
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SYSTEM_CLOCK  # when to try Redis again (host time, local only)
        self.prefix = check_prefix(prefix)
        self.fail_mode = check_fail_mode(fail_mode)
        self.timeout = _seconds(timeout, "timeout")
        self.retry_interval = _seconds(retry_interval, "retry_interval")
        if (
            not isinstance(max_connections, int)
            or isinstance(max_connections, bool)
            or max_connections < 1
        ):
            raise ConfigurationError(
                f"max_connections must be an integer >= 1, got {max_connections!r}",
                field="max_connections",
            )
        self.max_connections = max_connections
        obs = tuple(observers)
        for fn in obs:
            if not callable(fn):
                raise ConfigurationError(
                    f"observers must be callables taking one event, got {fn!r}", field="observers"
                )
        self._observers = obs
        redis = _import_redis()
        self._no_script: type[Exception] = redis.exceptions.NoScriptError
        if isinstance(url_or_client, str):
            if not url_or_client.startswith(("redis://", "rediss://", "unix://")):
                raise ConfigurationError(
                    f"url_or_client must be a redis://, rediss:// or unix:// URL or a "
                    f"redis.asyncio client, got {redact_url(url_or_client)!r}",
                    field="url_or_client",
                )
            self._where = redact_url(url_or_client)
            self._url = url_or_client
            self._client: Any = self._connect()
            self._owned = True
        elif callable(getattr(url_or_client, "evalsha", None)) and callable(
            getattr(url_or_client, "eval", None)
        ):
            self._where = _describe_client(url_or_client)
            self._client = url_or_client
            self._owned = False
            self._url = ""
        else:
            raise ConfigurationError(
                f"url_or_client must be a Redis URL or a redis.asyncio.Redis/RedisCluster "
                f"client, got {type(url_or_client).__name__}",
                field="url_or_client",
            )
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the client serves
        self._down_since: float | None = None  # monotonic time fallback began
        self._retry_at = 0.0
        self._probing = False
        self._nonce = uuid.uuid4().hex[:12]
        self._seq = itertools.count(1)  # next() is atomic: threads never share a nonce
        self._sync = SyncScripts(self)  # the sync client, for threads (built on first use)

    # -- the plumbing ----------------------------------------------------------------

    def _connect(self) -> Any:
        """A client for ``self._url``; it connects on first use, with this backend's timeout."""
        redis = _import_redis()
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            self._url,
            max_connections=self.max_connections,
            timeout=self.timeout,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
        )
        client = redis.asyncio.Redis
        if hasattr(client, "from_pool"):
            return client.from_pool(pool)  # the client owns (and closes) its pool
        return client(  # pragma: no cover - redis 5.0.0
            connection_pool=pool, auto_close_connection_pool=True
        )

    def _follow_loop(self) -> None:
        """Connections belong to the loop that opened them: a new loop gets a new client."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if loop is not self._loop:
            if self._loop is not None:  # one asyncio.run after another
                self._client = self._connect()
            self._loop = loop

    @property
    def client(self) -> Any:
        """The ``redis.asyncio`` client in use (in this event loop, for one built from a URL)."""
        if self._owned:
            self._follow_loop()
        return self._client

    @property
    def in_fallback(self) -> bool:
        """Whether Redis is considered unreachable right now."""
        return self._down_since is not None

    def describe(self) -> str:
        return self._where

    def __repr__(self) -> str:
        state = ", in fallback" if self._down_since is not None else ""
        return (
            f"RedisBackend({self._where!r}, prefix={self.prefix!r}, "
            f"fail_mode={self.fail_mode!r}{state})"
        )

    def close(self) -> None:
        """Close the sync client that threads used, if one was built (see ``_redis_sync``)."""
        self._sync.close()

    async def aclose(self) -> None:
        """Close the client if this backend made it from a URL (a given client stays open),
        and the sync client of threads."""
        self._sync.close()
        if self._owned:
            self._follow_loop()
            try:
                await self._client.aclose()
            except Exception:  # closing a client whose server is gone
                logger.debug("closing the Redis client of %s failed", self._where, exc_info=True)

    async def run(
        self, script: str, keys: Sequence[str], args: Sequence[str | int | float]
    ) -> Any:
        """Run ``lua/<script>.lua`` on ``keys`` and ``args``; its reply.

        Raises:
            BackendDown: Redis failed, timed out, or the backend is in fallback
                (then without touching Redis, until ``retry_interval`` passed).
        """
        key = keys[0] if keys else script
        if self._owned:
            self._follow_loop()
        if self._down_since is not None:
            if self._probing or self._clock.monotonic() < self._retry_at:
                raise BackendDown(self._where, key, "in fallback, not retried yet")
            self._probing = True  # this call probes; the others keep falling back
        source, sha = _script(script)
        started = time.perf_counter()
        try:
            reply = await _bounded(self._call(source, sha, keys, args), self.timeout)
        except asyncio.CancelledError:
            self._probing = False
            raise
        except Exception as exc:  # any fault at all: redis, OS, timeout
            self._probing = False
            why = reason(exc, self.timeout)
            if self._observers:
                latency = time.perf_counter() - started
                emit_backend(self._observers, BackendScriptRan(self._where, script, latency, False))
            self._fall_back(why)
            raise BackendDown(self._where, key, why) from None
        if self._observers:
            latency = time.perf_counter() - started
            emit_backend(self._observers, BackendScriptRan(self._where, script, latency, True))
        if self._down_since is not None:
            self._recover()
        return reply

    async def _call(
        self, source: str, sha: str, keys: Sequence[str], args: Sequence[str | int | float]
    ) -> Any:
        try:
            return await self._client.evalsha(sha, len(keys), *keys, *args)
        except self._no_script:
            # The server lost its script cache: EVAL runs it and caches it again.
            return await self._client.eval(source, len(keys), *keys, *args)

    def _fall_back(self, reason: str) -> None:
        now = self._clock.monotonic()
        self._retry_at = now + self.retry_interval
        if self._down_since is not None:
            return  # a failed probe: still down, said once already
        self._down_since = now
        logger.warning(
            "Redis at %s is unreachable (%s): shared state falls back to fail_mode=%r; "
            "Redis is tried again every %g s",
            self._where, reason, self.fail_mode, self.retry_interval,
            extra={"backend": self._where, "reason": reason, "fail_mode": self.fail_mode},
        )
        if self._observers:
            emit_backend(
                self._observers,
                BackendFallbackEntered(self._where, reason, self.retry_interval),
            )

    def _recover(self) -> None:
        since = self._down_since
        self._down_since = None
        self._probing = False
        down_for = self._clock.monotonic() - since if since is not None else 0.0
        logger.info(
            "Redis at %s answers again after %.1f s: shared state resumes",
            self._where, down_for,
            extra={"backend": self._where, "down_for": down_for},
        )
        if self._observers:
            emit_backend(self._observers, BackendFallbackLeft(self._where, down_for))

    def _member_nonce(self) -> str:
        return f"{self._nonce}:{next(self._seq)}"

    # -- the contract ----------------------------------------------------------------

    async def token_bucket(
        self,
        name: str,
        *,
        rate: float,
        burst: int,
        tokens: int,
        horizon: float | None,
        paused_for: float = 0.0,
    ) -> Grant:
        return as_grant(
            await self.run(*bucket_call(self, name, rate, burst, tokens, horizon, paused_for))
        )

    async def sliding_window(
        self,
        name: str,
        *,
        limit: int,
        window: float,
        tokens: int,
        horizon: float | None,
        paused_for: float = 0.0,
    ) -> Grant:
        return as_grant(
            await self.run(*window_call(self, name, limit, window, tokens, horizon, paused_for))
        )

    def token_bucket_sync(
        self,
        name: str,
        *,
        rate: float,
        burst: int,
        tokens: int,
        horizon: float | None,
        paused_for: float = 0.0,
    ) -> Grant | None:
        """:meth:`token_bucket` through the sync client (``_redis_sync``); ``None`` without
        a URL to build it from."""
        return self._sync.grant(bucket_call(self, name, rate, burst, tokens, horizon, paused_for))

    def sliding_window_sync(
        self,
        name: str,
        *,
        limit: int,
        window: float,
        tokens: int,
        horizon: float | None,
        paused_for: float = 0.0,
    ) -> Grant | None:
        """:meth:`sliding_window` through the sync client, as :meth:`token_bucket_sync`."""
        return self._sync.grant(window_call(self, name, limit, window, tokens, horizon, paused_for))

    async def pause(self, name: str, seconds: float) -> float:
        left = await self.run("pause", (self.key("limiter", name, "pause"),), (us(seconds),))
        return int(left) / US

    def pause_sync(self, name: str, seconds: float) -> float | None:
        """:meth:`pause` through the sync client; ``None`` without one."""
        left = self._sync.run("pause", (self.key("limiter", name, "pause"),), (us(seconds),))
        return None if left is None else int(left) / US

    async def paused_for(self, name: str) -> float:
        left = await self.run("pause_left", (self.key("limiter", name, "pause"),), ())
        return int(left) / US


if sys.version_info >= (3, 11):

    async def _bounded(call: Any, timeout: float) -> Any:
        async with asyncio.timeout(timeout):
            return await call

else:  # pragma: no cover - Python 3.10

    async def _bounded(call: Any, timeout: float) -> Any:
        return await asyncio.wait_for(call, timeout)
