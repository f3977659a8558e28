"""The contract of a shared-state backend: a few atomic operations, not get/set.

Each operation reads and changes one limiter's state in one step, so two
processes can never both see the last token. :class:`~.MemoryBackend` does it
in-process; :class:`~.RedisBackend` with one Lua script per operation.

The keys of one limiter (or breaker, or budget) share one hash tag,
``{<prefix>:<kind>:<name>}``, so a script's keys sit on one Redis Cluster slot.
"""

from __future__ import annotations

import abc
from collections.abc import Coroutine, Sequence
from typing import Any, NamedTuple, TypeVar

from ..exceptions import ConfigurationError
from ._errors import FAIL_MODES, FailMode

__all__ = ["Backend", "Grant", "SharedBackend", "check_fail_mode", "check_prefix"]

T = TypeVar("T")


class Grant(NamedTuple):
    """The answer of a limiter operation.

    Attributes:
        granted: ``True``: the tokens are the caller's, now (``wait == 0``) or
            after ``wait`` seconds (reserved: the caller sleeps, then goes,
            without asking again). ``False``: nothing was taken; ``wait`` is
            how long they would take, more than the caller may wait.
        wait: seconds, ≥ 0.
    """

    granted: bool
    wait: float


class SharedBackend(abc.ABC):
    """The atomic operations the policies need from shared state.

    Attributes:
        prefix: the first part of every key.
        fail_mode: ``"local"``, ``"open"`` or ``"closed"``: what the policies do
            while the backend is unreachable (see ``on_backend_down``).
    """

    prefix: str
    fail_mode: FailMode

    def key(self, kind: str, name: str, *parts: str) -> str:
        """The key ``{<prefix>:<kind>:<name>}:<part>:…``: one hash tag per limiter/breaker."""
        tag = f"{{{self.prefix}:{kind}:{name}}}"
        return ":".join((tag, *parts)) if parts else tag

    async def run(
        self, script: str, keys: Sequence[str], args: Sequence[str | int | float]
    ) -> Any:
        """Run the Lua script ``lua/<script>.lua`` (Redis); its reply.

        A backend without scripts (:class:`~.MemoryBackend`) raises
        ``NotImplementedError``: a policy given one keeps its state in-process.

        Raises:
            BackendDown: the backend could not answer.
        """
        raise NotImplementedError(f"{type(self).__name__} runs no scripts")

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the state lives, for messages (a password is never shown)."""

    @abc.abstractmethod
    async def token_bucket(
        self,
        name: str,
        *,
        rate: float,
        burst: int,
        tokens: int,
        horizon: float | None,
        paused_for: float = 0.0,
    ) -> Grant:
        """Take ``tokens`` from the GCRA bucket ``name`` (``rate``/s, ``burst`` deep).

        Granted now, or reserved when they come within ``horizon`` seconds
        (``None``: any wait), or refused. No grant is made before the
        limiter's shared pause ends, nor within ``paused_for`` seconds (a
        pause the caller knows of).
        """

    @abc.abstractmethod
    async def sliding_window(
        self,
        name: str,
        *,
        limit: int,
        window: float,
        tokens: int,
        horizon: float | None,
        paused_for: float = 0.0,
    ) -> Grant:
        """Take ``tokens`` from the exact sliding window ``name`` (``limit`` per ``window`` s).

        As :meth:`token_bucket`: granted now, reserved within ``horizon``, or refused.
        """

    def token_bucket_sync(
        self,
        name: str,
        *,
        rate: float,
        burst: int,
        tokens: int,
        horizon: float | None,
        paused_for: float = 0.0,
    ) -> Grant | None:
        """:meth:`token_bucket` for a thread: ``None`` when this backend has no sync path
        (the limiter then keeps to its local state). The default runs
        :meth:`token_bucket` when it ends without suspending (in-process state does)."""
        return _at_once(self.token_bucket(
            name, rate=rate, burst=burst, tokens=tokens, horizon=horizon, paused_for=paused_for
        ))

    def sliding_window_sync(
        self,
        name: str,
        *,
        limit: int,
        window: float,
        tokens: int,
        horizon: float | None,
        paused_for: float = 0.0,
    ) -> Grant | None:
        """:meth:`sliding_window` for a thread, as :meth:`token_bucket_sync`."""
        return _at_once(self.sliding_window(
            name, limit=limit, window=window, tokens=tokens, horizon=horizon,
            paused_for=paused_for,
        ))

    @abc.abstractmethod
    async def pause(self, name: str, seconds: float) -> float:
        """Pause the limiter ``name`` for ``seconds`` (never shortened); the seconds left."""

    def pause_sync(self, name: str, seconds: float) -> float | None:
        """:meth:`pause` for a thread; ``None`` when this backend has no sync path."""
        return _at_once(self.pause(name, seconds))

    @abc.abstractmethod
    async def paused_for(self, name: str) -> float:
        """Seconds left of the limiter ``name``'s pause (0 when not paused)."""


Backend = SharedBackend
"""Another name of :class:`SharedBackend`."""


def _at_once(coro: Coroutine[Any, Any, T]) -> T | None:
    """``coro``'s result when it ends without suspending; ``None`` (closed) when it would wait."""
    try:
        coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coro.close()
    return None


def check_prefix(prefix: object) -> str:
    """``prefix`` if it is a non-empty string without braces (they delimit the hash tag)."""
    if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
        raise ConfigurationError(
            f"prefix must be a non-empty string without '{{' or '}}', got {prefix!r}",
            field="prefix",
        )
    return prefix


def check_fail_mode(fail_mode: object) -> FailMode:
    """``fail_mode`` if it is one of ``"local"``, ``"open"``, ``"closed"``."""
    for mode in FAIL_MODES:
        if fail_mode == mode and isinstance(fail_mode, str):
            return mode
    raise ConfigurationError(
        f"fail_mode must be 'local' (fall back to in-process state), 'open' (allow) "
        f"or 'closed' (refuse), got {fail_mode!r}",
        field="fail_mode",
    )
