"""The backend's failures: the internal ``BackendDown`` and the public refusal.

A shared backend never lets a ``redis`` exception out. Every fault (an error
reply, a timeout, a refused or dropped connection, the backend resting in
fallback) becomes :class:`BackendDown`, an internal signal that the policies
turn into their ``fail_mode`` with :func:`on_backend_down`:

* ``"local"`` — carry on with the policy's in-process state;
* ``"open"`` — allow the call as if the shared state said yes;
* ``"closed"`` — refuse with :class:`SharedStateUnavailableError`.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx

from ..exceptions import _HttpxCompatible

__all__ = [
    "FAIL_MODES",
    "BackendDown",
    "FailMode",
    "SharedStateUnavailableError",
    "on_backend_down",
]

FailMode = Literal["local", "open", "closed"]
"""What a policy does while its shared backend is unreachable."""

FAIL_MODES: tuple[FailMode, ...] = ("local", "open", "closed")


class BackendDown(Exception):
    """Internal: the shared backend could not answer (never reaches the caller).

    Attributes:
        backend: a description of the backend (its URL, passwords hidden).
        key: the key (or hash tag) the operation was about.
        reason: what went wrong, in words.
    """

    def __init__(self, backend: str, key: str, reason: str) -> None:
        self.backend = backend
        self.key = key
        self.reason = reason
        super().__init__(f"{backend} unreachable for {key}: {reason}")


class SharedStateUnavailableError(_HttpxCompatible, httpx.TransportError):
    """The shared state is unreachable and ``fail_mode="closed"`` refuses the call.

    Nothing was sent. It is also an ``httpx.TransportError``, like every
    refusal raised inside the transport.

    Attributes:
        backend: the backend (its URL, passwords hidden).
        key: the key of the limiter, breaker or budget that needed it.
        reason: why the backend could not answer.
    """

    def __init__(self, backend: str, key: str, reason: str = "", **kw: Any) -> None:
        self.backend = backend
        self.key = key
        self.reason = reason
        kw.setdefault(
            "hint",
            "Restore Redis, or build the backend with fail_mode='local' (fall back to "
            "in-process state) or fail_mode='open' (allow) to keep requests flowing "
            "while it is down",
        )
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"Shared state unavailable: Redis at {backend} is unreachable{why}; "
            f"fail_mode='closed' refuses the call for key {key!r}",
            **kw,
        )


def on_backend_down(fail_mode: str, down: BackendDown) -> Literal["local", "open"]:
    """What a policy does after ``down``: ``"local"`` or ``"open"``; ``"closed"`` raises.

    Raises:
        SharedStateUnavailableError: ``fail_mode`` is ``"closed"``.
    """
    if fail_mode == "open":
        return "open"
    if fail_mode == "closed":
        raise SharedStateUnavailableError(down.backend, down.key, down.reason) from None
    return "local"
