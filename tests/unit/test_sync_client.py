"""HTTPClient, the sync facade, over httpx.MockTransport: arguments, errors, middlewares,
hooks, streams and the closed client. Over real sockets: tests/integration/test_sync_client_live.py.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import httpx
import pytest

from httpx_resilience import (
    AsyncHTTPClient,
    ClientConfig,
    ConfigurationError,
    Fallback,
    HedgingPolicy,
    HTTPClient,
    HTTPRequest,
    HTTPRequestError,
    HTTPResponse,
    HTTPResponseError,
    InvalidRequestError,
    LoggingMiddleware,
    Middleware,
    RateLimitError,
    RequestIdMiddleware,
    ResponseTooLargeError,
    RetryExhaustedError,
    RetryPolicy,
)
from httpx_resilience.middleware._observed import ObserverMiddleware
from httpx_resilience.middleware.base import missing_sync_hooks
from httpx_resilience.testing import FakeClock, testing_mode

NO_WAIT = RetryPolicy(max_attempts=3, backoff_factor=0.0, jitter="none")


class Recorder:
    """A MockTransport handler answering from a list of statuses (the last repeating)."""

    def __init__(self, *statuses: int, headers: dict[str, str] | None = None) -> None:
        self.statuses = list(statuses) or [200]
        self.headers = headers or {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.statuses[min(len(self.requests), len(self.statuses)) - 1]
        body = request.read()
        return httpx.Response(
            status,
            headers=self.headers,
            json={"method": request.method, "path": request.url.path,
                  "query": str(request.url.query, "ascii"), "body": body.decode()},
        )


def client_for(handler: Any, **kwargs: Any) -> HTTPClient:
    kwargs.setdefault("retry", NO_WAIT)
    kwargs.setdefault("clock", FakeClock())
    return HTTPClient("http://api.test", transport=httpx.MockTransport(handler), **kwargs)


class Trace(Middleware):
    """Records the order of its sync hooks in a shared list."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def process_request_sync(self, request: HTTPRequest, client: Any) -> HTTPRequest:
        self.log.append(f"req {self.name}")
        request.headers[f"X-{self.name}"] = "1"
        return request

    def process_response_sync(self, response: HTTPResponse, request: HTTPRequest) -> HTTPResponse:
        self.log.append(f"resp {self.name}")
        return response

    def process_error_sync(self, error: BaseException, request: HTTPRequest) -> None:
        self.log.append(f"error {self.name} {type(error).__name__}")


class AsyncOnly(Middleware):
    async def process_request(self, request: HTTPRequest, client: Any) -> HTTPRequest:
        return request

    async def process_error(self, error: BaseException, request: HTTPRequest) -> None:
        return None


# -- construction ---------------------------------------------------------------------------


def test_what_only_the_async_path_can_do_is_refused_at_construction() -> None:
    """Hedging, an async transport named in the config, an async-only middleware, an
    async inner transport: each a ConfigurationError naming the field and the fix."""
    with pytest.raises(ConfigurationError, match="hedging needs the async path") as info:
        HTTPClient(hedging=HedgingPolicy(delay=0.1))
    assert info.value.field == "hedging"
    with pytest.raises(ConfigurationError, match="async transport") as info:
        HTTPClient(config=ClientConfig(transport="aiohttp"))
    assert info.value.field == "transport"
    with pytest.raises(
        ConfigurationError, match=r"AsyncOnly overrides async hooks only.*process_request_sync, "
        r"process_error_sync"
    ) as info:
        HTTPClient(middlewares=[AsyncOnly()])
    assert info.value.field == "middlewares"
    with pytest.raises(ConfigurationError, match=r"httpx\.BaseTransport"):
        HTTPClient(transport=httpx.AsyncHTTPTransport())  # type: ignore[arg-type]


