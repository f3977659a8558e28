"""Where fetched access tokens live: the :class:`TokenCache` contract and its in-memory store.

:class:`~httpx_resilience.auth.OAuth2ClientCredentials` asks the cache before it
asks the token endpoint. The contract is small and every operation is atomic,
so a shared implementation (the Redis backend) can give one token to many
processes:

``get(key)``
    the cached token, or ``None`` when there is none or its TTL passed.
``set(key, token, ttl)``
    store a token for ``ttl`` seconds (the cache may drop it earlier).
``delete(key, fingerprint=None)``
    compare-and-delete: remove the token only if it is still the one whose
    :attr:`CachedToken.fingerprint` is given (or unconditionally when ``None``).
    After a 401, a hundred requests that carried the same rejected token
    invalidate it once, and never a newer token another request already fetched.
``lock(key)``
    an async context manager that serialises refreshes of one key
    (single-flight): the holder re-checks ``get`` and only then fetches.

Expiry decisions are the caller's: a :class:`CachedToken` carries its absolute
``expires_at`` on the wall clock (shared caches span processes, whose monotonic
clocks differ).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..clock import SYSTEM_CLOCK, Clock
from ._secret import Secret

__all__ = ["CachedToken", "InMemoryTokenCache", "TokenCache", "token_fingerprint"]


def token_fingerprint(token: str) -> str:
    """A stable, non-reversible id of a token (for compare-and-delete and debugging)."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class CachedToken:
    """An access token and when it stops being valid.

    Attributes:
        access_token: the token, held as a :class:`Secret`.
        expires_at: wall-clock time (seconds since the epoch) when it expires.
        token_type: the scheme sent in ``Authorization`` (always ``Bearer`` today).
        issued_at: wall-clock time it was obtained, when known; lets a caller
            refresh a short-lived token at half its lifetime instead of never
            considering it fresh.
        fingerprint: :func:`token_fingerprint` of the token (derived).
    """

    access_token: Secret
    expires_at: float
    token_type: str = "Bearer"
    issued_at: float | None = None
    fingerprint: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fingerprint = token_fingerprint(self.access_token.get_secret_value())
        object.__setattr__(self, "fingerprint", fingerprint)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable form (it contains the token: store it, never log it)."""
        return {
            "access_token": self.access_token.get_secret_value(),
            "expires_at": self.expires_at,
            "token_type": self.token_type,
            "issued_at": self.issued_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CachedToken:
        """Rebuild a token from :meth:`to_dict` output.

        Raises:
            KeyError: a field is missing.
            TypeError: a field has the wrong type.
        """
        token = data["access_token"]
        expires_at = data["expires_at"]
        issued_at = data.get("issued_at")
        if (
            not isinstance(token, str)
            or not isinstance(expires_at, int | float)
            or not isinstance(issued_at, int | float | None)
        ):
            raise TypeError(
                "CachedToken.from_dict: access_token must be a str, "
                "expires_at and issued_at numbers"
            )
        return cls(
            access_token=Secret(token),
            expires_at=float(expires_at),
            token_type=str(data.get("token_type", "Bearer")),
            issued_at=None if issued_at is None else float(issued_at),
        )


@runtime_checkable
class TokenCache(Protocol):
    """Storage for access tokens shared by every handler that uses the same key.

    Implementations must make each operation atomic; see the module docstring
    for the semantics of each one.
    """

    async def get(self, key: str) -> CachedToken | None:
        """Return the token stored under ``key``, or ``None``."""

    async def set(self, key: str, token: CachedToken, ttl: float) -> None:
        """Store ``token`` under ``key`` for at most ``ttl`` seconds."""

    async def delete(self, key: str, *, fingerprint: str | None = None) -> bool:
        """Remove the token (only if its fingerprint matches, when one is given).

        Returns:
            whether a token was removed.
        """

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        """Return an async context manager held while one caller refreshes ``key``."""


class InMemoryTokenCache:
    """A :class:`TokenCache` for one process (the default).

    Args:
        clock: time source for the TTLs (the system clock by default).
    """

    __slots__ = ("_clock", "_entries", "_locks")

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock = clock or SYSTEM_CLOCK
        self._entries: dict[str, tuple[CachedToken, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, key: str) -> CachedToken | None:
        """Return the token under ``key`` unless its TTL has passed."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        token, deadline = entry
        if self._clock.monotonic() >= deadline:
            del self._entries[key]
            return None
        return token

    async def set(self, key: str, token: CachedToken, ttl: float) -> None:
        """Store ``token`` for ``ttl`` seconds (zero or less stores nothing)."""
        if ttl <= 0:
            self._entries.pop(key, None)
            return
        self._entries[key] = (token, self._clock.monotonic() + ttl)

    async def delete(self, key: str, *, fingerprint: str | None = None) -> bool:
        """Remove the token, only if it has ``fingerprint`` when one is given."""
        entry = self._entries.get(key)
        if entry is None:
            return False
        if fingerprint is not None and entry[0].fingerprint != fingerprint:
            return False
        del self._entries[key]
        return True

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        """Return the per-key lock that single-flights refreshes in this process."""
        return self._held(key)

    @asynccontextmanager
    async def _held(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            yield

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"InMemoryTokenCache(entries={len(self._entries)})"
