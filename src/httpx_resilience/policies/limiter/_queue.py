"""The shared part of the built-in limiters: a fair FIFO queue of waiters with one timer.

Waiters are served strictly first-in-first-out (a later small request never
overtakes an earlier big one): only the waiter at the head of the queue
sleeps, on the injected clock, until it can be granted; the others wait until
the head leaves (``_waiters``). Tasks (``acquire``) and threads
(``acquire_sync``) stand in the same queue. Tokens are taken only at the
moment of the grant, so a cancelled or refused waiter leaks nothing. Every
change of the state (the allowance, the queue, the pause, the children)
happens under one ``threading.Lock``, which is never held across a wait.

``max_wait`` is decided up front from a ``Schedule``, a simulation of the
grants ahead of a new request; only :meth:`QueuedLimiter.pause` can push
grants later, and it re-checks the queued waiters then. A pause is the
server's word (``Retry-After``, rate-limit headers), so it is capped: never
longer than ``max_pause`` (60 s by default), whoever asks. The arithmetic is
the subclass's ``Allowance``. With a backend, ``acquire`` and ``acquire_sync``
go through ``SharedLimit`` (``_shared``).
"""

from __future__ import annotations

import abc
import math
import threading
from collections import OrderedDict
from typing import Literal

import httpx

from ...backends._contract import Grant, SharedBackend
from ...clock import Clock
from ...exceptions import ConfigurationError, RateLimiterTimeout
from ._allowance import Allowance
from ._base import (
    DEFAULT_MAX_PAUSE,
    RateLimiter,
    bad_tokens,
    cap_pause,
    check_count,
    check_seconds,
    timeout_error,
)
from ._ratelimit_headers import header_pause
from ._shared import SharedLimit, share
from ._waiters import WaitQueue, expired, wait_async, wait_sync

__all__ = ["DEFAULT_MAX_PAUSE", "QueuedLimiter"]


