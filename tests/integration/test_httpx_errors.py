"""Errors stay what httpx said they were, after retries, under both facades, over real sockets.

Code written for plain httpx, and every SDK built on it, catches
``httpx.TimeoutException``, ``httpx.ConnectError`` or ``httpx.HTTPStatusError``.
Each test runs a real failure (a ChaosServer fault, or a closed port) through
every inner transport ("httpx", "native", "aiohttp") and both facades:
``AsyncHTTPClient`` ("client") and ``httpx.AsyncClient(transport=ResilientTransport(...))``
("httpx"), and checks the classes of what comes out.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from httpx_resilience import (
    AsyncHTTPClient,
    ClientConfig,
    HTTPRequestError,
    HTTPResponseError,
    RateLimitError,
    RequestTimeoutError,
    ResilientTransport,
    RetryExhaustedError,
)
from httpx_resilience.pipeline._httpx_errors import httpx_class
from httpx_resilience.testing import ChaosServer, Fault
from httpx_resilience.transports import make_transport

KINDS = ("httpx", "native", "aiohttp")
FACADES = ("client", "httpx")

Send = Callable[..., Awaitable[Any]]


def config(kind: str, **kw: Any) -> ClientConfig:
    """Fast retries (10 ms backoff, no jitter) on the inner transport ``kind``."""
    base: dict[str, Any] = {
        "timeout": 2.0, "retry_backoff_factor": 0.01, "retry_max_delay": 0.05,
        "retry_jitter": "none", "transport": kind,
    }
    return ClientConfig(**{**base, **kw})


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """The inner transport."""
    return str(request.param)


@pytest.fixture(params=FACADES)
def facade(request: pytest.FixtureRequest) -> str:
    """``"client"``: AsyncHTTPClient; ``"httpx"``: httpx.AsyncClient over ResilientTransport."""
    return str(request.param)


@pytest.fixture
async def send(kind: str, facade: str) -> AsyncIterator[Send]:
    """``await send(url, method="GET", **config)``: one request through the facade.

    The keywords are ClientConfig's; every client made is closed after the test.
    """
    opened: list[Any] = []

    async def go(url: str, method: str = "GET", **kw: Any) -> Any:
        cfg = config(kind, **kw)
        if facade == "client":
            client = AsyncHTTPClient(config=cfg)
            opened.append(client)
            return await client.request(method, url)
        transport = ResilientTransport(make_transport(kind), config=cfg)  # type: ignore[arg-type]
        http = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5.0))
        opened.append(http)
        return await http.request(method, url)

    yield go
    for client in opened:
        await client.aclose()


def closed_port() -> int:
    """A loopback port nothing listens on (connecting to it is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_keeps_last_class(err: RetryExhaustedError) -> None:
    """The give-up error is of the httpx class of the last attempt's error, and of ours."""
    last = err.last_error
    assert last is not None and err.__cause__ is last
    base = httpx_class(last)
    assert base is not None and isinstance(err, base), (type(err).__mro__, type(last))
    assert isinstance(err, HTTPRequestError) and isinstance(err, httpx.TransportError)
    assert isinstance(err.request, httpx.Request) and err.request.url.host == "127.0.0.1"


# -- timeouts --------------------------------------------------------------------------


async def test_every_attempt_timing_out_ends_in_a_timeout(
    send: Send, chaos_server: ChaosServer
) -> None:
    """Every attempt hangs: the final error is httpx.TimeoutException, RequestTimeoutError and
    RetryExhaustedError, of the last attempt's own timeout class; each attempt reached the server."""
    chaos_server.route("/hang", hang=True)
    with pytest.raises(httpx.TimeoutException) as info:
        await send(chaos_server.url_for("/hang"), timeout=0.3, retry_attempts=2)
    err = info.value
    assert isinstance(err, RequestTimeoutError) and isinstance(err, RetryExhaustedError)
    assert_keeps_last_class(err)
    assert err.attempts == 3 == chaos_server.count("/hang")
    assert err.phase == "attempt"
    assert f"127.0.0.1:{chaos_server.port}" in str(err)


async def test_httpx_read_timeout_stays_a_read_timeout(
    kind: str, chaos_server: ChaosServer
) -> None:
    """httpx's own read timeout (0.2 s, under an attempt timeout of 2 s) firing on every
    attempt ends in an httpx.ReadTimeout, exactly the class httpx raised."""
    chaos_server.route("/slow", latency=1.0)
    transport = ResilientTransport(make_transport(kind), config=config(kind, retry_attempts=1))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5.0, read=0.2)) as c:
        with pytest.raises(httpx.ReadTimeout) as info:
            await c.get(chaos_server.url_for("/slow"))
    err = info.value
    assert type(err.last_error) is httpx.ReadTimeout  # type: ignore[attr-defined]
    assert isinstance(err, RetryExhaustedError) and isinstance(err, RequestTimeoutError)
    assert err.attempts == 2 == chaos_server.count("/slow")
    assert type(err).__name__ == "RetryExhaustedReadTimeout"
    assert err.request.url == httpx.URL(chaos_server.url_for("/slow"))


