"""The OpenTelemetry attribute names and values shared by the span and metric observers.

Nothing here imports OpenTelemetry: the names are plain strings, and the
helpers turn the events' fields into bounded attribute values (a method from
the known set or ``_OTHER``, a host and port read from a redacted URL or a
host key, a retry reason from a fixed set).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..config import HTTP_METHODS

__all__ = [
    "DURATION_BUCKETS",
    "OTHER",
    "REQUEST_BUCKETS",
    "WAIT_BUCKETS",
    "Cap",
    "method_of",
    "protocol_version",
    "retry_reason",
    "scheme_of",
    "server_of",
    "span_event",
    "split_host_key",
]

# Semantic-convention attribute names (HTTP client spans and metrics, stable since semconv 1.23).
METHOD = "http.request.method"
METHOD_ORIGINAL = "http.request.method_original"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
URL_FULL = "url.full"
URL_SCHEME = "url.scheme"
STATUS_CODE = "http.response.status_code"
RESEND_COUNT = "http.request.resend_count"
ERROR_TYPE = "error.type"
PROTOCOL_VERSION = "network.protocol.version"

#: The value of every bounded attribute past its cap, and of an unknown method.
OTHER = "_OTHER"

#: ``http.client.request.duration``'s boundaries, as the HTTP metric conventions advise (seconds).
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)
#: Logical requests: the attempts' boundaries, then up to the longest backoff (seconds).
REQUEST_BUCKETS = (*DURATION_BUCKETS, 30.0, 60.0)
#: Rate-limiter waits: from a millisecond to the limiters' longest pause (seconds).
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# Later kinds of events, matched by class name: the span event each becomes, and its fields.
_SPAN_EVENTS = {
    "BudgetRefused": "retry_budget_refused",
    "ThrottleRejected": "throttle_rejected",
    "FallbackServed": "fallback_served",
}
_SPAN_EVENT_FIELDS = ("spend", "error_type", "status_code", "probability", "attempt")

# Exception class names (httpx's and ours) → the fixed set of retry reasons.
_REASONS = {
    "ConnectTimeout": "timeout",
    "ReadTimeout": "timeout",
    "WriteTimeout": "timeout",
    "PoolTimeout": "timeout",
    "TimeoutException": "timeout",
    "RequestTimeoutError": "timeout",
    "TimeoutError": "timeout",
    "ConnectError": "connect_error",
    "ReadError": "network_error",
    "WriteError": "network_error",
    "NetworkError": "network_error",
    "CloseError": "network_error",
    "RemoteProtocolError": "protocol_error",
    "LocalProtocolError": "protocol_error",
    "ProtocolError": "protocol_error",
    "ResponseTooLargeError": "protocol_error",
}


def method_of(method: str) -> str:
    """``http.request.method``: the method when it is a known one, else ``_OTHER``."""
    return method if method in HTTP_METHODS else OTHER


def protocol_version(event: object) -> str | None:
    """``network.protocol.version`` of an event that carries ``http_version`` (``HTTP/1.1``)."""
    version = getattr(event, "http_version", None)
    if not isinstance(version, str):
        return None
    version = version.upper().removeprefix("HTTP/")
    return version if version in ("1.0", "1.1", "2", "3") else None


def server_of(url: str) -> tuple[str | None, int | None]:
    """``server.address`` and ``server.port`` of a (redacted) URL; the port defaults by scheme."""
    scheme, _, rest = url.partition("://")
    netloc = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in netloc:
        # Redacted user-info ("[REDACTED]@host") is no part of the server's address,
        # and its brackets would be read as an IPv6 literal.
        url = f"{scheme}://{netloc.rpartition('@')[2]}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None, None
    if port is None:
        port = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.hostname, port


def scheme_of(url: str) -> str | None:
    """``url.scheme`` of a URL: ``http`` or ``https`` (anything else is ``None``)."""
    scheme = url.partition("://")[0].lower()
    return scheme if scheme in ("http", "https") else None


def split_host_key(key: str) -> tuple[str, int | None]:
    """A host key (``host`` or ``host:port``, as per-host policies use) → address and port."""
    host, sep, port = key.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return host.strip("[]"), int(port)
    return key.strip("[]"), None


def retry_reason(reason: str) -> str:
    """A retry's free-text reason → a fixed set: the status code, or an error category.

    ``"HTTP 503 Service Unavailable"`` → ``"503"``; ``"ReadTimeout: ..."`` →
    ``"timeout"``; then ``connect_error``, ``network_error``,
    ``protocol_error``; anything else is ``_OTHER``.
    """
    if reason.startswith("HTTP "):
        code = reason[5:8]
        return code if code.isdigit() and len(code) == 3 and "1" <= code[0] <= "5" else OTHER
    return _REASONS.get(reason.split(":", 1)[0].strip(), OTHER)


def span_event(event: object) -> tuple[str, dict[str, str | int | float]] | None:
    """The span event (name, attributes) of a later kind of event, or ``None`` for others."""
    name = _SPAN_EVENTS.get(type(event).__name__)
    if name is None:
        return None
    fields = ((k, getattr(event, k, None)) for k in _SPAN_EVENT_FIELDS)
    return name, {f"httpx_resilience.{k}": v for k, v in fields if isinstance(v, str | int | float)}


class Cap:
    """Keep at most ``limit`` distinct values of one attribute; later ones become ``_OTHER``."""

    __slots__ = ("limit", "seen")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str) -> str:
        seen = self.seen
        if value in seen:
            return value
        if len(seen) >= self.limit:
            return OTHER
        seen.add(value)
        return value
