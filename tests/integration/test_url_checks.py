"""Bad URLs on every transport: a typed error, and no connection made.

httpx builds ``httpx.URL`` objects for URLs no connection can be made to
(port 0 or 99999, a 300-character label, a space in the host) and for hosts
that resolvers read as legacy IPv4 forms (``2130706433`` is ``127.0.0.1``).
Each must end in :class:`~httpx_resilience.InvalidURLError` (an
``httpx.InvalidURL``) — or ``httpx.UnsupportedProtocol`` for an unknown
scheme — before any name is resolved or socket connected:

- sent straight to ``NativeTransport`` and ``AiohttpTransport``;
- under ``AsyncHTTPClient`` and ``httpx.AsyncClient(transport=ResilientTransport(...))``
  over ``"httpx"``, ``"native"`` and ``"aiohttp"``.

A guard replaces ``socket.getaddrinfo`` and ``socket.socket.connect`` for
the test and records every call, so "no connection" is checked for names and
addresses alike; real listeners on the ports a wrong reading would reach
(127.0.0.1:80 for port 0, 127.0.0.1:<port> for ``2130706433:<port>``) show
the same from the other side. A property test sends arbitrary URLs to
``AiohttpTransport`` and accepts only typed errors.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from httpx_resilience import (
    AsyncHTTPClient,
    ClientConfig,
    InvalidRequestError,
    InvalidURLError,
    ResilientTransport,
    RetryPolicy,
)
from httpx_resilience.transports import AiohttpTransport, make_transport
from httpx_resilience.transports import _url as _url_module
from httpx_resilience.transports._url import check_url

TIMEOUTS = {"timeout": {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}}
FAST = ClientConfig(timeout=2.0, retry_backoff_factor=0.01, retry_max_delay=0.02, retry_jitter="none")


class NO_HOST(Exception):
    """Expected for a URL without a host: InvalidURLError from our check, or
    httpx.UnsupportedProtocol where httpx's stack refuses it first (httpcore's
    "Request URL is missing an 'http://' or 'https://' protocol")."""


# (id, URL, expected error). Every one of them is a valid httpx.URL.
BAD_URLS: list[tuple[str, str, type[BaseException]]] = [
    ("port-0", "http://127.0.0.1:0/x", httpx.InvalidURL),
    ("port-99999", "http://127.0.0.1:99999/x", httpx.InvalidURL),
    ("port-65536", "http://example.test:65536/x", httpx.InvalidURL),
    ("port-minus-1", "http://example.test:-1/x", httpx.InvalidURL),
    ("ipv6-port-0", "http://[::1]:0/x", httpx.InvalidURL),
    ("label-300", "http://" + "a" * 300 + ".test/x", httpx.InvalidURL),
    ("label-64", "http://" + "b" * 64 + ".test/x", httpx.InvalidURL),
    ("host-254", "http://" + ".".join(["c" * 62] * 4) + ".test/x", httpx.InvalidURL),
    ("empty-host", "http:///x", NO_HOST),
    ("empty-host-with-port", "http://:8080/x", NO_HOST),
    ("space-in-host", "http://exa mple.test/x", httpx.InvalidURL),
    ("percent-in-host", "http://exa%41mple.test/x", httpx.InvalidURL),
    ("empty-label", "http://a..test/x", httpx.InvalidURL),
    ("leading-hyphen", "http://-a.test/x", httpx.InvalidURL),
    ("trailing-hyphen", "https://a-.test/x", httpx.InvalidURL),
    ("star-in-host", "http://*.test/x", httpx.InvalidURL),
    ("decimal-ipv4", "http://2130706433:{port}/x", httpx.InvalidURL),
    ("hex-ipv4", "http://0x7f.0.0.1:{port}/x", httpx.InvalidURL),
    ("short-ipv4", "http://127.1:{port}/x", httpx.InvalidURL),
    ("numeric-tld", "http://example.123/x", httpx.InvalidURL),
    ("ftp-scheme", "ftp://127.0.0.1:{port}/x", httpx.UnsupportedProtocol),
    ("gopher-scheme", "gopher://127.0.0.1:{port}/x", httpx.UnsupportedProtocol),
]
IDS = [case[0] for case in BAD_URLS]


class Guard:
    """Records every name resolution and socket connect; refuses them all."""

    def __init__(self) -> None:
        self.resolved: list[Any] = []
        self.connected: list[Any] = []

    def getaddrinfo(self, host: Any, *args: Any, **kw: Any) -> Any:
        self.resolved.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "refused by the test guard")

    def connect(self, sock: Any, address: Any) -> None:
        self.connected.append(address)
        raise ConnectionRefusedError(111, "refused by the test guard")

    def connect_ex(self, sock: Any, address: Any) -> int:
        self.connected.append(address)
        return 111

    @property
    def touched(self) -> list[Any]:
        return self.resolved + self.connected


@pytest.fixture
def guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[Guard]:
    recorder = Guard()
    monkeypatch.setattr(socket, "getaddrinfo", recorder.getaddrinfo)
    # Plain functions, so the socket is bound as their first argument.
    monkeypatch.setattr(socket.socket, "connect", lambda sock, address: recorder.connect(sock, address))
    monkeypatch.setattr(socket.socket, "connect_ex", lambda sock, address: recorder.connect_ex(sock, address))
    yield recorder


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket on 127.0.0.1 whose port the URLs with ``{port}`` name."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def accepted(sock: socket.socket) -> int:
    """How many connections are waiting on a listening socket."""
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def bad_url(template: str, sock: socket.socket) -> str:
    return template.format(port=sock.getsockname()[1])


def assert_typed(exc: BaseException, expected: type[BaseException]) -> None:
    shown = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    if expected is NO_HOST:
        assert isinstance(exc, (InvalidURLError, httpx.UnsupportedProtocol)), shown
        return
    assert isinstance(exc, expected), shown
    if expected is httpx.InvalidURL:
        assert isinstance(exc, InvalidURLError), shown


# == the check itself ======================================================================


@pytest.mark.parametrize(("name", "template", "expected"), BAD_URLS, ids=IDS)
def test_check_url_refuses(name: str, template: str, expected: type[BaseException]) -> None:
    """check_url refuses every bad http(s) URL (the scheme is the transports' to refuse)."""
    url = httpx.URL(template.format(port=8080))
    if expected is httpx.UnsupportedProtocol:
        check_url(url)  # not its business
        return
    if expected is NO_HOST:
        expected = InvalidURLError
    with pytest.raises(InvalidURLError) as info:
        check_url(url)
    message = str(info.value)
    assert "/x" not in message  # the origin only, never the path
    assert len(message) < 600


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:1/",
        "https://example.test:65535/",
        "http://[::1]:8080/",
        "http://[fe80::1%25eth0]/",
        "http://localhost./",
        "http://127.0.0.1./",
        "http://a_b.test/",
        "http://" + ".".join(["d" * 63] * 3) + "." + "e" * 61 + "/",  # 253 characters
        "http://ü.example/",
        "http://straße.test/",
        "http://xn--strae-oqa.test/",
        "http://0xg.test/",
        "http://1e1.test/",
        "http://host:/",
    ],
)
def test_check_url_accepts(url: str) -> None:
    """Valid origins pass, including IDNs, IPv6 zones, FQDN dots and the 253-character limit,
    and are remembered: the next check of the origin is one lookup."""
    parsed = httpx.URL(url)
    check_url(parsed)  # raises InvalidURLError for a refused origin
    assert _url_module._last is parsed
    assert (parsed.scheme, parsed.raw_host, parsed.port) in _url_module._checked


