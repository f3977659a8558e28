"""``LoggingObserver``: one log record per logical request, and request bookkeeping for observers.

The pipeline already logs each retry (WARNING, ``httpx_resilience.retry``),
each give-up (ERROR) and each breaker transition (WARNING,
``httpx_resilience.breaker``). :class:`LoggingObserver` fills the gaps: a
record per finished request (DEBUG on success, ERROR on failure, with the
fields in ``extra``), failed attempts at DEBUG, limiter waits at DEBUG and
bulkhead rejections at WARNING. Nothing is formatted unless the level is on.

:class:`RequestTracker` pairs the start and the end of each logical request for
the observers that keep per-request state (metrics in flight, open spans), and
hands back the ones that never report an end.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .events import (
    AttemptFailed,
    BulkheadRejected,
    Event,
    LimiterWaited,
    RequestFinished,
)
from .redactor import DEFAULT_REDACTOR, Redactor

__all__ = ["LoggingObserver", "RequestTracker"]

S = TypeVar("S")

_log = logging.getLogger("httpx_resilience.observe")


def _current_task() -> asyncio.Task[Any] | int | None:
    """The asyncio task running, else the thread's id (a sync caller, or trio)."""
    try:
        return asyncio.current_task()
    except RuntimeError:  # no asyncio loop running: the thread is the unit
        return threading.get_ident()


class RequestTracker(Generic[S]):
    """Per-request state of an observer, from a request's first event to its end.

    Requests are keyed by (asyncio task, request id): a task runs one pipeline
    at a time, so the pair finds the request even when callers reuse an
    ``X-Request-Id`` or disable it. Outside asyncio (``httpx.Client`` in a
    thread, trio) the thread stands for the task, so threads sharing an
    observer each see (and abandon) only their own requests; a lock keeps the
    bookkeeping whole when threads and an event loop report at once.

    Some requests never report an end: the caller cancelled them, or the
    pipeline refused them without a ``RequestFinished``. Their state goes to
    ``on_abandon(state, reason)`` (``reason`` is ``"cancelled"`` or
    ``"abandoned"``) when their task ends, when their task starts another
    request, or when more than ``max_open`` are open (the oldest first), so
    nothing leaks.

    Args:
        on_abandon: called with the state of each request that ended unreported.
        max_open: how many requests may be open at once.
    """

    __slots__ = ("_count", "_hooked", "_lock", "_open", "max_open", "on_abandon")

    def __init__(self, on_abandon: Callable[[S, str], None], max_open: int = 10_000) -> None:
        if not isinstance(max_open, int) or max_open < 1:
            raise ValueError(f"max_open must be an integer >= 1, got {max_open!r}")
        self.on_abandon = on_abandon
        self.max_open = max_open
        self._open: dict[asyncio.Task[Any] | int | None, dict[str | None, S]] = {}
        self._hooked: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        self._count = 0
        self._lock = threading.Lock()  # never held while on_abandon runs

    def __len__(self) -> int:
        return self._count

    def get(self, request_id: str | None) -> S | None:
        """The state of the open request ``request_id`` of the current task."""
        opened = self._open.get(_current_task())  # dict reads are atomic: no lock
        return opened.get(request_id) if opened else None

    def current(self) -> S | None:
        """The state of the request the current task is running, if any."""
        opened = self._open.get(_current_task())
        with self._lock:
            return next(reversed(opened.values())) if opened else None

    def start(self, request_id: str | None, state: S) -> None:
        """Track a new request of the current task."""
        task = _current_task()
        victims: list[S] = []
        with self._lock:
            opened = self._open.get(task)
            if opened is None:
                opened = self._open[task] = {}
                if isinstance(task, asyncio.Task) and task not in self._hooked:
                    self._hooked.add(task)
                    task.add_done_callback(self._task_done)
            elif isinstance(task, asyncio.Task):
                # One pipeline at a time per task: an open request with another id was
                # left without an end (cancelled and swallowed, or refused unreported).
                victims = [opened.pop(o) for o in [rid for rid in opened if rid != request_id]]
            if request_id not in opened:
                self._count += 1
            opened[request_id] = state
            while self._count - len(victims) > self.max_open:
                oldest_task = next(iter(self._open))
                oldest = self._open[oldest_task]
                victims.append(oldest.pop(next(iter(oldest))))
                if not oldest:
                    del self._open[oldest_task]
        for victim in victims:
            self._abandon(victim, "abandoned")

    def finish(self, request_id: str | None) -> S | None:
        """Stop tracking ``request_id`` of the current task; its state, or ``None``."""
        task = _current_task()
        with self._lock:
            opened = self._open.get(task)
            if not opened:
                return None
            state = opened.pop(request_id, None)
            if state is not None:
                self._count -= 1
                if not opened:
                    del self._open[task]
            return state

    def abandon_current(self, reason: str = "abandoned") -> int:
        """End every open request of the current task as ``reason``; how many there were."""
        task = _current_task()
        with self._lock:
            opened = self._open.pop(task, None)
        if not opened:
            return 0
        for state in opened.values():
            self._abandon(state, reason)
        return len(opened)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._hooked.discard(task)
        with self._lock:
            opened = self._open.pop(task, None)
        if opened:
            reason = "cancelled" if task.cancelled() else "abandoned"
            for state in opened.values():
                self._abandon(state, reason)

    def _abandon(self, state: S, reason: str) -> None:
        with self._lock:
            self._count -= 1
        try:
            self.on_abandon(state, reason)
        except Exception:  # called from the event loop's callbacks: never let it escape
            _log.exception("observer cleanup of an unfinished request raised; ignored")


