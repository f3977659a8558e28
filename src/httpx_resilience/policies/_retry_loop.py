"""The loop of the generic retry helpers, written once for async and sync callers.

:class:`RetrySettings` is what a helper was configured with (built once per
decorator, or per :func:`~httpx_resilience.retry_async` / ``retry`` call);
:class:`Attempts` is one call's progress and every decision in it: counting
(:class:`RetryStats`), the retry budget, the testing switch, whether to give
up (and how: the last error re-raised with a note, or wrapped), the wait
(backoff or the server's ``Retry-After``) and the log lines. The two loops,
:func:`run_async` and :func:`run_sync`, only call the function and wait: one
awaits and ``await clock.sleep``, the other calls and ``sleep_sync(clock, ...)``.

A plain function that returns an awaitable (a coroutine, a future) is
retried asynchronously from the attempt that returned it:
:func:`run_sync` hands the awaitable and the call's progress to
:func:`run_async` and returns its coroutine.
"""

from __future__ import annotations

import functools
import inspect
import logging
import random
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from ..clock import Clock, sleep_sync
from ..exceptions import ConfigurationError, RetryExhaustedError
from ._errors import server_delay
from ._testing_mode import active
from .budget import RetryBudget
from .retry import RetryPolicy

__all__ = ["Attempts", "RetrySettings", "RetryStats", "is_async_callable", "name_of",
           "run_async", "run_sync"]

T = TypeVar("T")

_log = logging.getLogger("httpx_resilience.retry")
# RetryStats may be shared by threads (a decorated def called from many): its counts
# change under this lock (one for all: a few increments a call, never contended long).
_stats_lock = threading.Lock()


@dataclass(slots=True)
class RetryStats:
    """Counters a retry helper updates (seed 002's retry metrics); one may be shared by
    threads and tasks (the helpers update it under a lock).

    Attributes:
        calls: logical calls made.
        attempts: attempts made in all.
        retries: retries made.
        recovered: calls that succeeded after at least one retry.
        exhausted: calls that failed after every attempt.
        by_exception: failed attempts by exception type name.
    """

    calls: int = 0
    attempts: int = 0
    retries: int = 0
    recovered: int = 0
    exhausted: int = 0
    by_exception: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """A helper's settings: the policy (attempts, backoff) and what the loop needs beside it."""

    policy: RetryPolicy
    exceptions: tuple[type[BaseException], ...]
    retry_if: Callable[[BaseException], bool] | None
    budget: RetryBudget | None
    budget_key: str
    wrap: bool
    stats: RetryStats | None
    clock: Clock
    rng: random.Random | None


def name_of(func: object) -> str:
    """A callable's name for log lines: its qualified name, through partials and instances."""
    while isinstance(func, functools.partial):
        func = func.func
    name = getattr(func, "__qualname__", None)
    return name if isinstance(name, str) else type(func).__qualname__


def is_async_callable(func: object) -> bool:
    """Whether calling ``func`` certainly gives a coroutine: an ``async def`` function or
    method, a partial of one, or an object whose ``__call__`` is ``async def``."""
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.iscoroutinefunction(func):
        return True
    if inspect.isroutine(func) or isinstance(func, type):
        return False
    return inspect.iscoroutinefunction(inspect.getattr_static(type(func), "__call__", None))