def test_check_url_refuses_an_undecodable_a_label() -> None:
    """An xn-- label httpx cannot decode would make url.host raise a bare UnicodeError later."""
    url = httpx.URL("http://xn--zz.test/")
    with pytest.raises(UnicodeError):
        url.host  # noqa: B018 - what the check protects every later user from
    with pytest.raises(InvalidURLError, match="internationalised"):
        check_url(url)


def test_check_url_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-origin verdicts are cleared when full; a refused origin is never cached."""
    from httpx_resilience.transports import _url

    monkeypatch.setattr(_url, "_CACHE_LIMIT", 4)
    for i in range(10):
        check_url(httpx.URL(f"http://h{i}.test/"))
    assert len(_url._checked) <= 4
    for _ in range(2):
        with pytest.raises(InvalidURLError):
            check_url(httpx.URL("http://h.test:0/"))


# == straight to the transports ================================================================


@pytest.fixture(params=["native", "aiohttp"])
def direct_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def transport_of() -> AsyncIterator[Callable[[str], httpx.AsyncBaseTransport]]:
    made: list[httpx.AsyncBaseTransport] = []

    def build(kind: str) -> httpx.AsyncBaseTransport:
        transport = make_transport(kind)  # type: ignore[arg-type]
        made.append(transport)
        return transport

    yield build
    for transport in made:
        await transport.aclose()


@pytest.mark.parametrize(("name", "template", "expected"), BAD_URLS, ids=IDS)
async def test_bad_url_on_the_transport(
    direct_kind: str,
    name: str,
    template: str,
    expected: type[BaseException],
    guard: Guard,
    listener: socket.socket,
    transport_of: Callable[[str], httpx.AsyncBaseTransport],
) -> None:
    """NativeTransport and AiohttpTransport refuse the URL before resolving or connecting."""
    request = httpx.Request("GET", bad_url(template, listener), extensions=TIMEOUTS)
    with pytest.raises(Exception) as info:
        await transport_of(direct_kind).handle_async_request(request)
    assert_typed(info.value, expected)
    assert guard.touched == []
    assert accepted(listener) == 0


# == under the pipeline =========================================================================


@pytest.fixture(params=["httpx", "native", "aiohttp"])
def pipeline_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize(("name", "template", "expected"), BAD_URLS, ids=IDS)
async def test_bad_url_under_async_http_client(
    pipeline_kind: str,
    name: str,
    template: str,
    expected: type[BaseException],
    guard: Guard,
    listener: socket.socket,
) -> None:
    """AsyncHTTPClient: typed error, nothing resolved or connected, no retry of a bad URL.

    The client may refuse a URL without a host or an http(s) scheme itself,
    with InvalidRequestError (what it raises for any request it cannot send).
    """
    async with AsyncHTTPClient(config=replace(FAST, transport=pipeline_kind)) as client:
        with pytest.raises(Exception) as info:
            await client.get(bad_url(template, listener))
    exc = info.value
    if isinstance(exc, InvalidRequestError) and not isinstance(exc, InvalidURLError):
        pass  # refused by the client before the pipeline
    else:
        assert_typed(exc, expected)
    assert guard.touched == []
    assert accepted(listener) == 0


@pytest.mark.parametrize(("name", "template", "expected"), BAD_URLS, ids=IDS)
async def test_bad_url_under_httpx_client_with_resilient_transport(
    pipeline_kind: str,
    name: str,
    template: str,
    expected: type[BaseException],
    guard: Guard,
    listener: socket.socket,
) -> None:
    """httpx.AsyncClient(transport=ResilientTransport(inner)): the same typed error, nothing sent."""
    inner = make_transport(pipeline_kind)  # type: ignore[arg-type]
    transport = ResilientTransport(inner, retry=RetryPolicy(max_attempts=3, backoff_factor=0.01))
    async with httpx.AsyncClient(transport=transport, timeout=2.0) as client:
        with pytest.raises(Exception) as info:
            await client.get(bad_url(template, listener))
    assert_typed(info.value, expected)
    assert guard.touched == []
    assert accepted(listener) == 0


# == real listeners where a wrong reading would land ==============================================


@pytest.fixture
def port_80() -> Iterator[socket.socket]:
    """A listener on 127.0.0.1:80, where port 0 would be dialled (skipped when 80 is taken)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", 80))
    except OSError as exc:
        sock.close()
        pytest.skip(f"cannot listen on 127.0.0.1:80 ({exc})")
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


