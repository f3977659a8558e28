"""httpx-resilience: the resilience layer for Python HTTP."""

from __future__ import annotations

from .exceptions import (
    AuthenticationError,
    BulkheadFullError,
    CircuitBreakerOpenError,
    ConfigurationError,
    ExternalServiceError,
    HTTPClientError,
    HTTPRequestError,
    HTTPResponseError,
    RateLimiterTimeout,
    RateLimitError,
    RequestNotReplayableError,
    RequestTimeoutError,
    ResponseDecodeError,
    RetryExhaustedError,
)

__version__ = "0.1.0"
