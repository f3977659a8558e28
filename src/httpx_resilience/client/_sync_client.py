"""``HTTPClient``: the sync facade, :class:`~httpx_resilience.AsyncHTTPClient`'s mirror.

For synchronous code (Django and Flask views, scripts, Celery tasks) the same
constructor, configuration, models and errors: an ``httpx.Client`` whose
transport is a :class:`~httpx_resilience.ResilientTransport` (its sync path,
``handle_request``: the same pipeline, order and rules), with middlewares
(their sync hooks) run once per logical request around it. It stays thin:
the arguments are checked by ``_args`` and ``_setup``, the request built by
the async client's :class:`~._build.RequestBuilder`, failures mapped by
``_errors``; only the calls that block are its own. Hedging races attempts
concurrently, which needs the async path: asking for it is a
``ConfigurationError``. One client may be shared by many threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import EllipsisType, TracebackType
from typing import TYPE_CHECKING

import httpx

from ..clock import SYSTEM_CLOCK, Clock
from ..config import ClientConfig
from ..exceptions import ConfigurationError
from ..middleware.base import Middleware, missing_sync_hooks
from ..models import HTTPRequest, HTTPResponse
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
from ._args import RequestOptions, StreamOptions
from ._build import RequestBuilder
from ._errors import raise_for_outcome, translate_error
from ._setup import check_setup, default_service, logical_request, stream_request
from ._sync_send import SyncSender

if TYPE_CHECKING:
    from typing_extensions import Unpack  # PEP 692 (typing.Unpack from 3.11); types only

__all__ = ["HTTPClient"]


def _refuse_async_only(
    hedging: HedgingPolicy | None, config: ClientConfig, middlewares: tuple[Middleware, ...]
) -> None:
    """Refuse what only the async path can do, naming the fix."""
    if hedging is not None:
        raise ConfigurationError(
            "hedging needs the async path (it races attempts concurrently): use "
            "AsyncHTTPClient, or drop hedging= from HTTPClient",
            field="hedging",
        )
    if config.transport in ("native", "aiohttp"):
        raise ConfigurationError(
            f"ClientConfig(transport={config.transport!r}) is an async transport; HTTPClient "
            "sends with httpx's (leave transport='auto' or 'httpx', or pass an "
            "httpx.BaseTransport as transport=)",
            field="transport",
        )
    for m in middlewares:
        missing = missing_sync_hooks(m)
        if missing:
            raise ConfigurationError(
                f"{type(m).__name__} overrides async hooks only; HTTPClient calls the sync "
                f"ones: implement {', '.join(missing)} (or use it with AsyncHTTPClient)",
                field="middlewares",
            )


class HTTPClient:
    """A sync HTTP client with retries, deadlines, breaker, limiter and bulkhead.

    The arguments are :class:`~httpx_resilience.AsyncHTTPClient`'s, except:

    Args:
        transport: the inner ``httpx.BaseTransport`` (``httpx.HTTPTransport``
            with the config's pool limits, TLS and proxy rules by default).
        hedging: must be ``None``: hedging needs the async path.

    Raises:
        ConfigurationError: a ``base_url`` without scheme, an invalid ``auth``,
            ``hedging``, an async-only inner transport, or a middleware that
            overrides async hooks without their sync twins
            (:meth:`~httpx_resilience.Middleware.process_request_sync`, ...).
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
        transport: httpx.BaseTransport | None = None,
        service: str | None = None,
        retry: RetryPolicy | None = None,
        fallback: FallbackSource | None = None,
        throttle: AdaptiveThrottle | None = None,
        observers: Iterable[Observer] = (),
        clock: Clock | None = None,
    ) -> None:
        setup = check_setup(base_url, config, auth, middlewares)
        _refuse_async_only(hedging, setup.config, setup.middlewares)
        if transport is not None and not callable(getattr(transport, "handle_request", None)):
            raise ConfigurationError(
                f"transport must be an httpx.BaseTransport (sync), got {type(transport).__name__}",
                field="transport",
            )
        self.config = cfg = setup.config
        self.base_url = base_url
        self.middlewares: tuple[Middleware, ...] = setup.middlewares
        self.rate_limiter = rate_limiter
        self.circuit_breaker = circuit_breaker
        self._clock = clock or SYSTEM_CLOCK
        self.transport = ResilientTransport(
            "httpx",  # the async inner, never used by this client: httpx's, built idle
            sync_transport=transport,
            retry=retry,
            circuit_breaker=circuit_breaker,
            rate_limiter=rate_limiter,
            bulkhead=bulkhead,
            fallback=fallback,
            throttle=throttle,
            config=cfg,
            observers=tuple(observers),
            clock=self._clock,
        )
        self._client = httpx.Client(
            base_url=base_url,
            auth=auth,
            headers=setup.headers,
            timeout=httpx.Timeout(cfg.timeout),
            follow_redirects=cfg.follow_redirects,
            transport=self.transport,
        )
        self._builder = RequestBuilder(
            self._client,
            default_service(service, base_url),
            lean=not cfg.follow_redirects and not cfg.cookies,
            timeout=cfg.timeout,
        )
        self._sender = SyncSender(self._client, keep_cookies=cfg.cookies)
        self._max_bytes = cfg.max_response_bytes

    @property
    def service(self) -> str | None:
        """The upstream's name, shown in errors, logs and metrics."""
        return self._builder.service

    @service.setter
    def service(self, value: str | None) -> None:
        self._builder.service = value

    # -- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> HTTPClient:
        self._client.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._client.__exit__(exc_type, exc, tb)

    def close(self) -> None:
        """Close the connection pool. The client cannot be used afterwards."""
        self._client.close()

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._client.is_closed

    @property
    def httpx_client(self) -> httpx.Client:
        """The underlying ``httpx.Client`` (for SDKs that accept one)."""
        return self._client

    # -- requests ---------------------------------------------------------------------

    def request(
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

        The arguments, result and errors are
        :meth:`AsyncHTTPClient.request <httpx_resilience.AsyncHTTPClient.request>`'s;
        ``content`` may also be an iterator of bytes or a file (not retried
        once sent unless it can be re-read).
        """
        req, limit = logical_request(
            method, url, json=json, data=data, files=files, content=content, headers=headers,
            params=params, timeout=timeout, idempotency_key=idempotency_key,
            extensions=extensions, max_response_bytes=max_response_bytes,
            default_limit=self._max_bytes,
        )
        for middleware in self.middlewares:
            req = middleware.process_request_sync(req, self)
        start = self._clock.monotonic()
        try:
            raw = self._sender.send(self._builder.build(req, stream=False), limit)
        except BaseException as exc:
            err = self._failed(exc, req)
            if err is exc:
                raise
            raise err from exc
        response = HTTPResponse.from_httpx(raw, req, self._clock.monotonic() - start)
        for middleware in reversed(self.middlewares):
            response = middleware.process_response_sync(response, req)
        raise_for_outcome(response, req, self.service)
        return response

    def get(self, url: str | httpx.URL, **kwargs: Unpack[RequestOptions]) -> HTTPResponse:
        """``GET`` (see :meth:`request`)."""
        return self.request("GET", url, **kwargs)

    def post(self, url: str | httpx.URL, **kwargs: Unpack[RequestOptions]) -> HTTPResponse:
        """``POST`` (see :meth:`request`); retried only when safe."""
        return self.request("POST", url, **kwargs)

    def put(self, url: str | httpx.URL, **kwargs: Unpack[RequestOptions]) -> HTTPResponse:
        """``PUT`` (see :meth:`request`)."""
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str | httpx.URL, **kwargs: Unpack[RequestOptions]) -> HTTPResponse:
        """``PATCH`` (see :meth:`request`); retried only when safe."""
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str | httpx.URL, **kwargs: Unpack[RequestOptions]) -> HTTPResponse:
        """``DELETE`` (see :meth:`request`)."""
        return self.request("DELETE", url, **kwargs)

    def head(self, url: str | httpx.URL, **kwargs: Unpack[RequestOptions]) -> HTTPResponse:
        """``HEAD`` (see :meth:`request`)."""
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str | httpx.URL, **kwargs: Unpack[RequestOptions]) -> HTTPResponse:
        """``OPTIONS`` (see :meth:`request`)."""
        return self.request("OPTIONS", url, **kwargs)

    @contextmanager
    def stream(
        self, method: str, url: str | httpx.URL, **kwargs: Unpack[StreamOptions]
    ) -> Iterator[httpx.Response]:
        """Send a request and yield the streamed ``httpx.Response`` (body unread).

        Retries cover getting the response headers; the body is the caller's
        to read (``iter_bytes()``, ``iter_lines()``). ``process_request_sync``
        middlewares run; ``process_response_sync`` ones do not (there is no
        complete response to give them).
        """
        req = stream_request(method, url, kwargs)
        for middleware in self.middlewares:
            req = middleware.process_request_sync(req, self)
        try:
            raw = self._sender.stream(self._builder.build(req, stream=True))
        except BaseException as exc:
            err = self._failed(exc, req)
            if err is exc:
                raise
            raise err from exc
        try:
            yield raw
        finally:
            raw.close()

    def _failed(self, exc: BaseException, req: HTTPRequest) -> BaseException:
        """The error to raise for ``exc`` (our tree, its httpx class kept), shown to the
        middlewares' error hooks first."""
        err = translate_error(exc, req, self.service)
        for middleware in self.middlewares:
            middleware.process_error_sync(err, req)
        return err

    def __repr__(self) -> str:
        return f"HTTPClient(base_url={redact_url(self.base_url)!r}, service={self.service!r})"
