"""The ``Middleware`` base class (seed 001's contract)."""

from __future__ import annotations

from abc import ABC
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models import HTTPRequest, HTTPResponse

__all__ = ["Middleware"]


class Middleware(ABC):  # noqa: B024 - both hooks have defaults; override what you need
    """A hook around each logical request of an :class:`~httpx_resilience.AsyncHTTPClient`.

    ``process_request`` runs in the order the middlewares were given, before
    auth and the resilience pipeline; ``process_response`` runs in reverse
    order on the final response (after retries). Both run once per logical
    request, not per attempt. The defaults pass their argument through, so a
    subclass overrides only what it needs.

    ``process_request`` receives the :class:`~httpx_resilience.AsyncHTTPClient`
    sending the request. It is typed ``Any`` here because the client itself
    depends on this class; an override may annotate it as ``AsyncHTTPClient``.
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
