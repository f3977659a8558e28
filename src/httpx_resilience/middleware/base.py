"""The ``Middleware`` base class (seed 001's contract), with async and sync hooks."""

from __future__ import annotations

from abc import ABC
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models import HTTPRequest, HTTPResponse

__all__ = ["SYNC_TWINS", "Middleware", "missing_sync_hooks"]

SYNC_TWINS: tuple[tuple[str, str], ...] = (
    ("process_request", "process_request_sync"),
    ("process_response", "process_response_sync"),
    ("process_error", "process_error_sync"),
)
"""Each async hook and the sync hook :class:`~httpx_resilience.HTTPClient` calls instead."""


class Middleware(ABC):  # noqa: B024 - every hook has a default; override what you need
    """A hook around each logical request of an :class:`~httpx_resilience.AsyncHTTPClient`
    or an :class:`~httpx_resilience.HTTPClient`.

    ``process_request`` runs in the order the middlewares were given, before
    auth and the resilience pipeline; ``process_response`` runs in reverse
    order on the final response (after retries); ``process_error`` when the
    request ends in an exception. Each runs once per logical request, not per
    attempt. The defaults pass their argument through, so a subclass
    overrides only what it needs.

    ``AsyncHTTPClient`` awaits the async hooks; ``HTTPClient`` calls their
    sync twins (``process_request_sync``, ``process_response_sync``,
    ``process_error_sync``). A middleware for both clients implements both
    (the built-in ones write the logic once, in the sync hook, and their async
    hooks call it). ``HTTPClient`` refuses, with a ``ConfigurationError``, a
    middleware that overrides an async hook but not its sync twin: its logic
    would be skipped silently.

    ``process_request`` receives the client sending the request. It is typed
    ``Any`` here because the clients themselves depend on this class; an
    override may annotate it as ``AsyncHTTPClient`` or ``HTTPClient``.
    """

    async def process_request(self, request: HTTPRequest, client: Any) -> HTTPRequest:
        """Return the request to send (it may be changed in place); ``client`` is the sender."""
        return request

    async def process_response(
        self, response: HTTPResponse, request: HTTPRequest
    ) -> HTTPResponse:
        """Return the response to hand to the caller."""
        return response

    async def process_error(self, error: BaseException, request: HTTPRequest) -> None:
        """Called when the request ends in an exception (which is then re-raised)."""
        return None

    def process_request_sync(self, request: HTTPRequest, client: Any) -> HTTPRequest:
        """:meth:`process_request` for ``HTTPClient``: return the request to send."""
        return request

    def process_response_sync(self, response: HTTPResponse, request: HTTPRequest) -> HTTPResponse:
        """:meth:`process_response` for ``HTTPClient``: return the response to hand back."""
        return response

    def process_error_sync(self, error: BaseException, request: HTTPRequest) -> None:
        """:meth:`process_error` for ``HTTPClient`` (the exception is then re-raised)."""
        return None


def missing_sync_hooks(middleware: Middleware) -> list[str]:
    """The sync hooks ``middleware`` lacks: those whose async twin its class overrides
    while it keeps the pass-through default of the sync one."""
    cls = type(middleware)
    return [
        sync_name
        for async_name, sync_name in SYNC_TWINS
        if getattr(cls, async_name) is not getattr(Middleware, async_name)
        and getattr(cls, sync_name) is getattr(Middleware, sync_name)
    ]
