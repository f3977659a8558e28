"""A logging filter that redacts URLs in httpx's own log records.

httpx logs every request at INFO with the full URL (``HTTP Request: GET
https://api.example.com/x?api_key=... "HTTP/1.1 200 OK"``). Importing
httpx-resilience installs :class:`RedactingFilter` on the ``httpx`` logger so a
query-string secret never reaches a log handler; it changes nothing else.
"""

from __future__ import annotations

import logging

import httpx

from .redact import redact_url

__all__ = ["RedactingFilter", "install_httpx_log_redaction"]


class RedactingFilter(logging.Filter):
    """Replace ``httpx.URL`` arguments of a record with their redacted text."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, httpx.URL) for a in args):
            record.args = tuple(redact_url(a) if isinstance(a, httpx.URL) else a for a in args)
        return True


def install_httpx_log_redaction(logger_name: str = "httpx") -> None:
    """Add :class:`RedactingFilter` to ``logger_name`` once (idempotent)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