class QueuedLimiter(RateLimiter):
    """The FIFO queue, ``max_wait``, ``pause``, header pacing and per-key children.

    The arithmetic is ``allowance``'s, given the time on every call. A subclass
    builds it and supplies :meth:`_spawn`, the backend operations and its repr.

    Args:
        allowance: the limit's state and arithmetic.
        max_wait: the longest an ``acquire`` may wait (``None``: no limit).
        scope: ``"global"`` or ``"host"`` (a child per :meth:`for_key` key).
        max_keys: how many per-key children are kept with ``scope="host"``.
        header_pacing: whether :meth:`observe_response` pauses on rate-limit headers.
        clock: the time source.
        max_pause: the longest one :meth:`pause` may last, in seconds; a longer
            ask is cut to it (with a warning); 0 turns such pauses off.
        backend: shared state (``None``: this process only; see ``_shared``).
        name: the limiter's name in ``backend`` (by default from its settings).
    """

    def __init__(
        self,
        allowance: Allowance,
        *,
        max_wait: float | None,
        scope: Literal["global", "host"],
        max_keys: int,
        header_pacing: bool,
        clock: Clock,
        max_pause: float = DEFAULT_MAX_PAUSE,
        backend: SharedBackend | None = None,
        name: str | None = None,
    ) -> None:
        max_pause = check_seconds(max_pause, "max_pause", allow_zero=True)
        if max_wait is not None:
            max_wait = check_seconds(max_wait, "max_wait", allow_zero=True)
        if scope not in ("global", "host"):
            raise ConfigurationError(
                f"scope must be 'global' or 'host', got {scope!r}", field="scope"
            )
        check_count(max_keys, "max_keys", 1)
        self._allowance = allowance
        self._capacity = allowance.capacity
        self._max_wait = max_wait
        self._scope: Literal["global", "host"] = scope
        self._max_keys = max_keys
        self._header_pacing = bool(header_pacing)
        self._max_pause = max_pause
        self._clock = clock
        self._queue = WaitQueue()
        self._lock = threading.Lock()
        self._paused_until = -math.inf
        self._children: OrderedDict[str, QueuedLimiter] | None = (
            OrderedDict() if scope == "host" else None
        )
        self._shared: SharedLimit | None = None
        if backend is not None or name is not None:
            self._shared = share(self, backend, self._default_name() if name is None else name)

    # -- the subclass's part ------------------------------------------------------

    @abc.abstractmethod
    def _spawn(self, max_wait: float | None, header_pacing: bool, clock: Clock) -> QueuedLimiter:
        """A fresh limiter with the same limit and these options (a per-key child); its
        ``max_pause`` is set by :meth:`for_key` after the call."""

    @abc.abstractmethod
    def _default_name(self) -> str:
        """The limiter's name in a backend when none is given (from its settings)."""

    @abc.abstractmethod
    async def _take_shared(
        self, backend: SharedBackend, name: str, tokens: int, horizon: float | None, paused: float
    ) -> Grant:
        """The backend's operation for this limit (see ``SharedLimit``)."""

    @abc.abstractmethod
    def _take_shared_sync(
        self, backend: SharedBackend, name: str, tokens: int, horizon: float | None, paused: float
    ) -> Grant | None:
        """:meth:`_take_shared` for a thread; ``None`` when the backend has no sync path."""

    def _describe(self, name: str) -> str:
        """The repr: ``name(<the allowance's state>, waiters=…[, paused_for=…][, keys=…])``."""
        now = self._clock.monotonic()
        with self._lock:  # describing a log prunes it
            text = f"{name}({self._allowance.describe(now)}, waiters={self._queue.live}"
        if self._is_paused(now):
            text += f", paused_for={self._paused_until - now:.1f}s"
        if self._children is not None:
            text += f", keys={len(self._children)}"
        if self._shared is not None:
            text += f", backend={self._shared.backend.describe()}, name={self._shared.name!r}"
        return text + ")"

    def _estimate(self, tokens: int, now: float) -> float:
        """When a new request for ``tokens``, queued behind the live waiters, is granted."""
        start = max(now, self._paused_until)
        allowance = self._allowance
        at = allowance.quick_estimate(self._queue.tokens + tokens, start)
        if at is not None:
            return at
        sched = allowance.schedule(now, start)
        for w in self._queue:
            sched.commit(w.tokens, sched.grant_time(w.tokens))
        return sched.grant_time(tokens)

    def _is_idle(self, now: float) -> bool:
        """Whether forgetting this limiter loses nothing (no waiter, no pause, idle allowance)."""
        return not self._queue.live and not self._is_paused(now) and self._allowance.is_idle(now)

    # -- the contract --------------------------------------------------------------

    def is_configured(self) -> bool:
        """``True``: this limiter limits."""
        return True

    def try_acquire(self, tokens: int = 1) -> bool:
        """Take ``tokens`` now when no one is queued, nothing is paused and they are there.

        With a backend it answers ``False`` (a sync call cannot make the round
        trip): the caller awaits :meth:`acquire`.
        """
        if self._shared is not None:
            return False
        if type(tokens) is not int or not 1 <= tokens <= self._capacity:
            return False
        lock = self._lock
        lock.acquire()  # inline, not `with`: the limiter's hottest path (see _take_now)
        try:
            now = self._clock.monotonic()
            free = not self._queue.live and now >= self._paused_until
            return free and self._allowance.try_take(tokens, now)
        finally:
            lock.release()

    def _take_now(self, tokens: int) -> bool:
        """Take ``tokens`` from this process's state if nobody waits, no pause, they are there."""
        lock = self._lock
        lock.acquire()  # not `with`, which costs twice as much on this hot path
        try:
            now = self._clock.monotonic()
            free = not self._queue.live and now >= self._paused_until
            return free and self._allowance.try_take(tokens, now)
        finally:
            lock.release()

    @property
    def capacity(self) -> int:
        """The most tokens one ``acquire`` can ask for."""
        return self._capacity

    @property
    def max_wait(self) -> float | None:
        """The longest ``acquire`` waits before refusing (``None``: no limit)."""
        return self._max_wait

    @property
    def max_pause(self) -> float:
        """The longest one :meth:`pause` lasts; longer asks are cut to it."""
        return self._max_pause

    @property
    def backend(self) -> SharedBackend | None:
        """Where the limit is shared (``None``: this process only)."""
        return self._shared.backend if self._shared is not None else None

    @property
    def name(self) -> str | None:
        """The limiter's name in its backend (``None`` without one)."""
        return self._shared.name if self._shared is not None else None

    @property
    def waiters(self) -> int:
        """How many ``acquire`` calls are queued."""
        return self._queue.live

    @property
    def paused_for(self) -> float:
        """Seconds left of a :meth:`pause` (0 when not paused)."""
        return max(0.0, self._paused_until - self._clock.monotonic())

    async def acquire(self, tokens: int = 1) -> float:
        """Wait (fairly, FIFO) until ``tokens`` may be spent; return the seconds waited.

        Args:
            tokens: how many tokens this request costs (≥ 1, ≤ the capacity).

        Raises:
            RateLimiterTimeout: the grant would come later than ``max_wait``
                (decided up front, or when a :meth:`pause` pushes it later);
                nothing was granted.
            ConfigurationError: ``tokens`` is < 1 or exceeds the capacity (it
                could never be granted).
        """
        if type(tokens) is not int:
            check_count(tokens, "tokens", 1)
        if not 1 <= tokens <= self._capacity:
            raise bad_tokens(tokens, self._capacity, self)
        if self._shared is not None:
            return await self._shared.acquire(tokens)
        lock = self._lock
        lock.acquire()  # inline (as in try_acquire): a call less on the fast path
        try:
            now = self._clock.monotonic()
            free = not self._queue.live and now >= self._paused_until
            if free and self._allowance.try_take(tokens, now):
                return 0.0
        finally:
            lock.release()
        return await wait_async(self, tokens)

    async def _acquire_local(self, tokens: int) -> float:
        """:meth:`acquire` on this process's state: the fallback of a shared limiter."""
        if self._take_now(tokens):
            return 0.0
        return await wait_async(self, tokens)

    def acquire_sync(self, tokens: int = 1, *, timeout: float | None = None) -> float:
        """:meth:`acquire` for a thread: block it (only it) until ``tokens`` are granted.

        Threads and tasks wait in one FIFO queue, so both are served in the
        order they came; ``max_wait``, pauses and the testing switch apply as
        for :meth:`acquire`. ``timeout`` (a request's deadline: the seconds
        left) bounds the wait too. With a backend, see ``_shared``.

        Raises:
            RateLimiterTimeout, ConfigurationError: as :meth:`acquire` does.
            TimeoutError: the grant would come after ``timeout`` (decided up
                front, or when a pause pushes it later); nothing was granted.
        """
        if type(tokens) is not int:
            check_count(tokens, "tokens", 1)
        if not 1 <= tokens <= self._capacity:
            raise bad_tokens(tokens, self._capacity, self)
        if self._shared is not None:
            return self._shared.acquire_sync(tokens, timeout)
        return self._acquire_sync_local(tokens, timeout)

    def _acquire_sync_local(self, tokens: int, timeout: float | None = None) -> float:
        """:meth:`acquire_sync` on this process's state (also a shared limiter's fallback)."""
        if self._take_now(tokens):
            return 0.0
        return wait_sync(self, tokens, timeout)

    def _timeout(self, tokens: int, waited: float, needed: float) -> RateLimiterTimeout:
        return timeout_error(tokens, waited, needed, self._max_wait)

    def pause(self, seconds: float) -> None:
        """Grant nothing until ``seconds`` from now (a 429/503 ``Retry-After``).

        At most :attr:`max_pause` seconds: a longer ask is cut to it and
        logged (one response must not stall every request for days). Pauses
        never shorten one another. Queued waiters whose ``max_wait`` the pause
        now exceeds are refused with
        :class:`~httpx_resilience.RateLimiterTimeout` at once (a head that is
        already sleeping is refused when it wakes).

        Raises:
            ConfigurationError: ``seconds`` is negative or not finite.
        """
        seconds = cap_pause(check_seconds(seconds, "seconds", allow_zero=True), self._max_pause)
        with self._lock:
            now = self._clock.monotonic()
            until = now + seconds
            if until <= self._paused_until:
                return
            self._paused_until = until
            if self._queue.live:
                sched = self._allowance.schedule(now, until)
                self._queue.refuse_late(sched, now, lambda w, needed: expired(self, w, now, needed))
        if self._shared is not None:
            self._shared.share_pause(seconds)

    def observe_response(self, response: httpx.Response) -> None:
        """Pause until the server's window resets when it says none are left.

        Only with ``header_pacing=True`` (otherwise a no-op). Understood:
        ``RateLimit: "name";r=0;t=30`` with ``RateLimit-Policy`` (IETF draft
        08+), ``RateLimit: limit=10, remaining=0, reset=30`` (draft 07),
        ``RateLimit-Remaining``/``RateLimit-Reset`` (earlier drafts) and
        ``X-RateLimit-Remaining``/``X-RateLimit-Reset`` (reset as delta
        seconds or a Unix time). ``Retry-After`` is the transport's job
        (it calls :meth:`pause`).
        """
        if not self._header_pacing:
            return
        seconds = header_pause(response.headers, self._clock.wall())
        if seconds is not None and seconds > 0:
            self.pause(seconds)

    def for_key(self, key: str) -> RateLimiter:
        """The limiter for ``key``: ``self`` (``scope="global"``) or a per-key child.

        Children have the same settings and are kept in a bounded LRU of
        ``max_keys``; when full, the least recently used idle child (full
        bucket, nobody waiting) is evicted first.
        """
        children = self._children
        if children is None:
            return self
        with self._lock:
            child = children.get(key)
            if child is not None:
                children.move_to_end(key)
                return child
            if len(children) >= self._max_keys:
                now = self._clock.monotonic()
                victim = next((k for k, c in children.items() if c._is_idle(now)), None)
                if victim is None:
                    busy = (k for k, c in children.items() if not c._queue.live)
                    victim = next(busy, next(iter(children)))
                del children[victim]
            child = self._spawn(self._max_wait, self._header_pacing, self._clock)
            child._max_pause = self._max_pause
            if self._shared is not None:
                child._shared = share(child, self._shared.backend, f"{self._shared.name}/{key}")
            children[key] = child
            return child

    def _is_paused(self, now: float) -> bool:
        return now < self._paused_until