async def test_a_timeout_without_retries_is_a_timeout(
    send: Send, facade: str, chaos_server: ChaosServer
) -> None:
    """retry_attempts=0: plain httpx gets the timeout as it was; the client gets a
    RequestTimeoutError that is still of that class. Neither is a RetryExhaustedError."""
    chaos_server.route("/hang", hang=True)
    with pytest.raises(httpx.TimeoutException) as info:
        await send(chaos_server.url_for("/hang"), timeout=0.3, retry_attempts=0)
    err = info.value
    assert not isinstance(err, RetryExhaustedError)
    assert chaos_server.count("/hang") == 1
    if facade == "client":
        assert isinstance(err, RequestTimeoutError)
        cause = err.__cause__ or err
        assert isinstance(err, httpx_class(cause) or httpx.TimeoutException)


async def test_total_deadline_after_retries_is_a_timeout_and_exhausted(
    send: Send, chaos_server: ChaosServer
) -> None:
    """Attempts hang until the total deadline: RequestTimeoutError(phase "total"), an
    httpx.TimeoutException, and a RetryExhaustedError carrying the attempts made."""
    chaos_server.route("/hang", hang=True)
    with pytest.raises(httpx.TimeoutException) as info:
        await send(chaos_server.url_for("/hang"), timeout=0.3, total_timeout=0.8)
    err = info.value
    assert isinstance(err, RequestTimeoutError) and err.phase == "total"
    assert isinstance(err, RetryExhaustedError)
    assert err.attempts is not None and err.attempts >= 2
    assert err.attempts == chaos_server.count("/hang")
    assert err.timeout == pytest.approx(0.8)


async def test_deadline_ending_connect_retries_is_a_timeout_and_a_connect_error(
    send: Send,
) -> None:
    """Connection refused, and the next backoff (1 s) would pass the total deadline (0.5 s):
    the error is a RequestTimeoutError (the deadline ended it) and an httpx.ConnectError
    (the last attempt's failure), and a RetryExhaustedError."""
    url = f"http://127.0.0.1:{closed_port()}/x"
    with pytest.raises(httpx.ConnectError) as info:
        await send(url, total_timeout=0.5, timeout=0.5, retry_backoff_factor=1.0,
                   retry_max_delay=1.0)
    err = info.value
    assert isinstance(err, httpx.TimeoutException) and isinstance(err, RequestTimeoutError)
    assert isinstance(err, RetryExhaustedError) and err.attempts == 1
    assert err.phase == "total"


# -- connection and protocol failures ------------------------------------------------


async def test_connect_errors_end_in_a_connect_error(send: Send) -> None:
    """Connection refused on every attempt (retried even for POST: nothing was sent):
    httpx.ConnectError, HTTPRequestError and RetryExhaustedError."""
    url = f"http://127.0.0.1:{closed_port()}/x"
    with pytest.raises(httpx.ConnectError) as info:
        await send(url, method="POST")
    err = info.value
    assert isinstance(err, RetryExhaustedError) and err.attempts == 4
    assert not isinstance(err, httpx.TimeoutException)
    assert_keeps_last_class(err)
    assert type(err.last_error) is httpx.ConnectError


async def test_a_connect_error_without_retries(send: Send, facade: str) -> None:
    """retry_attempts=0: an httpx.ConnectError under both facades (the client's is also an
    HTTPRequestError), never a RetryExhaustedError."""
    url = f"http://127.0.0.1:{closed_port()}/x"
    with pytest.raises(httpx.ConnectError) as info:
        await send(url, retry_attempts=0)
    err = info.value
    assert not isinstance(err, RetryExhaustedError)
    if facade == "client":
        assert isinstance(err, HTTPRequestError) and isinstance(err.__cause__, httpx.ConnectError)
    else:
        assert type(err) is httpx.ConnectError


@pytest.mark.parametrize(
    ("fault", "expected"),
    [(Fault(reset="before_headers"), httpx.ReadError),
     (Fault(reset="after_headers"), httpx.ReadError),
     (Fault(truncate=True), httpx.RemoteProtocolError)],
    ids=["reset-before-headers", "reset-after-headers", "truncated-body"],
)
async def test_network_failures_keep_their_class(
    send: Send, chaos_server: ChaosServer, fault: Fault, expected: type[Exception]
) -> None:
    """A reset or a body cut short on every attempt ends in an error of that class
    (httpx.ReadError, httpx.RemoteProtocolError) that is also a RetryExhaustedError."""
    chaos_server.route("/f", steps=[fault])
    with pytest.raises(expected) as info:
        await send(chaos_server.url_for("/f"), retry_attempts=2)
    err = info.value
    assert isinstance(err, RetryExhaustedError) and err.attempts == 3 == chaos_server.count("/f")
    assert_keeps_last_class(err)


