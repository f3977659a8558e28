"""The :class:`AuthHandler` base: one credential source, usable as an ``httpx.Auth``.

An auth handler turns a request into an authenticated request with
:meth:`AuthHandler.prepare_request`. The same object works three ways:

* as ``httpx.AsyncClient(auth=handler)`` (the async flow below);
* as ``httpx.Client(auth=handler)`` when its credential needs no async I/O
  (static tokens, API keys, Basic, JWT signing); otherwise the sync flow raises
  :class:`~httpx_resilience.AuthenticationError` telling you to use an async client;
* under :class:`~httpx_resilience.ResilientTransport`, which re-applies
  time-based credentials before every retry attempt (see below).

The async flow::

    prepare_request(request)  ->  send  ->  401 from the same origin?
        refreshable handler:  invalidate(request) -> prepare_request -> send once more
        (a second 401 is returned to the caller; the flow never loops)

A request whose body is an already-consumed stream is not replayed (the 401 is
returned). The sync flow prepares and sends; it does not refresh on a 401.

The transport contract (``request.extensions["resilience"]``)
-------------------------------------------------------------

Before it yields a request the flow stores itself and the request's origin::

    request.extensions["resilience"]["auth"] = handler
    request.extensions["resilience"]["auth_origin"] = "https://api.example.com:443"

When ``handler.per_attempt`` is true (the credential is time-based: OAuth2
tokens, JWTs, token providers) the retrying transport calls
``await handler.prepare_request(request)`` again before each retry, so a retry
never resends a token that expired while the first attempt was failing.
``prepare_request`` is therefore idempotent: it overwrites headers and query
parameters, it never appends.

Credentials belong to the origin they were configured for. httpx copies a
request's extensions onto the requests it builds for redirects, so a handler
can tell when it is asked to authenticate a request that a redirect moved to
another origin: ``prepare_request`` then *removes* its credentials instead of
adding them. httpx itself strips ``Authorization`` on a cross-origin redirect
but forwards other headers (an ``X-API-KEY``, ``Proxy-Authorization``); add
:func:`async_strip_foreign_credentials` (or :func:`strip_foreign_credentials`
for a sync client) as a ``"request"`` event hook to strip those too.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import AsyncGenerator, Generator
from typing import Any

import httpx

from ..exceptions import AuthenticationError
from ..observe.redact import scrub_exception

__all__ = [
    "EXTENSION_KEY",
    "AuthHandler",
    "async_strip_foreign_credentials",
    "origin_of",
    "strip_foreign_credentials",
]

logger = logging.getLogger("httpx_resilience.auth")

EXTENSION_KEY = "resilience"
"""The one namespaced ``request.extensions`` key shared with the transport."""

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: httpx.URL) -> str:
    """Return ``scheme://host:port`` for ``url`` (default ports made explicit)."""
    port = url.port if url.port is not None else _DEFAULT_PORTS.get(url.scheme)
    return f"{url.scheme}://{url.host}:{port}"


def _is_https_upgrade(origin: str, url: httpx.URL) -> bool:
    # httpx keeps Authorization on a plain http -> https redirect to the same
    # host on default ports; mirror it so a retry does not behave differently
    # from the first attempt.
    return (
        origin.startswith("http://")
        and origin.endswith(":80")
        and url.scheme == "https"
        and origin == f"http://{url.host}:80"
        and url.port in (None, 443)
    )


def _credential_problem(value: str) -> str | None:
    """Why ``value`` cannot go into a header, or ``None`` (never quotes the value)."""
    if not value:
        return "is empty"
    if value.rstrip("\r\n") != value and value.rstrip("\r\n") == value.strip():
        return "ends with a line break (read from a file?): strip it"
    if value != value.strip():
        return "has leading or trailing whitespace: strip it"
    if any(ord(c) < 0x20 or ord(c) > 0x7E for c in value):
        return "contains control or non-ASCII characters"
    return None


def _resilience(request: httpx.Request) -> dict[str, Any]:
    ext = request.extensions.get(EXTENSION_KEY)
    return ext if isinstance(ext, dict) else {}


def _is_replayable(request: httpx.Request) -> bool:
    try:
        request.content  # noqa: B018 - raises when the body is an unread stream
    except httpx.RequestNotRead:
        return False
    return True


