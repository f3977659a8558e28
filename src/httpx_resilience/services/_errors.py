"""How a failed call to a service becomes its :class:`~httpx_resilience.ExternalServiceError`.

Shared by :class:`~httpx_resilience.services.BaseAPIClient`, the registry's
:class:`~httpx_resilience.services.ServiceClient` and Dapr:

- :func:`as_external_error` wraps one of our errors (a timeout, retries
  exhausted, an open breaker …), keeping its status code, method, URL and hint;
- :func:`status_error` describes an error status (4xx/5xx) with a short,
  PII-masked excerpt of the body;
- :func:`not_json_error` is a body that claims to be JSON but is not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..exceptions import (
    CircuitBreakerOpenError,
    ExternalServiceError,
    HTTPClientError,
    ResponseDecodeError,
)
from ..models import HTTPResponse
from ..observe.redact import mask_pii

__all__ = ["as_external_error", "not_json_error", "status_error"]

_DETAIL_KEYS = ("detail", "message", "error", "error_description", "title")
_MAX_DETAIL = 200


def _where(method: str | None, url: object) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if method:
        kw["method"] = method
    if url:
        kw["url"] = url
    return kw


def as_external_error(
    service: str, exc: HTTPClientError, method: str | None = None, url: object = None
) -> ExternalServiceError:
    """Wrap one of our errors as the service's :class:`ExternalServiceError`.

    The status code (when the failure was a status), the method, the redacted
    URL and the hint are carried over; chain the result ``from exc``.

    Args:
        service: the service's name.
        exc: the error to wrap.
        method: the HTTP method, when ``exc`` does not know it.
        url: the URL, when ``exc`` does not know it.
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
    else:
        message = f"request failed: {type(exc).__name__}: {exc.message}"
        hint = exc.hint
    return ExternalServiceError(
        service,
        message,
        status,
        hint=hint,
        **_where(exc.method or method, exc.url or url),
    )


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