def test_the_shared_argument_checks_apply() -> None:
    """The same checks as AsyncHTTPClient: base_url, config, auth, middlewares."""
    with pytest.raises(ConfigurationError, match="base_url"):
        HTTPClient("api.test")
    with pytest.raises(ConfigurationError, match="ClientConfig"):
        HTTPClient(config={"timeout": 1})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"httpx\.Auth"):
        HTTPClient(auth="token")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="Middleware instances"):
        HTTPClient(middlewares=[object()])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="line break") as info:
        HTTPClient(config=ClientConfig(headers={"X-Bad": "a\nb"}))
    assert info.value.field == "headers"


def test_missing_sync_hooks_names_only_the_overridden_async_hooks() -> None:
    """Built-ins have both; a sync-only middleware misses nothing; AsyncOnly misses two."""
    assert missing_sync_hooks(AsyncOnly()) == ["process_request_sync", "process_error_sync"]
    assert missing_sync_hooks(Trace("a", [])) == []
    assert missing_sync_hooks(LoggingMiddleware()) == []
    assert missing_sync_hooks(RequestIdMiddleware()) == []
    assert missing_sync_hooks(Middleware()) == []


# -- requests -------------------------------------------------------------------------------


def test_every_method_returns_an_http_response() -> None:
    """request/get/post/put/patch/delete/head/options send their method; bodies,
    params, headers and the idempotency key arrive."""
    handler = Recorder()
    with client_for(handler) as client:
        assert client.get("/a", params={"q": "1"}).json_data["query"] == "q=1"
        posted = client.post("/p", json={"x": 1}, idempotency_key="k-1")
        assert json.loads(posted.json_data["body"]) == {"x": 1}
        for name in ("put", "patch", "delete", "head", "options"):
            got = getattr(client, name)("/m", headers={"X-Trace": "t"})
            assert isinstance(got, HTTPResponse) and got.status_code == 200
        assert client.request("get", "/r").request.method == "GET"
    methods = [r.method for r in handler.requests]
    assert methods == ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "GET"]
    assert handler.requests[1].headers["Idempotency-Key"] == "k-1"
    assert handler.requests[2].headers["X-Trace"] == "t"
    assert client.is_closed


def test_bad_arguments_are_invalid_request_errors_and_nothing_is_sent() -> None:
    """An unknown method, a URL type, two bodies, a bad header: refused before sending."""
    handler = Recorder()
    client = client_for(handler)
    with pytest.raises(InvalidRequestError):
        client.request("FETCH", "/a")
    with pytest.raises(InvalidRequestError):
        client.get(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="only one of json, content"):
        client.post("/a", json={}, content=b"x")
    with pytest.raises(InvalidRequestError):
        client.get("/a", headers={"X-Bad": "a\r\nb"})
    assert handler.requests == []
    client.close()


def test_statuses_map_onto_the_same_errors_as_the_async_client() -> None:
    """A final 429 is a RateLimitError; a 503 retried to the end a RetryExhaustedError that
    is an HTTPResponseError and an httpx.HTTPStatusError; a 404 is returned."""
    client = client_for(Recorder(429), retry=RetryPolicy(max_attempts=1))
    with pytest.raises(RateLimitError):
        client.get("/limited")
    gave_up = Recorder(503)
    client = client_for(gave_up)
    with pytest.raises(RetryExhaustedError) as info:
        client.get("/down")
    assert isinstance(info.value, HTTPResponseError) and isinstance(info.value, httpx.HTTPStatusError)
    assert len(gave_up.requests) == 3 and info.value.attempts == 3
    missing = client_for(Recorder(404)).get("/missing")
    assert missing.status_code == 404 and missing.attempts == 1


def test_transport_errors_keep_their_httpx_class() -> None:
    """A refused connection, retried to the end, is an HTTPRequestError that is still an
    httpx.ConnectError; the error hooks of the middlewares see it."""
    calls: list[int] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("refused", request=request)

    log: list[str] = []
    client = client_for(refuse, middlewares=[Trace("a", log)])
    with pytest.raises(HTTPRequestError) as info:
        client.get("/x")
    assert isinstance(info.value, httpx.ConnectError) and len(calls) == 3
    assert log == ["req a", f"error a {type(info.value).__name__}"]


