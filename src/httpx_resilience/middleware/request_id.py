"""``RequestIdMiddleware``: one request id per logical request."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from .base import Middleware

if TYPE_CHECKING:
    from ..client import AsyncHTTPClient
    from ..client._sync_client import HTTPClient
    from ..models import HTTPRequest

__all__ = ["RequestIdMiddleware"]


class RequestIdMiddleware(Middleware):
    """Set a request id header once per logical request, so every attempt carries the same id.

    A caller-supplied id is kept. The pipeline already sends ``X-Request-Id`` by
    default (``ClientConfig.request_id_header``); use this middleware for
    another header name or your own id format.

    Args:
        header: the header name.
        generator: makes a new id (a UUID4 string by default).
    """

    def __init__(
        self, header: str = "X-Request-Id", generator: Callable[[], str] | None = None
    ) -> None:
        self.header = header
        self.generator = generator or (lambda: str(uuid.uuid4()))

    async def process_request(
        self, request: HTTPRequest, client: AsyncHTTPClient
    ) -> HTTPRequest:
        return self.process_request_sync(request, client)

    def process_request_sync(
        self, request: HTTPRequest, client: AsyncHTTPClient | HTTPClient
    ) -> HTTPRequest:
        """Set the header unless the request has it (for both clients)."""
        lower = self.header.lower()
        if not any(k.lower() == lower for k in request.headers):
            request.headers[self.header] = self.generator()
        return request

    def __repr__(self) -> str:
        return f"RequestIdMiddleware(header={self.header!r})"