class AuthHandler(httpx.Auth, abc.ABC):
    """Base class of every auth plugin; also a valid ``httpx.Auth``.

    Subclasses implement :meth:`prepare_request` (and, when the credential can be
    produced without async I/O, :meth:`sync_prepare_request`). Built-in handlers
    call :meth:`is_foreign` first and :meth:`strip_credentials` for a request a
    redirect moved to another origin; custom handlers should do the same.

    Attributes:
        per_attempt: the credential is time-based; the retrying transport calls
            :meth:`prepare_request` again before each retry attempt.
        refreshable: a 401 from the origin invalidates the credential, which is
            refreshed once and the request replayed once.
    """

    per_attempt: bool = False
    refreshable: bool = False

    @abc.abstractmethod
    async def prepare_request(self, request: httpx.Request) -> httpx.Request:
        """Add (overwrite) this handler's credentials on ``request`` and return it.

        Must be idempotent: it may run again on the same request before a retry.

        Args:
            request: the outgoing request.

        Raises:
            AuthenticationError: the credential could not be obtained.
        """

    def sync_prepare_request(self, request: httpx.Request) -> httpx.Request:
        """The synchronous twin of :meth:`prepare_request`, used by ``httpx.Client``.

        The default refuses: the credential needs async I/O.

        Raises:
            AuthenticationError: always, unless a subclass can work synchronously.
        """
        raise AuthenticationError(
            f"{type(self).__name__} obtains credentials with async I/O and cannot run "
            "under a synchronous httpx.Client",
            hint="Use httpx.AsyncClient or httpx_resilience.AsyncHTTPClient",
        )

    async def invalidate(self, request: httpx.Request) -> None:
        """Forget the credential that ``request`` carried (called after a 401).

        Only that credential is dropped: a newer one fetched meanwhile by a
        concurrent request is kept. The default does nothing.

        Args:
            request: the request the server refused.
        """

    def strip_credentials(self, request: httpx.Request) -> httpx.Request:
        """Remove what this handler adds (the default removes ``Authorization``).

        Args:
            request: the request to clean, changed in place and returned.
        """
        request.headers.pop("Authorization", None)
        return request

    @property
    def sensitive_headers(self) -> frozenset[str]:
        """Lower-cased header names this handler writes (for log redaction)."""
        return frozenset({"authorization"})

    @property
    def sensitive_query_params(self) -> frozenset[str]:
        """Query parameter names this handler writes (for log redaction)."""
        return frozenset()

    def is_foreign(self, request: httpx.Request) -> bool:
        """Whether a redirect moved ``request`` away from the origin it was authorised for.

        A request that never went through this handler's auth flow (no
        ``auth_origin`` in its extensions) is never foreign.
        """
        origin = _resilience(request).get("auth_origin")
        if not isinstance(origin, str):
            return False
        return origin != origin_of(request.url) and not _is_https_upgrade(origin, request.url)

    def attach(self, request: httpx.Request) -> None:
        """Record this handler and the request's origin in ``request.extensions``.

        Replaces the extension dicts (never mutates shared ones) so per-request
        state cannot leak between requests. Called by both auth flows. An
        origin already recorded is kept: a redirect's ``response.next_request``
        sent by hand carries the original origin, so credentials are not
        re-added for the redirect target.
        """
        ext = request.extensions
        inner = dict(_resilience(request))
        inner["auth"] = self
        inner.setdefault("auth_origin", origin_of(request.url))
        request.extensions = {**ext, EXTENSION_KEY: inner}

    def _should_refresh(self, request: httpx.Request, response: httpx.Response) -> bool:
        if response.status_code != 401 or not self.refreshable:
            return False
        try:
            final = response.request  # the last hop when redirects were followed
        except RuntimeError:
            final = request
        if self.is_foreign(final):
            logger.debug("401 came from another origin after a redirect; not refreshing")
            return False
        if not _is_replayable(request):
            logger.debug("401 on a request with a streamed body; cannot replay it")
            return False
        return True

    async def _prepare(self, request: httpx.Request) -> httpx.Request:
        try:
            return await self.prepare_request(request)
        except Exception as exc:
            # A custom handler's (or a provider's) message may quote a credential.
            scrub_exception(exc)
            raise

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Authenticate, send, and on a 401 refresh once and replay once.

        An error raised while preparing credentials is scrubbed of secrets
        (:func:`~httpx_resilience.observe.redact.scrub_exception`) before it propagates.
        """
        self.attach(request)
        request = await self._prepare(request)
        response = yield request
        if self._should_refresh(request, response):
            logger.info(
                "%s: 401 from %s; refreshing the credential and replaying once",
                type(self).__name__,
                origin_of(request.url),
            )
            await self.invalidate(request)
            request = await self._prepare(request)
            yield request

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Authenticate with :meth:`sync_prepare_request` and send (no 401 refresh)."""
        self.attach(request)
        try:
            prepared = self.sync_prepare_request(request)
        except Exception as exc:
            scrub_exception(exc)
            raise
        yield prepared


def _strip(request: httpx.Request) -> None:
    auth = _resilience(request).get("auth")
    if isinstance(auth, AuthHandler) and auth.is_foreign(request):
        auth.strip_credentials(request)
        request.headers.pop("Proxy-Authorization", None)


def strip_foreign_credentials(request: httpx.Request) -> None:
    """A ``"request"`` event hook for ``httpx.Client``: no credentials to other origins.

    When a redirect moved the request to another origin, removes every
    credential the request's auth handler added (``X-API-KEY`` headers and
    query keys included, which httpx would forward) and ``Proxy-Authorization``.

    Args:
        request: the request about to be sent.
    """
    _strip(request)


async def async_strip_foreign_credentials(request: httpx.Request) -> None:
    """The ``httpx.AsyncClient`` form of :func:`strip_foreign_credentials`.

    Use it as::

        httpx.AsyncClient(auth=..., event_hooks={"request": [async_strip_foreign_credentials]})

    Args:
        request: the request about to be sent.
    """
    _strip(request)
