"""How :class:`~httpx_resilience.AsyncHTTPClient` turns failures and outcomes into our errors.

Two decisions at the client's edge, both pure functions of what came back:

* :func:`translate_error`: an exception raised while building or sending is
  mapped onto our tree (``RequestTimeoutError``, ``InvalidRequestError``,
  ``RequestNotReplayableError``, ``HTTPRequestError``), keeping its httpx
  class: an ``httpx.ConnectError`` becomes an ``HTTPRequestError`` that is
  still an ``httpx.ConnectError``, an ``httpx.ReadTimeout`` a
  ``RequestTimeoutError`` that is still an ``httpx.ReadTimeout``. Errors
  already in the tree pass through (only the service name is filled in), and
  anything that is not an httpx request error (``CancelledError``, a bug) is
  returned unchanged so the caller re-raises it as it was.
* :func:`raise_for_outcome`: a response the pipeline returned is still an
  error when it is a 429 or when retrying gave up on a retryable status; the
  pipeline's :class:`~httpx_resilience.ResilienceInfo` says which. Both errors
  are ``httpx.HTTPStatusError`` too, their ``response`` the ``httpx.Response``.

They live apart from the client so the facade reads as the request flow, and
so the mapping can be read (and tested) as one table.
"""

from __future__ import annotations

from typing import Any

import httpx

from ..exceptions import (
    HTTPClientError,
    HTTPResponseError,
    InvalidRequestError,
    RateLimitError,
    RequestNotReplayableError,
    RequestTimeoutError,
    RetryExhaustedError,
)
from ..models import HTTPRequest, HTTPResponse
from ..observe.redact import scrub_exception
from ..pipeline import EXTENSION_KEY, ResilienceInfo
from ..pipeline._httpx_errors import error_class, httpx_class

__all__ = ["RetryExhaustedHTTPStatusError", "raise_for_outcome", "translate_error"]


# ``status_code`` is ``int | None`` on RetryExhaustedError, always an ``int`` here.
class RetryExhaustedHTTPStatusError(RetryExhaustedError, HTTPResponseError):  # type: ignore[misc]
    """Retries ended on an error status: a :class:`RetryExhaustedError` that is also
    an :class:`HTTPResponseError` and an ``httpx.HTTPStatusError`` (its ``response``
    the last ``httpx.Response``, ``http_response`` and ``last_response`` the
    :class:`HTTPResponse`).
    """

    def __init__(
        self, message: str, *, attempts: int, response: HTTPResponse,
        retry_after: float | None = None, **kw: Any,
    ) -> None:
        HTTPResponseError.__init__(self, response.status_code, message, response, **kw)
        self.attempts = attempts
        self.last_error = None
        self.last_response = response
        self.retry_after = retry_after


def translate_error(exc: BaseException, req: HTTPRequest, service: str | None) -> BaseException:
    """Map a raw httpx error onto our tree (ours pass through unchanged).

    Args:
        exc: what building or sending the request raised.
        req: the logical request (its method and URL go into the error).
        service: the client's service name, set on errors that lack one.

    Returns:
        The error to raise: ``exc`` itself when it is ours or not an httpx
        request error (the caller then re-raises it as is), else a new error
        of our tree that the caller chains to ``exc`` with ``from``.
    """
    if isinstance(exc, Exception):
        # Its text goes into our message (and tracebacks print it as the cause):
        # an illegal header value quoted by the transport is hidden first.
        scrub_exception(exc)
    if isinstance(exc, HTTPClientError):
        # Raised inside the transport, which does not know the client's name.
        if exc.service is None and service:
            exc.service = service
        return exc
    kw: dict[str, Any] = {"service": service}
    # httpx keeps the request in ``_request``; its ``.request`` property raises
    # when there is none (an error raised before a request was built).
    request = getattr(exc, "_request", None)
    if isinstance(exc, httpx.UnsupportedProtocol):
        return InvalidRequestError(
            f"Unsupported URL scheme: {exc}", method=req.method, url=req.url, **kw
        )
    if isinstance(exc, httpx.StreamError):
        return RequestNotReplayableError(
            f"The request body stream could not be sent again: {exc}",
            request=request, **kw,
        )
    if isinstance(exc, httpx.RequestError):
        # Of our tree and still of the error's httpx class (ConnectError, ReadTimeout...).
        cls = error_class(httpx_class(exc) or httpx.TransportError)
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if issubclass(cls, RequestTimeoutError):
            return cls(message, timeout=None, phase="attempt", request=request, **kw)
        if request is None:  # else the request's own (absolute) URL is shown
            kw.update(method=req.method, url=req.url)
        hint = (
            "The request is malformed (a header value with a line break, say); fix it"
            if isinstance(exc, httpx.LocalProtocolError)
            else "Check that the upstream is reachable"
        )
        return cls(message, request=request, hint=hint, **kw)
    return exc


def raise_for_outcome(response: HTTPResponse, req: HTTPRequest, service: str | None) -> None:
    """Raise when the final response is an error the caller must not miss.

    Other 4xx/5xx responses are returned to the caller, who decides
    (``raise_for_status()``); these two are raised because the pipeline has
    already acted on them.

    Args:
        response: the final response, after the response middlewares.
        req: the logical request.
        service: the client's service name, for the error.

    Raises:
        RateLimitError: the final status is 429 (with the server's
            ``Retry-After``, when it gave one).
        RetryExhaustedHTTPStatusError: retrying stopped on a retryable status
            (attempts, budget, deadline or a too-long ``Retry-After``): a
            ``RetryExhaustedError``, an ``HTTPResponseError`` and an
            ``httpx.HTTPStatusError``, chained from an ``HTTPResponseError``
            for that last status.
    """
    info = response.extensions.get(EXTENSION_KEY)
    # A user-supplied transport (or a middleware) may leave no ResilienceInfo.
    retry_after = info.retry_after if isinstance(info, ResilienceInfo) else None
    if response.status_code == 429:
        raise RateLimitError(
            429,
            f"HTTP 429 Too Many Requests after {response.attempts} attempt(s)",
            response,
            retry_after=retry_after,
            service=service,
        )
    if isinstance(info, ResilienceInfo) and info.exhausted:
        cause = HTTPResponseError(
            response.status_code,
            f"HTTP {response.status_code} {response.reason_phrase}",
            response,
        )
        err = RetryExhaustedHTTPStatusError(
            f"HTTP {response.status_code} {response.reason_phrase} after "
            f"{response.attempts} attempt(s) (stopped: {info.stop_reason})",
            attempts=response.attempts,
            response=response,
            retry_after=retry_after,
            method=req.method,
            url=response.url or req.url,
            service=service,
            hint="The upstream keeps failing; check its health or raise retry_attempts",
        )
        raise err from cause
