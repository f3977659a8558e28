"""httpx-resilience: the resilience layer for Python HTTP.

Retries with budgets, deadlines, circuit breakers, rate limiters, bulkheads
and hedging, packaged as an httpx transport (:class:`ResilientTransport`) and a
client facade (:class:`AsyncHTTPClient`). Everything public is importable from
here; :mod:`httpx_resilience.testing` has the chaos server and a fake clock.
"""

from __future__ import annotations

import contextlib
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
from .client import AsyncHTTPClient
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
from .observe.logfilter import install_httpx_log_redaction
from .observe.logging import LoggingObserver
from .observe.otel import TracingObserver
from .observe.prometheus import PrometheusObserver
from .observe.redactor import Redactor
from .pipeline import ResilienceInfo, ResilientTransport
from .policies.breaker import BreakerTransition, CircuitBreaker, CircuitState
from .policies.budget import RetryBudget
from .policies.bulkhead import Bulkhead
from .policies.generic import (
    RetryStats,
    retry_async,
    with_api_retry,
    with_network_retry,
    with_retry,
)
from .policies.hedging import HedgingPolicy
from .policies.limiter import RateLimiter, SlidingWindowRateLimiter, TokenBucketRateLimiter
from .policies.retry import RetryPolicy
from .serializers import FormSerializer, JSONSerializer
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
from .transports import default_transport, make_transport

if TYPE_CHECKING:
    from .transports.aiohttp import AiohttpTransport
    from .transports.native import NativeTransport

__version__ = "0.1.0"

__all__ = [
    "APIKeyAuth",
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
    "FallbackAuth",
    "FormSerializer",
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
    "MetricsMiddleware",
    "Middleware",
    "NativeTransport",
    "OAuth2ClientCredentials",
    "PrometheusObserver",
    "RateLimitError",
    "RateLimiter",
    "RateLimiterTimeout",
    "Redactor",
    "RequestIdMiddleware",
    "RequestNotReplayableError",
    "RequestTimeoutError",
    "ResilienceInfo",
    "ResilientTransport",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "RetryBudget",
    "RetryExhaustedError",
    "RetryPolicy",
    "RetryStats",
    "Secret",
    "ServiceClient",
    "ServiceRegistry",
    "ServiceSettings",
    "Settings",
    "SlidingWindowRateLimiter",
    "StoreClient",
    "TokenBucketRateLimiter",
    "TokenCache",
    "TracingMiddleware",
    "TracingObserver",
    "__version__",
    "default_transport",
    "get_dapr_client",
    "get_service_client",
    "make_transport",
    "retry_async",
    "with_api_retry",
    "with_network_retry",
    "with_retry",
]

# Public objects report the top-level package as their home, as httpx does.
for _name in __all__:
    _obj = globals().get(_name)  # the optional transports are loaded on first use
    if isinstance(_obj, type) or callable(_obj):
        with contextlib.suppress(AttributeError, TypeError):
            _obj.__module__ = __name__
del _name, _obj

# A library adds no handler of its own: the application configures logging.
logging.getLogger(__name__).addHandler(logging.NullHandler())
# httpx logs full URLs at INFO; keep query-string secrets out of them.
install_httpx_log_redaction()


def __getattr__(name: str) -> Any:
    # The optional transports import aiohttp / httptools (extras): load them on first use.
    if name in ("AiohttpTransport", "NativeTransport"):
        from . import transports

        value = getattr(transports, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