def _add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)`` (PEP 678); on Python 3.10 the ``__notes__`` list it fills."""
    add = getattr(exc, "add_note", None)
    if callable(add):
        add(note)
    else:
        notes = getattr(exc, "__notes__", None)
        exc.__notes__ = [*notes, note] if isinstance(notes, list) else [note]  # type: ignore[attr-defined]


class Attempts:
    """One call's progress and its decisions; the loops only call and wait.

    Created when the call starts: it reads the testing switch (no sleep,
    attempts capped), counts the call and records it with the budget.
    """

    __slots__ = ("attempt", "label", "n", "previous", "settings", "sleeps")

    def __init__(self, settings: RetrySettings, label: str) -> None:
        self.settings = settings
        self.label = label
        testing = active()
        limit = settings.policy.max_attempts
        self.n = limit if testing is None else min(limit, testing.attempts)
        self.sleeps = testing is None  # the testing switch: waits are zero, not slept
        self.attempt = 0
        self.previous: float | None = None
        if settings.stats is not None:
            with _stats_lock:
                settings.stats.calls += 1
        if settings.budget is not None:
            settings.budget.record_request(settings.budget_key)

    def begin(self) -> None:
        """An attempt starts."""
        self.attempt += 1
        if self.settings.stats is not None:
            with _stats_lock:
                self.settings.stats.attempts += 1

    def failed(self, exc: BaseException) -> float | None:
        """The attempt raised ``exc`` (one of the retried types): the wait before the next,
        or ``None`` to give up, the caller then re-raising ``exc`` with a bare ``raise``
        (its traceback kept).

        Raises:
            RetryExhaustedError: giving up with ``wrap_exhausted=True``.
        """
        s, attempt, n, label = self.settings, self.attempt, self.n, self.label
        if s.stats is not None:
            key = type(exc).__name__
            with _stats_lock:
                s.stats.by_exception[key] = s.stats.by_exception.get(key, 0) + 1
        if s.retry_if is not None and not s.retry_if(exc):
            return None
        why: str | None = None
        if attempt >= n:
            why = f"all {n} attempts failed"
        elif s.budget is not None and not s.budget.try_spend(s.budget_key):
            why = "the retry budget is spent"
        if why is not None:
            if s.stats is not None:
                with _stats_lock:
                    s.stats.exhausted += 1
            _log.error(
                "%s: %s. Last error: %s: %s", label, why, type(exc).__name__, exc,
                extra={"operation": label, "attempts": attempt, "max_attempts": n},
            )
            if s.wrap:
                raise RetryExhaustedError(
                    f"{label}: {why}; last error {type(exc).__name__}: {exc}",
                    attempts=attempt,
                    last_error=exc,
                    retry_after=getattr(exc, "retry_after", None),
                ) from exc
            _add_note(exc, f"{label}: gave up after {attempt} attempt(s) ({why})")
            return None
        wait = s.policy.backoff(attempt - 1, previous=self.previous, rng=s.rng)
        server = server_delay(exc, s.clock.wall(), label)
        if server is not None and server > wait:
            wait = min(server, s.policy.max_delay)
        if not self.sleeps:
            wait = 0.0
        _log.warning(
            "%s: attempt %d/%d failed: %s: %s. Retrying in %.2f s",
            label, attempt, n, type(exc).__name__, exc, wait,
            extra={"operation": label, "attempt": attempt, "max_attempts": n, "delay": wait},
        )
        if s.stats is not None:
            with _stats_lock:
                s.stats.retries += 1
        self.previous = wait
        return wait

    def succeeded(self) -> None:
        """The attempt returned: count and log a recovery."""
        if self.attempt > 1:
            if self.settings.stats is not None:
                with _stats_lock:
                    self.settings.stats.recovered += 1
            _log.info(
                "%s: succeeded after %d attempts", self.label, self.attempt,
                extra={"operation": self.label, "attempts": self.attempt},
            )


def _not_awaitable(label: str, value: object) -> ConfigurationError:
    return ConfigurationError(
        f"{label} returned {type(value).__name__}, which cannot be awaited; retry_async "
        "needs an async function or a callable that returns an awaitable (use retry() "
        "for a plain function)",
        field="func",
    )


async def run_async(
    settings: RetrySettings,
    label: str,
    func: Callable[..., Awaitable[T]],
    args: tuple[object, ...],
    kwargs: Mapping[str, object],
    handoff: tuple[Attempts, Awaitable[T]] | None = None,
) -> T:
    """``await func(*args, **kwargs)`` until it succeeds or the retries stop.

    ``handoff``: a call :func:`run_sync` started, and the awaitable its
    current attempt returned (awaited first, as that attempt).
    """
    state, pending = handoff if handoff is not None else (Attempts(settings, label), None)
    while True:
        awaitable = True
        try:
            if pending is None:
                state.begin()
                current: object = func(*args, **kwargs)
            else:
                current, pending = pending, None
            awaitable = inspect.isawaitable(current)
            if awaitable:
                result = await cast(Awaitable[T], current)
        except settings.exceptions as exc:
            wait = state.failed(exc)
            if wait is None:
                raise
            if state.sleeps:
                await settings.clock.sleep(wait)
        else:
            if not awaitable:  # nothing was attempted, nothing to retry
                raise _not_awaitable(label, current)
            state.succeeded()
            return result


def _discard(awaitable: object) -> None:
    """Close a coroutine that will not be awaited (no "never awaited" warning)."""
    close = getattr(awaitable, "close", None)
    if inspect.iscoroutine(awaitable) and callable(close):
        close()


def run_sync(
    settings: RetrySettings,
    label: str,
    func: Callable[..., T],
    args: tuple[object, ...],
    kwargs: Mapping[str, object],
    *,
    hand_off: bool,
) -> T:
    """``func(*args, **kwargs)`` until it succeeds or the retries stop, sleeping on the clock.

    An attempt that returns an awaitable: with ``hand_off``, the rest of the
    call is :func:`run_async`'s, whose coroutine is returned; otherwise a
    ``ConfigurationError`` (``retry()`` is for plain functions).
    """
    state = Attempts(settings, label)
    while True:
        state.begin()
        try:
            result = func(*args, **kwargs)
        except settings.exceptions as exc:
            wait = state.failed(exc)
            if wait is None:
                raise
            if state.sleeps:
                sleep_sync(settings.clock, wait)
            continue
        if inspect.isawaitable(result):
            if not hand_off:
                _discard(result)
                raise ConfigurationError(
                    f"{label} returned {type(result).__name__}: retry() calls plain "
                    "functions; use `await retry_async(...)` for an async one",
                    field="func",
                )
            # The awaitable's result type is what the caller awaits: T is that awaitable.
            rest: Coroutine[Any, Any, Any] = run_async(
                settings, label, cast(Callable[..., Awaitable[Any]], func), args, kwargs,
                handoff=(state, result),
            )
            return cast(T, rest)
        state.succeeded()
        return result
