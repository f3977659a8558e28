"""How a failed call to a service becomes its :class:`~httpx_resilience.ExternalServiceError`.

Shared by :class:`~httpx_resilience.services.BaseAPIClient`, the registry's
:class:`~httpx_resilience.services.ServiceClient` and Dapr:

- :func:`as_external_error` wraps one of our errors (a timeout, retries
  exhausted, an open breaker …), keeping its status code, method, URL and hint;
- a refusal by a resilience policy or a timeout stays catchable as its own
  type: the wrapper is a subclass of both ``ExternalServiceError`` and the
  original class (:class:`ServiceCircuitOpenError`,
  :class:`ServiceRateLimiterTimeout`, :class:`ServiceBulkheadFullError`,
  :class:`ServiceTimeoutError`), with the original's attributes (``retry_in``,
  ``waited``, ``timeout`` …), so ``except CircuitBreakerOpenError`` works under
  every facade as it does under ``AsyncHTTPClient``;
- :func:`status_error` describes an error status (4xx/5xx) with a short,
  PII-masked excerpt of the body;
- :func:`not_json_error` is a body that claims to be JSON but is not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from ..exceptions import (
    BulkheadFullError,
    CircuitBreakerOpenError,
    ExternalServiceError,
    HTTPClientError,
    RateLimiterTimeout,
    RequestTimeoutError,
    ResponseDecodeError,
)
from ..models import HTTPResponse
from ..observe.redact import mask_pii

__all__ = [
    "ServiceBulkheadFullError",
    "ServiceCircuitOpenError",
    "ServiceRateLimiterTimeout",
    "ServiceTimeoutError",
    "as_external_error",
    "not_json_error",
    "status_error",
]

_DETAIL_KEYS = ("detail", "message", "error", "error_description", "title")
_MAX_DETAIL = 200


def _init_service_error(
    error: ExternalServiceError, service: str, message: str, status_code: int | None,
    kw: dict[str, Any],
) -> None:
    """What ``ExternalServiceError.__init__`` does, without the other base's ``__init__``.

    ``ExternalServiceError`` calls ``super().__init__``, which in a typed
    subclass is the other base's (``CircuitBreakerOpenError(name, retry_in)``
    …) with another signature; the typed classes set their own attributes and
    then the common ones here.
    """
    error.status_code = status_code
    kw.setdefault("service", service)
    HTTPClientError.__init__(error, f"{service}: {message}", **kw)
    error.service = service


class ServiceCircuitOpenError(ExternalServiceError, CircuitBreakerOpenError):
    """The service's circuit breaker is open: nothing was sent.

    An :class:`~httpx_resilience.ExternalServiceError` (seed 003/004's one
    error type) and a :class:`~httpx_resilience.CircuitBreakerOpenError` (so
    also an ``httpx.TransportError``). ``status_code`` is ``None``, or what the
    facade reports for an open breaker (503 for the Store API, as seed 000 asks).

    Attributes:
        name: the breaker's name.
        retry_in: seconds until the breaker lets a probe through (the
            remaining cooldown when the error was raised).
        retry_after: the same, under the name ``RateLimitError`` uses: how
            long a caller (or its own client, as a ``Retry-After``) should wait.
    """

    def __init__(
        self, service: str, message: str, status_code: int | None = None, *,
        name: str | None = None, retry_in: float = 0.0, request: httpx.Request | None = None,
        **kw: Any,
    ) -> None:
        self.name = name or service
        self.retry_in = max(0.0, retry_in)
        self._request = request
        _init_service_error(self, service, message, status_code, kw)

    @property
    def retry_after(self) -> float:
        """Seconds until the breaker lets a probe through (``retry_in``)."""
        return self.retry_in


class ServiceRateLimiterTimeout(ExternalServiceError, RateLimiterTimeout):
    """The client's rate limiter would have waited past ``max_wait``: nothing was sent.

    An :class:`~httpx_resilience.ExternalServiceError` and a
    :class:`~httpx_resilience.RateLimiterTimeout`.

    Attributes:
        waited: seconds already waited.
        needed: seconds a permit would still have taken.
    """

    def __init__(
        self, service: str, message: str, status_code: int | None = None, *,
        waited: float = 0.0, needed: float | None = None,
        request: httpx.Request | None = None, **kw: Any,
    ) -> None:
        self.waited = waited
        self.needed = needed
        self._request = request
        _init_service_error(self, service, message, status_code, kw)


class ServiceBulkheadFullError(ExternalServiceError, BulkheadFullError):
    """The client's bulkhead is full: nothing was sent.

    An :class:`~httpx_resilience.ExternalServiceError` and a
    :class:`~httpx_resilience.BulkheadFullError`.

    Attributes:
        max_concurrent: the bulkhead's cap.
        max_queue: its queue length.
    """

    def __init__(
        self, service: str, message: str, status_code: int | None = None, *,
        max_concurrent: int = 0, max_queue: int = 0,
        request: httpx.Request | None = None, **kw: Any,
    ) -> None:
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self._request = request
        _init_service_error(self, service, message, status_code, kw)


class ServiceTimeoutError(ExternalServiceError, RequestTimeoutError):
    """An attempt timeout or the total deadline passed.

    An :class:`~httpx_resilience.ExternalServiceError`, a
    :class:`~httpx_resilience.RequestTimeoutError` and an
    ``httpx.TimeoutException``. When the timeout ended the retries, the
    original's ``attempts``/``last_error`` are kept too.

    Attributes:
        timeout: the limit that passed, in seconds.
        phase: ``"attempt"`` or ``"total"``.
        attempts: attempts made, when known.
    """

    def __init__(
        self, service: str, message: str, status_code: int | None = None, *,
        timeout: float | None = None, phase: str = "attempt", attempts: int | None = None,
        request: httpx.Request | None = None, **kw: Any,
    ) -> None:
        self.timeout = timeout
        self.phase = phase
        self.attempts = attempts
        self._request = request
        _init_service_error(self, service, message, status_code, kw)


#: Errors that stay catchable as their own type under a facade, with the
#: attributes each one carries over; the first match wins.
_TYPED: tuple[tuple[type[HTTPClientError], type[ExternalServiceError], tuple[str, ...]], ...] = (
    (CircuitBreakerOpenError, ServiceCircuitOpenError, ("name", "retry_in")),
    (RateLimiterTimeout, ServiceRateLimiterTimeout, ("waited", "needed")),
    (BulkheadFullError, ServiceBulkheadFullError, ("max_concurrent", "max_queue")),
    (RequestTimeoutError, ServiceTimeoutError, ("timeout", "phase", "attempts")),
)
#: Attributes the wrapper sets itself; never copied from the original.
_OWN = frozenset({"service", "status_code", "message", "method", "url", "hint", "args"})


def _where(method: str | None, url: object) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if method:
        kw["method"] = method
    if url:
        kw["url"] = url
    return kw


def as_external_error(
    service: str,
    exc: HTTPClientError,
    method: str | None = None,
    url: object = None,
    *,
    open_status: int | None = None,
) -> ExternalServiceError:
    """Wrap one of our errors as the service's :class:`ExternalServiceError`.

    The status code (when the failure was a status), the method, the redacted
    URL and the hint are carried over; chain the result ``from exc``. An open
    breaker, a limiter or bulkhead refusal and a timeout give the typed
    subclasses above, which are also instances of the original's class and
    keep its attributes.

    Args:
        service: the service's name.
        exc: the error to wrap.
        method: the HTTP method, when ``exc`` does not know it.
        url: the URL, when ``exc`` does not know it.
        open_status: the ``status_code`` reported for an open breaker (the
            Store API's 503); ``None`` by default, since nothing was sent.
    """
    if isinstance(exc, ExternalServiceError):
        return exc
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) and not isinstance(status, bool) else None
    hint: str | None
    if isinstance(exc, CircuitBreakerOpenError):
        message = (
            f"circuit breaker is open after repeated failures; the request was not sent "
            f"(next probe in {exc.retry_in:.1f} s)"
        )
        hint = "Wait for the service to recover; calls fail fast meanwhile"
        status = open_status
    else:
        message = f"request failed: {type(exc).__name__}: {exc.message}"
        hint = exc.hint
    where = _where(exc.method or method, exc.url or url)
    for original, typed, names in _TYPED:
        if isinstance(exc, original):
            kept = {n: getattr(exc, n) for n in names if hasattr(exc, n)}
            error = typed(
                service, message, status, hint=hint,
                request=getattr(exc, "_request", None), **kept, **where,
            )
            for key, value in vars(exc).items():  # e.g. a timeout's attempts, last_error
                if key not in _OWN:
                    error.__dict__.setdefault(key, value)
            return error
    return ExternalServiceError(service, message, status, hint=hint, **where)


def _detail(response: HTTPResponse) -> str:
    """A short, PII-masked excerpt of an error body (the server's own message when JSON)."""
    text = response.content[:4096].decode("utf-8", "replace").strip()
    if not text:
        return ""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, Mapping):
        for key in _DETAIL_KEYS:
            value = data.get(key)
            if isinstance(value, str) and value:
                text = value
                break
    text = " ".join(text.split())
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 1] + "…"
    return f": {mask_pii(text)}"


