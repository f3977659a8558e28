"""The URL check every transport makes before it connects.

httpx parses URLs leniently: ``http://host:0/`` and ``http://host:99999/`` are
valid ``httpx.URL`` objects, a 300-character host label passes, and a space in
a host becomes ``%20``. Sent as they are, port 0 dials port 80, port 99999
raises a bare ``OverflowError`` (or an ``ExceptionGroup`` from anyio) and the
long label a bare ``UnicodeError`` from the IDNA codec. :func:`check_url`
refuses each of them with :class:`~httpx_resilience.InvalidURLError` (also an
``httpx.InvalidURL``) before any socket is opened.

Two kinds of host look valid to httpx and are refused here too:

- a host ending in a number that is not a dotted-quad IPv4 address
  (``2130706433``, ``0x7f.1``, ``10.1``): resolvers read it as an IPv4 address
  in a legacy form (``2130706433`` is ``127.0.0.1``), so a check of the host
  name elsewhere (an allow list, a proxy rule) sees a different host than the
  one dialled; browsers read it the same way (WHATWG URL: "ends in a number");
- an ``xn--`` label that is not valid IDNA (``xn--zz``): ``httpx.URL.host``
  raises a bare ``UnicodeError`` for it, and so would every log line, error
  message and per-host policy key built from it.

The check is cheap on the hot path: the last URL object checked is
remembered (clients reuse ``httpx.URL`` objects per path), and the verdict for
an origin is cached (a small dict, cleared when it grows past a bound, so a
client calling millions of hosts does not grow it without limit).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

import httpx

from ..exceptions import InvalidURLError

__all__ = ["check_url"]

_CACHE_LIMIT: Final = 1024
_checked: dict[tuple[str, bytes, int | None], None] = {}
_last: httpx.URL | None = None  # the last URL object that passed (identity fast path)

# One DNS label (RFC 1123: letters, digits and hyphens, 1-63 characters, no
# hyphen at either end). Underscores are allowed because real service names
# (``_srv`` records, Docker Compose hosts) use them and every resolver accepts them.
_LABEL: Final = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\Z")
# A label resolvers take for a number (decimal, octal or hex): WHATWG's "ends in a number".
_NUMBER: Final = re.compile(r"(?:[0-9]+|0[xX][0-9A-Fa-f]*)\Z")


def check_url(url: httpx.URL) -> None:
    """Raise :class:`InvalidURLError` unless a connection can be made to ``url``'s origin.

    Checked: a host is present; the port, when given, is 1-65535; the host is an
    IP address or a DNS name of at most 253 characters whose labels are 1-63
    letters, digits, hyphens or underscores (an internationalised name is already
    in its ASCII ``xn--`` form in ``url.raw_host``, and must decode); a name
    does not end in a number unless it is a dotted-quad IPv4 address.
    The scheme is left to the transport, which raises ``httpx.UnsupportedProtocol``.
    """
    global _last
    if url is _last:
        return
    key = (url.scheme, url.raw_host, url.port)
    if key not in _checked:
        _check(url, key[1].decode("ascii", "replace"))
        if len(_checked) >= _CACHE_LIMIT:
            _checked.clear()
        _checked[key] = None
    _last = url


def _check(url: httpx.URL, host: str) -> None:
    if url.scheme not in ("http", "https"):
        return
    shown = _shown(url)
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
            hint="check how the URL is built (a value pasted into the host?)",
        )
    labels = name.split(".")
    for label in labels:
        if not _LABEL.match(label):
            raise InvalidURLError(
                f"the host of the URL {shown!r} is not a valid DNS name: the label "
                f"{label[:70]!r}{'…' if len(label) > 70 else ''} must be 1-63 letters, digits, "
                "hyphens or underscores, not starting or ending with a hyphen",
                hint="percent-escapes, spaces and other punctuation cannot appear in a host",
            )
    if _NUMBER.match(labels[-1]):
        raise InvalidURLError(
            f"the host of the URL {shown!r} ends in a number but is not an IPv4 address "
            "a.b.c.d; resolvers would read it as an address in a legacy form "
            "(2130706433 or 0x7f.1 is 127.0.0.1)",
            hint="write an IPv4 address as four decimal numbers 0-255 without leading zeros",
        )
    if "xn--" in name.lower():
        try:
            url.host  # noqa: B018 - httpx decodes the A-labels here (IDNA 2008)
        except UnicodeError as exc:
            raise InvalidURLError(
                f"the host of the URL {shown!r} is not a valid internationalised "
                f"domain name: {exc}",
                hint="give the name in Unicode (httpx encodes it) or a valid xn-- form",
            ) from None


def _is_ip(host: str) -> bool:
    if ":" in host:  # httpx gives an IPv6 literal without its brackets
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return False
        return True
    bare = host[:-1] if host.endswith(".") else host  # a fully qualified form
    if bare[-1:].isdigit():
        try:
            ipaddress.IPv4Address(bare)
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
