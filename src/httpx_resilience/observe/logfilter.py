"""Logging filters that keep secrets out of httpx's and httpcore's own log lines.

httpx logs every request at INFO with the full URL (``HTTP Request: GET
https://api.example.com/x?api_key=... "HTTP/1.1 200 OK"``), and httpcore logs
each step at DEBUG with the exceptions it met, as text
(``send_request_headers.failed exception=LocalProtocolError(LocalProtocolError(
"Illegal header value b'Bearer eyJ...\\n'"))``). Importing httpx-resilience
installs :class:`RedactingFilter` on the ``httpx`` logger and
:class:`ScrubbingFilter` on httpcore's loggers, so neither a query-string
secret nor a header value reaches a log handler; they change nothing else.
"""

from __future__ import annotations

import logging

import httpx

from .redact import redact_url, scrub_text

__all__ = [
    "HTTPCORE_LOGGERS",
    "RedactingFilter",
    "ScrubbingFilter",
    "install_httpx_log_redaction",
]

HTTPCORE_LOGGERS = (
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)
"""The loggers httpcore writes to (a filter applies to its own logger only, not children)."""


class RedactingFilter(logging.Filter):
    """Replace ``httpx.URL`` arguments of a record with their redacted text."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, httpx.URL) for a in args):
            record.args = tuple(redact_url(a) if isinstance(a, httpx.URL) else a for a in args)
        return True


class ScrubbingFilter(logging.Filter):
    """Scrub a record's message and text arguments with
    :func:`~httpx_resilience.observe.redact.scrub_text` (header values quoted by
    protocol errors, credentials, secret URL parameters, registered secrets)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        if isinstance(msg, str):
            record.msg = scrub_text(msg)
        args = record.args
        if isinstance(args, tuple) and args:
            record.args = tuple(
                scrub_text(a) if isinstance(a, str)
                else scrub_text(repr(a)) if isinstance(a, BaseException) else a
                for a in args
            )
        return True


def _install(logger_name: str, kind: type[logging.Filter]) -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, kind) for f in logger.filters):
        logger.addFilter(kind())


def install_httpx_log_redaction(logger_name: str = "httpx") -> None:
    """Add :class:`RedactingFilter` to ``logger_name`` once (idempotent).

    With the default name it also adds :class:`ScrubbingFilter` to each of
    :data:`HTTPCORE_LOGGERS` (the stack under httpx's own transport).
    """
    _install(logger_name, RedactingFilter)
    if logger_name == "httpx":
        for name in HTTPCORE_LOGGERS:
            _install(name, ScrubbingFilter)
