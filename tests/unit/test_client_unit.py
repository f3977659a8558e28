"""Unit tests of AsyncHTTPClient over httpx.MockTransport: models, serializers, middlewares, errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import logging
import uuid
from typing import Any

import httpx
import pytest

from httpx_resilience.client import AsyncHTTPClient
from httpx_resilience.config import ClientConfig
from httpx_resilience.exceptions import (
    ConfigurationError,
    HTTPRequestError,
    HTTPResponseError,
    InvalidRequestError,
    RateLimitError,
    RequestTimeoutError,
    ResponseDecodeError,
    RetryExhaustedError,
)
from httpx_resilience.middleware import LoggingMiddleware, Middleware, RequestIdMiddleware
from httpx_resilience.models import HTTPRequest, HTTPResponse
from httpx_resilience.policies.retry import RetryPolicy
from httpx_resilience.testing.clock import FakeClock

FAST = RetryPolicy(jitter="none", backoff_factor=0.0)


def echo(request: httpx.Request) -> httpx.Response:
    """Answer with what was received."""
    return httpx.Response(
        200,
        json={
            "method": request.method,
            "url": str(request.url),
            "headers": dict(request.headers),
            "body": request.content.decode(),
        },
    )


def client(handler: Any = echo, **kw: Any) -> AsyncHTTPClient:
    kw.setdefault("retry", FAST)
    return AsyncHTTPClient(
        "https://api.test/v1", transport=httpx.MockTransport(handler), clock=FakeClock(), **kw
    )


async def test_base_url_params_and_json_body() -> None:
    """Relative URLs join base_url; params and JSON bodies (dates, UUIDs, decimals) are sent."""
    uid = uuid.UUID(int=5)

    @dataclasses.dataclass
    class Item:
        price: decimal.Decimal
        when: dt.date

    async with client() as c:
        r = await c.post(
            "items", params={"q": "x"},
            json={"id": uid, "item": Item(decimal.Decimal("1.10"), dt.date(2024, 1, 2))},
        )
    data = r.json_data
    assert data["url"] == "https://api.test/v1/items?q=x"
    assert json.loads(data["body"]) == {
        "id": str(uid), "item": {"price": "1.10", "when": "2024-01-02"}
    }
    assert data["headers"]["content-type"] == "application/json"
    assert r.is_success and r.attempts == 1 and r.request_id


async def test_form_body_and_raw_content() -> None:
    """data= mappings are form-encoded (lists repeat keys); bytes go as they are."""
    async with client() as c:
        r = await c.post("f", data={"a": [1, 2], "b": True, "c": None})
        raw = await c.put("r", content=b"\x00\x01")
    assert r.json_data["body"] == "a=1&a=2&b=true"
    assert r.json_data["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert raw.json_data["body"] == "\x00\x01"


async def test_multipart_files() -> None:
    """files= is sent as multipart/form-data."""
    async with client() as c:
        r = await c.post("up", files={"f": ("a.txt", b"hello")}, data={"k": "v"})
    assert r.json_data["headers"]["content-type"].startswith("multipart/form-data")
    assert "hello" in r.json_data["body"]


async def test_idempotency_key_header_and_post_retry() -> None:
    """idempotency_key= sets the header and lets a POST be retried."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers.get("idempotency-key", ""))
        return httpx.Response(503 if len(calls) == 1 else 200)

    async with client(handler) as c:
        r = await c.post("pay", json={"amount": 1}, idempotency_key="k-1")
    assert r.status_code == 200 and calls == ["k-1", "k-1"]


async def test_middleware_order_and_request_id() -> None:
    """process_request runs in order, process_response in reverse; RequestIdMiddleware keeps one id."""
    order: list[str] = []

    class Tag(Middleware):
        def __init__(self, name: str) -> None:
            self.name = name

        async def process_request(self, request: HTTPRequest, client: Any) -> HTTPRequest:
            order.append(f"req-{self.name}")
            request.headers[f"X-{self.name}"] = "1"
            return request

        async def process_response(self, response: HTTPResponse, request: HTTPRequest) -> HTTPResponse:
            order.append(f"resp-{self.name}")
            return response

    ids = RequestIdMiddleware(header="X-Correlation-Id", generator=lambda: "cid-1")
    async with client(middlewares=[Tag("a"), Tag("b"), ids]) as c:
        r = await c.get("x")
    assert order == ["req-a", "req-b", "resp-b", "resp-a"]
    headers = r.json_data["headers"]
    assert headers["x-a"] == "1" and headers["x-correlation-id"] == "cid-1"
    assert "x-request-id" in headers


