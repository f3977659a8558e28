"""The constructor arguments both clients share, checked once for either.

:class:`~httpx_resilience.AsyncHTTPClient` and :class:`~httpx_resilience.HTTPClient`
take the same ``base_url``, ``config``, ``auth`` and ``middlewares``; a wrong
one is a :class:`~httpx_resilience.ConfigurationError` naming the field and
the fix, the same for both. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from ..config import ClientConfig
from ..exceptions import ConfigurationError
from ..middleware.base import Middleware
from ..observe.redact import redact_url
from ._args import config_headers

__all__ = ["ClientSetup", "check_setup", "default_service"]


class ClientSetup:
    """The checked arguments: the config, its default headers, the middlewares."""

    __slots__ = ("config", "headers", "middlewares")

    def __init__(
        self, config: ClientConfig, headers: dict[Any, Any], middlewares: tuple[Middleware, ...]
    ) -> None:
        self.config = config
        self.headers = headers
        self.middlewares = middlewares


def check_setup(
    base_url: str,
    config: ClientConfig | None,
    auth: httpx.Auth | None,
    middlewares: Iterable[Middleware],
) -> ClientSetup:
    """Check a client's shared arguments.

    Raises:
        ConfigurationError: ``config`` is not a ``ClientConfig``, ``base_url``
            has no http(s) scheme or host, ``auth`` is not an ``httpx.Auth``,
            a middleware is not a ``Middleware``, or ``config.headers`` is malformed.
    """
    cfg = config if config is not None else ClientConfig()
    if not isinstance(cfg, ClientConfig):
        raise ConfigurationError(
            f"config must be a ClientConfig, got {type(cfg).__name__}", field="config"
        )
    if base_url:
        parsed = httpx.URL(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ConfigurationError(
                f"base_url {redact_url(base_url)!r} needs an http:// or https:// scheme "
                "and a host, e.g. 'https://api.example.com'",
                field="base_url",
            )
    if auth is not None and not isinstance(auth, httpx.Auth):
        raise ConfigurationError(
            f"auth must be an httpx.Auth (for example BearerAuth), got {type(auth).__name__}",
            field="auth",
        )
    headers = config_headers(cfg.headers)
    chain = tuple(middlewares)
    for m in chain:
        if not isinstance(m, Middleware):
            raise ConfigurationError(
                f"middlewares must be Middleware instances, got {type(m).__name__}",
                field="middlewares",
            )
    return ClientSetup(cfg, headers, chain)


def default_service(service: str | None, base_url: str) -> str | None:
    """The upstream's name: the one given, else ``base_url``'s host."""
    return service or (httpx.URL(base_url).host if base_url else None)