def test_a_body_over_the_cap_is_refused() -> None:
    """max_response_bytes per request: ResponseTooLargeError."""
    client = client_for(lambda r: httpx.Response(200, content=b"x" * 1000))
    with pytest.raises(ResponseTooLargeError):
        client.get("/big", max_response_bytes=100)
    assert client.get("/big", max_response_bytes=1000).content == b"x" * 1000


def test_a_fallback_answers_through_the_middlewares() -> None:
    """A refused connection is answered by the client's fallback; the response
    middlewares see it like any other response."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    log: list[str] = []
    client = client_for(
        refuse, fallback=Fallback(httpx.Response(200, text="cached")), middlewares=[Trace("a", log)]
    )
    response = client.get("/x")
    assert response.status_code == 200 and response.text == "cached"
    assert log == ["req a", "resp a"]


def test_the_testing_switch_caps_the_attempts_of_the_sync_client() -> None:
    """Under testing_mode(attempts=2) a failing upstream sees two attempts, not the
    policy's three, and the backoff (5 s) is zero."""
    clock = FakeClock()
    handler = Recorder(503)
    client = client_for(handler, retry=RetryPolicy(max_attempts=3, backoff_factor=5.0), clock=clock)
    with testing_mode(attempts=2), pytest.raises(RetryExhaustedError):
        client.get("/down")
    assert len(handler.requests) == 2 and sum(clock.sleeps) == 0.0


# -- middlewares ----------------------------------------------------------------------------


def test_middlewares_run_in_order_and_responses_in_reverse() -> None:
    """process_request_sync in the given order (their headers are sent), then
    process_response_sync in reverse; once per logical request, retries included."""
    log: list[str] = []
    handler = Recorder(503, 200)
    client = client_for(handler, middlewares=[Trace("a", log), Trace("b", log)])
    response = client.get("/x")
    assert log == ["req a", "req b", "resp b", "resp a"]
    assert response.attempts == 2 and len(handler.requests) == 2
    assert all(r.headers["X-a"] == "1" and r.headers["X-b"] == "1" for r in handler.requests)


def test_built_in_middlewares_work_under_the_sync_client(caplog: pytest.LogCaptureFixture) -> None:
    """RequestIdMiddleware sets its header once per logical request; LoggingMiddleware
    logs the response and the failure, redacted."""
    handler = Recorder(503, 200)
    ids = iter(["id-1", "id-2"])
    mw = [RequestIdMiddleware("X-Corr", generator=lambda: next(ids)), LoggingMiddleware(level=logging.INFO)]
    client = client_for(handler, middlewares=mw)
    with caplog.at_level(logging.INFO, logger="httpx_resilience.http"):
        client.get("/x", params={"token": "s3cret"})
    assert [r.headers["X-Corr"] for r in handler.requests] == ["id-1", "id-1"]
    message = caplog.records[-1].getMessage()
    assert message.startswith("GET http://api.test/x?token=") and "s3cret" not in message
    assert "-> 200" in message and "(2 attempts)" in message


def test_a_middleware_with_both_hooks_serves_both_clients() -> None:
    """The same instance under AsyncHTTPClient (async hooks) and HTTPClient (sync hooks)."""

    class Both(Middleware):
        def __init__(self) -> None:
            self.seen: list[str] = []

        async def process_request(self, request: HTTPRequest, client: Any) -> HTTPRequest:
            self.seen.append(f"async {type(client).__name__}")
            return request

        def process_request_sync(self, request: HTTPRequest, client: Any) -> HTTPRequest:
            self.seen.append(f"sync {type(client).__name__}")
            return request

    both = Both()
    client_for(Recorder(), middlewares=[both]).get("/x")
    assert both.seen == ["sync HTTPClient"]
    assert isinstance(AsyncHTTPClient(middlewares=[both]), AsyncHTTPClient)


