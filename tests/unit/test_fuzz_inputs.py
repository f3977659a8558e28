"""Hostile inputs (hypothesis, bounded examples): only typed errors, never a hang, no secret shown.

* URLs, random and built from hostile parts, into ``AsyncHTTPClient.request``
  and into ``ResilientTransport`` (under ``httpx.AsyncClient`` and called
  directly): a response or a typed error (``HTTPClientError``,
  ``httpx.HTTPError``, ``httpx.InvalidURL``), within a time bound.
* Header values with CR, LF, NUL and arbitrary characters or bytes around a
  registered secret token: a typed error or a response, and the secret in no
  error text (its repr, and its traceback with every exception it chains to).
* Every ``ClientConfig`` field, alone and together, given values of wrong types
  and ranges: a valid config or exactly ``ConfigurationError`` (a ``ValueError``
  subclass, so the type is compared exactly); a valid one builds a client.

The inner transport is in memory (no network): it makes the URL check every
real transport makes before it connects, records what it was asked to send,
and answers 200.
"""

from __future__ import annotations

import asyncio
import math
import traceback
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import fields
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from httpx_resilience import (
    AsyncHTTPClient,
    BearerAuth,
    ClientConfig,
    ConfigurationError,
    HTTPClientError,
    ResilientTransport,
)
from httpx_resilience.testing import FakeClock
from httpx_resilience.transports._url import check_url

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
BOUND = 5.0  # seconds any one call may take before it counts as a hang
SECRET = "fz-secret-Q9w8e7r6t5y4"
TYPED = (HTTPClientError, httpx.HTTPError, httpx.InvalidURL)
FAST = ClientConfig(
    timeout=1.0, total_timeout=2.0, retry_attempts=1, retry_backoff_factor=0.001,
    retry_max_delay=0.01,
)


T = TypeVar("T")


class LoopRunner:
    """One event loop that runs coroutine after coroutine (``asyncio.Runner`` needs 3.11)."""

    def __enter__(self) -> LoopRunner:
        self.loop = asyncio.new_event_loop()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)


class CheckingTransport(httpx.AsyncBaseTransport):
    """Answers 200 in memory after the checks every real transport makes (scheme, then URL)."""

    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme not in ("http", "https"):  # as httpcore and the others refuse it
            raise httpx.UnsupportedProtocol(
                f"unsupported scheme {request.url.scheme!r}", request=request
            )
        check_url(request.url)
        self.sent.append(request)
        return httpx.Response(200, json={"ok": True}, request=request)


@pytest.fixture
def runner() -> Iterator[LoopRunner]:
    """One event loop for the whole test: hypothesis runs every example on it."""
    with LoopRunner() as loop_runner:
        yield loop_runner


def typed_outcome(
    runner: LoopRunner, make: Callable[[], Coroutine[Any, Any, Any]]
) -> BaseException | None:
    """Run one call within BOUND; return its exception (``None`` on success).

    A hang or an untyped exception fails the example with the exception's traceback.
    """

    async def bounded() -> BaseException | None:
        try:
            await asyncio.wait_for(make(), BOUND)
        except asyncio.TimeoutError:
            pytest.fail(f"the call did not end within {BOUND} s")
        except Exception as exc:
            if not isinstance(exc, TYPED):
                pytest.fail(
                    f"untyped {type(exc).__name__}: {exc!r}\n"
                    + "".join(traceback.format_exception(exc))
                )
            return exc
        return None

    return runner.run(bounded())


def error_text(exc: BaseException) -> str:
    """Everything an error shows: its repr, and its traceback as logging prints it
    (the message of every exception it chains to, and their notes)."""
    return f"{exc!r}\n" + "".join(traceback.format_exception(exc))


# --------------------------------------------------------------------------- #
# URLs                                                                        #
# --------------------------------------------------------------------------- #