async def test_logging_middleware_redacts(caplog: pytest.LogCaptureFixture) -> None:
    """LoggingMiddleware logs method, redacted URL, status, attempts and request id."""
    with caplog.at_level(logging.DEBUG, logger="httpx_resilience.http"):
        async with client(middlewares=[LoggingMiddleware()]) as c:
            await c.get("x", params={"api_key": "SECRET123"})
    rec = next(r for r in caplog.records if r.name == "httpx_resilience.http")
    assert "SECRET123" not in rec.getMessage()
    assert rec.status_code == 200 and rec.attempts == 1 and rec.request_id  # type: ignore[attr-defined]


async def test_final_429_raises_rate_limit_error_with_retry_after() -> None:
    """A final 429 is reported as RateLimitError carrying retry_after."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "120"})

    async with client(handler, retry=RetryPolicy(max_delay=10)) as c:
        with pytest.raises(RateLimitError) as info:
            await c.get("x")
    assert info.value.retry_after == 120.0 and info.value.status_code == 429
    assert "api.test" in str(info.value)


async def test_exhausted_status_raises_retry_exhausted() -> None:
    """Retries exhausted on 503 raise RetryExhaustedError with attempts and status."""
    async with client(lambda r: httpx.Response(503)) as c:
        with pytest.raises(RetryExhaustedError) as info:
            await c.get("x")
    assert info.value.attempts == 4 and info.value.status_code == 503
    assert isinstance(info.value.__cause__, HTTPResponseError)


async def test_non_retried_errors_are_returned_and_raise_for_status() -> None:
    """A 404 is returned; raise_for_status() raises HTTPResponseError naming the URL."""
    async with client(lambda r: httpx.Response(404, text="nope")) as c:
        r = await c.get("missing")
    assert r.status_code == 404 and r.is_error and r.text == "nope"
    with pytest.raises(HTTPResponseError) as info:
        r.raise_for_status()
    assert info.value.status_code == 404 and "api.test/v1/missing" in str(info.value)
    ok = HTTPResponse(200, {}, b"")
    assert ok.raise_for_status() is ok and ok.json_data is None


def test_raise_for_status_429_gives_rate_limit_error() -> None:
    """raise_for_status on 429 raises RateLimitError."""
    with pytest.raises(RateLimitError):
        HTTPResponse(429).raise_for_status()


async def test_malformed_json_raises_typed_error() -> None:
    """Invalid JSON raises ResponseDecodeError (a ValueError) with status and content type."""
    bad = httpx.Response(200, content=b"{oops", headers={"Content-Type": "application/json"})
    async with client(lambda r: bad) as c:
        r = await c.get("x")
    with pytest.raises(ResponseDecodeError, match="not valid JSON") as info:
        _ = r.json_data
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("method", ["FETCH", "GE T", "", "get\r\n"])
async def test_unknown_method_is_rejected(method: str) -> None:
    """An unknown or malformed method raises InvalidRequestError before sending."""
    async with client() as c:
        with pytest.raises(InvalidRequestError):
            await c.request(method, "x")


async def test_url_without_scheme_is_rejected() -> None:
    """A relative URL with no base_url raises InvalidRequestError naming the fix."""
    c = AsyncHTTPClient(transport=httpx.MockTransport(echo))
    with pytest.raises(InvalidRequestError, match=r"absolute URL"):
        await c.get("api.example.com/items")
    with pytest.raises(InvalidRequestError):
        await c.get("ftp://example.com/x")
    await c.aclose()


async def test_two_bodies_are_rejected() -> None:
    """json= together with content= is a typed error."""
    async with client() as c:
        with pytest.raises(InvalidRequestError, match="only one"):
            await c.post("x", json={}, content=b"x")
        with pytest.raises(InvalidRequestError, match="json"):
            await c.post("x", json={"x": object()})


def test_bad_constructor_arguments() -> None:
    """A base_url without scheme, a non-Auth auth or a non-Middleware raise ConfigurationError."""
    with pytest.raises(ConfigurationError, match="base_url"):
        AsyncHTTPClient("api.example.com")
    with pytest.raises(ConfigurationError, match="auth"):
        AsyncHTTPClient("https://a.test", auth="token")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="middlewares"):
        AsyncHTTPClient("https://a.test", middlewares=[object()])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="config"):
        AsyncHTTPClient("https://a.test", config={"timeout": 1})  # type: ignore[arg-type]


async def test_transport_errors_are_translated() -> None:
    """Raw httpx errors surface as our typed errors, chained, naming the service."""

    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    errors: list[BaseException] = []

    class Spy(Middleware):
        async def process_error(self, error: BaseException, request: HTTPRequest) -> None:
            errors.append(error)

    async with client(boom, retry=RetryPolicy(max_attempts=1), middlewares=[Spy()]) as c:
        with pytest.raises(RequestTimeoutError) as info:
            await c.post("x", content=b"1")
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert isinstance(info.value, httpx.TimeoutException)
    assert errors and errors[0] is info.value

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("bad", request=request)

    async with client(refused, retry=RetryPolicy(max_attempts=1)) as c:
        with pytest.raises(HTTPRequestError, match=r"api\.test"):
            await c.post("x", content=b"1")


async def test_stream_failure_reaches_process_error_middlewares() -> None:
    """stream() tells the middlewares of a failure to send, as request() does."""

    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    errors: list[BaseException] = []

    class Spy(Middleware):
        async def process_error(self, error: BaseException, request: HTTPRequest) -> None:
            errors.append(error)

    async with client(boom, retry=RetryPolicy(max_attempts=1), middlewares=[Spy()]) as c:
        with pytest.raises(HTTPRequestError) as info:
            async with c.stream("GET", "x"):
                pass
    assert errors and errors[0] is info.value


async def test_stream_yields_unread_response() -> None:
    """stream() yields an httpx.Response whose body the caller reads."""
    async with client(lambda r: httpx.Response(200, content=b"a" * 1000)) as c:
        async with c.stream("GET", "big", headers={"A": "b"}) as r:
            body = b"".join([chunk async for chunk in r.aiter_bytes()])
        with pytest.raises(InvalidRequestError):
            async with c.stream("GET", "x", bogus=1):
                pass
    assert len(body) == 1000 and c.is_closed


async def test_client_repr_and_httpx_client() -> None:
    """repr redacts credentials in base_url; httpx_client exposes the AsyncClient."""
    c = AsyncHTTPClient("https://user:pw@api.test", config=ClientConfig(timeout=3))
    assert "pw" not in repr(c)
    assert isinstance(c.httpx_client, httpx.AsyncClient)
    await c.aclose()


async def test_lean_path_drives_auth_flows_like_httpx() -> None:
    """An httpx.Auth flow that answers a 401 with a new request works on the direct path."""

    class Refreshing(httpx.Auth):
        def __init__(self) -> None:
            self.token = "old"

        async def async_auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def, override]
            request.headers["Authorization"] = f"Bearer {self.token}"
            response = yield request
            if response.status_code == 401:
                self.token = "new"
                request.headers["Authorization"] = "Bearer new"
                yield request

    def handler(request: httpx.Request) -> httpx.Response:
        ok = request.headers["authorization"] == "Bearer new"
        return httpx.Response(200 if ok else 401, json={"auth": request.headers["authorization"]})

    async with client(handler, auth=Refreshing()) as c:
        r = await c.get("me")
    assert r.status_code == 200 and r.json_data == {"auth": "Bearer new"}


async def test_redirects_and_cookies_use_the_full_httpx_client() -> None:
    """follow_redirects and cookies=True go through httpx.AsyncClient: redirects followed, cookies kept."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/old":
            return httpx.Response(302, headers={"Location": "/v1/new", "Set-Cookie": "s=1; Path=/"})
        return httpx.Response(200, json={"cookie": request.headers.get("cookie")})

    cfg = ClientConfig(follow_redirects=True, cookies=True)
    async with client(handler, config=cfg) as c:
        r = await c.get("old")
        again = await c.get("new")
    assert r.json_data == {"cookie": "s=1"} and again.json_data == {"cookie": "s=1"}

    async with client(handler, config=ClientConfig(follow_redirects=True)) as c:
        await c.get("old")
        again = await c.get("new")
    assert again.json_data == {"cookie": None}


