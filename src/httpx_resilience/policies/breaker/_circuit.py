"""The :class:`CircuitBreaker` itself: the edge around the pure state machine.

It wraps a :class:`~._machine.BreakerMachine`: reads the injected clock,
classifies outcomes (:mod:`._failures`), raises ``CircuitBreakerOpenError``,
hands out permits (:mod:`._permit`), keeps per-key children
(:mod:`._registry`) and announces every transition (:mod:`._events`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, Protocol, TypeVar

import httpx

from ...clock import SYSTEM_CLOCK, Clock
from ...config import as_default
from ...exceptions import CircuitBreakerOpenError, HTTPClientError
from ._events import BreakerTransition, announce, describe
from ._failures import FailurePredicate, FailureRules
from ._machine import PROBE, REFUSED, BreakerMachine, Change, CircuitState
from ._manual import ManualControl
from ._permit import BreakerPermit
from ._registry import child_for, spawn_child
from ._settings import BreakerSettings, Setting, check_options, cooldown
from ._sync import call_sync

if TYPE_CHECKING:
    from ...backends._contract import SharedBackend

__all__ = ["CircuitBreaker"]

P = ParamSpec("P")
T = TypeVar("T")

_CLOSED = CircuitState.CLOSED
_OPEN = CircuitState.OPEN


class _Shared(Protocol):
    """The shared half of a breaker with a Redis backend (``backends._breaker.SharedBreaker``)."""

    async def call(self, func: Callable[..., Awaitable[T]], args: Any, kwargs: Any) -> T: ...
    def call_sync(self, func: Callable[..., T], args: Any, kwargs: Any) -> T: ...
    def force(self, state: CircuitState) -> None: ...
    def report(self, failed: bool, duration: float) -> None: ...


class CircuitBreaker(ManualControl):
    """A circuit breaker: CLOSED → OPEN on failures, HALF_OPEN probes, CLOSED again.

    Args:
        failure_threshold: consecutive failures that open the breaker (≥ 1).
        recovery_timeout: seconds an open breaker waits before admitting probes
            (> 0; 60 when neither it nor ``cooldown_seconds`` is given).
        expected_exception: exception type(s) that count as failures, besides
            ``httpx.TransportError``. Our own refusals
            (:class:`~httpx_resilience.CircuitBreakerOpenError`,
            :class:`~httpx_resilience.RateLimiterTimeout`,
            :class:`~httpx_resilience.BulkheadFullError`), a
            :class:`~httpx_resilience.ConfigurationError` and a cancellation
            never count. A matching exception that carries an HTTP status
            (:class:`~httpx_resilience.HTTPResponseError`, an
            :class:`~httpx_resilience.AuthenticationError` with a 401,
            ``httpx.HTTPStatusError``, anything with an int ``status_code``)
            counts only when that status is a failure status, so a 404 or a
            401 never opens the breaker.
        cooldown_seconds: seed 003's name for ``recovery_timeout``; giving
            both is an error unless they are equal.
        name: shown in errors, logs and transitions.
        half_open_max_calls: probes admitted at once in HALF_OPEN, and the
            number of successful probes that close the breaker (≥ 1).
        failure_rate_threshold: also open when, among at least
            ``minimum_calls`` calls in the sliding window, this fraction
            failed (``0.5`` = 50 %); ``None`` disables the rule.
        window_type: ``"count"`` (the last ``window_size`` calls) or ``"time"``
            (the calls of the last ``window_size`` seconds, in ~1 s buckets).
        window_size: calls or seconds, per ``window_type``.
        minimum_calls: calls the window must hold before a rate rule can trip.
        slow_call_duration: a call taking at least this many seconds is slow
            (set together with ``slow_call_rate_threshold``).
        slow_call_rate_threshold: open when this fraction of the window's calls were slow.
        failure_statuses: the status codes that are failures. ``None`` means
            every 5xx; a 4xx is never a failure unless listed. The set
            replaces the default: pass ``{*range(500, 600), 429}`` to add 429.
        failure_predicate: ``(response, exception) -> bool | None`` consulted
            first; return ``None`` to fall back to the rules above.
        scope: ``"global"`` (one state) or ``"host"`` (:meth:`for_key` gives
            each key its own child breaker with the same settings).
        max_keys: with ``scope="host"``, how many children are kept (least
            recently used CLOSED ones are evicted first).
        listeners: callables receiving every :class:`BreakerTransition`; one
            that raises is logged and ignored. Children share them.
        clock: the time source; the system clock by default.
        backend: a :class:`~httpx_resilience.RedisBackend` makes one breaker of
            all those with this ``name`` in every process (see
            :mod:`httpx_resilience.backends._breaker`; ``state`` shows the last
            state Redis reported); a ``MemoryBackend``, of those in this process.

    Raises:
        ConfigurationError: a value is out of range; the message names the field.

    Besides :meth:`call` and permits, the breaker can be driven by hand for
    any other work (seed 003): :meth:`raise_if_open` or :meth:`can_execute`
    before, :meth:`record_success` or :meth:`record_failure` after (see
    :mod:`._manual`).

    Every transition is logged at WARNING on ``httpx_resilience.breaker`` with
    ``extra={"breaker", "old_state", "new_state", "reason"}``. One breaker may
    serve threads and event loops at once: every change is decided under a
    ``threading.Lock`` (nothing blocks under it; listeners run after it), so
    exactly ``half_open_max_calls`` of any number of concurrent callers get a
    probe permit. Sync code uses :meth:`call_sync` or the permits.
    """

    __slots__ = (
        "_backend",
        "_children",
        "_clock",
        "_listeners",
        "_machine",
        "_max_keys",
        "_rules",
        "_scope",
        "_shared",
        "name",
    )

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout: float | None = None,
        expected_exception: type[BaseException] | tuple[type[BaseException], ...] = HTTPClientError,
        *,
        cooldown_seconds: float | None = None,
        name: str = "default",
        half_open_max_calls: int = 1,
        failure_rate_threshold: float | None = None,
        window_type: Literal["count", "time"] = "count",
        window_size: float = as_default(100),
        minimum_calls: int = as_default(10),
        slow_call_duration: float | None = None,
        slow_call_rate_threshold: float | None = None,
        failure_statuses: Collection[int] | None = None,
        failure_predicate: FailurePredicate | None = None,
        scope: Literal["global", "host"] = "global",
        max_keys: int = 1024,
        listeners: Iterable[Callable[[BreakerTransition], None]] = (),
        clock: Clock | None = None,
        backend: SharedBackend | None = None,
    ) -> None:
        settings = BreakerSettings(
            failure_threshold=failure_threshold,
            recovery_timeout=cooldown(recovery_timeout, cooldown_seconds),
            half_open_max_calls=half_open_max_calls,
            failure_rate_threshold=failure_rate_threshold,
            window_type=window_type,
            window_size=window_size,
            minimum_calls=minimum_calls,
            slow_call_duration=slow_call_duration,
            slow_call_rate_threshold=slow_call_rate_threshold,
        )
        rules = FailureRules(expected_exception, failure_statuses, failure_predicate)
        fns = check_options(scope, max_keys, name, listeners)
        self.name = name
        self._machine = BreakerMachine(settings)
        self._rules = rules
        self._scope = scope
        self._max_keys = max_keys
        self._listeners = fns
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self._children: OrderedDict[str, CircuitBreaker] | None = (
            OrderedDict() if scope == "host" else None
        )
        self._manual_probes = (0, 0)
        self._backend = backend
        self._shared: _Shared | None = None
        if backend is not None:
            from ...backends._breaker import attach

            attach(self, backend, name)

    # -- settings (read-only) ------------------------------------------------------

    @property
    def settings(self) -> BreakerSettings:
        """The validated, immutable state-machine settings."""
        return self._machine.settings

    failure_threshold: Setting[int] = Setting("Consecutive failures that open the breaker.")
    recovery_timeout: Setting[float] = Setting("Seconds an open breaker waits before probes.")
    half_open_max_calls: Setting[int] = Setting("Concurrent half-open probes, successes to close.")
    failure_rate_threshold: Setting[float | None] = Setting(
        "The window's failure rate that opens the breaker, or None."
    )
    window_type: Setting[Literal["count", "time"]] = Setting("``'count'`` or ``'time'``.")
    window_size: Setting[float] = Setting("The sliding window, in calls or seconds.")
    minimum_calls: Setting[int] = Setting("Calls in the window before a rate rule can trip.")
    slow_call_duration: Setting[float | None] = Setting("Seconds after which a call is slow.")
    slow_call_rate_threshold: Setting[float | None] = Setting("The slow-call rate that opens it.")

    @property
    def expected_exception(self) -> tuple[type[BaseException], ...]:
        """The exception types counted as failures besides ``httpx.TransportError``."""
        return self._rules.expected

    @property
    def scope(self) -> Literal["global", "host"]:
        """``"global"`` or ``"host"`` (per-key children via :meth:`for_key`)."""
        return "host" if self._children is not None else "global"

    # -- live state ----------------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """The current state; reading it moves OPEN → HALF_OPEN once the timeout passed."""
        m = self._machine
        if m.state is _OPEN:
            now = self._clock.monotonic()
            with m.lock:
                change = m.advance(now)
            if change is not None:
                self._emit(change, now)
        return m.state

    @property
    def retry_in(self) -> float:
        """Seconds until an open breaker admits a probe (0 when closed or half-open)."""
        return self._machine.retry_in(self._clock.monotonic())

    @property
    def failure_count(self) -> int:
        """Consecutive failures recorded while CLOSED (0 after a success or a transition)."""
        return self._machine.consecutive_failures

    def window_counts(self) -> tuple[int, int, int]:
        """``(calls, failures, slow calls)`` in the sliding window (zeros without a rate rule)."""
        m = self._machine
        with m.lock:  # rolling the window changes it
            return m.window_counts(self._clock.monotonic())

    # -- the transport's contract --------------------------------------------------

    def for_key(self, key: str) -> CircuitBreaker:
        """The breaker for ``key`` (a host): a child with the same settings, or ``self``.

        With ``scope="global"`` this returns ``self``. With ``scope="host"``
        each key gets its own child (named ``key``), kept in a bounded LRU of
        ``max_keys``; when full, the least recently used CLOSED child is
        evicted (the least recently used of any state if none is closed).
        """
        children = self._children
        if children is None:
            return self
        with self._machine.lock:
            return child_for(
                children, key, self._max_keys, lambda k: spawn_child(self, k), _is_closed
            )

    def children(self) -> dict[str, CircuitBreaker]:
        """A snapshot of the per-key children (empty with ``scope="global"``)."""
        return dict(self._children) if self._children is not None else {}

    def acquire(self) -> BreakerPermit:
        """Ask to make one call; cheap and synchronous.

        Returns:
            a :class:`BreakerPermit` to end with ``success``/``failure``/``release``.

        Raises:
            CircuitBreakerOpenError: the breaker is OPEN, or HALF_OPEN with every
                probe slot taken; nothing must be sent. ``retry_in`` says when
                the next probe is due (0 when probes are already in flight).
        """
        m = self._machine
        if m.state is _CLOSED:
            # No lock: if another thread opens the breaker meanwhile, this permit
            # is of the generation before (its outcome is stale), as a call
            # admitted just before the transition would be.
            return BreakerPermit(self, m.generation, False)
        now = self._clock.monotonic()
        with m.lock:
            verdict, change = m.try_admit(now)
            generation = m.generation
            retry_in = m.retry_in(now)
        if change is not None:
            self._emit(change, now)
        if verdict is REFUSED:
            raise CircuitBreakerOpenError(self.name, retry_in)
        return BreakerPermit(self, generation, verdict is PROBE)

    def is_failure_response(self, response: httpx.Response) -> bool:
        """Whether ``response`` counts as a failure: the ``failure_predicate`` decides first
        (unless it returns ``None``), then the status (``failure_statuses``, or any 5xx)."""
        return self._rules.is_failure_response(response)

    def is_failure_exception(self, exc: BaseException) -> bool:
        """Whether ``exc`` counts as a failure.

        Never for a cancellation, our own refusals or a configuration error.
        Then the ``failure_predicate`` decides (unless it returns ``None``);
        then ``isinstance(exc, (httpx.TransportError, *expected_exception))``,
        narrowed by status when the exception carries one (an int
        ``status_code``, or ``httpx.HTTPStatusError``'s response): only a
        failure status counts.
        """
        return self._rules.is_failure_exception(exc)

    async def call(
        self, func: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``await func(*args, **kwargs)`` under the breaker.

        The outcome is recorded by :meth:`is_failure_exception` (an exception
        that is not a failure is recorded as a success and re-raised), or by
        :meth:`is_failure_response` when ``func`` returns an ``httpx.Response``;
        the duration feeds the slow-call rule. A cancellation records nothing.

        Raises:
            CircuitBreakerOpenError: the breaker refused; ``func`` was not called.
        """
        shared = self._shared
        if shared is not None:  # one round trip to admit, one to record
            return await shared.call(func, args, kwargs)
        return await self._call_local(func, args, kwargs)

    async def _call_local(self, func: Callable[..., Awaitable[T]], args: Any, kwargs: Any) -> T:
        """The call under this process's machine (a shared breaker's local fallback too)."""
        permit = self.acquire()
        clock = self._clock
        start = clock.monotonic()
        try:
            result = await func(*args, **kwargs)
        except Exception as exc:
            duration = clock.monotonic() - start
            if self.is_failure_exception(exc):
                permit.failure(duration)
            else:
                permit.success(duration)
            raise
        except BaseException:  # cancelled, KeyboardInterrupt: no outcome to record
            permit.release()
            raise
        duration = clock.monotonic() - start
        if isinstance(result, httpx.Response) and self.is_failure_response(result):
            permit.failure(duration)
        else:
            permit.success(duration)
        return result

    def call_sync(self, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``func(*args, **kwargs)``, a plain function, under the breaker (sync :meth:`call`).

        Outcomes are judged as by :meth:`call`; with a Redis backend through
        the backend's sync client (``backends/_breaker_sync.py``).

        Raises:
            CircuitBreakerOpenError: the breaker refused; ``func`` was not called.
        """
        shared = self._shared
        if shared is not None:
            return shared.call_sync(func, args, kwargs)
        return call_sync(self, func, args, kwargs)

    # -- internals -----------------------------------------------------------------

    def _record(self, generation: int, probe: bool, failed: bool, duration: float) -> None:
        m = self._machine
        if not (failed or probe or m.consecutive_failures or m.windowed) and (
            duration < m.slow_after
        ):
            return  # a quick success with no failure to clear and no window: nothing changes
        with m.lock:
            if generation != m.generation and not (probe and failed):
                return  # a call from before the last transition: its outcome is stale
            if failed or probe or m.needs_time or duration >= m.slow_after:
                now = self._clock.monotonic()
            else:
                # A quick success of a closed breaker without a time window cannot
                # cause a transition and needs no time: skip the clock read.
                now = 0.0
            change = m.record(generation, probe, failed, duration, now)
        if change is not None:
            self._emit(change, now)

    def _emit(self, change: Change, now: float) -> None:
        announce(self.name, self._listeners, change, now)

    def __repr__(self) -> str:
        keys = None if self._children is None else (len(self._children), self._max_keys)
        return describe(self.name, self._machine, self._clock.monotonic(), keys)


def _is_closed(breaker: CircuitBreaker) -> bool:
    """Whether ``breaker`` may be evicted first from its parent's LRU (it is CLOSED)."""
    return breaker._machine.state is _CLOSED
