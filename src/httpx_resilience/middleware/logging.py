"""``LoggingMiddleware``: one log record per logical request, secrets redacted."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..observe.redact import redact_url, scrub_exception
from ..observe.redactor import DEFAULT_REDACTOR
from .base import Middleware

if TYPE_CHECKING:
    from ..models import HTTPRequest, HTTPResponse

__all__ = ["LoggingMiddleware"]


class LoggingMiddleware(Middleware):
    """Log method, redacted URL, status, elapsed time, attempts and request id.

    Successful responses log at ``level`` (DEBUG by default), 4xx at INFO,
    5xx at WARNING and exceptions at ERROR. The fields are in ``extra`` so
    JSON formatters and structlog pick them up. An error's text is scrubbed of
    secrets (a protocol error that quotes a header value, a URL with a token)
    and of personal data before it is logged.

    Args:
        logger: the logger (``httpx_resilience.http`` by default).
        level: the level for successful responses.
    """

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.DEBUG) -> None:
        self.logger = logger or logging.getLogger("httpx_resilience.http")
        self.level = level

    async def process_response(
        self, response: HTTPResponse, request: HTTPRequest
    ) -> HTTPResponse:
        return self.process_response_sync(response, request)

    async def process_error(self, error: BaseException, request: HTTPRequest) -> None:
        self.process_error_sync(error, request)

    def process_response_sync(self, response: HTTPResponse, request: HTTPRequest) -> HTTPResponse:
        """Log the final response (the one logic of both clients: nothing here waits)."""
        status = response.status_code
        level = self.level if status < 400 else logging.INFO if status < 500 else logging.WARNING
        if self.logger.isEnabledFor(level):
            url = redact_url(response.url or request.url)
            self.logger.log(
                level,
                "%s %s -> %d in %.3f s (%d attempt%s)",
                request.method, url, status, response.elapsed, response.attempts,
                "" if response.attempts == 1 else "s",
                extra={
                    "method": request.method,
                    "url": url,
                    "status_code": status,
                    "elapsed": response.elapsed,
                    "attempts": response.attempts,
                    "request_id": response.request_id,
                },
            )
        return response

    def process_error_sync(self, error: BaseException, request: HTTPRequest) -> None:
        """Log the failure, its text scrubbed of secrets and personal data."""
        if not self.logger.isEnabledFor(logging.ERROR):
            return
        url = redact_url(request.url)
        # In place: the same error is raised to the caller next, and its chain is
        # what a traceback prints.
        scrub_exception(error)
        self.logger.error(
            "%s %s failed: %s: %s",
            request.method, url, type(error).__name__, DEFAULT_REDACTOR.text(str(error)),
            extra={"method": request.method, "url": url, "error_type": type(error).__name__},
        )