async def test_closed_client_refuses_requests() -> None:
    """A request after aclose() fails clearly instead of hanging."""
    c = client()
    await c.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await c.get("x")


class _StreamTransport(httpx.AsyncBaseTransport):
    """Answers with an unread body stream, as a network transport does."""

    def __init__(self, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        self.body = body
        self.headers = headers

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=self.headers, stream=httpx.ByteStream(self.body))


async def test_streamed_bodies_are_read_and_decoded() -> None:
    """Plain bodies are read as they are; Content-Encoding bodies are still decoded."""
    import gzip

    plain = b'{"ok": true}'
    ctype = (b"Content-Type", b"application/json")
    async with AsyncHTTPClient(transport=_StreamTransport(plain, [ctype])) as c:
        r = await c.get("https://api.test/x")
    raw = r._raw
    assert raw is not None and r.content == plain and r.json_data == {"ok": True}
    assert raw.content == plain and raw.is_stream_consumed and raw.is_closed
    assert raw.num_bytes_downloaded == len(plain) and r.text == plain.decode()
    assert [chunk async for chunk in raw.aiter_bytes()] == [plain]

    gz = [ctype, (b"Content-Encoding", b"gzip")]
    async with AsyncHTTPClient(transport=_StreamTransport(gzip.compress(plain), gz)) as c:
        r = await c.get("https://api.test/x")
    assert r.content == plain and r.json_data == {"ok": True}


