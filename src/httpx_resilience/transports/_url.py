"""The URL check every transport makes before it connects.

httpx parses URLs leniently: ``http://host:0/`` and ``http://host:99999/`` are
valid ``httpx.URL`` objects, a 300-character host label passes, and a space in
a host becomes ``%20``. Sent as they are, port 0 dials port 80, port 99999
raises a bare ``OverflowError`` (or an ``ExceptionGroup`` from anyio) and the
long label a bare ``UnicodeError`` from the IDNA codec. :func:`check_url`
refuses each of them with :class:`~httpx_resilience.InvalidURLError` (also an
``httpx.InvalidURL``) before any socket is opened.

The check is cheap on the hot path: the verdict for an origin is cached (a
small dict, cleared when it grows past a bound, so a client calling millions
of hosts does not grow it without limit).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

import httpx

from ..exceptions import InvalidURLError

__all__ = ["check_url"]

_CACHE_LIMIT: Final = 1024
_checked: dict[tuple[str, str, int | None], None] = {}

# One DNS label (RFC 1123: letters, digits and hyphens, 1-63 characters, no
# hyphen at either end). Underscores are allowed because real service names
# (``_srv`` records, Docker Compose hosts) use them and every resolver accepts them.
_LABEL: Final = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\Z")


def check_url(url: httpx.URL) -> None:
    """Raise :class:`InvalidURLError` unless a connection can be made to ``url``'s origin.

    Checked: a host is present; the port, when given, is 1-65535; the host is an
    IP address or a DNS name of at most 253 characters whose labels are 1-63
    letters, digits, hyphens or underscores (an internationalised name is already
    in its ASCII ``xn--`` form in ``url.raw_host``).
    The scheme is left to the transport, which raises ``httpx.UnsupportedProtocol``.
    """
    key = (url.scheme, url.raw_host.decode("ascii", "replace"), url.port)
    if key in _checked:
        return
    _check(url, key[1])
    if len(_checked) >= _CACHE_LIMIT:
        _checked.clear()
    _checked[key] = None


def _check(url: httpx.URL, host: str) -> None:
    shown = _shown(url)
    if url.scheme not in ("http", "https"):
        return
    if not host:
        raise InvalidURLError(
            f"the URL {shown!r} has no host",
            hint="give an absolute URL such as https://api.example.com/path",
        )
    port = url.port
    if port is not None and not 1 <= port <= 65535:
        raise InvalidURLError(
            f"the URL {shown!r} has port {port}, outside 1-65535",
            hint="give a port from 1 to 65535, or none for the scheme's default",
        )
    if _is_ip(host):
        return
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253:
        raise InvalidURLError(
            f"the host of the URL {shown!r} is {len(name)} characters long; "
            "a DNS name has at most 253",
        )
    for label in name.split("."):
        if not _LABEL.match(label):
            raise InvalidURLError(
                f"the host of the URL {shown!r} is not a valid DNS name: the label "
                f"{label[:70]!r}{'…' if len(label) > 70 else ''} must be 1-63 letters, digits, "
                "hyphens or underscores, not starting or ending with a hyphen",
            )


def _is_ip(host: str) -> bool:
    if ":" in host:  # httpx gives an IPv6 literal without its brackets
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return False
        return True
    if host[-1:].isdigit():
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return False
        return True
    return False


def _shown(url: httpx.URL) -> str:
    """The URL's origin for a message: never its path, query or credentials."""
    host = url.raw_host.decode("ascii", "replace")
    if len(host) > 80:
        host = host[:77] + "..."
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{host}{port}"