def status_error(
    service: str, response: HTTPResponse, method: str | None = None, url: object = None
) -> ExternalServiceError:
    """The :class:`ExternalServiceError` for an error status (4xx/5xx).

    The message holds the status, its reason and a short excerpt of the body
    (the ``detail``/``message``/``error`` field of a JSON body), PII-masked.

    Args:
        service: the service's name.
        response: the error response.
        method: the HTTP method.
        url: the URL (the response's own when omitted).
    """
    code = response.status_code
    if code >= 500:
        hint = "The service failed; it may recover, try again later"
    elif code in (401, 403):
        hint = "The service refused the credentials; check the API key or token"
    else:
        hint = "The service rejected the request; fix it before sending again"
    req_method = response.request.method if response.request is not None else None
    return ExternalServiceError(
        service,
        f"HTTP {code} {response.reason_phrase}{_detail(response)}",
        code,
        hint=hint,
        **_where(method or req_method, response.url or url),
    )


def not_json_error(
    service: str, response: HTTPResponse, exc: ResponseDecodeError
) -> ExternalServiceError:
    """The :class:`ExternalServiceError` for a body that claims to be JSON but is not.

    Args:
        service: the service's name.
        response: the response whose body failed to decode.
        exc: the decoding error.
    """
    return ExternalServiceError(
        service,
        f"returned a body that is not valid JSON: {exc.message}",
        response.status_code,
        **_where(response.request.method if response.request else None, response.url),
    )