@pytest.mark.parametrize("method", ["GET", "DELETE", "POST", "PUT"])
@pytest.mark.parametrize("content", [None, b"", b'{"a":1}'])
@pytest.mark.parametrize(
    "headers", [{}, {"Host": "other"}, {"accept": "text/plain", "Content-Length": "7"}]
)
async def test_requests_are_laid_out_as_httpx_lays_them_out(
    method: str, content: bytes | None, headers: dict[str, str]
) -> None:
    """Header order and values, body and stream match httpx.AsyncClient.build_request."""
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    cfg = ClientConfig(headers={"X-Default": "1"})
    async with client(handler, config=cfg) as c:
        for _ in range(2):  # the second request reuses the cached layout
            await c.request(method, "items?q=1", content=content, headers=headers)
        expected = c.httpx_client.build_request(
            method, "items?q=1", content=content, headers=headers
        )
    for request in sent:
        assert request.headers.raw[:-1] == expected.headers.raw
        assert request.headers.raw[-1][0] == b"X-Request-Id"
        assert request.url == expected.url and request.content == expected.content


BAD_ARGUMENTS: list[tuple[str, dict[str, Any], str]] = [
    ("url", {"url": 123}, "url must be a str"),
    ("headers", {"headers": "X-A: 1"}, "headers must be a mapping"),
    ("header value", {"headers": {"X-A": 1}}, "must have a str name and value"),
    ("header split", {"headers": {"X-A": "a\r\nX-Injected: 1"}}, "line break"),
    ("header name", {"headers": {"X A": "1"}}, "not a valid HTTP token"),
    ("params", {"params": 5}, "params must be"),
    ("content", {"content": 5}, "content must be bytes"),
    ("sync content", {"content": iter([b"a"])}, "content must be bytes"),
    ("data", {"data": [1, 2]}, "data must be bytes"),
    ("data with files", {"data": b"x", "files": {"f": b"y"}}, "data must be a mapping"),
    ("files", {"files": "f"}, "files must be a mapping"),
    ("file part", {"files": {"f": 5}}, "binary file object"),
    ("file tuple", {"files": {"f": (1, 2, 3, 4, 5)}}, "a tuple of 5"),
    ("timeout", {"timeout": "5"}, "timeout must be a finite number"),
    ("timeout nan", {"timeout": float("nan")}, "timeout must be a finite number"),
    ("idempotency key", {"idempotency_key": "a\nb"}, "idempotency_key"),
    ("extensions", {"extensions": "x"}, "extensions must be a mapping"),
    ("overrides", {"extensions": {"resilience": 1}}, 'extensions\\["resilience"\\] must be'),
    ("max bytes", {"max_response_bytes": -1}, "max_response_bytes must be"),
]


