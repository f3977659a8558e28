"""Mixed authentication: a primary credential, and a fallback when it cannot be produced.

Seed 004's pattern, as a handler::

    try:
        headers = {"Authorization": f"Bearer {create_service_token(...)}"}
    except Exception:
        headers = {"X-API-KEY": api_key}

becomes ``FallbackAuth(JWTAuth(...), APIKeyAuth(api_key))``.

Per attempt: when either side is (``per_attempt = primary.per_attempt or
fallback.per_attempt``). The primary is tried again on every request (and
attempt), so the handler returns to it as soon as it works again.

Only a failure to *prepare* credentials falls back (the primary raised: a
missing JWT key, a token endpoint that is down). A 401 from the server is not
a reason to send a different credential; it refreshes the handler that was
used, as usual.

Logging (logger ``httpx_resilience.auth``): one WARNING when the primary starts
failing, DEBUG while it keeps failing, one INFO when it recovers. Messages name
the handlers and the error type, never a credential.
"""

from __future__ import annotations

import logging
import threading

import httpx

from ..exceptions import AuthenticationError, ConfigurationError, HTTPClientError
from ..observe.redact import scrub_exception, scrub_text
from .base import AuthHandler

__all__ = ["FallbackAuth"]

logger = logging.getLogger("httpx_resilience.auth")


def _describe(exc: Exception) -> str:
    # Our own errors are composed to be safe to show (and scrubbed once more in
    # case a server's text reached them); anything else might quote a
    # credential in its message, so only its type is named.
    if isinstance(exc, HTTPClientError):
        return scrub_text(f"{type(exc).__name__}: {exc}")
    return type(exc).__name__


class FallbackAuth(AuthHandler):
    """Use ``primary``; if it raises while preparing credentials, use ``fallback``.

    Args:
        primary: the preferred handler (for example :class:`JWTAuth`).
        fallback: the handler used while the primary fails (for example
            :class:`APIKeyAuth`).

    Raises:
        ConfigurationError: either argument is not an :class:`AuthHandler`
            (``field="primary"`` or ``field="fallback"``).

    When both fail, :meth:`prepare_request` raises ``AuthenticationError``
    chained to the fallback's error.
    """

    def __init__(self, primary: AuthHandler, fallback: AuthHandler) -> None:
        for name, handler in (("primary", primary), ("fallback", fallback)):
            if not isinstance(handler, AuthHandler):
                raise ConfigurationError(
                    f"FallbackAuth: {name} must be an AuthHandler, not {type(handler).__name__}",
                    field=name,
                )
        self.primary = primary
        self.fallback = fallback
        self.per_attempt = primary.per_attempt or fallback.per_attempt
        self.refreshable = primary.refreshable or fallback.refreshable
        self._degraded = False
        self._state_lock = threading.Lock()

    @property
    def degraded(self) -> bool:
        """Whether the last attempt used the fallback."""
        return self._degraded

    def _primary_failed(self, exc: Exception) -> None:
        scrub_exception(exc)  # kept as the fallback's __context__: tracebacks print it
        with self._state_lock:
            first, self._degraded = not self._degraded, True
        if first:
            logger.warning(
                "FallbackAuth: primary %s failed (%s); using fallback %s until it recovers",
                type(self.primary).__name__,
                _describe(exc),
                type(self.fallback).__name__,
            )
        else:
            logger.debug("FallbackAuth: primary still failing (%s)", type(exc).__name__)

    def _primary_worked(self) -> None:
        with self._state_lock:
            recovered, self._degraded = self._degraded, False
        if recovered:
            logger.info(
                "FallbackAuth: primary %s works again; fallback no longer used",
                type(self.primary).__name__,
            )

    def _both_failed(self, exc: Exception) -> AuthenticationError:
        scrub_exception(exc)
        return AuthenticationError(
            f"FallbackAuth: primary {type(self.primary).__name__} and fallback "
            f"{type(self.fallback).__name__} both failed; fallback: {_describe(exc)}",
        )

    async def prepare_request(self, request: httpx.Request) -> httpx.Request:
        """Apply the primary's credentials, or the fallback's if the primary raises.

        Raises:
            AuthenticationError: both handlers failed.
        """
        if self.is_foreign(request):
            return self.strip_credentials(request)
        # Strip first: both may write the same header (Authorization).
        self.fallback.strip_credentials(request)
        try:
            request = await self.primary.prepare_request(request)
        except Exception as exc:
            self._primary_failed(exc)
        else:
            self._primary_worked()
            return request
        self.primary.strip_credentials(request)
        try:
            return await self.fallback.prepare_request(request)
        except Exception as exc:
            raise self._both_failed(exc) from exc

    def sync_prepare_request(self, request: httpx.Request) -> httpx.Request:
        """The synchronous form of :meth:`prepare_request` (for ``httpx.Client``).

        Raises:
            AuthenticationError: both handlers failed.
        """
        if self.is_foreign(request):
            return self.strip_credentials(request)
        self.fallback.strip_credentials(request)
        try:
            request = self.primary.sync_prepare_request(request)
        except Exception as exc:
            self._primary_failed(exc)
        else:
            self._primary_worked()
            return request
        self.primary.strip_credentials(request)
        try:
            return self.fallback.sync_prepare_request(request)
        except Exception as exc:
            raise self._both_failed(exc) from exc

    async def invalidate(self, request: httpx.Request) -> None:
        """Let each handler drop its credential if ``request`` carried it."""
        await self.primary.invalidate(request)
        await self.fallback.invalidate(request)

    def strip_credentials(self, request: httpx.Request) -> httpx.Request:
        """Remove both handlers' credentials."""
        self.primary.strip_credentials(request)
        return self.fallback.strip_credentials(request)

    @property
    def sensitive_headers(self) -> frozenset[str]:
        """Header names either handler writes."""
        return self.primary.sensitive_headers | self.fallback.sensitive_headers

    @property
    def sensitive_query_params(self) -> frozenset[str]:
        """Query parameter names either handler writes."""
        return self.primary.sensitive_query_params | self.fallback.sensitive_query_params

    def __repr__(self) -> str:
        return f"FallbackAuth(primary={self.primary!r}, fallback={self.fallback!r})"
