"""``get_service_client``: one pooled, resilient client per named service (seed 004).

::

    async with get_service_client("master-data") as client:
        response = await client.get("/api/v1/items", headers={"X-API-KEY": api_key})

Services come from :class:`~httpx_resilience.Settings`
(``HTTP_CLIENT_SERVICES__MASTER_DATA__BASE_URL`` … or a TOML file). The first
use of a name builds an :class:`~httpx_resilience.AsyncHTTPClient` with the
service's pool, timeouts, retries, circuit breaker and credentials; later uses
in the same event loop get the same client, so connections are reused. Leaving
the ``async with`` block does not close it: call :func:`aclose_all` (or
:meth:`ServiceRegistry.aclose_all`) at shutdown.

Every failure surfaces as :class:`~httpx_resilience.ExternalServiceError`
(``service``, ``status_code``), chained to the underlying error; an open
breaker, a rate-limiter or bulkhead refusal and a timeout are also instances
of their own class (``except CircuitBreakerOpenError`` works).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Hashable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from ..client import AsyncHTTPClient
from ..clock import Clock
from ..exceptions import ConfigurationError, HTTPClientError, InvalidRequestError
from ..middleware.base import Middleware
from ..models import HTTPResponse
from ..observe.events import Observer
from ..observe.redact import redact_url
from ..policies.breaker import CircuitBreaker
from ..settings import service_key
from ._errors import as_external_error, status_error

if TYPE_CHECKING:  # the settings extra is imported when settings are read
    from ..settings import Settings

__all__ = [
    "ServiceClient",
    "ServiceRegistry",
    "aclose_all",
    "default_registry",
    "get_service_client",
]

_log = logging.getLogger("httpx_resilience.services")


class ServiceClient(AsyncHTTPClient):
    """An :class:`~httpx_resilience.AsyncHTTPClient` for one named service.

    It differs in two ways: every failure (retries exhausted, a timeout, a
    connection error, an open breaker, and by default an error status) is
    raised as :class:`~httpx_resilience.ExternalServiceError`; and when
    ``shared`` (as the registry makes it), ``async with`` and :meth:`aclose`
    leave the pool open for the other users of the service.

    Args:
        name: the service's name.
        base_url: the service's root URL.
        raise_for_status: raise for 4xx/5xx responses (each request can
            override it with ``raise_for_status=``).
        shared: the pool belongs to a :class:`ServiceRegistry`.
        **kwargs: as for :class:`~httpx_resilience.AsyncHTTPClient`.
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        raise_for_status: bool = True,
        shared: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(base_url, service=name, **kwargs)
        self.name = name
        self.raise_for_status = raise_for_status
        self.shared = shared

    async def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        raise_for_status: bool | None = None,
        **kwargs: Any,
    ) -> HTTPResponse:
        """Send one request (see :meth:`AsyncHTTPClient.request`).

        Args:
            method: the HTTP method.
            url: relative to the service's base URL, or absolute.
            raise_for_status: overrides the client's ``raise_for_status``.
            **kwargs: as for :meth:`AsyncHTTPClient.request`.

        Raises:
            ExternalServiceError: the request failed, or (with
                ``raise_for_status``) the service answered 4xx/5xx.
            InvalidRequestError: the request cannot be built; nothing was sent.
        """
        try:
            response = await super().request(method, url, **kwargs)
        except (InvalidRequestError, ConfigurationError):
            raise  # the caller's mistake, not the service's
        except HTTPClientError as exc:
            raise as_external_error(self.name, exc, method.upper(), url) from exc
        check = self.raise_for_status if raise_for_status is None else raise_for_status
        if check and response.status_code >= 400:
            raise status_error(self.name, response, method.upper(), url)
        return response

    @asynccontextmanager
    async def stream(
        self, method: str, url: str | httpx.URL, *, raise_for_status: bool | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[httpx.Response]:
        """Stream a response (see :meth:`AsyncHTTPClient.stream`).

        Raises:
            ExternalServiceError: the response could not be obtained, or (with
                ``raise_for_status``) it is a 4xx/5xx, whose body is then read
                for the message.
        """
        async with contextlib.AsyncExitStack() as stack:
            try:
                response = await stack.enter_async_context(super().stream(method, url, **kwargs))
            except (InvalidRequestError, ConfigurationError):
                raise
            except HTTPClientError as exc:
                raise as_external_error(self.name, exc, method.upper(), url) from exc
            check = self.raise_for_status if raise_for_status is None else raise_for_status
            if check and response.status_code >= 400:
                await response.aread()
                full = HTTPResponse.from_httpx(response, None, 0.0)
                raise status_error(self.name, full, method.upper(), url)
            yield response

    async def __aenter__(self) -> ServiceClient:
        if not self.shared:
            await super().__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if not self.shared:
            await super().__aexit__(*exc)

    async def aclose(self) -> None:
        """Close the pool, unless it is shared (the registry closes shared pools)."""
        if self.shared:
            _log.debug("aclose() on the shared client of %r ignored; use aclose_all()", self.name)
            return
        await super().aclose()

    async def _close_pool(self) -> None:
        await AsyncHTTPClient.aclose(self)

    def __repr__(self) -> str:
        return f"ServiceClient({self.name!r}, base_url={redact_url(self.base_url)!r})"


@dataclass
class _Entry:
    client: AsyncHTTPClient
    fingerprint: object


@dataclass
class _LoopPool:
    entries: dict[Hashable, _Entry] = field(default_factory=dict)
    retired: list[AsyncHTTPClient] = field(default_factory=list)


class ServiceRegistry:
    """Pooled clients per service name (and per event loop), closed together.

    An httpx connection pool belongs to the event loop it was used in, so
    each running loop gets its own clients (a loop that is gone takes its
    clients with it). When a service's settings change (a new ``settings=``),
    the next call builds a fresh client; the old one is closed by
    :meth:`aclose_all`, since callers may still be using it.

    Args:
        settings: the :class:`~httpx_resilience.Settings`; read from the
            environment on first use when omitted (which needs the
            ``settings`` extra: ``pip install 'httpx-resilience[settings]'``).
        middlewares: middlewares for every service client.
        observers: pipeline event hooks for every service client.
        clock: the time source (a ``FakeClock`` in tests).
        transport: the inner transport for every client (for tests).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        middlewares: Iterable[Middleware] = (),
        observers: Iterable[Observer] = (),
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self.middlewares = tuple(middlewares)
        self.observers = tuple(observers)
        self.clock = clock
        self.transport = transport
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPool] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def settings(self) -> Settings:
        """The default settings (read from the environment on first use)."""
        if self._settings is None:
            from ..settings import Settings  # the settings extra; ImportError with its hint

            self._settings = Settings()
        return self._settings

    def configure(self, settings: Settings) -> None:
        """Use ``settings`` from now on; clients whose service changed are rebuilt."""
        self._settings = settings

    def client(self, name: str, *, settings: Settings | None = None) -> ServiceClient:
        """The pooled :class:`ServiceClient` of service ``name`` for the running loop.

        Args:
            name: the service (case-insensitive; ``-`` equals ``_``).
            settings: settings for this call instead of the registry's.

        Raises:
            ConfigurationError: the service is not configured (the message
                lists the configured names and the variable to set), or its
                settings are invalid.
            RuntimeError: no event loop is running.
        """
        cfg = settings if settings is not None else self.settings
        service = cfg.service(name)
        key = ("service", service_key(name))
        config = service.to_client_config(cfg)
        threshold, cooldown = service.breaker_settings(cfg)
        fingerprint = (service, config, threshold, cooldown)

        def build() -> ServiceClient:
            breaker = CircuitBreaker(
                threshold, cooldown, name=name, half_open_max_calls=1, clock=self.clock
            )
            _log.debug(
                "Creating the pooled client of service %r (%s)",
                name, redact_url(service.base_url),
            )
            return ServiceClient(
                name,
                service.base_url,
                shared=True,
                config=config,
                auth=service.build_auth(),
                middlewares=self.middlewares,
                circuit_breaker=breaker,
                observers=self.observers,
                clock=self.clock,
                transport=self.transport,
            )

        client = self._get(key, fingerprint, build)
        assert isinstance(client, ServiceClient)
        return client

    def shared(
        self, key: Hashable, factory: Callable[[], AsyncHTTPClient], fingerprint: Hashable = None
    ) -> AsyncHTTPClient:
        """The pooled client stored under ``key`` for the running loop, built by ``factory``.

        Other integrations (the Dapr client) keep their pools here so that
        :meth:`aclose_all` closes everything.

        Raises:
            RuntimeError: no event loop is running.
        """
        return self._get(("shared", key), fingerprint, factory)

    def _get(
        self, key: Hashable, fingerprint: object, factory: Callable[[], AsyncHTTPClient]
    ) -> AsyncHTTPClient:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = _LoopPool()
        entry = pool.entries.get(key)
        if entry is not None and not entry.client.is_closed:
            if entry.fingerprint == fingerprint:
                return entry.client
            pool.retired.append(entry.client)
        client = factory()
        pool.entries[key] = _Entry(client, fingerprint)
        return client

    def __len__(self) -> int:
        """Clients pooled for the running loop (0 outside a loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return 0
        pool = self._pools.get(loop)
        return len(pool.entries) if pool is not None else 0

    async def aclose_all(self) -> None:
        """Close every client of the running loop (retired ones included).

        Clients are rebuilt on next use, so this is also a way to drop every
        pooled connection. A client that fails to close is logged and skipped.
        """
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is None:
            return
        for client in [*pool.retired, *(e.client for e in pool.entries.values())]:
            try:
                if isinstance(client, ServiceClient):
                    await client._close_pool()
                else:
                    await client.aclose()
            except Exception:
                _log.exception("Closing the pooled client %r failed; ignored", client)

    def __repr__(self) -> str:
        return f"<ServiceRegistry clients={len(self)}>"


_DEFAULT = ServiceRegistry()


def default_registry() -> ServiceRegistry:
    """The process-wide registry used by :func:`get_service_client` and ``get_dapr_client``."""
    return _DEFAULT


@asynccontextmanager
async def get_service_client(
    name: str, *, settings: Settings | None = None, registry: ServiceRegistry | None = None
) -> AsyncIterator[ServiceClient]:
    """Yield the pooled client of service ``name``; leaving the block keeps it open.

    Args:
        name: the service, as configured (``"master-data"`` matches
            ``HTTP_CLIENT_SERVICES__MASTER_DATA__*``).
        settings: settings for this call (the registry's by default, read
            from the environment).
        registry: the registry (the process-wide one by default).

    Raises:
        ConfigurationError: the service is not configured; the message lists
            the configured services and the variable to set.

    Inside the block, failures are :class:`~httpx_resilience.ExternalServiceError`.
    """
    reg = registry if registry is not None else _DEFAULT
    yield reg.client(name, settings=settings)


async def aclose_all() -> None:
    """Close the process-wide registry's clients for the running loop (call at shutdown)."""
    await _DEFAULT.aclose_all()