@pytest.mark.parametrize("kind", ["httpx", "native", "aiohttp"])
async def test_port_0_does_not_reach_port_80(kind: str, port_80: socket.socket) -> None:
    """Without the guard: http://127.0.0.1:0/ reaches nobody, under the pipeline or straight."""
    inner = make_transport(kind)  # type: ignore[arg-type]
    transport = ResilientTransport(inner, retry=RetryPolicy(max_attempts=1))
    async with httpx.AsyncClient(transport=transport, timeout=2.0) as client:
        with pytest.raises(httpx.InvalidURL):
            await client.get("http://127.0.0.1:0/")
    if kind != "httpx":
        direct = make_transport(kind)  # type: ignore[arg-type]
        try:
            with pytest.raises(InvalidURLError):
                await direct.handle_async_request(httpx.Request("GET", "http://127.0.0.1:0/", extensions=TIMEOUTS))
        finally:
            await direct.aclose()
    assert accepted(port_80) == 0


@pytest.mark.parametrize("host", ["2130706433", "0x7f.0.0.1", "127.1", "0x7f.1"])
async def test_legacy_ipv4_forms_do_not_reach_loopback(host: str, listener: socket.socket) -> None:
    """Without the guard: a host resolvers read as 127.0.0.1 is refused, the listener sees nothing."""
    url = f"http://{host}:{listener.getsockname()[1]}/"
    try:
        httpx.URL(url)
    except httpx.InvalidURL:
        pytest.skip(f"httpx itself refuses {host!r}")
    async with AiohttpTransport() as transport:
        with pytest.raises(InvalidURLError, match="ends in a number"):
            await transport.handle_async_request(httpx.Request("GET", url, extensions=TIMEOUTS))
    assert accepted(listener) == 0


