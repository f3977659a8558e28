"""The OAuth2 token cache on a shared backend (Redis): one token for many processes.

:class:`RedisTokenCache` implements :class:`~httpx_resilience.auth.TokenCache`
with one script per operation (``lua/token_*.lua``):

* ``get`` / ``set`` — the token's JSON and its fingerprint in one hash whose
  Redis TTL is the token's (``set`` with a TTL ≤ 0 removes it);
* ``delete`` — compare-and-delete by fingerprint, so after a 401 the refused
  token is removed once and a newer one stored by another process is kept;
* ``lock`` — the refresh lock, a lease (``SET NX PX``) with an id: one
  process at a time asks the token endpoint, a holder that dies blocks the
  others for ``lock_ttl`` at most, and giving it back never removes another
  holder's lease. Within a process, one task at a time contends (a local
  lock first); a waiter sleeps until the lease is due to expire or a short
  backoff (20 ms doubling to 250 ms) has passed, whichever is sooner, then
  asks again: no tight loop on Redis.

While Redis is down, ``fail_mode`` decides: ``"local"`` and ``"open"`` use an
in-process cache (each process then fetches its own token), ``"closed"``
raises :class:`~httpx_resilience.backends._errors.SharedStateUnavailableError`.
"""

from __future__ import annotations

import contextlib
import json
import os
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from ..auth.cache import CachedToken, InMemoryTokenCache, TokenCache
from ..clock import SYSTEM_CLOCK, Clock
from ..exceptions import ConfigurationError
from ._errors import BackendDown, on_backend_down
from ._memory import MemoryBackend

if TYPE_CHECKING:
    from ._contract import SharedBackend
    from ._redis import RedisBackend

__all__ = ["RedisTokenCache", "token_cache_for"]

_FIRST_WAIT = 0.02
_MAX_WAIT = 0.25

_memory_caches: weakref.WeakKeyDictionary[MemoryBackend, InMemoryTokenCache] = (
    weakref.WeakKeyDictionary()
)


def token_cache_for(backend: SharedBackend, *, clock: Clock | None = None) -> TokenCache:
    """The token cache a handler built with ``backend=`` uses.

    A :class:`~httpx_resilience.MemoryBackend` gives one in-process cache per
    backend (handlers of this process share tokens); a Redis backend gives a
    :class:`RedisTokenCache`.

    Raises:
        ConfigurationError: ``backend`` is neither.
    """
    if isinstance(backend, MemoryBackend):
        cache = _memory_caches.get(backend)
        if cache is None:
            cache = _memory_caches[backend] = InMemoryTokenCache(clock=clock)
        return cache
    if not callable(getattr(backend, "run", None)):
        raise ConfigurationError(
            f"backend must be a MemoryBackend or a RedisBackend, got {type(backend).__name__}",
            field="backend",
        )
    return RedisTokenCache(backend, clock=clock)  # type: ignore[arg-type]


class RedisTokenCache:
    """A :class:`~httpx_resilience.auth.TokenCache` in Redis, shared by every process.

    Args:
        backend: the :class:`~httpx_resilience.RedisBackend` holding the tokens.
        lock_ttl: seconds a refresh lock is held at most (a holder that dies
            blocks the others this long); longer than one token fetch with its
            retries.
        clock: the time source of the waits for the lock (Redis TTLs are real
            seconds: use the system clock).

    Raises:
        ConfigurationError: ``lock_ttl`` is not a number > 0.
    """

    __slots__ = ("_backend", "_clock", "_local", "lock_ttl")

    def __init__(
        self, backend: RedisBackend, *, lock_ttl: float = 60.0, clock: Clock | None = None
    ) -> None:
        if isinstance(lock_ttl, bool) or not isinstance(lock_ttl, (int, float)) or not (
            0 < lock_ttl < float("inf")
        ):
            raise ConfigurationError(
                f"lock_ttl must be a finite number of seconds > 0, got {lock_ttl!r}",
                field="lock_ttl",
            )
        self._backend = backend
        self.lock_ttl = float(lock_ttl)
        self._clock = clock if clock is not None else SYSTEM_CLOCK
        self._local = InMemoryTokenCache(clock=clock)  # while Redis is down; and the local lock

    def _key(self, key: str, part: str) -> str:
        return self._backend.key("token", key, part)

    async def _run(self, script: str, key: str, part: str, args: list[str | int | float]) -> Any:
        return await self._backend.run(script, (self._key(key, part),), args)

    def _down(self, down: BackendDown) -> None:
        """Apply ``fail_mode``: return to use the local cache, or raise (``"closed"``)."""
        on_backend_down(self._backend.fail_mode, down)

    async def get(self, key: str) -> CachedToken | None:
        """The token under ``key``, or ``None`` (none, expired, or unreadable)."""
        try:
            raw = await self._run("token_get", key, "tok", [])
        except BackendDown as down:
            self._down(down)
            return await self._local.get(key)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return CachedToken.from_dict(data)
        except (ValueError, KeyError, TypeError):
            return None  # not ours, or from an incompatible version: a miss

    async def set(self, key: str, token: CachedToken, ttl: float) -> None:
        """Store ``token`` for ``ttl`` seconds (zero or less removes it)."""
        await self._local.set(key, token, ttl)  # the fallback keeps the latest token too
        body = json.dumps(token.to_dict())
        ms = int(ttl * 1000) if ttl > 0 else 0
        try:
            await self._run("token_set", key, "tok", [body, token.fingerprint, ms])
        except BackendDown as down:
            self._down(down)

    async def delete(self, key: str, *, fingerprint: str | None = None) -> bool:
        """Compare-and-delete: remove the token only if it has ``fingerprint`` (when given)."""
        local = await self._local.delete(key, fingerprint=fingerprint)
        try:
            removed = await self._run("token_delete", key, "tok", [fingerprint or ""])
        except BackendDown as down:
            self._down(down)
            return local
        return bool(int(removed))

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        """The refresh lock of ``key``: one holder across every process (see the module doc)."""
        return self._held(key)

    @asynccontextmanager
    async def _held(self, key: str) -> AsyncIterator[None]:
        async with self._local.lock(key):  # one contender per process
            holder = os.urandom(12).hex()
            ttl_ms = int(self.lock_ttl * 1000)
            held = await self._acquire(key, holder, ttl_ms)
            try:
                yield
            finally:
                if held:
                    with contextlib.suppress(BackendDown):  # else the lease expires
                        await self._run("token_lock", key, "lock", ["release", holder, ttl_ms])

    async def _acquire(self, key: str, holder: str, ttl_ms: int) -> bool:
        """Wait for the lease; ``False`` when Redis is down and the local lock must do."""
        wait = _FIRST_WAIT
        while True:
            try:
                got, left_ms = await self._run(
                    "token_lock", key, "lock", ["acquire", holder, ttl_ms]
                )
            except BackendDown as down:
                self._down(down)
                return False
            if int(got):
                return True
            await self._clock.sleep(min(wait, max(0.001, int(left_ms) / 1000.0)))
            wait = min(wait * 2, _MAX_WAIT)

    def __repr__(self) -> str:
        return f"RedisTokenCache({self._backend!r}, lock_ttl={self.lock_ttl:g})"
