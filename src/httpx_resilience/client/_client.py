"""``AsyncHTTPClient``: seed 001's universal async REST client over the resilient pipeline.

It composes an ``httpx.AsyncClient`` whose transport is a
:class:`~httpx_resilience.ResilientTransport`; middlewares run once per logical
request around it, and every failure surfaces as one of our typed errors.

This module is the facade and the request flow; it composes the parts that
live beside it: the checks and the logical request it shares with
:class:`~httpx_resilience.HTTPClient` (``_setup``), a
:class:`~._build.RequestBuilder` (the ``httpx.Request``), a
:class:`~._send.Sender` (through the pipeline, on the lean path without
``httpx.AsyncClient``), and the mapping of failures and outcomes onto our
errors (``_errors``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from types import EllipsisType, TracebackType
from typing import TYPE_CHECKING

import httpx

from ..clock import SYSTEM_CLOCK, Clock
from ..config import ClientConfig
from ..exceptions import ConfigurationError
from ..middleware.base import Middleware
from ..models import HTTPResponse
from ..observe.events import Observer
from ..observe.redact import redact_url
from ..pipeline import ResilientTransport
from ..policies.breaker import CircuitBreaker
from ..policies.bulkhead import Bulkhead
from ..policies.fallback import FallbackSource
from ..policies.hedging import HedgingPolicy
from ..policies.limiter import RateLimiter
from ..policies.retry import RetryPolicy
from ..policies.throttle import AdaptiveThrottle
from ..transports.factory import TransportKind
from ._args import RequestOptions, StreamOptions
from ._build import RequestBuilder
from ._errors import raise_for_outcome, translate_error
from ._send import Sender
from ._setup import check_setup, default_service, logical_request, stream_request

if TYPE_CHECKING:
    from typing_extensions import Unpack  # PEP 692 (typing.Unpack from 3.11); types only

__all__ = ["AsyncHTTPClient"]


class AsyncHTTPClient:
    """An async HTTP client with retries, deadlines, breaker, limiter, bulkhead and hedging.

    Args:
        base_url: prefix for relative URLs (``"https://api.example.com/v1"``).
        config: a :class:`~httpx_resilience.ClientConfig` (defaults when omitted).
        auth: an ``httpx.Auth`` (every auth plugin of this package is one).
        middlewares: :class:`~httpx_resilience.Middleware` hooks, run in order.
        rate_limiter: a :class:`~httpx_resilience.RateLimiter`.
        circuit_breaker: a :class:`~httpx_resilience.CircuitBreaker`.
        bulkhead: a :class:`~httpx_resilience.Bulkhead`.
        hedging: a :class:`~httpx_resilience.HedgingPolicy`.
        transport: the inner transport, or its name; by default the one
            ``config.transport`` names (``"auto"``: ``NativeTransport`` when
            httptools is installed). Any ``httpx.AsyncBaseTransport`` works.
        service: a name for this upstream, shown in errors, logs and metrics.
        retry: a :class:`~httpx_resilience.RetryPolicy` overriding the one
            built from ``config``.
        fallback: a :class:`~httpx_resilience.Fallback` (or a bare
            ``httpx.Response`` or callable ``(request, error) -> response``)
            answering requests that finally fail; its response goes through
            the middlewares like any other. Per request:
            ``extensions={"resilience": {"fallback": ...}}`` (``None``: none).
        throttle: an :class:`~httpx_resilience.AdaptiveThrottle` refusing
            attempts locally while the host rejects most of them.
        observers: event hooks (see :mod:`httpx_resilience.observe.events`).
        clock: the time source (a ``FakeClock`` in tests).

    Raises:
        ConfigurationError: a ``base_url`` without scheme, or an invalid ``auth``.
    """

    def __init__(
        self,
        base_url: str = "",
        config: ClientConfig | None = None,
        auth: httpx.Auth | None = None,
        middlewares: Iterable[Middleware] = (),
        rate_limiter: RateLimiter | None = None,
        circuit_breaker: CircuitBreaker | None = None,
        *,
        bulkhead: Bulkhead | None = None,
        hedging: HedgingPolicy | None = None,
        transport: httpx.AsyncBaseTransport | TransportKind | None = None,
        service: str | None = None,
        retry: RetryPolicy | None = None,
        fallback: FallbackSource | None = None,
        throttle: AdaptiveThrottle | None = None,
        observers: Iterable[Observer] = (),
        clock: Clock | None = None,
    ) -> None:
        setup = check_setup(base_url, config, auth, middlewares)  # shared with HTTPClient
        self.config = setup.config
        default_headers = setup.headers
        self.base_url = base_url
        self.middlewares: tuple[Middleware, ...] = setup.middlewares
        self.rate_limiter = rate_limiter
        self.circuit_breaker = circuit_breaker
        self._clock = clock or SYSTEM_CLOCK
        if transport is not None and not isinstance(transport, str) and not callable(
            getattr(transport, "handle_async_request", None)
        ):
            raise ConfigurationError(
                f"transport must be an httpx.AsyncBaseTransport or one of 'httpx', 'native', "
                f"'aiohttp', 'auto', got {type(transport).__name__} (a sync transport serves "
                "HTTPClient)",
                field="transport",
            )
        self.transport = ResilientTransport(
            # ResilientTransport alone keeps httpx's stack for "auto"; the client resolves it.
            transport if transport is not None else self.config.transport,
            retry=retry,
            circuit_breaker=circuit_breaker,
            rate_limiter=rate_limiter,
            bulkhead=bulkhead,
            hedging=hedging,
            fallback=fallback,
            throttle=throttle,
            config=self.config,
            observers=tuple(observers),
            clock=self._clock,
        )
        cfg = self.config
        self._client = httpx.AsyncClient(
            base_url=base_url,
            auth=auth,
            headers=default_headers,
            timeout=httpx.Timeout(cfg.timeout),
            follow_redirects=cfg.follow_redirects,
            transport=self.transport,
        )
        # The lean path drives the transport directly (no AsyncClient layers);
        # redirects and a cookie jar need AsyncClient's machinery.
        lean = not cfg.follow_redirects and not cfg.cookies
        self._builder = RequestBuilder(
            self._client,
            default_service(service, base_url),
            lean=lean,
            timeout=cfg.timeout,
        )
        self._sender = Sender(
            self.transport, self._client, auth, lean=lean, keep_cookies=cfg.cookies
        )
        self._max_bytes = cfg.max_response_bytes

    @property
    def service(self) -> str | None:
        """The upstream's name, shown in errors, logs and metrics."""
        return self._builder.service

    @service.setter
    def service(self, value: str | None) -> None:
        self._builder.service = value

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> AsyncHTTPClient:
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Close the connection pool. The client cannot be used afterwards."""
        await self._client.aclose()

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._client.is_closed

    @property
    def httpx_client(self) -> httpx.AsyncClient:
        """The underlying ``httpx.AsyncClient`` (for SDKs that accept one)."""
        return self._client

    # -- requests ---------------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        json: object = None,
        data: object = None,
        files: object = None,
        content: object = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, object] | None = None,
        timeout: float | None = None,
        idempotency_key: str | None = None,
        extensions: Mapping[str, object] | None = None,
        max_response_bytes: int | EllipsisType | None = ...,
    ) -> HTTPResponse:
        """Send one logical request through middlewares, auth and the pipeline.

        Args:
            method: an HTTP method (``"GET"``, ``"POST"``, ...).
            url: absolute, or relative to ``base_url``.
            json: a body sent as JSON (dates, UUIDs, decimals, dataclasses and
                pydantic models are handled).
            data: a form body (a mapping), or multipart fields with ``files``.
            files: multipart files.
            content: raw bytes (or an async iterator of bytes: such a body is
                not retried once sent).
            headers: extra headers.
            params: query parameters.
            timeout: the attempt timeout for this request.
            idempotency_key: sent as ``Idempotency-Key``; lets POST/PATCH be retried.
            extensions: per-request pipeline overrides under ``"resilience"``.
            max_response_bytes: the cap on this response's body in bytes
                (``None``: no cap); by default ``config.max_response_bytes``.

        Returns:
            The final :class:`HTTPResponse`; 4xx/5xx statuses that were not
            retried are returned (call :meth:`HTTPResponse.raise_for_status`).

        Raises:
            InvalidRequestError: an unknown method, a URL without scheme or
                that no connection can be made to (``InvalidURLError``), an
                argument of the wrong type, or contradictory body arguments
                (nothing sent).
            ResponseTooLargeError: the body passed ``max_response_bytes``
                (not retried; the connection is closed).
            RateLimitError: the final response is 429.
            RetryExhaustedError: every permitted attempt failed.
            RequestTimeoutError: an attempt or the total deadline timed out.
            CircuitBreakerOpenError: the breaker refused; nothing was sent.
            RateLimiterTimeout: the limiter would wait past ``max_wait``; nothing was sent.
            BulkheadFullError: too many requests in flight; nothing was sent.
            ThrottledError: the adaptive throttle refused; nothing was sent.
            HTTPRequestError: any other transport failure.

        With a ``fallback``, a failure it serves returns its response instead.
        """
        req, limit = logical_request(  # each argument checked, as HTTPClient does
            method, url, json=json, data=data, files=files, content=content, headers=headers,
            params=params, timeout=timeout, idempotency_key=idempotency_key,
            extensions=extensions, max_response_bytes=max_response_bytes,
            default_limit=self._max_bytes,
        )
        for middleware in self.middlewares:
            req = await middleware.process_request(req, self)
        start = self._clock.monotonic()
        try:
            raw = await self._sender.send(self._builder.build(req, stream=False), limit)
        except BaseException as exc:
            err = translate_error(exc, req, self.service)
            for middleware in self.middlewares:
                await middleware.process_error(err, req)
            if err is exc:
                raise
            raise err from exc
        response = HTTPResponse.from_httpx(raw, req, self._clock.monotonic() - start)
        for middleware in reversed(self.middlewares):
            response = await middleware.process_response(response, req)
        raise_for_outcome(response, req, self.service)
        return response

    async def get(
        self, url: str | httpx.URL, **kwargs: Unpack[RequestOptions]
    ) -> HTTPResponse:
        """``GET`` (see :meth:`request`)."""
        return await self.request("GET", url, **kwargs)

    async def post(
        self, url: str | httpx.URL, **kwargs: Unpack[RequestOptions]
    ) -> HTTPResponse:
        """``POST`` (see :meth:`request`); retried only when safe."""
        return await self.request("POST", url, **kwargs)

    async def put(
        self, url: str | httpx.URL, **kwargs: Unpack[RequestOptions]
    ) -> HTTPResponse:
        """``PUT`` (see :meth:`request`)."""
        return await self.request("PUT", url, **kwargs)

    async def patch(
        self, url: str | httpx.URL, **kwargs: Unpack[RequestOptions]
    ) -> HTTPResponse:
        """``PATCH`` (see :meth:`request`); retried only when safe."""
        return await self.request("PATCH", url, **kwargs)

    async def delete(
        self, url: str | httpx.URL, **kwargs: Unpack[RequestOptions]
    ) -> HTTPResponse:
        """``DELETE`` (see :meth:`request`)."""
        return await self.request("DELETE", url, **kwargs)

    async def head(
        self, url: str | httpx.URL, **kwargs: Unpack[RequestOptions]
    ) -> HTTPResponse:
        """``HEAD`` (see :meth:`request`)."""
        return await self.request("HEAD", url, **kwargs)

    async def options(
        self, url: str | httpx.URL, **kwargs: Unpack[RequestOptions]
    ) -> HTTPResponse:
        """``OPTIONS`` (see :meth:`request`)."""
        return await self.request("OPTIONS", url, **kwargs)

    @asynccontextmanager
    async def stream(
        self, method: str, url: str | httpx.URL, **kwargs: Unpack[StreamOptions]
    ) -> AsyncIterator[httpx.Response]:
        """Send a request and yield the streamed ``httpx.Response`` (body unread).

        Retries cover getting the response headers; the body is the caller's
        to read (``aiter_bytes()``, ``aiter_lines()``). ``process_request``
        middlewares run, and ``process_error`` ones when sending fails;
        ``process_response`` ones do not (there is no complete response to
        give them).
        """
        req = stream_request(method, url, kwargs)
        for middleware in self.middlewares:
            req = await middleware.process_request(req, self)
        try:
            raw = await self._client.send(self._builder.build(req, stream=True), stream=True)
        except BaseException as exc:
            err = translate_error(exc, req, self.service)
            for middleware in self.middlewares:
                await middleware.process_error(err, req)
            if err is exc:
                raise
            raise err from exc
        try:
            yield raw
        finally:
            await raw.aclose()

    def __repr__(self) -> str:
        return f"AsyncHTTPClient(base_url={redact_url(self.base_url)!r}, service={self.service!r})"

