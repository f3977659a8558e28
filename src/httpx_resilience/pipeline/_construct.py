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

import httpx

from ..clock import Clock
from ..config import ClientConfig
from ..exceptions import ConfigurationError
from ..policies.budget import RetryBudget
from ..policies.throttle import AdaptiveThrottle
from ..transports.factory import TransportKind, default_transport

__all__ = ["resolve_budget", "resolve_inner", "resolve_throttle"]


def resolve_inner(
    transport: httpx.AsyncBaseTransport | TransportKind | None, cfg: ClientConfig
) -> httpx.AsyncBaseTransport:
    """The inner transport: the one given, or the one its name (or the config) asks for.

    Under an SDK the HTTP stack stays httpx's unless asked for: ``"auto"``
    (the config's default) is the client's choice, not the transport's.
    Warns (``httpx_resilience.security``) when TLS verification is off.

    Raises:
        ConfigurationError: ``transport`` is neither a transport nor a known name.
    """
    if transport is None or isinstance(transport, str):
        kind = transport or (cfg.transport if cfg.transport != "auto" else "httpx")
        transport = default_transport(cfg, kind=kind)
    elif not callable(getattr(transport, "handle_async_request", None)):
        raise ConfigurationError(
            f"transport must be an httpx.AsyncBaseTransport or one of 'httpx', "
            f"'native', 'aiohttp', 'auto', got {type(transport).__name__}",
            field="transport",
        )
    if not cfg.verify_ssl:
        logging.getLogger("httpx_resilience.security").warning(
            "TLS certificate verification is disabled (verify_ssl=False): connections "
            "can be intercepted. Use it only against test servers.",
            extra={"verify_ssl": False},
        )
    return transport


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