# == any URL: AiohttpTransport lets out only typed errors ==========================================

_HOST_CHARS = st.sampled_from([*"abcxyz019-._%~ *:@[]", "ü", "ß", "💩", "\u200b", "xn--", "0x"])
_HOSTS = st.one_of(
    st.lists(_HOST_CHARS, min_size=0, max_size=20).map("".join),
    st.integers(min_value=0, max_value=2**40).map(str),
    st.builds(lambda n: "a" * n, st.integers(min_value=60, max_value=300)),
    st.sampled_from(["127.0.0.1", "[::1]", "[fe80::1%25lo]", "localhost", "xn--zz", "xn--ls8h.la"]),
)
_PORTS = st.one_of(st.none(), st.integers(min_value=-5, max_value=200_000).map(str), st.sampled_from(["", "+1", "08"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scheme=st.sampled_from(["http", "https", "ftp", "HTTP"]), host=_HOSTS, port=_PORTS)
async def test_any_url_gives_a_typed_error_on_aiohttp(scheme: str, host: str, port: str | None, guard: Guard) -> None:
    """Whatever httpx accepts as a URL, AiohttpTransport answers with an httpx error or InvalidURLError."""
    text = f"{scheme}://{host}" + (f":{port}" if port is not None else "") + "/p"
    try:
        request = httpx.Request("GET", text, headers={"Host": "h"}, extensions=TIMEOUTS)
    except (httpx.InvalidURL, UnicodeError, ValueError):
        return  # httpx refuses to build it: no transport ever sees it
    outcome: BaseException | None = None
    seen = len(guard.touched)  # the fixture lives across examples
    async with AiohttpTransport() as transport:
        try:
            await transport.handle_async_request(request)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # anything else fails the test
            outcome = exc
    if request.url.scheme not in ("http", "https"):
        assert isinstance(outcome, httpx.UnsupportedProtocol), outcome
        assert guard.touched[seen:] == []
    elif request.url.port is not None and not 1 <= request.url.port <= 65535:
        # a port no socket can have: refused before any lookup or connection
        assert isinstance(outcome, httpx.InvalidURL), outcome
        assert guard.touched[seen:] == []
    else:
        assert outcome is not None  # the guard refuses every lookup and connection
