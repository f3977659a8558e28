"""``BaseAPIClient``: a base class for clients of one external service (seed 003).

A subclass names its service and adds typed methods; the base gives it a lazily
created pooled client, retries 3× after 1, 2 and 4 s (no jitter) on timeouts,
connection errors, 5xx and 429 but never on other 4xx, a circuit breaker (5
failures, 30 s cooldown, one probe in half-open, from :class:`Settings`), and a
single error type, :class:`~httpx_resilience.ExternalServiceError` (an open
breaker is also a :class:`~httpx_resilience.CircuitBreakerOpenError`, a
timeout a :class:`~httpx_resilience.RequestTimeoutError`)::

    class MasterDataClient(BaseAPIClient):
        service_name = "master-data"

        async def item(self, item_id: str) -> dict[str, Any]:
            return await self.get(f"/api/v1/items/{item_id}")

    async with MasterDataClient("https://master-data.internal") as client:
        item = await client.item("42")

Non-idempotent methods (POST, PATCH) are retried only when nothing was sent or
when an ``idempotency_key=`` is given: the pipeline enforces it.

How a failure becomes an ``ExternalServiceError`` (:func:`as_external_error`,
:func:`status_error`) lives in :mod:`._errors`, shared with the registry's
clients and Dapr; both are importable from here as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from ..client import AsyncHTTPClient
from ..clock import Clock
from ..config import DEFAULT_RETRY_METHODS, ClientConfig, JitterKind
from ..exceptions import (
    ConfigurationError,
    ExternalServiceError,
    HTTPClientError,
    InvalidRequestError,
    ResponseDecodeError,
)
from ..middleware.base import Middleware
from ..models import HTTPResponse
from ..observe.events import Observer
from ..observe.redact import redact_url
from ..policies.breaker import CircuitBreaker, CircuitState
from ..policies.retry import RetryPolicy
from ..settings import env_var_for, service_key
from ._errors import as_external_error, not_json_error, status_error

if TYPE_CHECKING:  # the settings extra is imported when settings are read
    from ..settings import ServiceSettings, Settings

__all__ = ["BaseAPIClient", "as_external_error", "status_error"]

#: Statuses :class:`BaseAPIClient` retries: 429 and every 5xx (seed 003's matrix).
RETRY_STATUSES: frozenset[int] = frozenset({429, *range(500, 600)})

class BaseAPIClient:
    """Base class for a client of one external service.

    Subclasses set :attr:`service_name` (and :attr:`base_url`, or configure it
    as ``HTTP_CLIENT_SERVICES__<NAME>__BASE_URL``) and add typed methods over
    :meth:`get`, :meth:`post`, :meth:`put`, :meth:`patch`, :meth:`delete` or
    :meth:`request`.

    Args:
        base_url: the service's root URL; defaults to the class attribute, then
            to the service's entry in ``settings.services``.
        service_name: the name in errors, logs and the breaker; defaults to the
            class attribute, then to the URL's host.
        timeout: seconds for one attempt (the settings' timeout by default);
            ``as_default(x)`` (:func:`~httpx_resilience.config.as_default`)
            gives a default that yields to the settings' ``total_timeout``.
        headers: default headers (over the class's :attr:`default_headers`).
        auth: an ``httpx.Auth``; by default the configured service's credentials.
        settings: the :class:`~httpx_resilience.Settings` (read from the
            environment when omitted): timeouts, pool, retries and breaker thresholds.
        max_retries: retries after the first attempt (the settings' ``retry_attempts``, 3).
        backoff_factor: the first delay; retry ``n`` waits ``backoff_factor * 2**n``
            (1, 2, 4 s by default).
        jitter: ``"none"``, ``"full"``, ``"equal"`` or ``"decorrelated"``; by
            default the settings' ``retry_jitter`` when it is set
            (``HTTP_CLIENT_RETRY_JITTER``), else ``"none"`` (seed 003's 1, 2, 4 s).
        retry: a :class:`~httpx_resilience.RetryPolicy` replacing the one above.
        circuit_breaker: a :class:`~httpx_resilience.CircuitBreaker` (by default
            the settings' threshold and cooldown, one half-open probe).
        not_found_ok: a 404 is "not found", not an error: :meth:`get` and the
            other helpers return ``None`` and :meth:`request` returns the response.
        middlewares: :class:`~httpx_resilience.Middleware` hooks.
        observers: pipeline event hooks.
        transport: the inner ``httpx`` transport (for tests).
        clock: the time source (a ``FakeClock`` makes backoff instant in tests).

    Raises:
        ConfigurationError: no base URL can be found, or a value is invalid.
        ImportError: ``settings`` omitted and pydantic-settings missing (the
            message says ``pip install 'httpx-resilience[settings]'``).
    """

    service_name: str = ""
    base_url: str = ""
    default_headers: ClassVar[Mapping[str, str]] = {}
    #: The ``status_code`` of the error raised while the breaker is open
    #: (``None``: nothing was sent; the Store API client reports 503).
    breaker_open_status: ClassVar[int | None] = None

    def __init__(
        self,
        base_url: str | None = None,
        *,
        service_name: str | None = None,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        settings: Settings | None = None,
        max_retries: int | None = None,
        backoff_factor: float | None = None,
        jitter: JitterKind | None = None,
        retry: RetryPolicy | None = None,
        circuit_breaker: CircuitBreaker | None = None,
        not_found_ok: bool = False,
        middlewares: Iterable[Middleware] = (),
        observers: Iterable[Observer] = (),
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
    ) -> None:
        if settings is None:
            from ..settings import Settings  # the settings extra; ImportError with its hint

            settings = Settings()
        name = service_name or type(self).service_name
        service: ServiceSettings | None = None
        if name and service_key(name) in settings.services:
            service = settings.services[service_key(name)]
        url = base_url or type(self).base_url or (service.base_url if service else "")
        if not url:
            var = env_var_for("services", service_key(name), "base_url") if name else None
            raise ConfigurationError(
                f"{type(self).__name__} needs a base URL: pass base_url=, set the class "
                f"attribute base_url"
                + (f", or set {var}" if var else " and service_name"),
                field="base_url",
            )
        config = service.to_client_config(settings) if service else settings.to_client_config()
        merged = {**type(self).default_headers, **(config.headers or {}), **(headers or {})}
        config = _replace(config, timeout=timeout, headers=merged or None)
        self.base_url = url.rstrip("/")
        self.service_name = name or httpx.URL(self.base_url).host
        self.not_found_ok = not_found_ok
        self.config = config
        self.retry = retry or RetryPolicy(
            max_attempts=(config.retry_attempts if max_retries is None else max_retries) + 1,
            backoff_factor=(
                config.retry_backoff_factor if backoff_factor is None else backoff_factor
            ),
            multiplier=2.0,
            max_delay=config.retry_max_delay,
            jitter=jitter if jitter is not None else _default_jitter(settings, config),
            statuses=RETRY_STATUSES,
            methods=DEFAULT_RETRY_METHODS,
        )
        if circuit_breaker is None:
            threshold, cooldown = (
                service.breaker_settings(settings)
                if service
                else (settings.circuit_breaker_threshold, float(settings.circuit_breaker_cooldown))
            )
            circuit_breaker = CircuitBreaker(
                threshold, cooldown, name=self.service_name, half_open_max_calls=1, clock=clock
            )
        self.circuit_breaker = circuit_breaker
        self._auth = auth if auth is not None else (service.build_auth() if service else None)
        self._middlewares = tuple(middlewares)
        self._observers = tuple(observers)
        self._transport = transport
        self._clock = clock
        self._client: AsyncHTTPClient | None = None

    # -- lifecycle ------------------------------------------------------------------

    @property
    def http_client(self) -> AsyncHTTPClient | None:
        """The underlying client, or ``None`` before the first request and after :meth:`close`."""
        return self._client

    @property
    def breaker_state(self) -> CircuitState:
        """The circuit breaker's state."""
        return self.circuit_breaker.state

    def _get_client(self) -> AsyncHTTPClient:
        """The pooled client, created on first use (and again after :meth:`close`)."""
        if self._client is None:
            self._client = AsyncHTTPClient(
                self.base_url,
                config=self.config,
                auth=self._auth,
                middlewares=self._middlewares,
                circuit_breaker=self.circuit_breaker,
                service=self.service_name,
                retry=self.retry,
                observers=self._observers,
                transport=self._transport,
                clock=self._clock,
            )
        return self._client

    async def close(self) -> None:
        """Close the connection pool; a later request opens a new one. Idempotent."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    aclose = close

    async def __aenter__(self) -> BaseAPIClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- requests -------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        not_found_ok: bool | None = None,
        **kwargs: Any,
    ) -> HTTPResponse:
        """Send one request; return the successful response.

        Args:
            method: the HTTP method.
            path: relative to :attr:`base_url` (or absolute).
            not_found_ok: overrides the client's ``not_found_ok`` for this call.
            **kwargs: as for :meth:`AsyncHTTPClient.request
                <httpx_resilience.AsyncHTTPClient.request>` (``params``, ``json``,
                ``headers``, ``timeout``, ``idempotency_key`` …).

        Returns:
            a 1xx-3xx response (or a 404 with ``not_found_ok``).

        Raises:
            ExternalServiceError: an error status, retries exhausted, a timeout,
                a connection error or an open breaker; ``status_code`` is set
                when the service answered. Chained to the underlying error.
                An open breaker, a timeout, a rate-limiter or bulkhead refusal
                is also an instance of its own class
                (:class:`~httpx_resilience.CircuitBreakerOpenError` …).
            InvalidRequestError: the request cannot be built (nothing was sent).
        """
        client = self._get_client()
        try:
            response = await client.request(method, path, **kwargs)
        except (InvalidRequestError, ConfigurationError):
            raise  # the caller's mistake, not the service's
        except HTTPClientError as exc:
            error = as_external_error(
                self.service_name, exc, method.upper(), path,
                open_status=self.breaker_open_status,
            )
            self.on_error(error)
            raise error from exc
        if response.status_code == 404 and (
            self.not_found_ok if not_found_ok is None else not_found_ok
        ):
            return response
        if response.status_code >= 400:
            error = status_error(self.service_name, response, method.upper(), path)
            self.on_error(error)
            raise error
        return response

    async def get(self, path: str, **kwargs: Any) -> Any:
        """``GET`` and return the parsed body (see :meth:`parse`)."""
        return self.parse(await self.request("GET", path, **kwargs))

    async def post(self, path: str, **kwargs: Any) -> Any:
        """``POST`` (retried only when safe) and return the parsed body."""
        return self.parse(await self.request("POST", path, **kwargs))

    async def put(self, path: str, **kwargs: Any) -> Any:
        """``PUT`` and return the parsed body."""
        return self.parse(await self.request("PUT", path, **kwargs))

    async def patch(self, path: str, **kwargs: Any) -> Any:
        """``PATCH`` (retried only when safe) and return the parsed body."""
        return self.parse(await self.request("PATCH", path, **kwargs))

    async def delete(self, path: str, **kwargs: Any) -> Any:
        """``DELETE`` and return the parsed body."""
        return self.parse(await self.request("DELETE", path, **kwargs))

    def parse(self, response: HTTPResponse) -> Any:
        """The result of a helper method.

        Returns:
            ``None`` for a 404 allowed by ``not_found_ok``, a 204 or an empty
            body; the parsed JSON for a JSON content type; otherwise the
            :class:`~httpx_resilience.HTTPResponse` itself.

        Raises:
            ExternalServiceError: the body claims to be JSON but is not.
        """
        if response.status_code in (204, 404) or not response.content.strip():
            return None
        if "json" not in response.headers.get("content-type", "").lower():
            return response
        try:
            return response.json_data
        except ResponseDecodeError as exc:
            error = not_json_error(self.service_name, response, exc)
            self.on_error(error)
            raise error from exc

    def on_error(self, error: ExternalServiceError) -> None:
        """Called with every error just before it is raised; override to log or count.

        The default does nothing (the caller gets the error; retries are
        already logged by the pipeline).
        """

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} service={self.service_name!r} "
            f"base_url={redact_url(self.base_url)!r} breaker={self.circuit_breaker.state.value}>"
        )


def _default_jitter(settings: Settings, config: ClientConfig) -> JitterKind:
    """The settings' jitter when it was given, else seed 003's ``"none"``."""
    return config.retry_jitter if "retry_jitter" in settings.model_fields_set else "none"


def _replace(config: ClientConfig, **changes: Any) -> ClientConfig:
    return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})
