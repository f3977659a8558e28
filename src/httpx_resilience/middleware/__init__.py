"""Middlewares: hooks run once per logical request, before and after the pipeline.

``AsyncHTTPClient`` awaits their async hooks, ``HTTPClient`` calls the sync
twins (``process_request_sync``, ...); the built-in ones have both, their
logic written once.
"""

from .base import Middleware
from .logging import LoggingMiddleware
from .metrics import MetricsMiddleware
from .request_id import RequestIdMiddleware
from .tracing import TracingMiddleware

__all__ = [
    "LoggingMiddleware",
    "MetricsMiddleware",
    "Middleware",
    "RequestIdMiddleware",
    "TracingMiddleware",
]