# -- stream, lifecycle ----------------------------------------------------------------------


def test_stream_yields_an_unread_response_and_closes_it() -> None:
    """stream() as a context manager: the body is read by the caller, closed after."""
    log: list[str] = []
    client = client_for(lambda r: httpx.Response(200, content=b"line1\nline2\n"),
                        middlewares=[Trace("a", log)])
    with client.stream("GET", "/s") as response:
        assert isinstance(response, httpx.Response) and response.status_code == 200
        assert list(response.iter_lines()) == ["line1", "line2"]
    assert response.is_closed and log == ["req a"]
    with pytest.raises(InvalidRequestError, match="unexpected argument 'bogus'"), client.stream(
        "GET", "/s", bogus=1  # type: ignore[call-arg]
    ):
        pass


def test_a_closed_client_refuses_requests() -> None:
    """After close(): is_closed, and a request is refused (httpx's RuntimeError)."""
    client = client_for(Recorder())
    assert not client.is_closed and isinstance(client.httpx_client, httpx.Client)
    client.close()
    assert client.is_closed
    with pytest.raises(RuntimeError, match="closed"):
        client.get("/x")


def test_service_name_and_repr() -> None:
    """The service defaults to the base URL's host; the repr redacts the URL."""
    client = HTTPClient("http://user:pw@api.test", transport=httpx.MockTransport(Recorder()))
    assert client.service == "api.test" and "pw" not in repr(client)
    client.service = "orders"
    assert client.service == "orders"


# -- the observer middlewares' shared hooks -------------------------------------------------


class FakeObserver:
    """Records what an ObserverMiddleware asks of its observer."""

    def __init__(self) -> None:
        self.watched: list[object] = []
        self.abandoned: list[str] = []

    def __call__(self, event: object) -> None:
        return None

    def watch_breaker(self, breaker: object) -> None:
        self.watched.append(breaker)

    def abandon_current(self, reason: str = "abandoned") -> None:
        self.abandoned.append(reason)


class FakePipeline:
    observers: tuple[object, ...] = ()


class FakeClient:
    def __init__(self) -> None:
        self.transport = FakePipeline()
        self.circuit_breaker = "breaker"


def test_observer_middlewares_attach_once_from_many_threads() -> None:
    """Eight middlewares, each called from its own thread 200 times on one client: every
    observer attached exactly once (the attach is atomic), the breaker watched."""
    client = FakeClient()
    observers = [FakeObserver() for _ in range(8)]
    middlewares = [ObserverMiddleware(o) for o in observers]
    request = HTTPRequest(method="GET", url="/x")
    start = threading.Barrier(8)

    def run(m: ObserverMiddleware) -> None:
        start.wait()
        for _ in range(200):
            m.process_request_sync(request, client)  # type: ignore[arg-type]

    threads = [threading.Thread(target=run, args=(m,)) for m in middlewares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    attached = client.transport.observers
    assert len(attached) == 8 and set(map(id, attached)) == set(map(id, observers))
    assert all(o.watched and set(o.watched) == {"breaker"} for o in observers)


def test_an_interrupted_sync_request_is_reported_as_cancelled() -> None:
    """process_error_sync: Ctrl-C in a thread (KeyboardInterrupt) is 'cancelled', like a
    cancelled task; any other error 'abandoned'."""
    observer = FakeObserver()
    m = ObserverMiddleware(observer)  # type: ignore[arg-type]
    request = HTTPRequest(method="GET", url="/x")
    m.process_error_sync(KeyboardInterrupt(), request)
    m.process_error_sync(ValueError("x"), request)
    assert observer.abandoned == ["cancelled", "abandoned"]
