"""Client-side rate limiters: a token bucket and an exact sliding window.

Both serve waiters strictly first-in-first-out (a later small request never
overtakes an earlier big one) with one timer: only the waiter at the head of
the queue sleeps, on the injected clock, until it can be granted; the others
wait on a future until the head leaves. Tokens are taken only at the moment
of the grant, so a cancelled or refused waiter leaks nothing.

``max_wait`` is decided up front: the grant time of a new request is computed
from the bucket and the queue ahead of it, and a request that would wait too
long is refused at once with :class:`~httpx_resilience.RateLimiterTimeout`.
Only :meth:`RateLimiter.pause` (a server's ``Retry-After`` or rate-limit
headers) can push grants later; it re-checks the queued waiters then.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import math
from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import Literal

import httpx

from .._clock import SYSTEM_CLOCK, Clock
from ..exceptions import ConfigurationError, RateLimiterTimeout

__all__ = ["RateLimiter", "SlidingWindowRateLimiter", "TokenBucketRateLimiter"]

logger = logging.getLogger("httpx_resilience.limiter")

_EPS = 1e-9
"""Seconds of float noise tolerated when deciding that a wait is over."""

_MAX_HEADER_PAUSE = 86_400.0
"""A rate-limit header asking for a longer pause than a day is taken as garbage."""


class RateLimiter(abc.ABC):
    """The interface of a client-side rate limiter (seed 001's ABC).

    Subclass it to plug in your own; :meth:`for_key`, :meth:`pause` and
    :meth:`observe_response` have harmless defaults.
    """

    @abc.abstractmethod
    async def acquire(self, tokens: int = 1) -> float:
        """Wait until ``tokens`` may be spent, spend them, and return the seconds waited.

        Raises:
            RateLimiterTimeout: the wait would exceed ``max_wait``; nothing was granted.
            ConfigurationError: ``tokens`` is < 1 or more than the limiter can ever grant.
        """

    @abc.abstractmethod
    def is_configured(self) -> bool:
        """Whether the limiter actually limits (a disabled one may say ``False``)."""

    def try_acquire(self, tokens: int = 1) -> bool:
        """Take ``tokens`` at once if that needs no waiting; ``False`` (nothing taken) otherwise.

        The pipeline calls this first so the common case costs no timer; the
        default says ``False`` and :meth:`acquire` is used.
        """
        return False

    def for_key(self, key: str) -> RateLimiter:
        """The limiter for ``key`` (a host); the default shares one limiter for all keys."""
        return self

    def pause(self, seconds: float) -> None:
        """Grant nothing for ``seconds`` (server-driven pacing); the default ignores it."""

    def observe_response(self, response: httpx.Response) -> None:
        """Learn from a response's rate-limit headers; the default ignores them."""


class _Waiter:
    """One queued ``acquire`` call."""

    __slots__ = ("dead", "deadline", "future", "head", "tokens")

    def __init__(self, tokens: int, deadline: float, future: asyncio.Future[None]) -> None:
        self.tokens = tokens
        self.deadline = deadline
        self.future = future
        self.head = False  # promoted to the front: it sleeps and grants itself
        self.dead = False  # left the queue (granted, refused or cancelled)


class _Schedule(abc.ABC):
    """A simulation of future grants, used to predict when a waiter will be served."""

    @abc.abstractmethod
    def grant_time(self, tokens: int) -> float:
        """When ``tokens`` would be granted after everything committed so far."""

    @abc.abstractmethod
    def commit(self, tokens: int, at: float) -> None:
        """Account for a grant of ``tokens`` at ``at``."""


def _check_count(value: object, field: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigurationError(
            f"{field} must be an integer >= {minimum}, got {value!r}", field=field
        )
    return value


def _check_seconds(value: object, field: str, *, allow_zero: bool) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
        if math.isfinite(seconds) and (seconds > 0 or (allow_zero and seconds == 0)):
            return seconds
    bound = ">= 0" if allow_zero else "> 0"
    raise ConfigurationError(f"{field} must be a finite number {bound}, got {value!r}", field=field)


class _QueuedLimiter(RateLimiter):
    """The FIFO queue, ``max_wait``, ``pause``, header pacing and per-key children.

    Subclasses supply the arithmetic: :meth:`_try_take`, :meth:`_wait_for`,
    :meth:`_take`, :meth:`_schedule` and :meth:`_is_idle`.
    """

    def __init__(
        self,
        capacity: int,
        *,
        max_wait: float | None,
        scope: Literal["global", "host"],
        max_keys: int,
        header_pacing: bool,
        clock: Clock | None,
    ) -> None:
        if max_wait is not None:
            max_wait = _check_seconds(max_wait, "max_wait", allow_zero=True)
        if scope not in ("global", "host"):
            raise ConfigurationError(
                f"scope must be 'global' or 'host', got {scope!r}", field="scope"
            )
        _check_count(max_keys, "max_keys", 1)
        self._capacity = capacity
        self._max_wait = max_wait
        self._scope: Literal["global", "host"] = scope
        self._max_keys = max_keys
        self._header_pacing = bool(header_pacing)
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self._queue: deque[_Waiter] = deque()
        self._live = 0  # waiters not yet dead
        self._queued_tokens = 0  # tokens asked for by live waiters
        self._paused_until = -math.inf
        self._children: OrderedDict[str, _QueuedLimiter] | None = (
            OrderedDict() if scope == "host" else None
        )

    # -- subclass arithmetic -------------------------------------------------------

    @abc.abstractmethod
    def _try_take(self, tokens: int, now: float) -> bool:
        """Take ``tokens`` now if they are available (no waiters, not paused)."""

    @abc.abstractmethod
    def _wait_for(self, tokens: int, now: float) -> float:
        """Seconds until ``tokens`` are available, ignoring pauses and the queue."""

    @abc.abstractmethod
    def _take(self, tokens: int, now: float) -> None:
        """Spend ``tokens`` at ``now`` (only after ``_wait_for`` said they are there)."""

    @abc.abstractmethod
    def _schedule(self, now: float, start: float) -> _Schedule:
        """A simulation of grants from ``now``, none earlier than ``start``."""

    @abc.abstractmethod
    def _is_idle(self, now: float) -> bool:
        """Whether forgetting this limiter loses nothing (full bucket, empty log)."""

    @abc.abstractmethod
    def _spawn(self) -> _QueuedLimiter:
        """A fresh limiter with the same settings (a per-key child)."""

    def _estimate(self, tokens: int, now: float) -> float:
        """When a new request for ``tokens``, queued behind the live waiters, is granted."""
        sched = self._schedule(now, max(now, self._paused_until))
        for w in self._queue:
            if not w.dead:
                sched.commit(w.tokens, sched.grant_time(w.tokens))
        return sched.grant_time(tokens)

    # -- the contract --------------------------------------------------------------

    def is_configured(self) -> bool:
        """``True``: this limiter limits."""
        return True

    def try_acquire(self, tokens: int = 1) -> bool:
        """Take ``tokens`` now when no one is queued, nothing is paused and they are there."""
        if type(tokens) is not int or not 1 <= tokens <= self._capacity:
            return False
        now = self._clock.monotonic()
        return not self._live and now >= self._paused_until and self._try_take(tokens, now)

    @property
    def capacity(self) -> int:
        """The most tokens one ``acquire`` can ask for."""
        return self._capacity

    @property
    def max_wait(self) -> float | None:
        """The longest ``acquire`` waits before refusing (``None``: no limit)."""
        return self._max_wait

    @property
    def waiters(self) -> int:
        """How many ``acquire`` calls are queued."""
        return self._live

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
            _check_count(tokens, "tokens", 1)
        if not 1 <= tokens <= self._capacity:
            self._bad_tokens(tokens)
        now = self._clock.monotonic()
        if not self._live and now >= self._paused_until and self._try_take(tokens, now):
            return 0.0
        return await self._wait(tokens, now)

    def _bad_tokens(self, tokens: int) -> None:
        if tokens < 1:
            raise ConfigurationError(f"tokens must be >= 1, got {tokens}", field="tokens")
        raise ConfigurationError(
            f"cannot acquire {tokens} tokens: this limiter grants at most {self._capacity} "
            f"at once ({self!r}); raise its capacity or split the request",
            field="tokens",
        )

    async def _wait(self, tokens: int, start: float) -> float:
        clock = self._clock
        deadline = math.inf
        if self._max_wait is not None:
            needed = self._estimate(tokens, start) - start
            if needed > self._max_wait + _EPS:
                raise self._timeout(tokens, 0.0, needed)
            deadline = start + self._max_wait
        if not self._live:
            self._queue.clear()  # only dead waiters are left in it
        waiter = _Waiter(tokens, deadline, asyncio.get_running_loop().create_future())
        self._queue.append(waiter)
        self._live += 1
        self._queued_tokens += tokens
        self._promote()
        try:
            await waiter.future  # done at once when the queue was empty
            while True:
                now = clock.monotonic()
                if waiter.dead:  # refused by pause() while it slept
                    raise self._timeout(tokens, now - start, max(0.0, self._paused_until - now))
                wait = max(self._paused_until - now, self._wait_for(tokens, now))
                if wait <= _EPS:
                    self._take(tokens, now)
                    return now - start
                if now + wait > deadline + _EPS:  # pragma: no cover - pause() refuses first
                    raise self._timeout(tokens, now - start, wait)
                await clock.sleep(wait)
        finally:
            self._leave(waiter)

    def _promote(self) -> None:
        """Make the first live waiter the head, which then sleeps and grants itself."""
        q = self._queue
        while q:
            w = q[0]
            if w.dead:
                q.popleft()
                continue
            if not w.head:
                w.head = True
                if not w.future.done():
                    w.future.set_result(None)
            return

    def _leave(self, waiter: _Waiter) -> None:
        if not waiter.dead:
            waiter.dead = True
            self._live -= 1
            self._queued_tokens -= waiter.tokens
        if waiter.head:
            self._promote()

    def _timeout(self, tokens: int, waited: float, needed: float) -> RateLimiterTimeout:
        return RateLimiterTimeout(
            f"rate limiter would wait {waited + needed:.3f} s for {tokens} token(s), "
            f"more than max_wait={self._max_wait} s",
            waited=waited,
            needed=needed,
        )

    def pause(self, seconds: float) -> None:
        """Grant nothing until ``seconds`` from now (a 429/503 ``Retry-After``).

        Pauses never shorten one another. Queued waiters whose ``max_wait``
        the pause now exceeds are refused with
        :class:`~httpx_resilience.RateLimiterTimeout` at once (a head that is
        already sleeping is refused when it wakes).

        Raises:
            ConfigurationError: ``seconds`` is negative or not finite.
        """
        seconds = _check_seconds(seconds, "seconds", allow_zero=True)
        now = self._clock.monotonic()
        until = now + seconds
        if until <= self._paused_until:
            return
        self._paused_until = until
        if self._max_wait is None or not self._live:
            return
        sched = self._schedule(now, until)
        for w in self._queue:
            if w.dead:
                continue
            at = sched.grant_time(w.tokens)
            if at <= w.deadline + _EPS:
                sched.commit(w.tokens, at)
                continue
            w.dead = True
            self._live -= 1
            self._queued_tokens -= w.tokens
            if not w.future.done():  # a head already promoted notices `dead` itself
                waited = now - (w.deadline - self._max_wait)
                w.future.set_exception(self._timeout(w.tokens, waited, at - now))

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
        seconds = _header_pause(response.headers, self._clock.wall())
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
        child = children.get(key)
        if child is not None:
            children.move_to_end(key)
            return child
        if len(children) >= self._max_keys:
            now = self._clock.monotonic()
            victim = next((k for k, c in children.items() if c._is_idle(now)), None)
            if victim is None:
                victim = next((k for k, c in children.items() if not c._live), next(iter(children)))
            del children[victim]
        child = self._spawn()
        children[key] = child
        return child

    def _is_paused(self, now: float) -> bool:
        return now < self._paused_until


class _BucketSchedule(_Schedule):
    __slots__ = ("_level", "_rate", "_start")

    def __init__(self, level: float, rate: float, start: float) -> None:
        self._level = level
        self._rate = rate
        self._start = start

    def grant_time(self, tokens: int) -> float:
        return self._start + max(0.0, tokens - self._level) / self._rate

    def commit(self, tokens: int, at: float) -> None:
        # Tokens accrue from `start`; a grant at `at` spends what accrued until then.
        self._level -= tokens


class TokenBucketRateLimiter(_QueuedLimiter):
    """A token bucket: ``rate`` tokens per second, holding at most ``burst``.

    The bucket starts full, so up to ``burst`` requests go at once; after
    that, requests are granted at ``rate`` per second. In any interval of
    ``T`` seconds at most ``burst + rate * T`` tokens are granted.

    Args:
        rate: tokens added per second (> 0; 0.5 means one every two seconds).
        burst: the bucket's size, the most one ``acquire`` can ask for;
            by default ``max(1, int(rate))``.
        max_wait: the longest an ``acquire`` may wait; beyond it
            :class:`~httpx_resilience.RateLimiterTimeout` is raised up front.
            ``None`` waits as long as needed; ``0`` never waits.
        scope: ``"global"`` or ``"host"`` (a bucket per :meth:`for_key` key).
        max_keys: how many per-key buckets are kept with ``scope="host"``.
        header_pacing: whether :meth:`observe_response` pauses on
            rate-limit headers.
        clock: the time source; the system clock by default.

    Raises:
        ConfigurationError: a value is out of range; the message names the field.
    """

    def __init__(
        self,
        rate: float,
        burst: int | None = None,
        *,
        max_wait: float | None = None,
        scope: Literal["global", "host"] = "global",
        max_keys: int = 1024,
        header_pacing: bool = False,
        clock: Clock | None = None,
    ) -> None:
        rate = _check_seconds(rate, "rate", allow_zero=False)
        if burst is None:
            burst = max(1, int(rate))
        _check_count(burst, "burst", 1)
        super().__init__(
            burst,
            max_wait=max_wait,
            scope=scope,
            max_keys=max_keys,
            header_pacing=header_pacing,
            clock=clock,
        )
        self._rate = rate
        self._tokens = float(burst)
        self._updated = self._clock.monotonic()

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self._rate

    @property
    def burst(self) -> int:
        """The bucket's size."""
        return self._capacity

    @property
    def tokens(self) -> float:
        """Tokens in the bucket now (without granting anything)."""
        return self._level(self._clock.monotonic())

    def _level(self, now: float) -> float:
        return min(float(self._capacity), self._tokens + max(0.0, now - self._updated) * self._rate)

    def _refill(self, now: float) -> float:
        if now > self._updated:
            self._tokens = min(
                float(self._capacity), self._tokens + (now - self._updated) * self._rate
            )
            self._updated = now
        return self._tokens

    def _try_take(self, tokens: int, now: float) -> bool:
        if self._refill(now) >= tokens:
            self._tokens -= tokens
            return True
        return False

    def _wait_for(self, tokens: int, now: float) -> float:
        return (tokens - self._refill(now)) / self._rate

    def _take(self, tokens: int, now: float) -> None:
        self._tokens = max(0.0, self._refill(now) - tokens)

    def _schedule(self, now: float, start: float) -> _Schedule:
        # While anyone waits the bucket never overflows (the head takes its
        # tokens as soon as they are there), so the level at `start` plus the
        # steady rate gives every grant time in closed form.
        return _BucketSchedule(self._level(start), self._rate, start)

    def _estimate(self, tokens: int, now: float) -> float:
        # O(1) instead of a walk over the queue.
        start = max(now, self._paused_until)
        level = self._level(start)
        return start + max(0.0, self._queued_tokens + tokens - level) / self._rate

    def _is_idle(self, now: float) -> bool:
        return not self._live and not self._is_paused(now) and self._level(now) >= self._capacity

    def _spawn(self) -> TokenBucketRateLimiter:
        return TokenBucketRateLimiter(
            self._rate,
            self._capacity,
            max_wait=self._max_wait,
            header_pacing=self._header_pacing,
            clock=self._clock,
        )

    def __repr__(self) -> str:
        now = self._clock.monotonic()
        text = (
            f"TokenBucketRateLimiter(rate={self._rate:g}/s, burst={self._capacity}, "
            f"tokens={self._level(now):.2f}, waiters={self._live}"
        )
        if self._is_paused(now):
            text += f", paused_for={self._paused_until - now:.1f}s"
        if self._children is not None:
            text += f", keys={len(self._children)}"
        return text + ")"


class _LogSchedule(_Schedule):
    __slots__ = ("_last", "_limit", "_log", "_window")

    def __init__(self, log: Iterable[float], limit: int, window: float, start: float) -> None:
        self._log = deque(log)
        self._limit = limit
        self._window = window
        self._last = start

    def grant_time(self, tokens: int) -> float:
        excess = len(self._log) + tokens - self._limit
        at = self._last
        if excess > 0:
            at = max(at, self._log[excess - 1] + self._window)
        return at

    def commit(self, tokens: int, at: float) -> None:
        log = self._log
        excess = len(log) + tokens - self._limit
        for _ in range(max(0, excess)):
            log.popleft()
        log.extend([at] * tokens)
        self._last = at


class SlidingWindowRateLimiter(_QueuedLimiter):
    """An exact sliding window: never more than ``limit`` tokens in any ``window`` seconds.

    It keeps a log of grant times (one entry per token, at most ``limit``),
    so the guarantee holds for every window, not only aligned ones: a token
    granted at ``t`` frees its place at ``t + window``.

    Args:
        limit: tokens allowed per window, the most one ``acquire`` can ask for.
        window: the window's length in seconds (> 0).
        max_wait: as for :class:`TokenBucketRateLimiter`.
        scope: ``"global"`` or ``"host"`` (a log per :meth:`for_key` key).
        max_keys: how many per-key logs are kept with ``scope="host"``.
        header_pacing: whether :meth:`observe_response` pauses on rate-limit headers.
        clock: the time source; the system clock by default.

    Raises:
        ConfigurationError: a value is out of range; the message names the field.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        max_wait: float | None = None,
        scope: Literal["global", "host"] = "global",
        max_keys: int = 1024,
        header_pacing: bool = False,
        clock: Clock | None = None,
    ) -> None:
        _check_count(limit, "limit", 1)
        window = _check_seconds(window, "window", allow_zero=False)
        super().__init__(
            limit,
            max_wait=max_wait,
            scope=scope,
            max_keys=max_keys,
            header_pacing=header_pacing,
            clock=clock,
        )
        self._window = window
        self._log: deque[float] = deque()

    @property
    def limit(self) -> int:
        """Tokens allowed per window."""
        return self._capacity

    @property
    def window(self) -> float:
        """The window's length in seconds."""
        return self._window

    @property
    def used(self) -> int:
        """Tokens granted within the last ``window`` seconds."""
        self._prune(self._clock.monotonic())
        return len(self._log)

    def _prune(self, now: float) -> None:
        log = self._log
        horizon = now - self._window
        while log and log[0] <= horizon:
            log.popleft()

    def _try_take(self, tokens: int, now: float) -> bool:
        self._prune(now)
        if len(self._log) + tokens <= self._capacity:
            self._take(tokens, now)
            return True
        return False

    def _wait_for(self, tokens: int, now: float) -> float:
        self._prune(now)
        excess = len(self._log) + tokens - self._capacity
        if excess <= 0:
            return 0.0
        return self._log[excess - 1] + self._window - now

    def _take(self, tokens: int, now: float) -> None:
        # Float noise (the wait ended within _EPS of the expiry) must not let
        # the log exceed the limit.
        self._prune(now + _EPS)
        if tokens == 1:
            self._log.append(now)
        else:
            self._log.extend([now] * tokens)

    def _schedule(self, now: float, start: float) -> _Schedule:
        self._prune(now)
        return _LogSchedule(self._log, self._capacity, self._window, start)

    def _is_idle(self, now: float) -> bool:
        self._prune(now)
        return not self._live and not self._is_paused(now) and not self._log

    def _spawn(self) -> SlidingWindowRateLimiter:
        return SlidingWindowRateLimiter(
            self._capacity,
            self._window,
            max_wait=self._max_wait,
            header_pacing=self._header_pacing,
            clock=self._clock,
        )

    def __repr__(self) -> str:
        now = self._clock.monotonic()
        self._prune(now)
        text = (
            f"SlidingWindowRateLimiter(limit={self._capacity}, window={self._window:g}s, "
            f"used={len(self._log)}, waiters={self._live}"
        )
        if self._is_paused(now):
            text += f", paused_for={self._paused_until - now:.1f}s"
        if self._children is not None:
            text += f", keys={len(self._children)}"
        return text + ")"


# -- rate-limit headers -------------------------------------------------------------


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip().strip('"'))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _params(member: str) -> tuple[str, dict[str, str]]:
    """Split an RFC 8941 list member ``item;k=v;k=v`` into its item and parameters."""
    item, *rest = member.split(";")
    params: dict[str, str] = {}
    for part in rest:
        key, _, value = part.partition("=")
        params[key.strip().lower()] = value.strip()
    return item.strip().strip('"'), params


def _ratelimit_field(value: str, policy: str | None) -> float | None:
    """Seconds to pause from a ``RateLimit`` field (draft 07 or 08+), or ``None``."""
    members = [m.strip() for m in value.split(",") if m.strip()]
    if members and all("=" in m.split(";")[0] for m in members):
        # Draft 07: `limit=10, remaining=0, reset=30`.
        fields = {k.strip().lower(): v for k, _, v in (m.partition("=") for m in members)}
        if _number(fields.get("remaining")) == 0:
            return _number(fields.get("reset"))
        return None
    windows: dict[str, float] = {}
    if policy:
        for member in policy.split(","):
            name, params = _params(member)
            w = _number(params.get("w"))
            if w is not None:
                windows[name] = w
    pause: float | None = None
    for member in members:
        name, params = _params(member)
        if _number(params.get("r")) != 0:
            continue
        t = _number(params.get("t"))
        if t is None:
            t = windows.get(name)
        if t is not None:
            pause = t if pause is None else max(pause, t)
    return pause


def _header_pause(headers: httpx.Headers, wall_now: float) -> float | None:
    """Seconds to pause when the response says no requests are left, else ``None``."""
    pauses: list[float] = []
    field = headers.get("ratelimit")
    if field is not None:
        found = _ratelimit_field(field, headers.get("ratelimit-policy"))
        if found is not None:
            pauses.append(found)
    if _number(headers.get("ratelimit-remaining")) == 0:
        reset = _number(headers.get("ratelimit-reset"))
        if reset is not None:
            pauses.append(reset)
    if _number(headers.get("x-ratelimit-remaining")) == 0:
        reset = _number(headers.get("x-ratelimit-reset-after"))
        if reset is None:
            reset = _number(headers.get("x-ratelimit-reset"))
            # Unix time in milliseconds or seconds (GitHub), else delta seconds.
            if reset is not None and reset > 1e12:
                reset = reset / 1000.0 - wall_now
            elif reset is not None and reset > 1e9:
                reset = reset - wall_now
        if reset is not None:
            pauses.append(reset)
    if not pauses:
        return None
    pause = max(pauses)
    if pause > _MAX_HEADER_PAUSE:
        logger.warning("ignoring a rate-limit header asking to pause for %.0f s", pause)
        return None
    return max(0.0, pause)
