"""httpx-resilience: the resilience layer for Python HTTP.

Retries with budgets, deadlines, circuit breakers, rate limiters, bulkheads,
hedging, fallbacks and adaptive throttling, packaged as an httpx transport
(:class:`ResilientTransport`, for ``httpx.AsyncClient`` and ``httpx.Client``)
and client facades (:class:`AsyncHTTPClient`, :class:`HTTPClient`); state
shared across processes with :class:`RedisBackend`. Everything public is
importable from here; :mod:`httpx_resilience.testing` has the chaos server, a
fake clock and the testing switch.

Importing the package imports httpx and the standard library only, and
changes nothing global. The names that need an extra or build on the core
(the services, ``Settings``, the optional transports) and ``__version__`` are
loaded on first access; without their extra, that access raises
:class:`ImportError` naming what to install.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from typing import TYPE_CHECKING, Any

from .auth import (
    APIKeyAuth,
    AuthHandler,
    BasicAuth,
    BearerAuth,
    FallbackAuth,
    InMemoryTokenCache,
    JWTAuth,
    OAuth2ClientCredentials,
    Secret,
    TokenCache,
)
from .backends import MemoryBackend, RedisBackend, SharedStateUnavailableError
from .client import AsyncHTTPClient, HTTPClient
from .config import ClientConfig
from .exceptions import (
    AuthenticationError,
    BulkheadFullError,
    CircuitBreakerOpenError,
    ConfigurationError,
    ExternalServiceError,
    HTTPClientError,
    HTTPRequestError,
    HTTPResponseError,
    InvalidRequestError,
    InvalidURLError,
    RateLimitError,
    RateLimiterTimeout,
    RequestNotReplayableError,
    RequestTimeoutError,
    ResponseDecodeError,
    ResponseTooLargeError,
    RetryExhaustedError,
)
from .middleware import (
    LoggingMiddleware,
    MetricsMiddleware,
    Middleware,
    RequestIdMiddleware,
    TracingMiddleware,
)
from .models import HTTPRequest, HTTPResponse
from .observe.logging import LoggingObserver
from .observe.redactor import Redactor
from .pipeline import ResilienceInfo, ResilientTransport
from .pipeline._extensions import ResilienceOptions, resilience_info
from .policies.breaker import BreakerTransition, CircuitBreaker, CircuitState
from .policies.budget import RetryBudget
from .policies.bulkhead import Bulkhead
from .policies.fallback import Fallback
from .policies.generic import (
    RetryDecorator,
    RetryOptions,
    RetryStats,
    retry,
    retry_async,
    with_api_retry,
    with_network_retry,
    with_retry,
)
from .policies.hedging import HedgingPolicy
from .policies.limiter import RateLimiter, SlidingWindowRateLimiter, TokenBucketRateLimiter
from .policies.retry import RetryPolicy
from .policies.throttle import AdaptiveThrottle, ThrottledError
from .serializers import FormSerializer, JSONSerializer
from .transports import default_transport, make_transport

if TYPE_CHECKING:  # the lazily loaded names below, for type checkers and IDEs
    from .observe.otel import TracingObserver
    from .observe.otel_metrics import MetricsObserver
    from .observe.prometheus import PrometheusObserver
    from .services import (
        BaseAPIClient,
        DaprClient,
        ServiceClient,
        ServiceRegistry,
        StoreClient,
        get_dapr_client,
        get_service_client,
    )
    from .settings import ServiceSettings, Settings
    from .transports.aiohttp import AiohttpTransport
    from .transports.native import NativeTransport

    __version__: str

#: Names loaded on first access (module ``__getattr__``), by the module that
#: defines them: each needs an extra or pulls in more than the core does.
#: A new optional name is one line here, one under ``TYPE_CHECKING`` above and
#: one in ``__all__``.
_LAZY: dict[str, str] = {
    # transports that need the aiohttp / fast extras
    "AiohttpTransport": ".transports",
    "NativeTransport": ".transports",
    # the services (seeds 000, 003, 004): clients built on the core
    "BaseAPIClient": ".services",
    "DaprClient": ".services",
    "ServiceClient": ".services",
    "ServiceRegistry": ".services",
    "StoreClient": ".services",
    "get_dapr_client": ".services",
    "get_service_client": ".services",
    # observers for the prometheus / otel extras (they import the extra when built)
    "PrometheusObserver": ".observe.prometheus",
    "TracingObserver": ".observe.otel",
    "MetricsObserver": ".observe.otel_metrics",
    # the settings extra (pydantic-settings)
    "ServiceSettings": ".settings",
    "Settings": ".settings",
}

__all__ = [
    "APIKeyAuth",
    "AdaptiveThrottle",
    "AiohttpTransport",
    "AsyncHTTPClient",
    "AuthHandler",
    "AuthenticationError",
    "BaseAPIClient",
    "BasicAuth",
    "BearerAuth",
    "BreakerTransition",
    "Bulkhead",
    "BulkheadFullError",
    "CircuitBreaker",
    "CircuitBreakerOpenError",
    "CircuitState",
    "ClientConfig",
    "ConfigurationError",
    "DaprClient",
    "ExternalServiceError",
    "Fallback",
    "FallbackAuth",
    "FormSerializer",
    "HTTPClient",
    "HTTPClientError",
    "HTTPRequest",
    "HTTPRequestError",
    "HTTPResponse",
    "HTTPResponseError",
    "HedgingPolicy",
    "InMemoryTokenCache",
    "InvalidRequestError",
    "InvalidURLError",
    "JSONSerializer",
    "JWTAuth",
    "LoggingMiddleware",
    "LoggingObserver",
    "MemoryBackend",
    "MetricsMiddleware",
    "MetricsObserver",
    "Middleware",
    "NativeTransport",
    "OAuth2ClientCredentials",
    "PrometheusObserver",
    "RateLimitError",
    "RateLimiter",
    "RateLimiterTimeout",
    "Redactor",
    "RedisBackend",
    "RequestIdMiddleware",
    "RequestNotReplayableError",
    "RequestTimeoutError",
    "ResilienceInfo",
    "ResilienceOptions",
    "ResilientTransport",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "RetryBudget",
    "RetryDecorator",
    "RetryExhaustedError",
    "RetryOptions",
    "RetryPolicy",
    "RetryStats",
    "Secret",
    "ServiceClient",
    "ServiceRegistry",
    "ServiceSettings",
    "Settings",
    "SharedStateUnavailableError",
    "SlidingWindowRateLimiter",
    "StoreClient",
    "ThrottledError",
    "TokenBucketRateLimiter",
    "TokenCache",
    "TracingMiddleware",
    "TracingObserver",
    "__version__",
    "default_transport",
    "get_dapr_client",
    "get_service_client",
    "make_transport",
    "resilience_info",
    "retry",
    "retry_async",
    "with_api_retry",
    "with_network_retry",
    "with_retry",
]


def _home(obj: Any) -> None:
    """Public objects report the top-level package as their home, as httpx's do."""
    if isinstance(obj, type) or callable(obj):
        with contextlib.suppress(AttributeError, TypeError):  # a builtin or a C type
            obj.__module__ = __name__


for _name in __all__:
    if _name in globals() and _name != "__version__":
        _home(globals()[_name])
del _name

# A library adds no handler of its own: the application configures logging.
# (The filters that redact httpx's own log lines are installed when a
# ResilientTransport is created: see httpx_resilience.observe.logfilter.)
logging.getLogger(__name__).addHandler(logging.NullHandler())


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("httpx-resilience")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is not None:
        value = getattr(importlib.import_module(home, __name__), name)
        _home(value)
    elif name == "__version__":
        value = _version()  # importlib.metadata costs more than the rest of the import
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
