"""Fallback: what qualifies, what it serves, and how the outcome records it; inside
ResilientTransport and AsyncHTTPClient over httpx.MockTransport and a fake clock."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from httpx_resilience import (
    AsyncHTTPClient,
    BulkheadFullError,
    CircuitBreakerOpenError,
    ConfigurationError,
    InvalidRequestError,
    RateLimiterTimeout,
    RequestNotReplayableError,
    RequestTimeoutError,
    RetryExhaustedError,
)
from httpx_resilience.config import ClientConfig
from httpx_resilience.middleware.base import Middleware
from httpx_resilience.models import HTTPRequest, HTTPResponse
from httpx_resilience.observe.events import RequestFinished
from httpx_resilience.pipeline import ResilienceInfo, ResilientTransport
from httpx_resilience.pipeline._outcome import new_info
from httpx_resilience.policies.breaker import CircuitBreaker
from httpx_resilience.policies.bulkhead import Bulkhead
from httpx_resilience.policies.fallback import Fallback, FallbackServed, as_fallback
from httpx_resilience.policies.retry import RetryPolicy
from httpx_resilience.policies.throttle import ThrottledError
from httpx_resilience.testing.clock import FakeClock

CACHED = httpx.Response(200, json={"items": [], "cached": True})


def refusing(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def transport(handler: object, clock: FakeClock | None = None, **kw: object) -> ResilientTransport:
    kw.setdefault("retry", RetryPolicy(max_attempts=3, jitter="none", backoff_factor=0.01))
    return ResilientTransport(
        httpx.MockTransport(handler), clock=clock or FakeClock(), **kw  # type: ignore[arg-type]
    )


def info_of(response: httpx.Response) -> ResilienceInfo:
    info = response.extensions["resilience"]
    assert isinstance(info, ResilienceInfo)
    return info


# -- the policy alone ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        CircuitBreakerOpenError("svc", 3.0),
        RateLimiterTimeout("busy"),
        BulkheadFullError("full"),
        ThrottledError("svc", 0.9, 40, 2),
        RequestTimeoutError("deadline", phase="total"),
        RetryExhaustedError("gave up", attempts=3, last_error=httpx.ConnectError("x")),
    ],
)
def test_failures_of_the_transport_and_the_pipeline_qualify(error: Exception) -> None:
    assert Fallback(CACHED).handles(error)


@pytest.mark.parametrize(
    "error",
    [
        RequestNotReplayableError("stream read"),
        InvalidRequestError("bad"),
        ConfigurationError("bad", field="x"),
        httpx.UnsupportedProtocol("ftp"),
        httpx.LocalProtocolError("bad header"),
        RetryExhaustedError("gave up", attempts=2, last_error=RequestNotReplayableError("x")),
        ValueError("a bug"),
        KeyError("a bug"),
    ],
)
def test_programming_errors_never_qualify_even_when_on_says_so(error: Exception) -> None:
    assert not Fallback(CACHED).handles(error)
    if not isinstance(error, (ValueError, KeyError)):
        assert not Fallback(CACHED, on=Exception).handles(error)


def test_on_narrows_the_failures_and_statuses_name_responses() -> None:
    only_breaker = Fallback(CACHED, on=(CircuitBreakerOpenError,))
    assert only_breaker.handles(CircuitBreakerOpenError("svc", 1.0))
    assert not only_breaker.handles(httpx.ConnectError("refused"))
    assert Fallback(CACHED).handles_response(503, exhausted=True)
    assert not Fallback(CACHED).handles_response(503, exhausted=False)
    assert Fallback(CACHED, statuses={500}).handles_response(500, exhausted=False)
    assert not Fallback(CACHED, statuses=()).handles_response(503, exhausted=True)


@pytest.mark.parametrize(
    ("args", "kw", "field"),
    [
        ((42,), {}, "fallback"),
        ((CACHED,), {"on": ValueError()}, "on"),
        ((CACHED,), {"on": ()}, "on"),
        ((CACHED,), {"statuses": [99]}, "statuses"),
        ((CACHED,), {"statuses": "503"}, "statuses"),
    ],
)
def test_bad_settings_name_the_field(args: tuple[object, ...], kw: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Fallback(*args, **kw)  # type: ignore[arg-type]
    assert info.value.field == field


async def test_a_streamed_response_cannot_be_a_fixed_fallback() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"x"

    with pytest.raises(ConfigurationError, match="not in memory"):
        Fallback(httpx.Response(200, content=body()))


async def test_a_fixed_response_is_served_as_a_fresh_copy_each_time() -> None:
    """Each request gets its own response: same status, headers and body, nothing shared."""
    fb = Fallback(httpx.Response(200, json={"ok": False}, headers={"X-Source": "fallback"}))
    request = httpx.Request("GET", "http://svc.test/x")
    one = await fb.respond(request, httpx.ConnectError("x"))
    two = await fb.respond(request, httpx.ConnectError("x"))
    assert one is not two
    assert one.json() == two.json() == {"ok": False}
    assert one.headers["x-source"] == "fallback" and one.request is request


async def test_a_handler_gets_the_request_and_the_error_sync_or_async() -> None:
    seen: list[tuple[str, str]] = []

    async def handler(request: httpx.Request, error: Exception) -> httpx.Response:
        seen.append((str(request.url), type(error).__name__))
        return httpx.Response(203)

    def sync_handler(request: httpx.Request, error: Exception) -> httpx.Response:
        return httpx.Response(204)

    request = httpx.Request("GET", "http://svc.test/x")
    assert (await Fallback(handler).respond(request, BulkheadFullError("full"))).status_code == 203
    assert (await Fallback(sync_handler).respond(request, BulkheadFullError("f"))).status_code == 204
    assert seen == [("http://svc.test/x", "BulkheadFullError")]
    bad = Fallback(lambda r, e: "not a response")  # type: ignore[arg-type,return-value]
    with pytest.raises(ConfigurationError, match=r"not an httpx\.Response"):
        await bad.respond(request, BulkheadFullError("full"))


async def test_an_http_response_is_accepted_as_its_httpx_response() -> None:
    raw = httpx.Response(200, content=b"cached", request=httpx.Request("GET", "http://svc.test/"))
    model = HTTPResponse.from_httpx(raw, None, 0.0)
    fb = as_fallback(model)
    assert fb is not None
    served = await fb.respond(httpx.Request("GET", "http://svc.test/"), httpx.ConnectError("x"))
    assert served.content == b"cached"
    assert as_fallback(None) is None and as_fallback(fb) is fb
    assert "response 200" in repr(fb)


def test_new_info_has_no_fallback_by_default() -> None:
    info = new_info(1, 0.1, 0.0, None, None, None, False, None, 0)
    assert info.fallback is False and info.fallback_error is None


# -- inside the pipeline ------------------------------------------------------------------


async def test_exhausted_retries_on_connect_errors_are_served_with_the_error_passed_in() -> None:
    errors: list[Exception] = []

    async def handler(request: httpx.Request, error: Exception) -> httpx.Response:
        errors.append(error)
        return httpx.Response(200, json={"stale": True})

    t = transport(refusing, fallback=handler)
    async with httpx.AsyncClient(transport=t, base_url="http://svc.test") as c:
        r = await c.get("/items")
    assert r.json() == {"stale": True}
    info = info_of(r)
    assert info.fallback is True and info.attempts == 3
    assert info.fallback_error == type(errors[0]).__name__
    assert isinstance(errors[0], RetryExhaustedError) and isinstance(errors[0], httpx.ConnectError)


async def test_an_exhausted_status_is_served_and_the_last_response_is_closed() -> None:
    """503 three times: the retry loop gives up; the fallback answers, told the status."""
    errors: list[Exception] = []

    def handler(request: httpx.Request, error: Exception) -> httpx.Response:
        errors.append(error)
        return httpx.Response(200, text="degraded")

    t = transport(lambda r: httpx.Response(503), fallback=handler)
    async with httpx.AsyncClient(transport=t, base_url="http://svc.test") as c:
        r = await c.get("/items")
    assert r.text == "degraded"
    info = info_of(r)
    assert info.fallback and not info.exhausted and info.stop_reason == "attempts"
    error = errors[0]
    assert isinstance(error, RetryExhaustedError) and error.status_code == 503
    assert error.last_response is not None and error.last_response.is_closed


async def test_a_handler_may_serve_the_last_response_itself() -> None:
    """The handler returns error.last_response: it is served, not closed."""

    def handler(request: httpx.Request, error: Exception) -> httpx.Response:
        assert isinstance(error, RetryExhaustedError)
        response: httpx.Response = error.last_response
        return response

    t = transport(lambda r: httpx.Response(503, text="busy"), fallback=handler)
    async with httpx.AsyncClient(transport=t, base_url="http://svc.test") as c:
        r = await c.get("/items")
    assert r.status_code == 503 and r.text == "busy" and info_of(r).fallback


async def test_an_open_breaker_is_served_and_observers_hear_of_it(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    events: list[object] = []
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=30.0, clock=clock)
    t = transport(
        refusing, clock, circuit_breaker=breaker, fallback=CACHED, observers=[events.append],
        retry=RetryPolicy(max_attempts=1),
    )
    caplog.set_level(logging.WARNING, "httpx_resilience.fallback")
    async with httpx.AsyncClient(transport=t, base_url="http://svc.test") as c:
        first = await c.get("/a")  # the connect error opens the breaker
        second = await c.get("/b")  # refused by the open breaker
    assert info_of(first).fallback_error == "ConnectError"
    assert info_of(second).fallback_error == "CircuitBreakerOpenError"
    assert info_of(second).breaker_state == "open"
    served = [e for e in events if isinstance(e, FallbackServed)]
    assert [e.error_type for e in served] == ["ConnectError", "CircuitBreakerOpenError"]
    assert served[1].url == "http://svc.test/b" and served[1].status_code == 200
    finished = [e for e in events if isinstance(e, RequestFinished)]
    assert [e.outcome for e in finished] == ["failure", "failure"]
    assert "Fallback served GET http://svc.test/b (HTTP 200) after CircuitBreakerOpenError" in caplog.text


async def test_a_full_bulkhead_is_served_with_one_request_finished() -> None:
    events: list[object] = []
    bulkhead = Bulkhead(max_concurrent=1)
    await bulkhead.acquire()  # the one slot is taken
    t = transport(
        lambda r: httpx.Response(200), bulkhead=bulkhead, fallback=CACHED, observers=[events.append]
    )
    async with httpx.AsyncClient(transport=t, base_url="http://svc.test") as c:
        r = await c.get("/x")
    assert info_of(r).fallback_error == "BulkheadFullError" and info_of(r).attempts == 0
    assert sum(isinstance(e, RequestFinished) for e in events) == 1


async def test_failures_not_served_reach_the_caller_as_they_were() -> None:
    """A 404 is an answer; a malformed override is a bug: neither is the fallback's."""
    t = transport(lambda r: httpx.Response(404), fallback=CACHED)
    async with httpx.AsyncClient(transport=t, base_url="http://svc.test") as c:
        r = await c.get("/x")
        assert r.status_code == 404 and not info_of(r).fallback
        with pytest.raises(ConfigurationError):
            await c.get("/x", extensions={"resilience": {"timeout": -1}})
    only = transport(refusing, fallback=Fallback(CACHED, on=CircuitBreakerOpenError))
    async with httpx.AsyncClient(transport=only, base_url="http://svc.test") as c:
        with pytest.raises(httpx.ConnectError):
            await c.get("/x")