async def test_a_post_not_retried_after_sending_keeps_its_class(
    send: Send, chaos_server: ChaosServer
) -> None:
    """A POST reset after it was sent is not retried (it may have acted): one request, and the
    error is the transport's own class (the client's is also an HTTPRequestError)."""
    chaos_server.route("/pay", reset="before_headers")
    with pytest.raises(httpx.ReadError) as info:
        await send(chaos_server.url_for("/pay"), method="POST")
    assert chaos_server.count("/pay") == 1
    assert not isinstance(info.value, RetryExhaustedError)


# -- statuses ----------------------------------------------------------------------------


async def test_raise_for_status_is_an_httpx_status_error(
    kind: str, chaos_server: ChaosServer
) -> None:
    """AsyncHTTPClient: a 404's raise_for_status() is an httpx.HTTPStatusError whose response
    is the httpx.Response (JSON body readable) and whose request is the httpx.Request sent."""
    chaos_server.route("/missing", status=404, body={"error": "no such item"})
    async with AsyncHTTPClient(chaos_server.url, config=config(kind)) as c:
        response = await c.get("/missing")
        with pytest.raises(httpx.HTTPStatusError) as info:
            response.raise_for_status()
    err = info.value
    assert isinstance(err, HTTPResponseError) and err.status_code == 404
    assert isinstance(err.response, httpx.Response) and err.response.status_code == 404
    assert err.response.json() == {"error": "no such item"}
    assert isinstance(err.request, httpx.Request)
    assert err.request.url == httpx.URL(chaos_server.url_for("/missing"))
    assert err.http_response is response  # type: ignore[attr-defined]


async def test_rate_limit_is_an_httpx_status_error_with_retry_after(
    kind: str, chaos_server: ChaosServer
) -> None:
    """A final 429 (Retry-After 30 s, beyond retry_max_delay): RateLimitError with retry_after,
    also an httpx.HTTPStatusError with the 429 httpx.Response."""
    chaos_server.route("/busy", status=429, retry_after=30)
    async with AsyncHTTPClient(chaos_server.url, config=config(kind)) as c:
        with pytest.raises(httpx.HTTPStatusError) as info:
            await c.get("/busy")
    err = info.value
    assert isinstance(err, RateLimitError) and err.retry_after == 30
    assert err.response.status_code == 429 and err.response.headers["retry-after"] == "30"
    assert chaos_server.count("/busy") == 1


async def test_exhausted_status_is_an_httpx_status_error(
    kind: str, chaos_server: ChaosServer
) -> None:
    """AsyncHTTPClient giving up on 503s: RetryExhaustedError, HTTPResponseError and
    httpx.HTTPStatusError, its response the last httpx.Response."""
    chaos_server.route("/down", status=503)
    async with AsyncHTTPClient(chaos_server.url, config=config(kind, retry_attempts=2)) as c:
        with pytest.raises(httpx.HTTPStatusError) as info:
            await c.get("/down")
    err = info.value
    assert isinstance(err, RetryExhaustedError) and isinstance(err, HTTPResponseError)
    assert err.attempts == 3 == chaos_server.count("/down")
    assert isinstance(err.response, httpx.Response) and err.response.status_code == 503
    assert err.request.url == httpx.URL(chaos_server.url_for("/down"))


# -- an SDK built on httpx ------------------------------------------------------------


class APITimeoutError(Exception):
    """An SDK's timeout error (as openai's APITimeoutError)."""


class APIConnectionError(Exception):
    """An SDK's connection error (as openai's APIConnectionError)."""


class APIStatusError(Exception):
    """An SDK's status error (as openai's APIStatusError)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"status {response.status_code}")
        self.response = response


async def sdk_get(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """How an SDK built on httpx (openai's client, say) maps httpx's errors onto its own."""
    try:
        response = await client.send(client.build_request("GET", url))
    except httpx.TimeoutException as err:
        raise APITimeoutError("Request timed out.") from err
    except Exception as err:
        raise APIConnectionError("Connection error.") from err
    try:
        response.raise_for_status()
    except httpx.HTTPStatusError as err:
        raise APIStatusError(err.response) from err
    return response


async def test_an_sdk_on_httpx_sees_timeouts_connection_errors_and_statuses(
    kind: str, chaos_server: ChaosServer
) -> None:
    """Under an SDK (httpx.AsyncClient over ResilientTransport): timeouts after retries are the
    SDK's timeout error, refused connections its connection error, a final 500 its status error."""
    chaos_server.route("/hang", hang=True)
    chaos_server.route("/boom", status=500)
    transport = ResilientTransport(make_transport(kind), config=config(kind, timeout=0.3, retry_attempts=1))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(APITimeoutError) as timed_out:
            await sdk_get(client, chaos_server.url_for("/hang"))
        with pytest.raises(APIConnectionError) as refused:
            await sdk_get(client, f"http://127.0.0.1:{closed_port()}/")
        with pytest.raises(APIStatusError) as status:
            await sdk_get(client, chaos_server.url_for("/boom"))
    assert isinstance(timed_out.value.__cause__, RetryExhaustedError)
    assert chaos_server.count("/hang") == 2
    assert isinstance(refused.value.__cause__, httpx.ConnectError)
    assert status.value.response.status_code == 500 and chaos_server.count("/boom") == 2