class LoggingObserver:
    """Log each finished request, failed attempt, limiter wait and bulkhead rejection.

    Records go to ``logger`` (``httpx_resilience.requests`` by default) with
    ``extra`` fields ``method``, ``url`` (redacted), ``host``, ``service``,
    ``status_code``, ``attempts``, ``elapsed``, ``outcome``, ``error_type`` and
    ``request_id``, so JSON formatters pick them up. Retries, give-ups and
    breaker transitions are already logged by the pipeline, so they are not
    repeated here.

    Args:
        logger: the logger to write to.
        success_level: the level of a successful request (4xx included: a 404
            is an answer, not a failure).
        failure_level: the level of a failed request (an exception, a 5xx, or
            retries exhausted).
        redactor: what to hide in URLs and error texts.

    Example::

        ResilientTransport(observers=[LoggingObserver()])
    """

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        success_level: int = logging.DEBUG,
        failure_level: int = logging.ERROR,
        redactor: Redactor | None = None,
    ) -> None:
        self.logger = logger or logging.getLogger("httpx_resilience.requests")
        self.success_level = success_level
        self.failure_level = failure_level
        self.redactor = redactor or DEFAULT_REDACTOR

    def __call__(self, event: Event) -> None:
        """Log ``event`` if it is one this observer reports and its level is on."""
        if type(event) is RequestFinished:
            self._finished(event)
        elif type(event) is AttemptFailed:
            self._attempt_failed(event)
        elif type(event) is LimiterWaited:
            if self.logger.isEnabledFor(logging.DEBUG):
                self.logger.debug(
                    "Waited %.3f s for the rate limiter of %s",
                    event.waited, event.host,
                    extra={
                        "host": event.host,
                        "waited": event.waited,
                        "request_id": event.request_id,
                    },
                )
        elif type(event) is BulkheadRejected:
            self.logger.warning(
                "Bulkhead for %s is full (%d running, %d queued): request refused",
                event.host, event.max_concurrent, event.max_queue,
                extra={
                    "host": event.host,
                    "max_concurrent": event.max_concurrent,
                    "max_queue": event.max_queue,
                    "request_id": event.request_id,
                },
            )

    def _finished(self, ev: RequestFinished) -> None:
        ok = ev.outcome == "success"
        level = self.success_level if ok else self.failure_level
        if not self.logger.isEnabledFor(level):
            return
        url = self.redactor.url(ev.url)
        attempts = f"{ev.attempts} attempt{'' if ev.attempts == 1 else 's'}"
        args: tuple[object, ...]
        if ok:
            text, args = "%s %s -> %s in %.3f s (%s)", (ev.status_code,)
        else:
            what = f"HTTP {ev.status_code}" if ev.status_code is not None else ev.error_type
            text, args = "%s %s failed: %s after %.3f s (%s)", (what,)
        self.logger.log(
            level,
            text,
            ev.method, url, *args, ev.elapsed, attempts,
            extra={
                "method": ev.method,
                "url": url,
                "host": ev.host,
                "service": ev.service or ev.host,
                "status_code": ev.status_code,
                "attempts": ev.attempts,
                "elapsed": ev.elapsed,
                "outcome": ev.outcome,
                "error_type": ev.error_type,
                "request_id": ev.request_id,
            },
        )

    def _attempt_failed(self, ev: AttemptFailed) -> None:
        if not self.logger.isEnabledFor(logging.DEBUG):
            return
        url = self.redactor.url(ev.url)
        cause = f"HTTP {ev.status_code}" if ev.status_code is not None else ev.error_type
        detail = self.redactor.text(ev.error or "")
        self.logger.debug(
            "Attempt %d/%d of %s %s failed after %.3f s: %s%s",
            ev.attempt, ev.max_attempts, ev.method, url, ev.duration, cause,
            f" ({detail})" if detail else "",
            extra={
                "method": ev.method,
                "url": url,
                "host": ev.host,
                "attempt": ev.attempt,
                "max_attempts": ev.max_attempts,
                "duration": ev.duration,
                "status_code": ev.status_code,
                "error_type": ev.error_type,
                "request_id": ev.request_id,
            },
        )

    def __repr__(self) -> str:
        return f"LoggingObserver(logger={self.logger.name!r})"
