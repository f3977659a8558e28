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

__all__ = ["TestingMode", "active", "cap_attempts", "set_testing", "testing_mode"]


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


def set_testing(on: bool, *, attempts: int = 1) -> None:
    """Switch testing mode on or off for the whole process (every thread and task).

    ``attempts`` caps the attempts of each call, retries included (``1``: no
    retry at all); a policy that allows fewer keeps its own number.
    """
    mode = _checked(attempts) if on else None
    global _process
    with _lock:
        _process = mode


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
