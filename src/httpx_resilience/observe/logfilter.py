"""Logging filters that keep secrets out of httpx's and httpcore's own log lines.

httpx logs every request at INFO with the full URL (``HTTP Request: GET
https://api.example.com/x?api_key=... "HTTP/1.1 200 OK"``), and httpcore logs
each step at DEBUG with the exceptions it met, as text
(``send_request_headers.failed exception=LocalProtocolError(LocalProtocolError(
"Illegal header value b'Bearer eyJ...\\n'"))``). :class:`RedactingFilter` on
the ``httpx`` logger and :class:`ScrubbingFilter` on httpcore's loggers keep
both a query-string secret and a header value from reaching a log handler;
they change nothing else.

Importing httpx-resilience installs nothing. The first
:class:`~httpx_resilience.ResilientTransport` (so also the first
``AsyncHTTPClient``), and the first credential an auth plugin is about to send
(it may go through a plain httpx transport), call
:func:`ensure_httpx_log_redaction`, which installs the filters once; later
calls cost one flag test. Switch it off with
:func:`set_httpx_log_redaction` ``(False)`` (which also removes filters already
installed) or with the environment variable :data:`ENV_VAR` set to ``0``,
``false``, ``no`` or ``off`` (read on the first call).
"""

from __future__ import annotations

import logging
import os
import threading

import httpx

from .redact import redact_url, scrub_text

__all__ = [
    "ENV_VAR",
    "HTTPCORE_LOGGERS",
    "RedactingFilter",
    "ScrubbingFilter",
    "ensure_httpx_log_redaction",
    "httpx_log_redaction_enabled",
    "install_httpx_log_redaction",
    "remove_httpx_log_redaction",
    "set_httpx_log_redaction",
]

ENV_VAR = "HTTPX_RESILIENCE_REDACT_HTTPX_LOGS"
"""``0``, ``false``, ``no`` or ``off`` keeps the filters off unless
:func:`set_httpx_log_redaction` says otherwise."""
_OFF_WORDS = frozenset({"0", "false", "no", "off"})

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


def _targets(logger_name: str) -> list[tuple[str, type[logging.Filter]]]:
    pairs: list[tuple[str, type[logging.Filter]]] = [(logger_name, RedactingFilter)]
    if logger_name == "httpx":
        pairs += [(name, ScrubbingFilter) for name in HTTPCORE_LOGGERS]
    return pairs


def _install(logger_name: str, kind: type[logging.Filter]) -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, kind) for f in logger.filters):
        logger.addFilter(kind())


def install_httpx_log_redaction(logger_name: str = "httpx") -> None:
    """Add :class:`RedactingFilter` to ``logger_name`` once (idempotent).

    With the default name it also adds :class:`ScrubbingFilter` to each of
    :data:`HTTPCORE_LOGGERS` (the stack under httpx's own transport).
    """
    for name, kind in _targets(logger_name):
        _install(name, kind)


def remove_httpx_log_redaction(logger_name: str = "httpx") -> None:
    """Remove what :func:`install_httpx_log_redaction` added (other filters stay)."""
    for name, kind in _targets(logger_name):
        logger = logging.getLogger(name)
        for flt in [f for f in logger.filters if isinstance(f, kind)]:
            logger.removeFilter(flt)


_lock = threading.Lock()
_enabled: bool | None = None  # None: not decided yet (the environment variable decides)
_settled = False  # ensure_httpx_log_redaction has nothing left to do


def _from_environment() -> bool:
    return os.environ.get(ENV_VAR, "").strip().lower() not in _OFF_WORDS


def httpx_log_redaction_enabled() -> bool:
    """Whether the filters are (or will be, with the next transport) installed."""
    return _from_environment() if _enabled is None else _enabled


def ensure_httpx_log_redaction() -> None:
    """Install the filters on httpx's and httpcore's loggers once, unless switched off.

    Called by every :class:`~httpx_resilience.ResilientTransport` as it is
    created; after the first call it tests one flag. Thread-safe.
    """
    global _enabled, _settled
    if _settled:
        return
    with _lock:
        if _enabled is None:
            _enabled = _from_environment()
        if _enabled:
            install_httpx_log_redaction()
        _settled = True


def set_httpx_log_redaction(on: bool) -> None:
    """Switch the redaction of httpx's own log lines on or off for the process.

    ``False`` removes the filters if they are installed, and the transports
    created later add none; ``True`` installs them at once. The call wins over
    :data:`ENV_VAR`.
    """
    global _enabled, _settled
    with _lock:
        _enabled = bool(on)
        if on:
            install_httpx_log_redaction()
        else:
            remove_httpx_log_redaction()
        _settled = True