async def test_a_failing_handler_raises_its_own_error_with_the_failure_as_context() -> None:
    def handler(request: httpx.Request, error: Exception) -> httpx.Response:
        raise LookupError("no cached copy")

    t = transport(refusing, fallback=handler, retry=RetryPolicy(max_attempts=1))
    async with httpx.AsyncClient(transport=t, base_url="http://svc.test") as c:
        with pytest.raises(LookupError) as info:
            await c.get("/x")
    assert isinstance(info.value.__context__, httpx.ConnectError)


async def test_per_request_override_sets_replaces_or_removes_the_fallback() -> None:
    t = transport(refusing, fallback=CACHED, retry=RetryPolicy(max_attempts=1))
    async with httpx.AsyncClient(transport=t, base_url="http://svc.test") as c:
        r = await c.get("/x", extensions={"resilience": {"fallback": httpx.Response(202)}})
        assert r.status_code == 202 and info_of(r).fallback
        with pytest.raises(httpx.ConnectError):
            await c.get("/x", extensions={"resilience": {"fallback": None}})
        with pytest.raises(ConfigurationError) as info:
            await c.get("/x", extensions={"resilience": {"fallback": 42}})
        assert "fallback" in str(info.value)
    bare = transport(refusing, retry=RetryPolicy(max_attempts=1))
    async with httpx.AsyncClient(transport=bare, base_url="http://svc.test") as c:
        r = await c.get("/x", extensions={"resilience": {"fallback": lambda req, err: CACHED}})
        assert r.json()["cached"] is True


