"""Middlewares: hooks run once per logical request, before and after the pipeline."""

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
