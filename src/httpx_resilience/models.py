"""``HTTPRequest`` and ``HTTPResponse``: the request and response models of ``AsyncHTTPClient``.

Middlewares receive and return them; they are plain mutable dataclasses on the
request side (a middleware may add a header) and a read-only view on the
response side.
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass, field
from typing import Any

import httpx

from .exceptions import HTTPResponseError, RateLimitError, ResponseDecodeError
from .observe.redact import redact_headers, redact_url

__all__ = ["HTTPRequest", "HTTPResponse"]

_UNSET: Any = object()


@dataclass(slots=True)
class HTTPRequest:
    """One logical request, before it is sent.

    Attributes:
        method: the HTTP method, upper-case.
        url: the URL, relative to the client's ``base_url`` or absolute.
        headers: request headers (a middleware may change them).
        params: query parameters.
        json: a body to send as JSON.
        data: a form body (a mapping) or raw bytes/str.
        files: multipart files.
        content: raw body bytes (or an async iterator of bytes).
        timeout: the attempt timeout for this request, overriding the config.
        idempotency_key: sent as ``Idempotency-Key``; makes POST/PATCH retryable.
        extensions: per-request settings for the pipeline (``"resilience"`` key).
    """

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    data: Any = None
    files: Any = None
    content: Any = None
    timeout: float | None = None
    idempotency_key: str | None = None
    extensions: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"HTTPRequest(method={self.method!r}, url={redact_url(self.url)!r}, "
            f"headers={redact_headers(self.headers)!r})"
        )


class HTTPResponse:
    """A complete response, its body read.

    Attributes:
        status_code: the HTTP status.
        headers: response headers (case-insensitive).
        content: the body bytes (decoded from any content-encoding).
        request: the :class:`HTTPRequest` that produced it.
        elapsed: seconds from the first attempt to the final response, retries included.
        attempts: attempts made.
        request_id: the ``X-Request-Id`` sent.
        extensions: the ``httpx.Response`` extensions (``"resilience"`` holds the outcome).
    """

    __slots__ = (
        "_json",
        "_raw",
        "attempts",
        "content",
        "elapsed",
        "extensions",
        "headers",
        "request",
        "request_id",
        "status_code",
        "url",
    )

    def __init__(
        self,
        status_code: int,
        headers: httpx.Headers | dict[str, str] | None = None,
        content: bytes = b"",
        *,
        request: HTTPRequest | None = None,
        elapsed: float = 0.0,
        attempts: int = 1,
        request_id: str | None = None,
        url: str = "",
        extensions: dict[str, Any] | None = None,
        raw: httpx.Response | None = None,
    ) -> None:
        self.status_code = status_code
        self.headers = httpx.Headers(headers or {})
        self.content = content
        self.request = request
        self.elapsed = elapsed
        self.attempts = attempts
        self.request_id = request_id
        self.url = url
        self.extensions = extensions or {}
        self._raw = raw
        self._json: Any = _UNSET

    @classmethod
    def from_httpx(
        cls, response: httpx.Response, request: HTTPRequest | None, elapsed: float
    ) -> HTTPResponse:
        """Build from a read ``httpx.Response``.

        The response's ``Headers`` object is shared rather than copied: the
        raw response is only reachable through this model, and a copy costs
        a full re-normalisation of every header on each request.
        """
        extensions = response.extensions
        info = extensions.get("resilience")
        self = cls.__new__(cls)
        self.status_code = response.status_code
        self.headers = response.headers
        self.content = response.content
        self.request = request
        self.elapsed = elapsed
        self.attempts = getattr(info, "attempts", 1)
        self.request_id = getattr(info, "request_id", None)
        self.url = str(response.request.url) if response.request is not None else ""
        self.extensions = dict(extensions)
        self._raw = response
        self._json = _UNSET
        return self

    @property
    def text(self) -> str:
        """The body decoded with the response's charset (UTF-8 when none is given)."""
        if self._raw is not None:
            return self._raw.text
        return self.content.decode("utf-8", errors="replace")

    @property
    def json_data(self) -> Any:
        """The body parsed as JSON; ``None`` for an empty body.

        Raises:
            ResponseDecodeError: the body is not valid JSON.
        """
        if self._json is _UNSET:
            if not self.content.strip():
                self._json = None
            else:
                try:
                    self._json = _json.loads(self.content)
                except ValueError as exc:
                    ctype = self.headers.get("content-type", "unknown")
                    raise ResponseDecodeError(
                        f"Response body is not valid JSON (status {self.status_code}, "
                        f"Content-Type {ctype}, {len(self.content)} bytes): {exc}",
                        method=self.request.method if self.request else None,
                        url=self.url or None,
                        hint="Read .text or .content instead, or check the endpoint",
                    ) from exc
        return self._json

    def json(self) -> Any:
        """Alias of :attr:`json_data`, as in httpx."""
        return self.json_data

    @property
    def is_success(self) -> bool:
        """True for 2xx statuses."""
        return 200 <= self.status_code < 300

    @property
    def is_error(self) -> bool:
        """True for 4xx and 5xx statuses."""
        return self.status_code >= 400

    @property
    def reason_phrase(self) -> str:
        """The standard reason phrase of the status (``"Not Found"``)."""
        return httpx.codes.get_reason_phrase(self.status_code)

    def to_httpx(self) -> httpx.Response:
        """The ``httpx.Response`` this response was built from, else one rebuilt from it.

        The rebuilt one (for a response made by hand, or changed by a
        middleware) has this status, headers and body, and a request with
        this method and URL when the URL is absolute.
        """
        raw = self._raw
        if raw is not None and raw.status_code == self.status_code:
            return raw
        request = None
        if self.url:
            method = self.request.method if self.request is not None else "GET"
            try:
                request = httpx.Request(method, self.url)
            except (httpx.InvalidURL, TypeError, ValueError):
                request = None
        # The body is already decoded: the rebuilt response must not decode it again.
        headers = [(k, v) for k, v in self.headers.multi_items() if k.lower() != "content-encoding"]
        return httpx.Response(
            self.status_code, headers=headers, content=self.content, request=request,
            extensions=dict(self.extensions),
        )

    def raise_for_status(self) -> HTTPResponse:
        """Raise for a 4xx/5xx status; return ``self`` otherwise (so calls can chain).

        The error is also an ``httpx.HTTPStatusError``: its ``response`` is the
        ``httpx.Response`` (see :meth:`to_httpx`), its ``request`` that
        response's ``httpx.Request``, and ``http_response`` is this response.

        Raises:
            RateLimitError: for 429, with ``retry_after`` when the server gave one.
            HTTPResponseError: for any other 4xx or 5xx.
        """
        if self.status_code < 400:
            return self
        message = f"HTTP {self.status_code} {self.reason_phrase}"
        if self.status_code == 429:
            info = self.extensions.get("resilience")
            retry_after = getattr(info, "retry_after", None)
            raise RateLimitError(429, message, self, retry_after=retry_after)
        hint = (
            "The upstream failed; retrying later may help"
            if self.status_code >= 500
            else "The request was rejected; fix it before sending again"
        )
        raise HTTPResponseError(self.status_code, message, self, hint=hint)

    def __repr__(self) -> str:
        return f"<HTTPResponse [{self.status_code} {self.reason_phrase}] attempts={self.attempts}>"
