"""Middlewares: hooks run once per logical request, before and after the pipeline."""

from .base import Middleware
from .logging import LoggingMiddleware
from .request_id import RequestIdMiddleware

__all__ = ["LoggingMiddleware", "Middleware", "RequestIdMiddleware"]
