"""The arguments both clients share, checked and assembled once for either.

:class:`~httpx_resilience.AsyncHTTPClient` and :class:`~httpx_resilience.HTTPClient`
take the same ``base_url``, ``config``, ``auth`` and ``middlewares``
(:func:`check_setup`: a wrong one is a :class:`~httpx_resilience.ConfigurationError`
naming the field and the fix) and the same request arguments
(:func:`logical_request`, :func:`stream_request`: the :class:`HTTPRequest`
the middlewares see, or an :class:`~httpx_resilience.InvalidRequestError`).
Nothing here does I/O; only the calls that wait differ between the clients.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import EllipsisType
from typing import Any

import httpx

from ..config import ClientConfig
from ..exceptions import ConfigurationError, InvalidRequestError
from ..middleware.base import Middleware
from ..models import HTTPRequest
from ..observe.redact import redact_url
from ._args import (
    StreamOptions,
    check_method,
    check_url_arg,
    config_headers,
    max_bytes_of,
    set_max_bytes,
    to_dict,
    to_params,
)

__all__ = ["ClientSetup", "check_setup", "default_service", "logical_request", "stream_request"]


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


def logical_request(
    method: str,
    url: str | httpx.URL,
    *,
    json: object,
    data: object,
    files: object,
    content: object,
    headers: Mapping[str, str] | None,
    params: Mapping[str, object] | None,
    timeout: float | None,
    idempotency_key: str | None,
    extensions: Mapping[str, object] | None,
    max_response_bytes: int | EllipsisType | None,
    default_limit: int | None,
) -> tuple[HTTPRequest, int | None]:
    """The :class:`HTTPRequest` of a ``request()`` call and the cap on its body.

    Each argument is checked (the usual, well-typed value without a call);
    ``max_response_bytes`` (``...``: not given) goes into the overrides so
    the pipeline caps too.

    Raises:
        InvalidRequestError: an unknown method, a wrong argument type.
    """
    ext = {} if extensions is None else to_dict(extensions, "extensions")
    limit = default_limit
    if max_response_bytes is not ...:
        limit = set_max_bytes(ext, max_response_bytes)
    elif ext:
        limit = max_bytes_of(ext, limit)
    req = HTTPRequest(
        method=check_method(method),
        url=url if type(url) is str else check_url_arg(url),
        headers={} if headers is None else to_dict(headers, "headers"),
        params={} if params is None else to_params(params),
        json=json,
        data=data,
        files=files,
        content=content,
        timeout=timeout,
        idempotency_key=idempotency_key,
        extensions=ext,
    )
    return req, limit


def stream_request(method: str, url: str | httpx.URL, options: StreamOptions) -> HTTPRequest:
    """The :class:`HTTPRequest` of a ``stream()`` call (``options`` is consumed).

    Raises:
        InvalidRequestError: an unknown method or keyword, a wrong argument type.
    """
    req = HTTPRequest(method=check_method(method), url=check_url_arg(url))
    req.headers = to_dict(options.pop("headers", None), "headers")
    req.params = to_params(options.pop("params", None))
    req.extensions = to_dict(options.pop("extensions", None), "extensions")
    for name, value in options.items():
        if not hasattr(req, name) or name in ("method", "url"):
            raise InvalidRequestError(f"stream() got an unexpected argument {name!r}")
        setattr(req, name, value)
    return req
