"""The backend's events: fallback entered and left, and each script's latency.

They go to the ``observers`` given to the backend (any callable taking one
event, as the pipeline's observers); one that raises is logged and ignored.
Entering fallback is also logged once at WARNING on
``httpx_resilience.backend``, leaving it at INFO.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BackendEvent",
    "BackendFallbackEntered",
    "BackendFallbackLeft",
    "BackendObserver",
    "BackendScriptRan",
    "emit_backend",
    "logger",
]

logger = logging.getLogger("httpx_resilience.backend")


@dataclass(frozen=True, slots=True)
class BackendFallbackEntered:
    """The backend stopped answering: policies use their ``fail_mode`` until it returns.

    Attributes:
        backend: the backend (its URL, passwords hidden).
        reason: the fault that started it.
        retry_in: seconds until the backend is tried again.
    """

    backend: str
    reason: str
    retry_in: float


@dataclass(frozen=True, slots=True)
class BackendFallbackLeft:
    """The backend answers again: shared state is back.

    Attributes:
        backend: the backend (its URL, passwords hidden).
        down_for: seconds spent in fallback.
    """

    backend: str
    down_for: float


@dataclass(frozen=True, slots=True)
class BackendScriptRan:
    """One script call: its name, how long the round trip took, and whether it answered.

    Attributes:
        backend: the backend (its URL, passwords hidden).
        script: the script's name (``token_bucket``, ``sliding_window``, ...).
        latency: seconds from the call to the answer (or to the fault).
        ok: ``False`` when the call failed (the backend then enters fallback).
    """

    backend: str
    script: str
    latency: float
    ok: bool


BackendEvent = BackendFallbackEntered | BackendFallbackLeft | BackendScriptRan
BackendObserver = Callable[[Any], None]
"""An observer of backend events (a pipeline observer may be given as is)."""


def emit_backend(observers: Sequence[BackendObserver], event: BackendEvent) -> None:
    """Deliver ``event`` to each observer; one that raises is logged and skipped."""
    for obs in observers:
        try:
            obs(event)
        except Exception:
            logger.exception("backend observer %r raised on %s; ignored", obs, type(event).__name__)
