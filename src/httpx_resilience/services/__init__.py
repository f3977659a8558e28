"""Clients of named services: the registry, a base class, Dapr and the Store API example.

- :func:`get_service_client` — one pooled, resilient client per configured
  service (seed 004), failures as :class:`~httpx_resilience.ExternalServiceError`.
- :class:`BaseAPIClient` — a base class for a service's typed client (seed 003).
- :class:`DaprClient` / :func:`get_dapr_client` — the Dapr sidecar (seed 004).
- :class:`StoreClient` — seed 000's Store API client, a worked example.

Failures are :class:`~httpx_resilience.ExternalServiceError`; an open breaker,
a rate-limiter or bulkhead refusal and a timeout are also instances of their
own class (:class:`ServiceCircuitOpenError` is a ``CircuitBreakerOpenError`` …).
"""

from __future__ import annotations

from ._errors import (
    ServiceBulkheadFullError,
    ServiceCircuitOpenError,
    ServiceRateLimiterTimeout,
    ServiceTimeoutError,
    as_external_error,
    status_error,
)
from .base_client import BaseAPIClient
from .dapr import DaprClient, dapr_endpoint, get_dapr_client
from .registry import (
    ServiceClient,
    ServiceRegistry,
    aclose_all,
    default_registry,
    get_service_client,
)
from .store import StoreClient, trim_results

__all__ = [
    "BaseAPIClient",
    "DaprClient",
    "ServiceBulkheadFullError",
    "ServiceCircuitOpenError",
    "ServiceClient",
    "ServiceRateLimiterTimeout",
    "ServiceRegistry",
    "ServiceTimeoutError",
    "StoreClient",
    "aclose_all",
    "as_external_error",
    "dapr_endpoint",
    "default_registry",
    "get_dapr_client",
    "get_service_client",
    "status_error",
    "trim_results",
]
