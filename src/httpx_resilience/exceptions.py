"""The exception tree of httpx-resilience.

::

    HTTPClientError                      base of everything we raise
    ├── HTTPRequestError                 no response (also httpx.TransportError)
    │   ├── RequestTimeoutError          a deadline passed (also httpx.TimeoutException)
    │   └── RequestNotReplayableError    a retry needs a body that was consumed
    ├── HTTPResponseError                an error status (also httpx.HTTPStatusError)
    │   └── RateLimitError               429 Too Many Requests, with ``retry_after``
    ├── RetryExhaustedError              retries ended without success (also httpx.TransportError)
    ├── CircuitBreakerOpenError          the breaker refused; nothing sent (httpx.TransportError)
    ├── RateLimiterTimeout               the limiter would wait past ``max_wait``; nothing sent
    ├── BulkheadFullError                too many concurrent requests; nothing sent
    ├── ThrottledError                   the adaptive throttle refused; nothing sent
    ├── SharedStateUnavailableError      Redis away and fail_mode="closed"; nothing sent (backends)
    ├── ResponseTooLargeError            a body passed max_response_bytes (httpx.RequestError)
    ├── ResponseDecodeError              the body is not the JSON it claims to be (also ValueError)
    ├── InvalidRequestError              a request that cannot be sent as given (also ValueError)
    │   └── InvalidURLError              a URL no connection can be made to (also httpx.InvalidURL)
    ├── AuthenticationError              credentials could not be obtained or were refused
    ├── ExternalServiceError             one error type per named service (seed 003/004)
    └── ConfigurationError               a bad setting (also ValueError)

Errors raised inside :class:`~httpx_resilience.ResilientTransport` subclass the
matching httpx class, so code written for plain httpx keeps working (giving up
on an ``httpx.ReadTimeout`` raises a ``RetryExhaustedError`` that is an
``httpx.ReadTimeout`` too: ``pipeline._httpx_errors``). Every message names the
method and URL (secrets redacted), the service when known, and what to do.
"""

from __future__ import annotations

from typing import Any

import httpx

from .observe.redact import redact_url

__all__ = [
    "AuthenticationError",
    "BulkheadFullError",
    "CircuitBreakerOpenError",
    "ConfigurationError",
    "ExternalServiceError",
    "HTTPClientError",
    "HTTPRequestError",
    "HTTPResponseError",
    "InvalidRequestError",
    "InvalidURLError",
    "RateLimitError",
    "RateLimiterTimeout",
    "RequestNotReplayableError",
    "RequestTimeoutError",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "RetryExhaustedError",
]

TIMEOUT_HINT = "Raise ClientConfig.timeout/total_timeout if the upstream is legitimately slow"