@pytest.mark.parametrize(("what", "kwargs", "message"), BAD_ARGUMENTS, ids=[b[0] for b in BAD_ARGUMENTS])
async def test_bad_arguments_are_typed_errors_and_nothing_is_sent(
    what: str, kwargs: dict[str, Any], message: str
) -> None:
    """Each bad argument is an InvalidRequestError naming it (never a bare TypeError/ValueError)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    kwargs = dict(kwargs)
    url = kwargs.pop("url", "/x")
    async with client(handler) as c:
        with pytest.raises(InvalidRequestError, match=message):
            await c.request("POST", url, **kwargs)
    assert seen == []


async def test_good_argument_forms_are_accepted() -> None:
    """Pairs and query strings as params, header pairs, bytes-like bodies, httpx.URL."""
    async with client() as c:
        r = await c.post(
            httpx.URL("https://api.test/v1/p"), params="a=1&a=2&b=3",
            headers=[("X-A", "1")], content=memoryview(b"mv"),
        )
        body = r.json()
        assert body["url"].endswith("/p?a=1&a=2&b=3") and body["body"] == "mv"
        assert body["headers"]["x-a"] == "1"
        r = await c.post("/p", params=[("k", "v")], data=bytearray(b"ba"))
        assert r.json()["url"].endswith("/p?k=v") and r.json()["body"] == "ba"


def test_bad_default_headers_are_a_configuration_error() -> None:
    """ClientConfig.headers that cannot be sent fail when the client is built."""
    for headers in (1, {"X-A": "a\nb"}):
        with pytest.raises(ConfigurationError) as info:
            AsyncHTTPClient("https://a.test", config=ClientConfig(headers=headers))  # type: ignore[arg-type]
        assert info.value.field == "headers"


async def test_max_response_bytes_caps_a_body_in_memory() -> None:
    """The cap holds for a body the inner transport already holds in memory; per request too."""
    from httpx_resilience.exceptions import ResponseTooLargeError

    def big(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x" * 5000)

    async with client(big, config=ClientConfig(max_response_bytes=4096)) as c:
        with pytest.raises(ResponseTooLargeError) as info:
            await c.get("/big")
        assert (info.value.limit, info.value.received) == (4096, 5000)
        assert len((await c.get("/big", max_response_bytes=None)).content) == 5000
        r = await c.get("/big", extensions={"resilience": {"max_response_bytes": 10_000}})
        assert len(r.content) == 5000
        with pytest.raises(ResponseTooLargeError):
            await c.get("/big", max_response_bytes=100)


async def test_max_response_bytes_off_the_lean_path() -> None:
    """Through httpx.AsyncClient (redirects on) the cap holds too, on the body read unread."""
    from httpx_resilience.exceptions import ResponseTooLargeError

    def big(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x" * 5000)

    cfg = ClientConfig(max_response_bytes=4096, follow_redirects=True)
    async with client(big, config=cfg) as c:
        with pytest.raises(ResponseTooLargeError):
            await c.get("/big")
        assert (await c.get("/big", max_response_bytes=5000)).content == b"x" * 5000


async def test_an_unparseable_url_with_a_password_does_not_show_it() -> None:
    """httpx cannot parse the URL, so it cannot be redacted by parsing: its user-info is cut."""
    async with client() as c:
        with pytest.raises(InvalidRequestError) as info:
            await c.get("http://user:hunter2-secret@[::1/x")
    assert "hunter2-secret" not in str(info.value) and "***@[::1" in str(info.value)


def test_a_sync_transport_is_refused_at_construction() -> None:
    """AsyncHTTPClient(transport=httpx.HTTPTransport()) fails at once, naming HTTPClient."""
    import httpx

    from httpx_resilience import AsyncHTTPClient, ConfigurationError

    with pytest.raises(ConfigurationError, match="HTTPClient") as info:
        AsyncHTTPClient(transport=httpx.HTTPTransport())
    assert info.value.field == "transport"