hostile_char = st.sampled_from(
    [*" \t\r\n\0\x7f\\/@:#?%[]<>\"'`{}|^~;,=&+", "\u202e", "\ufeff", "é", "ß", "日", "🙂"]
)
host_part = st.one_of(
    st.sampled_from(
        [
            "localhost", "127.0.0.1", "[::1]", "[::1", "::1", "[fe80::1%25eth0]", "0", "0x7f.1",
            "2130706433", "10.1", "256.256.256.256", "1.2.3.4.5", "xn--zz", "xn--", "-a-.b",
            "a" * 64, ".".join(["a" * 63] * 5), "a..b", ".", "", "exa mple.com", "ex%41mple.com",
            "例え.テスト", "ＡＢＣ.com", "a_b.c", "user@host", "host:80:81",
        ]
    ),
    st.text(hostile_char | st.characters(codec="utf-8"), max_size=20),
)
port_part = st.sampled_from(
    ["", ":", ":0", ":1", ":80", ":65535", ":65536", ":99999999999999999999", ":-1", ":abc",
     ":８０", ": 80"]
)
path_part = st.text(hostile_char | st.characters(codec="utf-8"), max_size=30)
AUTHORITY_SCHEMES = ["http://", "https://", "HTTP://", "ftp://", "file://", "//", "ws://"]
scheme_part = st.sampled_from(
    [*AUTHORITY_SCHEMES, "javascript:", "", "http:/", "http:", "h\ttp://"]
)
userinfo_part = st.sampled_from(["", "user@", "user:pass@", f"u:{SECRET}@", "@", ":@", "a@b@"])
built_urls = st.builds(
    lambda s, u, h, p, path: f"{s}{u}{h}{p}/{path}",
    scheme_part, userinfo_part, host_part, port_part, path_part,
)
any_url = st.one_of(built_urls, st.text(max_size=80))
methods = st.sampled_from(["GET", "POST", "HEAD", "DELETE", "get", "PATCH"])


@FUZZ
@given(url=any_url, method=methods)
@example(url=f"http://u:{SECRET}@[::1/", method="GET")  # unparseable, with a password
@example(url=f"http://u:{SECRET}@xn--zz/", method="GET")
@example(url="http://127.0.0.1:99999999999999999999/", method="GET")
def test_hostile_urls_into_the_client_give_typed_errors(
    runner: LoopRunner, url: str, method: str
) -> None:
    """AsyncHTTPClient.request: a response or a typed error, within the bound; no secret shown."""
    inner = CheckingTransport()
    client = AsyncHTTPClient(config=FAST, transport=inner)
    try:
        exc = typed_outcome(runner, lambda: client.request(method, url))
    finally:
        runner.run(client.aclose())
    # A password in the authority part of a URL is shown redacted.
    if exc is not None and url.startswith(tuple(AUTHORITY_SCHEMES)):
        assert SECRET not in error_text(exc), error_text(exc)
    for sent in inner.sent:  # what went out has a host a connection can be made to
        assert sent.url.scheme in ("http", "https") and sent.url.host


@FUZZ
@given(path=st.one_of(path_part, st.text(max_size=60)), method=methods)
def test_hostile_paths_against_a_base_url_give_typed_errors(
    runner: LoopRunner, path: str, method: str
) -> None:
    """A relative URL of any text, joined to base_url: a response or a typed error."""
    inner = CheckingTransport()
    client = AsyncHTTPClient("http://api.test:8080/v1", config=FAST, transport=inner)
    try:
        exc = typed_outcome(runner, lambda: client.request(method, path))
    finally:
        runner.run(client.aclose())
    if exc is None:  # a success was answered by the transport: the request went out whole
        assert inner.sent and inner.sent[-1].url.scheme in ("http", "https"), inner.sent
    else:
        assert not inner.sent or isinstance(exc, HTTPClientError), exc


@FUZZ
@given(url=any_url, method=methods)
def test_hostile_urls_into_resilient_transport_give_typed_errors(
    runner: LoopRunner, url: str, method: str
) -> None:
    """Under httpx.AsyncClient, and called directly: a response or a typed error.

    A URL that httpx itself cannot turn into a request (``httpx.Request`` raises
    while parsing it) never reaches a transport; such examples are skipped.
    """
    try:
        request = httpx.Request(method, url)
    except Exception:  # httpx's own parsing, before any transport
        return
    transport = ResilientTransport(CheckingTransport(), config=FAST)
    http = httpx.AsyncClient(transport=transport)
    try:
        typed_outcome(runner, lambda: http.send(request))
        typed_outcome(runner, lambda: transport.handle_async_request(httpx.Request(method, url)))
    finally:
        runner.run(http.aclose())