class Tag(Middleware):
    """Marks every response it sees, to prove the fallback's goes through middlewares."""

    async def process_response(self, response: HTTPResponse, request: HTTPRequest) -> HTTPResponse:
        response.headers["x-tagged"] = "yes"
        return response


async def test_under_async_http_client_the_fallback_goes_through_middlewares() -> None:
    config = ClientConfig(retry_attempts=2, retry_backoff_factor=0.01, retry_jitter="none")
    async with AsyncHTTPClient(
        "http://svc.test", config=config, transport=httpx.MockTransport(refusing),
        fallback=CACHED, middlewares=[Tag()], clock=FakeClock(),
    ) as client:
        r = await client.get("/items")
        assert r.status_code == 200 and r.json()["cached"] is True
        assert r.headers["x-tagged"] == "yes"
        info = r.extensions["resilience"]
        assert info.fallback and info.fallback_error.startswith("RetryExhausted")
        r2 = await client.get("/items", extensions={"resilience": {"fallback": httpx.Response(204)}})
        assert r2.status_code == 204
    async with AsyncHTTPClient(
        "http://svc.test", config=config, transport=httpx.MockTransport(lambda r: httpx.Response(503)),
        fallback=CACHED, clock=FakeClock(),
    ) as client:
        served = await client.get("/items")  # exhausted 503: no RetryExhaustedHTTPStatusError
        assert served.json()["cached"] is True


