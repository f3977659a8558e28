"""The testing switch: no waits and few attempts while a test suite runs.

:func:`httpx_resilience.testing.set_testing` turns it on for the whole process
(thread-safe); :func:`httpx_resilience.testing.testing_mode` turns it on for the
current task or thread only (a context variable), so one test can switch it on
without touching others that run concurrently. While it is on, every backoff,
every ``Retry-After`` wait and every limiter wait is zero, and retries stop
after ``attempts`` attempts in all (never more than the policy allows).

This module is light on purpose: the pipeline and the policies ask
:func:`active` on their slow paths only (when about to wait or to retry).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final

__all__ = ["Restore", "TestingMode", "active", "cap_attempts", "set_testing", "testing_mode"]


@dataclass(frozen=True, slots=True)
class TestingMode:
    """What the switch does while on: waits are zero, attempts at most ``attempts``."""

    __test__ = False  # not a pytest test class, whatever its name

    attempts: int = 1


_OFF: Final = object()
_lock = threading.Lock()
_process: TestingMode | None = None
# A context override: a TestingMode (on), None (explicitly off) or _OFF (not set).
_context: ContextVar[object] = ContextVar("httpx_resilience_testing", default=_OFF)


def _checked(attempts: int) -> TestingMode:
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        from ..exceptions import ConfigurationError

        raise ConfigurationError(
            f"attempts must be an int >= 1 (the attempts each call may make in testing "
            f"mode, retries included), got {attempts!r}",
            field="attempts",
        )
    return TestingMode(attempts)


class Restore:
    """What :func:`set_testing` returns: as a context manager, it puts back the
    process-wide setting that call replaced (so ``with set_testing(True): ...``
    is undone on exit, and nested blocks unwind in order). Ignoring it is fine."""

    __slots__ = ("_previous",)

    def __init__(self, previous: TestingMode | None) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        _swap(self._previous)


def _swap(mode: TestingMode | None) -> TestingMode | None:
    global _process
    with _lock:
        previous, _process = _process, mode
    return previous


def set_testing(on: bool, *, attempts: int = 1) -> Restore:
    """Switch testing mode on or off for the whole process (every thread and task).

    ``attempts`` caps the attempts of each call, retries included (``1``: no
    retry at all); a policy that allows fewer keeps its own number. Like
    stamina's ``set_testing(..., cap=True)``: a cap, never more attempts than
    the policy allows (a policy that disables retries stays without them).
    The result may be used as a context manager that restores the previous
    setting on exit (as stamina's can).
    """
    return Restore(_swap(_checked(attempts) if on else None))


@contextmanager
def testing_mode(on: bool = True, *, attempts: int = 1) -> Iterator[TestingMode | None]:
    """Testing mode for the current task or thread only, undone on exit.

    Tasks started inside inherit it (asyncio copies the context); other tasks
    and threads keep what :func:`set_testing` set.
    """
    mode = _checked(attempts) if on else None
    token = _context.set(mode)
    try:
        yield mode
    finally:
        _context.reset(token)


# Its name starts with "test": a test module that imports it must not have it collected.
testing_mode.__test__ = False  # type: ignore[attr-defined]


def active() -> TestingMode | None:
    """The testing mode in force here, or ``None`` when off (the default)."""
    local = _context.get()
    if local is not _OFF:
        return local  # type: ignore[return-value]
    return _process


def cap_attempts(attempts: int) -> int:
    """``attempts`` capped by the testing mode in force, if any."""
    mode = active()
    return attempts if mode is None else min(attempts, mode.attempts)