# --------------------------------------------------------------------------- #
# Header values around a secret                                               #
# --------------------------------------------------------------------------- #

noise = st.text(
    st.sampled_from(list("\r\n\0\t :;,\"'\\\x7f\x01\x1f")) | st.characters(codec="utf-8"),
    max_size=12,
)
header_names = st.sampled_from(
    ["X-Custom", "Authorization", "X-API-KEY", "Cookie", "Proxy-Authorization", "X-Request-Id",
     "Idempotency-Key", "Content-Type"]
)


def _encode(text: str, as_bytes: bool) -> str | bytes:
    return text.encode("utf-8") if as_bytes else text


@FUZZ
@given(name=header_names, before=noise, after=noise, as_bytes=st.booleans())
def test_header_values_never_show_the_secret_in_errors(
    runner: LoopRunner, name: str, before: str, after: str, as_bytes: bool
) -> None:
    """A header value holding a registered secret and hostile characters: no error shows it."""
    value = _encode(f"{before}{SECRET}{after}", as_bytes)
    inner = CheckingTransport()
    client = AsyncHTTPClient(
        "http://api.test", config=FAST, auth=BearerAuth(SECRET), transport=inner
    )
    try:
        exc = typed_outcome(runner, lambda: client.get("/x", headers={name: value}))
    finally:
        runner.run(client.aclose())
    if exc is not None:
        text = error_text(exc)
        assert SECRET not in text, f"the error shows the secret:\n{text}"
    if any(c in f"{before}{after}" for c in "\r\n\0"):
        assert exc is not None, "a header value with CR, LF or NUL was sent"


@FUZZ
@given(name=header_names, before=noise, after=noise)
def test_header_values_under_resilient_transport_give_typed_errors(
    runner: LoopRunner, name: str, before: str, after: str
) -> None:
    """Plain httpx over ResilientTransport: a request httpx builds is answered or a typed error.

    What httpx refuses while building the request (a non-ASCII ``str`` value) is
    httpx's own behaviour, before the transport is reached; such examples are skipped.
    """
    http = httpx.AsyncClient(transport=ResilientTransport(CheckingTransport(), config=FAST))
    try:
        try:
            request = http.build_request(
                "GET", "http://api.test/x", headers={name: f"{before}{SECRET}{after}"}
            )
        except UnicodeEncodeError:
            return
        exc = typed_outcome(runner, lambda: http.send(request))
    finally:
        runner.run(http.aclose())
    if exc is not None:
        text = error_text(exc)
        assert SECRET not in text, f"the error shows the secret:\n{text}"


# --------------------------------------------------------------------------- #
# ClientConfig: every field                                                   #
# --------------------------------------------------------------------------- #

FIELDS = [f.name for f in fields(ClientConfig)]
wild = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [0, 1, -1, 0.0, -0.0, 1e-320, 1e308, math.inf, -math.inf, math.nan, 2**63, 10**400]
    ),
    st.text(max_size=10),
    st.binary(max_size=6),
    st.lists(st.integers(min_value=-5, max_value=700), max_size=4),
    st.frozensets(st.integers(min_value=-5, max_value=700), max_size=4),
    st.sets(st.sampled_from(["GET", "get", "BREW", "", "POST", " PUT "]), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    st.sampled_from(["auto", "httpx", "native", "aiohttp", "full", "none", "X-Request-Id"]),
    st.builds(object),
    st.just(float),
)


def config_outcome(**kwargs: Any) -> ClientConfig | None:
    """The config, or ``None`` when refused; anything but ConfigurationError fails."""
    try:
        return ClientConfig(**kwargs)
    except ConfigurationError as exc:
        assert type(exc) is ConfigurationError, type(exc)
        text = str(exc)
        assert exc.field is None or exc.field in text or exc.field in FIELDS, text
        return None
    except BaseException as exc:  # the property: nothing else escapes
        pytest.fail(f"ClientConfig({kwargs!r}) raised {type(exc).__name__}: {exc!r}")


