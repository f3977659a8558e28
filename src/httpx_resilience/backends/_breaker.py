"""A circuit breaker whose state lives in a shared backend (Redis): one breaker for many processes.

:class:`SharedBreaker` is what :class:`~httpx_resilience.CircuitBreaker`
delegates :meth:`~httpx_resilience.CircuitBreaker.call` to when it is built
with ``backend=``. Per call it makes one or two round trips, each one atomic script:

* ``breaker_admit`` before the call: CLOSED admits (a read, no write); OPEN
  refuses until the cooldown, measured on the backend's clock, has passed;
  HALF_OPEN hands out a **probe lease** only while fewer than
  ``half_open_max_calls`` probes are out or have succeeded, across every
  process. A lease expires after ``recovery_timeout`` (the local breaker's
  limit for a hung probe), so a prober that dies does not wedge the breaker;
* ``breaker_record`` after it: the outcome, the consecutive-failure and
  sliding-window rules (count or time window, failure and slow-call rates)
  and the transition they cause, exactly as the local state machine decides
  them (``policies/breaker/_machine.py``). A cancelled probe gives its lease
  back (``breaker_release``), in the background. The common case needs no
  second round trip: a quick success of a CLOSED breaker that had no
  failures to clear and has no window changes nothing, so it is not sent
  (it counts as of its admission: a failure another process records
  meanwhile is not cleared by it).

The breaker's local :class:`~httpx_resilience.policies.breaker._machine.BreakerMachine`
mirrors the last state the backend reported, so the synchronous
``breaker.state`` and ``acquire()`` see it; every change seen (caused here or
in another process) is logged and delivered to the listeners. While the
backend is down, ``fail_mode`` decides: ``"local"`` runs the call through
that local machine (a working in-process breaker), ``"open"`` lets it
through unrecorded, ``"closed"`` refuses with
:class:`~httpx_resilience.backends._errors.SharedStateUnavailableError`.
A fault while recording never fails a call that already has its answer.

Threads (``call_sync``) make the same round trips with the backend's sync
client (``_breaker_sync``). The other synchronous parts of the breaker reach
the shared state in the background: ``force_open``/``force_closed``/``reset``
(``breaker_force``) and outcomes recorded by hand (``record_success``/
``record_failure``, sent in order as calls of the current generation).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from ..exceptions import CircuitBreakerOpenError, ConfigurationError
from ..policies.breaker._events import announce
from ..policies.breaker._machine import BreakerMachine, Change, CircuitState
from ._breaker_sync import call_shared_sync
from ._errors import BackendDown, on_backend_down
from ._events import logger
from ._memory import MemoryBackend

if TYPE_CHECKING:
    from ..policies.breaker._circuit import CircuitBreaker
    from ._contract import SharedBackend
    from ._redis import RedisBackend

__all__ = ["SharedBreaker", "attach", "breaker_reason"]

T = TypeVar("T")

_STATES = {s.value: s for s in CircuitState}
_REFUSED, _PROBE = 0, 2


# Per MemoryBackend: the machines of its breakers by name, alive while a breaker holds one.
_machines: weakref.WeakKeyDictionary[
    MemoryBackend, weakref.WeakValueDictionary[str, BreakerMachine]
] = weakref.WeakKeyDictionary()


def attach(breaker: CircuitBreaker, backend: SharedBackend, name: str) -> None:
    """Give ``breaker`` its state in ``backend`` under ``name``.

    A :class:`~httpx_resilience.MemoryBackend` shares one state machine among
    the breakers of this process with the same name (the local fast path,
    unchanged); a backend that runs scripts (:class:`~httpx_resilience.RedisBackend`)
    gets a :class:`SharedBreaker`.

    Raises:
        ConfigurationError: ``backend`` is neither, or a breaker of the same
            name on the same memory backend has other settings.
    """
    if isinstance(backend, MemoryBackend):
        machines = _machines.setdefault(backend, weakref.WeakValueDictionary())
        machine = machines.get(name)
        if machine is None:
            machines[name] = breaker._machine
        elif machine.settings != breaker.settings:
            raise ConfigurationError(
                f"a circuit breaker named {name!r} with other settings already uses this "
                "MemoryBackend; breakers sharing a name must share their settings "
                "(or give this one another name)",
                field="name",
            )
        else:
            breaker._machine = machine
        return
    if not callable(getattr(backend, "run", None)):
        raise ConfigurationError(
            f"backend must be a MemoryBackend or a RedisBackend, got {type(backend).__name__}",
            field="backend",
        )
    breaker._shared = SharedBreaker(backend, breaker, name)  # type: ignore[arg-type]


def _plural(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def breaker_reason(code: str, a: int, b: int, breaker: CircuitBreaker) -> str:
    """The words of a transition the scripts report as ``code`` (as the local machine says them)."""
    s = breaker.settings
    if code == "consecutive":
        return _plural(a, "consecutive failure")
    if code == "rate":
        frt = s.failure_rate_threshold or 0.0
        return f"failure rate {a / b:.0%} >= {frt:.0%} ({a}/{b} calls)"
    if code == "slow":
        srt = s.slow_call_rate_threshold or 0.0
        return (
            f"slow-call rate {a / b:.0%} >= {srt:.0%} "
            f"({a}/{b} calls took >= {s.slow_call_duration:g} s)"
        )
    if code == "probe_failed":
        return "half-open probe failed"
    if code == "probe_slow":
        return "half-open probe was slow"
    if code == "probes_ok":
        return _plural(a, "half-open probe") + " succeeded"
    if code == "recovery":
        return f"recovery timeout of {s.recovery_timeout:g} s passed"
    return "changed by another process sharing the breaker"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SharedBreaker:
    """The shared half of one :class:`~httpx_resilience.CircuitBreaker` (or per-host child).

    Args:
        backend: where the state lives.
        breaker: the breaker it serves (its settings, rules, clock, listeners
            and local machine).
        name: the breaker's name in the backend; processes that use the same
            backend and name share one breaker.
    """

    __slots__ = (
        "_admit_args",
        "_backend",
        "_breaker",
        "_gen",
        "_gen_learned",
        "_keys",
        "_name",
        "_order",
        "_record_args",
        "_replies",
        "_tasks",
    )

    def __init__(self, backend: RedisBackend, breaker: CircuitBreaker, name: str) -> None:
        self._backend = backend
        self._breaker = breaker
        self._name = name
        s = breaker.settings
        self._keys = (
            backend.key("breaker", name, "state"),
            backend.key("breaker", name, "leases"),
            backend.key("breaker", name, "window"),
        )
        rt_ms = s.recovery_timeout * 1000.0
        window_s = s.window_size if s.uses_window and s.window_type == "time" else 0.0
        # Every key outlives what it must remember: an open breaker's cooldown,
        # a time window; an idle breaker's state is dropped after an hour.
        key_ttl = math.ceil(max(3_600_000.0, 2 * rt_ms, 2000.0 * window_s))
        self._admit_args: list[str | int | float] = [
            rt_ms, s.half_open_max_calls, "", rt_ms, key_ttl,
        ]
        if not s.uses_window:
            wtype, wsize, buckets = "none", 0.0, 1
        elif s.window_type == "count":
            wtype, wsize, buckets = "count", float(s.window_size), 1
        else:
            wtype, wsize = "time", s.window_size * 1000.0
            buckets = min(max(math.ceil(s.window_size), 10), 120)  # as the local TimeWindow
        frt = s.failure_rate_threshold
        srt = s.slow_call_rate_threshold
        self._record_args: list[str | int | float] = [
            s.failure_threshold, rt_ms, s.half_open_max_calls, wtype, wsize, buckets,
            s.minimum_calls, -1 if frt is None else frt, -1 if srt is None else srt, key_ttl,
        ]
        self._tasks: set[asyncio.Task[None]] = set()
        # Replies can arrive out of order (several calls in flight, several
        # connections): the newest generation seen, and when it was learned, keep
        # an older "closed" reply from turning the local view back (see _fresh).
        self._replies = 0  # replies read so far; a call notes it when it is sent
        self._gen = -1
        self._gen_learned = 0
        self._order: asyncio.Lock | None = None  # created on the first report, in its loop

    @property
    def name(self) -> str:
        """The breaker's name in the backend."""
        return self._name

    # -- one call ---------------------------------------------------------------------

    async def call(
        self, func: Callable[..., Awaitable[T]], args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> T:
        """Run ``await func(*args, **kwargs)`` under the shared breaker (see the module doc).

        Raises:
            CircuitBreakerOpenError: the shared breaker refused; ``func`` was not called.
            SharedStateUnavailableError: the backend is down and ``fail_mode`` is ``"closed"``.
        """
        b = self._breaker
        lease = os.urandom(8).hex()  # the probe lease's id, used if a probe is granted
        try:
            verdict, gen, probe, clean = await self._admit(lease)
        except BackendDown as down:
            if on_backend_down(self._backend.fail_mode, down) == "open":
                return await func(*args, **kwargs)
            return await b._call_local(func, args, kwargs)
        if verdict == _REFUSED:
            raise CircuitBreakerOpenError(b.name, b._machine.retry_in(b._clock.monotonic()))
        lease = lease if probe else ""
        clock = b._clock
        start = clock.monotonic()
        try:
            result = await func(*args, **kwargs)
        except Exception as exc:
            await self._record(gen, lease, b.is_failure_exception(exc), clock.monotonic() - start)
            raise
        except BaseException:  # cancelled: no outcome; a probe gives its lease back
            if lease:
                self._background(self._release(lease))
            raise
        duration = clock.monotonic() - start
        failed = isinstance(result, httpx.Response) and b.is_failure_response(result)
        if failed or not clean or duration >= b._machine.slow_after:
            await self._record(gen, lease, failed, duration)
        return result

    async def _admit(self, lease: str) -> tuple[int, int, bool, bool]:
        """``(verdict, generation, whether this caller holds the probe lease, clean)``.

        ``clean``: the breaker was CLOSED with no failure to clear and no window,
        so a quick success would record nothing: its round trip is skipped (the
        success counts as of its admission).
        """
        args = list(self._admit_args)
        args[2] = lease
        sent = self._replies
        reply = await self._backend.run("breaker_admit", self._keys[:2], args)
        return self._admitted(reply, sent)

    def _fresh(self, gen: int, sent: int) -> bool:
        """Whether a reply with generation ``gen``, for a call sent when ``sent``
        replies had been read, may update the local view.

        Every transition bumps the generation, so an older one is stale news from a
        call that ran before the transition; unless the call was sent after the
        newer generation was learned, in which case Redis itself went back (its key
        expired or the server restarted empty) and the reply is the truth.
        """
        self._replies += 1
        if gen < self._gen and sent < self._gen_learned:
            return False
        self._gen, self._gen_learned = gen, self._replies
        return True

    def _admitted(self, reply: Any, sent: int) -> tuple[int, int, bool, bool]:
        """``breaker_admit``'s reply read (and mirrored): as :meth:`_admit` returns it."""
        verdict, gen, state, retry_ms, code = (int(reply[0]), int(reply[1]), _text(reply[2]),
                                               float(_text(reply[3])), _text(reply[4]))
        if self._fresh(gen, sent):
            self._mirror(state, retry_ms / 1000.0, code, 0, 0)
        clean = state == "closed" and int(reply[5]) == 0 and self._record_args[3] == "none"
        return verdict, gen, verdict == _PROBE, clean

    def report(self, failed: bool, duration: float) -> None:
        """Send an outcome recorded by hand (``record_success``/``record_failure``) to the
        shared breaker, in the background, as a call of its current generation.

        The local breaker has already counted it; without a running loop it stays local.
        """
        self._background(self._report(failed, duration))

    async def _report(self, failed: bool, duration: float) -> None:
        if self._order is None:
            self._order = asyncio.Lock()
        async with self._order:  # FIFO: the reports reach Redis in the order they were made
            await self._record(-1, "", failed, duration, local=False)

    async def _record(
        self, gen: int, lease: str, failed: bool, duration: float, *, local: bool = True
    ) -> None:
        """Record an outcome; a backend fault is absorbed (the call already has its answer)."""
        b = self._breaker
        slow = duration >= b._machine.slow_after
        args: list[str | int | float] = [gen, lease, int(failed), int(slow), *self._record_args]
        sent = self._replies
        try:
            reply = await self._backend.run("breaker_record", self._keys, args)
        except BackendDown:
            if local and self._backend.fail_mode == "local":
                # The local breaker learns the outcome, for while the backend is away.
                b._record(b._machine.generation, False, failed, duration)
            return
        self._recorded(reply, sent)

    def _recorded(self, reply: Any, sent: int) -> None:
        """``breaker_record``'s reply: the state it reports, mirrored (when it is news)."""
        if self._fresh(int(reply[1]), sent):
            self._mirror(_text(reply[2]), float(_text(reply[3])) / 1000.0, _text(reply[4]),
                         int(reply[5]), int(reply[6]))

    def call_sync(
        self, func: Callable[..., T], args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> T:
        """:meth:`call` for a thread: the same scripts through the backend's sync client."""
        return call_shared_sync(self, func, args, kwargs)

    def force(self, state: CircuitState) -> None:
        """Force the shared breaker to ``state`` (OPEN or CLOSED), in the background.

        Without a running event loop there is nothing to run it on: the shared
        state is left alone (logged).
        """
        if not self._background(self._force(state.value)):
            logger.warning(
                "circuit breaker %r: forced %s here only; the shared state changes when "
                "forced from a running event loop",
                self._name, state.value,
            )

    async def _force(self, state: str) -> None:
        s = self._breaker.settings
        args: list[str | int | float] = [state, s.recovery_timeout * 1000.0, self._admit_args[4]]
        with contextlib.suppress(BackendDown):  # else the shared breaker keeps its own state
            await self._backend.run("breaker_force", self._keys, args)

    async def _release(self, lease: str) -> None:
        with contextlib.suppress(BackendDown):  # else the lease expires on its own
            await self._backend.run("breaker_release", self._keys[1:2], [lease])

    def _background(self, coro: Coroutine[Any, Any, None]) -> bool:
        """Run ``coro`` as a task kept until it ends; ``False`` without a running loop."""
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()
            return False
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def settled(self) -> None:
        """Wait for the background work started so far (lease releases, forced states)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _mirror(self, state: str, retry_in: float, code: str, a: int, b: int) -> None:
        """Make the local machine show ``state``; announce it when it is news here."""
        new = _STATES[state]
        br = self._breaker
        m = br._machine
        if new is m.state and new is not CircuitState.OPEN:
            return
        now = br._clock.monotonic()
        reason = breaker_reason(code, a, b, br)
        with m.lock:
            change: Change | None = m.mirror(new, retry_in, now, reason)
        if change is not None:
            announce(br.name, br._listeners, change, now)

    def __repr__(self) -> str:
        return f"<SharedBreaker {self._name!r} on {self._backend!r}>"