class HTTPClientError(Exception):
    """Base class of every error httpx-resilience raises.

    Args:
        message: what happened.
        method: the HTTP method, when a request is involved.
        url: the URL; it is redacted before it is shown.
        service: the named service or host.
        hint: what the caller can do about it.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: object | None = None,
        service: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.method = method
        self.url = redact_url(url) if url is not None else None
        self.service = service
        self.hint = hint
        Exception.__init__(self, self._compose())

    def _compose(self) -> str:
        text = self.message
        where = " ".join(p for p in (self.method, self.url) if p)
        if (
            self.service
            and self.service not in (self.url or "")
            and not self.message.startswith(self.service)
        ):
            where = f"{where} (service {self.service})" if where else f"service {self.service}"
        if where:
            text = f"{text} [{where}]"
        if self.hint:
            text = f"{text}. {self.hint}"
        return text

    def __str__(self) -> str:
        return self._compose()

    def __reduce__(self) -> tuple[Any, ...]:
        # By state: the constructors take keyword arguments that ``args`` lacks.
        return (restore_error, (type(self), self.args, dict(self.__dict__)))


def restore_error(
    cls: type[HTTPClientError], args: tuple[Any, ...], state: dict[str, Any]
) -> HTTPClientError:
    """Unpickle an error of the tree: its class, then its arguments and attributes as saved."""
    err = cls.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err


class _HttpxCompatible(HTTPClientError):
    """Mixin base for errors that must also be an httpx exception.

    ``httpx.HTTPError`` keeps the request in ``_request``; we set it when known
    so ``exc.request`` works as in httpx.
    """

    def __init__(self, message: str, *, request: httpx.Request | None = None, **kw: Any) -> None:
        if request is not None:
            kw.setdefault("method", request.method)
            kw.setdefault("url", request.url)
            kw.setdefault("service", request.url.host or None)
        HTTPClientError.__init__(self, message, **kw)
        self._request = request


class HTTPRequestError(_HttpxCompatible, httpx.TransportError):
    """The request failed before any response arrived (connection, protocol, timeout)."""


class RequestTimeoutError(HTTPRequestError, httpx.TimeoutException):
    """An attempt timeout or the total deadline passed.

    Attributes:
        timeout: the limit that passed, in seconds.
        phase: ``"attempt"`` or ``"total"``.
        attempts: attempts made when the total deadline passed.
    """

    def __init__(
        self, message: str, *, timeout: float | None = None, phase: str = "attempt",
        attempts: int | None = None, request: httpx.Request | None = None, **kw: Any,
    ) -> None:
        self.timeout = timeout
        self.phase = phase
        self.attempts = attempts
        kw.setdefault("hint", TIMEOUT_HINT)
        super().__init__(message, request=request, **kw)


class RequestNotReplayableError(HTTPRequestError):
    """A retry was due but the request body is a stream that was already consumed.

    Send a replayable body (``bytes``, ``json=``, ``data=``) or disable retries
    for this request; the request is never re-sent with an empty body.
    """


class HTTPResponseError(HTTPClientError, httpx.HTTPStatusError):
    """A response with an error status (4xx/5xx); also an ``httpx.HTTPStatusError``.

    Args:
        status_code: the HTTP status.
        message: what happened.
        response: the :class:`~httpx_resilience.HTTPResponse` or ``httpx.Response``.

    Attributes:
        response: the ``httpx.Response``, as in httpx: the one the
            ``HTTPResponse`` wraps, else one rebuilt from it (a bare one with the
            status when no response was given).
        http_response: the ``HTTPResponse`` given, when one was.
        request: the ``httpx.Request`` of the response (httpx's property: it
            raises ``RuntimeError`` when the response has none).
    """

    def __init__(self, status_code: int, message: str, response: Any = None, **kw: Any) -> None:
        self.status_code = status_code
        raw = _httpx_response(response, status_code)
        self.response = raw
        self.http_response = None if response is raw else response
        self._request = raw._request
        req = getattr(response, "request", None)
        if req is not None:
            kw.setdefault("method", getattr(req, "method", None))
        url = getattr(response, "url", None) or getattr(req, "url", None)
        if url:
            kw.setdefault("url", url)
        super().__init__(message, **kw)


def _httpx_response(response: Any, status_code: int) -> httpx.Response:
    """The ``httpx.Response`` behind ``response`` (an ``HTTPResponse`` knows how to give one)."""
    if isinstance(response, httpx.Response):
        return response
    to_httpx = getattr(response, "to_httpx", None)
    if callable(to_httpx):
        raw = to_httpx()
        if isinstance(raw, httpx.Response):
            return raw
    return httpx.Response(status_code)


class RateLimitError(HTTPResponseError):
    """The upstream answered 429 Too Many Requests.

    Attributes:
        retry_after: seconds the server asked us to wait, when it said.
    """

    def __init__(
        self, status_code: int, message: str, response: Any = None, *,
        retry_after: float | None = None, **kw: Any,
    ) -> None:
        self.retry_after = retry_after
        if retry_after is not None:
            kw.setdefault("hint", f"The server asked to retry after {retry_after:g} s")
        else:
            kw.setdefault("hint", "Slow down: lower the request rate or add a rate limiter")
        super().__init__(status_code, message, response, **kw)


class RetryExhaustedError(_HttpxCompatible, httpx.TransportError):
    """Every permitted attempt failed (or the next one could not be made).

    The error raised is of a subclass that is also what the last failure was:
    an ``httpx.ReadTimeout`` and a :class:`RequestTimeoutError` when the last
    attempt timed out reading, an ``httpx.ConnectError`` and an
    :class:`HTTPRequestError` when it could not connect, an
    :class:`HTTPResponseError` (``httpx.HTTPStatusError``) when it was a status.

    Attributes:
        attempts: how many attempts were made.
        last_error: the last exception, also chained as ``__cause__``.
        last_response: the last response when the final failure was a status.
        retry_after: the server's ``Retry-After`` when that ended the retries.
        status_code: the last response's status, when there was one.
    """

    def __init__(
        self, message: str, *, attempts: int, last_error: BaseException | None = None,
        last_response: Any = None, retry_after: float | None = None,
        request: httpx.Request | None = None, **kw: Any,
    ) -> None:
        self.attempts = attempts
        self.last_error = last_error
        self.last_response = last_response
        self.retry_after = retry_after
        self.status_code: int | None = getattr(last_response, "status_code", None)
        # Not super(): in the classes that are also a RequestTimeoutError its
        # constructor would reset ``attempts``.
        _HttpxCompatible.__init__(self, message, request=request, **kw)


class CircuitBreakerOpenError(_HttpxCompatible, httpx.TransportError):
    """The circuit breaker is open: the request was refused and nothing was sent.

    Attributes:
        name: the breaker's name (a host or a service).
        retry_in: seconds until the breaker lets a probe through.
    """

    def __init__(
        self, name: str, retry_in: float, *, request: httpx.Request | None = None, **kw: Any
    ) -> None:
        self.name = name
        self.retry_in = max(0.0, retry_in)
        kw.setdefault(
            "hint",
            f"The upstream failed repeatedly; the next probe is allowed in {self.retry_in:.1f} s",
        )
        super().__init__(f"Circuit breaker {name!r} is open", request=request, **kw)


class RateLimiterTimeout(_HttpxCompatible, httpx.TransportError):
    """The rate limiter would have waited longer than ``max_wait``; nothing was sent.

    Attributes:
        waited: seconds already waited.
        needed: seconds that a permit would still have taken.
    """

    def __init__(
        self, message: str, *, waited: float = 0.0, needed: float | None = None,
        request: httpx.Request | None = None, **kw: Any,
    ) -> None:
        self.waited = waited
        self.needed = needed
        kw.setdefault("hint", "Lower the request rate, raise the limit or raise max_wait")
        super().__init__(message, request=request, **kw)


class BulkheadFullError(_HttpxCompatible, httpx.TransportError):
    """The bulkhead's concurrency cap and queue are full; nothing was sent.

    Attributes:
        max_concurrent: the cap.
        max_queue: the queue length.
    """

    def __init__(
        self, message: str, *, max_concurrent: int = 0, max_queue: int = 0,
        request: httpx.Request | None = None, **kw: Any,
    ) -> None:
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        kw.setdefault("hint", "Raise Bulkhead(max_concurrent=..., max_queue=...) or shed load")
        super().__init__(message, request=request, **kw)


class ResponseTooLargeError(_HttpxCompatible, httpx.RequestError):
    """A buffered response body grew past its cap (``max_response_bytes``).

    The connection is closed rather than drained; nothing more is read.

    Attributes:
        limit: the cap in bytes that was passed.
        received: bytes read when reading stopped (more than ``limit``).
    """

    def __init__(
        self, message: str, *, limit: int, received: int, request: httpx.Request | None = None,
        **kw: Any,
    ) -> None:
        self.limit = limit
        self.received = received
        super().__init__(message, request=request, **kw)


class ResponseDecodeError(HTTPClientError, ValueError):
    """The response body could not be decoded (for example, malformed JSON)."""


class InvalidRequestError(HTTPClientError, ValueError):
    """A request that cannot be sent as given: a URL without scheme, an unknown method,
    or contradictory body arguments. Nothing was sent."""


class InvalidURLError(InvalidRequestError, httpx.InvalidURL):
    """A URL no connection can be made to: no host, a port outside 1-65535, a host
    name that is not a valid DNS name or IP address. Raised before any connection;
    nothing was sent. Also an ``httpx.InvalidURL``, as httpx raises for URLs it
    cannot parse."""


class AuthenticationError(HTTPClientError):
    """Credentials could not be obtained, or the server refused them.

    Attributes:
        error: the OAuth ``error`` code when the token endpoint gave one.
        status_code: the HTTP status when there was a response.
    """

    def __init__(
        self, message: str, *, error: str | None = None, status_code: int | None = None, **kw: Any
    ) -> None:
        self.error = error
        self.status_code = status_code
        super().__init__(message, **kw)


class ExternalServiceError(HTTPClientError):
    """A call to a named external service failed (seed 003/004's single error type).

    Args:
        service: the service's name.
        message: what happened.
        status_code: the HTTP status, when the service answered.
    """

    def __init__(
        self, service: str, message: str, status_code: int | None = None, **kw: Any
    ) -> None:
        self.status_code = status_code
        kw.setdefault("service", service)
        super().__init__(f"{service}: {message}", **kw)
        self.service = service


class ConfigurationError(HTTPClientError, ValueError):
    """An invalid setting: the message names the field, the value and the allowed range.

    Attributes:
        field: the offending field's name.
    """

    def __init__(self, message: str, *, field: str | None = None, **kw: Any) -> None:
        self.field = field
        super().__init__(message, **kw)