def assert_client_sends_with_typed_errors(runner: LoopRunner, config: ClientConfig) -> None:
    """Build a client with ``config`` and send one request: typed errors only.

    The clock is a FakeClock: whatever backoff the config asks for is not slept.
    """
    try:
        client = AsyncHTTPClient(
            "http://api.test", config=config, transport=CheckingTransport(), clock=FakeClock()
        )
    except ConfigurationError as exc:
        assert type(exc) is ConfigurationError
        return
    except BaseException as exc:  # the property: nothing else escapes
        pytest.fail(f"AsyncHTTPClient(config={config!r}) raised {type(exc).__name__}: {exc!r}")
    try:
        typed_outcome(runner, lambda: client.get("/x"))
    finally:
        runner.run(client.aclose())


@FUZZ
@given(name=st.sampled_from(FIELDS), value=wild)
def test_each_config_field_with_any_value_is_valid_or_a_configuration_error(
    runner: LoopRunner, name: str, value: Any
) -> None:
    """One field at a time, any value: exactly ConfigurationError naming the field, or a
    config that builds a client and sends a request with typed errors only."""
    try:
        config = ClientConfig(**{name: value})
    except ConfigurationError as exc:
        assert type(exc) is ConfigurationError
        assert exc.field == name, (exc.field, name, str(exc))
        assert name in str(exc), str(exc)
        return
    except BaseException as exc:  # the property: nothing else escapes
        pytest.fail(f"ClientConfig({name}={value!r}) raised {type(exc).__name__}: {exc!r}")
    assert_client_sends_with_typed_errors(runner, config)


EDGES: list[Any] = [
    None, True, False, 0, 1, -1, 2**63, -(2**70), 10**400, 0.0, -0.0, 1e-320, 1e308, math.inf,
    -math.inf, math.nan, "", " ", "1", "abc", "auto", "full", "a\nb", b"x", [], [1], [500],
    (500,), {}, {"a": "b"}, {"a": 1}, {1: "b"}, {"X": "a\nb"}, [("a", "b")], frozenset({200}),
    frozenset({99}), {"GET"}, {"get"}, {"BREW"}, {""}, object(), float,
]


def test_every_config_field_with_every_edge_value(runner: LoopRunner) -> None:
    """Each field with each edge value (every pair, not a sample): ConfigurationError naming
    the field, or a config whose client sends a request with typed errors only."""
    for name in FIELDS:
        for value in EDGES:
            try:
                config = ClientConfig(**{name: value})
            except ConfigurationError as exc:
                assert type(exc) is ConfigurationError
                assert exc.field == name, (exc.field, name, str(exc))
                continue
            except BaseException as exc:  # the property: nothing else escapes
                pytest.fail(f"ClientConfig({name}={value!r}) raised {type(exc).__name__}: {exc!r}")
            assert_client_sends_with_typed_errors(runner, config)


@FUZZ
@given(kwargs=st.dictionaries(st.sampled_from(FIELDS), wild, min_size=2, max_size=6))
def test_config_fields_together_are_valid_or_a_configuration_error(
    runner: LoopRunner, kwargs: dict[str, Any]
) -> None:
    """Several fields at once (contradictions included); a valid config builds a working client."""
    config = config_outcome(**kwargs)
    if config is None:
        return
    for name, value in kwargs.items():  # a given number is kept as given: only defaults adapt
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert getattr(config, name) == value, (name, value, config)
    assert_client_sends_with_typed_errors(runner, config)


@FUZZ
@given(name=st.text(max_size=12), value=wild)
def test_unknown_config_keywords_are_configuration_errors(name: str, value: Any) -> None:
    """An unknown keyword is a ConfigurationError naming it, whatever its value."""
    if name in FIELDS:
        return
    with pytest.raises(ConfigurationError) as info:
        ClientConfig(**{name: value})
    assert type(info.value) is ConfigurationError
    assert info.value.field == name
