"""One answer of the chaos server: :class:`Fault`, an immutable value.

A :class:`Fault` says how one request is answered: its status, its body and
headers, and what goes wrong on the wire (latency, a hang, a reset, a
truncated or dripping body, a silent close). How a route picks the fault for
its n-th request lives in :mod:`._faults`; how a fault is written to the wire
in :mod:`._respond`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias

__all__ = ["Body", "Fault", "ResetMode", "RetryAfter", "_format_retry_after"]

ResetMode = Literal["before_headers", "after_headers"]
"""Where a connection is reset: before anything is sent, or after the response head."""

RetryAfter: TypeAlias = str | int | float | datetime
Body: TypeAlias = bytes | str | Mapping[str, Any] | Sequence[Any]

_RESET_MODES: Final = ("before_headers", "after_headers")
_FORBIDDEN_IN_HEADERS: Final = frozenset("\r\n\0")


def _format_retry_after(value: RetryAfter) -> str:
    if isinstance(value, str):
        _check_header_text("retry_after", value)
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("retry_after: a datetime must be timezone-aware")
        return format_datetime(value.astimezone(timezone.utc), usegmt=True)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"retry_after: expected str, number or datetime, got {value!r}")
    return str(int(value)) if float(value).is_integer() else str(value)


def _check_header_text(where: str, text: str) -> None:
    """Refuse what cannot go on the wire: CR, LF, NUL, or a character beyond Latin-1."""
    if not _FORBIDDEN_IN_HEADERS.isdisjoint(text):
        raise ValueError(f"{where}: CR, LF and NUL cannot be sent in a header, got {text!r}")
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(
            f"{where}: a header is sent as Latin-1 bytes; {text!r} has other characters"
        ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """How the server answers one request.

    The default is a healthy ``200`` with a small JSON body. Faults apply in
    this order: ``latency``, then ``hang`` / ``reset`` / ``truncate`` /
    ``drip``; at most one of the last four makes sense at a time. ``close``
    combines with any answer that completes.

    Args:
        status: the response status code.
        latency: seconds to wait before the response head is sent.
        hang: never answer; the connection stays open until the client goes
            away or the server stops.
        retry_after: a ``Retry-After`` value added to non-2xx responses: a
            string is sent as is (delta-seconds or an HTTP-date), a number as
            delta-seconds, a timezone-aware :class:`~datetime.datetime` as an
            HTTP-date.
        reset: ``"before_headers"`` closes the TCP connection with RST
            (``SO_LINGER`` 0) without sending anything; ``"after_headers"``
            sends the status line and headers (with a ``Content-Length``), then
            resets.
        truncate: send a ``Content-Length`` larger than the body actually
            sent, then close the connection.
        drip: seconds to wait before each ``drip_chunk``-byte piece of the
            body (the head is sent at once). ``0`` disables dripping.
        drip_chunk: the size of each dripped piece in bytes.
        close: after a complete response, close the connection *without*
            announcing it (no ``Connection: close``), as a server whose
            keep-alive timer fired would: a client that pools connections
            finds out when it reuses this one, or, when its next request is
            already on the way, by a reset (the server never reads it).
        malformed_json: answer ``Content-Type: application/json`` with a body
            that is not valid JSON.
        body: the response body: bytes (``application/octet-stream``), str
            (``text/plain``) or a JSON-serialisable mapping/sequence
            (``application/json``). ``None`` means the default JSON body.
        body_size: answer a JSON body of exactly this many bytes (plain bytes
            when it is below 11), for large-body tests.
        headers: extra response headers; they override the server's own.
            Names and values are sent as Latin-1 and may not hold CR, LF or NUL.

    Raises:
        ValueError: on an impossible combination or value.
    """

    status: int = 200
    latency: float = 0.0
    hang: bool = False
    retry_after: RetryAfter | None = None
    reset: ResetMode | None = None
    truncate: bool = False
    drip: float = 0.0
    drip_chunk: int = 16
    close: bool = False
    malformed_json: bool = False
    body: Body | None = None
    body_size: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 599:
            raise ValueError(f"Fault.status must be within 100..599, got {self.status!r}")
        if self.latency < 0 or self.drip < 0:
            raise ValueError("Fault.latency and Fault.drip must be >= 0 seconds")
        if self.drip_chunk < 1:
            raise ValueError(f"Fault.drip_chunk must be >= 1 byte, got {self.drip_chunk!r}")
        if self.reset is not None and self.reset not in _RESET_MODES:
            raise ValueError(
                f"Fault.reset must be one of {_RESET_MODES} or None, got {self.reset!r}"
            )
        if self.body_size is not None and self.body_size < 0:
            raise ValueError(f"Fault.body_size must be >= 0, got {self.body_size!r}")
        if self.body is not None and self.body_size is not None:
            raise ValueError("Fault: give either body or body_size, not both")
        if self.retry_after is not None:
            _format_retry_after(self.retry_after)  # fail now, not inside the server thread
        for name, value in self.headers.items():
            if not isinstance(name, str) or not isinstance(value, str) or not name.strip():
                raise ValueError(f"Fault.headers: invalid header {name!r}: {value!r}")
            if ":" in name or name != name.strip():
                raise ValueError(f"Fault.headers: invalid header name {name!r}")
            _check_header_text(f"Fault.headers[{name!r}]", f"{name}{value}")
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))

    def healthy(self) -> Fault:
        """This fault's content (body, headers) with every fault removed: a plain 200."""
        return Fault(body=self.body, body_size=self.body_size, headers=self.headers)