async def test_a_handler_failing_on_a_given_up_response_closes_it_and_raises() -> None:
    """The last response is closed when the handler raises; its error reaches the caller."""
    given: list[httpx.Response] = []

    def handler(request: httpx.Request, error: Exception) -> httpx.Response:
        assert isinstance(error, RetryExhaustedError)
        given.append(error.last_response)
        raise LookupError("no cached copy")

    t = transport(lambda r: httpx.Response(503), fallback=handler)
    async with httpx.AsyncClient(transport=t, base_url="http://svc.test") as c:
        with pytest.raises(LookupError):
            await c.get("/x")
    assert given[0].is_closed


async def test_a_handler_may_return_an_http_response() -> None:
    """An HTTPResponse from the handler is served as its httpx.Response."""
    raw = httpx.Response(200, content=b"model", request=httpx.Request("GET", "http://svc.test/"))

    def handler(request: httpx.Request, error: Exception) -> HTTPResponse:
        return HTTPResponse.from_httpx(raw, None, 0.0)

    t = transport(refusing, fallback=handler, retry=RetryPolicy(max_attempts=1))
    async with httpx.AsyncClient(transport=t, base_url="http://svc.test") as c:
        r = await c.get("/x")
    assert r.content == b"model" and info_of(r).fallback_error == "ConnectError"


async def test_a_failing_handler_still_ends_the_request_with_one_request_finished() -> None:
    """Observers see exactly one RequestFinished, whether the handler answers or raises."""
    events: list[object] = []

    def handler(request: httpx.Request, error: Exception) -> httpx.Response:
        if request.url.path == "/raise":
            raise LookupError("no cached copy")
        return httpx.Response(200)

    bulkhead = Bulkhead(max_concurrent=1)
    await bulkhead.acquire()  # every request is refused before any path reports it
    t = transport(lambda r: httpx.Response(200), bulkhead=bulkhead, fallback=handler,
                  observers=[events.append])
    async with httpx.AsyncClient(transport=t, base_url="http://svc.test") as c:
        await c.get("/ok")
        with pytest.raises(LookupError):
            await c.get("/raise")
    finished = [e for e in events if isinstance(e, RequestFinished)]
    assert [(e.url.rsplit("/", 1)[1], e.error_type) for e in finished] == [
        ("ok", "BulkheadFullError"), ("raise", "LookupError")
    ]
