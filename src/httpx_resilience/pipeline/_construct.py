"""The parts of a :class:`~httpx_resilience.ResilientTransport` resolved from its arguments.

Construction reads the arguments and the :class:`~httpx_resilience.ClientConfig`
and settles each part once: the inner transport (a name resolved, an object
checked), the retry budget (built from the config, given, or off), the
adaptive throttle and the fallback (checked, a bare response or callable
wrapped). Each function raises the :class:`ConfigurationError` that names the
argument, so a wrong value fails at construction, not on the first request.
"""

from __future__ import annotations

import logging
from typing import cast

import httpx

from ..clock import Clock
from ..config import ClientConfig
from ..exceptions import ConfigurationError
from ..policies.budget import RetryBudget
from ..policies.throttle import AdaptiveThrottle
from ..transports.factory import TransportKind, default_transport

__all__ = [
    "AsyncRefused",
    "resolve_budget",
    "resolve_inner",
    "resolve_sync_inner",
    "resolve_throttle",
    "sync_inner_missing",
]


def resolve_inner(
    transport: httpx.AsyncBaseTransport | httpx.BaseTransport | TransportKind | None,
    cfg: ClientConfig,
) -> httpx.AsyncBaseTransport:
    """The inner transport: the one given, or the one its name (or the config) asks for.

    Under an SDK the HTTP stack stays httpx's unless asked for: ``"auto"``
    (the config's default) is the client's choice, not the transport's.
    Warns (``httpx_resilience.security``) when TLS verification is off.

    A sync-only ``httpx.BaseTransport`` is the sync path's inner (see
    :func:`resolve_sync_inner`); the async path gets an :class:`AsyncRefused`.

    Raises:
        ConfigurationError: ``transport`` is neither a transport nor a known name.
    """
    if transport is None or isinstance(transport, str):
        kind = transport or (cfg.transport if cfg.transport != "auto" else "httpx")
        transport = default_transport(cfg, kind=kind)
    elif not isinstance(transport, httpx.AsyncBaseTransport) and not callable(
        getattr(transport, "handle_async_request", None)
    ):
        if callable(getattr(transport, "handle_request", None)):
            transport = AsyncRefused(type(transport).__name__)  # sync only: the sync inner
        else:
            raise ConfigurationError(
                f"transport must be an httpx.AsyncBaseTransport, an httpx.BaseTransport or "
                f"one of 'httpx', 'native', 'aiohttp', 'auto', got {type(transport).__name__}",
                field="transport",
            )
    if not cfg.verify_ssl:
        logging.getLogger("httpx_resilience.security").warning(
            "TLS certificate verification is disabled (verify_ssl=False): connections "
            "can be intercepted. Use it only against test servers.",
            extra={"verify_ssl": False},
        )
    return cast(httpx.AsyncBaseTransport, transport)


def resolve_sync_inner(transport: object, sync_transport: object) -> httpx.BaseTransport | None:
    """The sync path's inner transport when one was given: ``sync_transport``, else
    ``transport`` when it is sync too (``httpx.MockTransport`` is both); ``None`` otherwise.

    Raises:
        ConfigurationError: ``sync_transport`` is not an ``httpx.BaseTransport``.
    """
    if sync_transport is not None:
        if not callable(getattr(sync_transport, "handle_request", None)):
            raise ConfigurationError(
                f"sync_transport must be an httpx.BaseTransport (with handle_request), "
                f"got {type(sync_transport).__name__}",
                field="sync_transport",
            )
        return cast(httpx.BaseTransport, sync_transport)
    if callable(getattr(transport, "handle_request", None)) and not isinstance(transport, str):
        return cast(httpx.BaseTransport, transport)
    return None


def sync_inner_missing(inner: httpx.AsyncBaseTransport) -> ConfigurationError:
    """The error of a sync request to a transport whose only inner is an async one given."""
    return ConfigurationError(
        f"ResilientTransport's inner transport ({type(inner).__name__}) is async only and "
        "cannot serve httpx.Client: pass sync_transport=httpx.HTTPTransport(...) too, or "
        "leave transport= unset (httpx's own transports are built for both paths)",
        field="sync_transport",
    )


class AsyncRefused(httpx.AsyncBaseTransport):
    """The async inner of a transport given only a sync one: async requests are refused."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise ConfigurationError(
            f"ResilientTransport was given a sync transport ({self.name}) and cannot serve "
            "httpx.AsyncClient: pass an httpx.AsyncBaseTransport as transport= (and the sync "
            "one as sync_transport=), or use httpx.Client",
            field="transport",
        )


def resolve_budget(
    retry_budget: RetryBudget | bool | None, cfg: ClientConfig, clock: Clock
) -> RetryBudget | None:
    """The retry budget: built from ``cfg`` (``None``/``True``), off (``False``), or given."""
    if retry_budget is None or retry_budget is True:
        return RetryBudget(
            cfg.retry_budget_ratio,
            cfg.retry_budget_min_per_second,
            cfg.retry_budget_ttl,
            clock=clock,
        )
    if retry_budget is False:
        return None
    return retry_budget


def resolve_throttle(throttle: object) -> AdaptiveThrottle | None:
    """The adaptive throttle: ``None``, or an :class:`AdaptiveThrottle`.

    Raises:
        ConfigurationError: anything else.
    """
    if throttle is None or isinstance(throttle, AdaptiveThrottle):
        return throttle
    raise ConfigurationError(
        f"throttle must be an AdaptiveThrottle or None, got {type(throttle).__name__}",
        field="throttle",
    )
