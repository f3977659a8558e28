"""The sync path of ResilientTransport over real sockets (ChaosServer), beside the async one.

Each behaviour runs twice, through the same ``ResilientTransport`` class:
``httpx.Client(transport=ResilientTransport(...))`` (``handle_request``, the
sync path) and ``httpx.AsyncClient(transport=ResilientTransport(...))``
(``handle_async_request``), so the two paths are proven to agree, with the
requests counted where they arrive. Behaviours only one path has (a sync
stream, hedging refused on the sync path) are tested on their own. Threads
sharing one breaker, limiter or bulkhead: ``test_sync_threads.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from httpx_resilience import (
    CircuitBreaker,
    CircuitBreakerOpenError,
    CircuitState,
    ClientConfig,
    ConfigurationError,
    HedgingPolicy,
    RequestNotReplayableError,
    RequestTimeoutError,
    ResilienceInfo,
    ResilientTransport,
    ResponseTooLargeError,
    RetryExhaustedError,
    RetryPolicy,
    TokenBucketRateLimiter,
)
from httpx_resilience.testing import ChaosServer, FakeClock, Fault
from httpx_resilience.testing.chaos import ONCE_HEADER

QUICK = RetryPolicy(max_attempts=3, backoff_factor=0.001, max_delay=0.01, jitter="none")
PATHS = ("sync", "async")


class Front:
    """One client over one transport: ``httpx.Client``, or ``httpx.AsyncClient`` driven on a
    loop of its own, so one test body proves both paths with the same calls."""

    def __init__(self, path: str, transport: ResilientTransport, base_url: str = "") -> None:
        self.path = path
        self.transport = transport
        self._loop: asyncio.AbstractEventLoop | None = None
        if path == "sync":
            self._sync = httpx.Client(transport=transport, base_url=base_url)
        else:
            self._loop = asyncio.new_event_loop()
            self._async = httpx.AsyncClient(transport=transport, base_url=base_url)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if self._loop is None:
            return self._sync.request(method, url, **kwargs)
        return self._loop.run_until_complete(self._async.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        if self._loop is None:
            self._sync.close()
            return
        self._loop.run_until_complete(self._async.aclose())
        self._loop.close()


@pytest.fixture(params=PATHS)
def front(request: pytest.FixtureRequest) -> Iterator[Callable[..., Front]]:
    """A factory of :class:`Front` for the parametrized path; every front closed afterwards."""
    made: list[Front] = []

    def make(transport: ResilientTransport, base_url: str = "") -> Front:
        f = Front(str(request.param), transport, base_url)
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()


def info_of(response: httpx.Response) -> ResilienceInfo:
    info = response.extensions["resilience"]
    assert isinstance(info, ResilienceInfo)
    return info


def closed_port() -> int:
    """A loopback port nobody listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def assert_sent_once(server: ChaosServer, path: str) -> None:
    """The server saw ``path`` once, and no once-only id twice."""
    assert server.count(path) == 1
    assert server.duplicates() == {}


# -- retries, counted at the server ---------------------------------------------------------


def test_503s_are_retried_with_one_request_id(chaos_server: ChaosServer, front: Callable[..., Front]) -> None:
    """503, 503, 200: three attempts upstream, one X-Request-Id on all of them."""
    chaos_server.route("/items", statuses=[503, 503, 200])
    r = front(ResilientTransport(retry=QUICK), chaos_server.url).get("/items")
    assert r.status_code == 200 and info_of(r).attempts == 3
    seen = chaos_server.requests("/items")
    assert len(seen) == chaos_server.count("/items") == 3
    assert {s.headers["x-request-id"] for s in seen} == {info_of(r).request_id}


def test_a_caller_request_id_is_kept(chaos_server: ChaosServer, front: Callable[..., Front]) -> None:
    """A caller's own X-Request-Id goes unchanged on every attempt; two calls, two ids."""
    chaos_server.route("/rid", statuses=[502, 200])
    chaos_server.route("/two", statuses=[502, 200, 502, 200])
    f = front(ResilientTransport(retry=QUICK), chaos_server.url)
    f.get("/rid", headers={"X-Request-Id": "caller-42"})
    f.get("/two")
    f.get("/two")
    assert [s.headers["x-request-id"] for s in chaos_server.requests("/rid")] == ["caller-42"] * 2
    ids = [s.headers["x-request-id"] for s in chaos_server.requests("/two")]
    assert ids[0] == ids[1] != ids[2] == ids[3]


@pytest.mark.parametrize(
    "fault",
    [Fault(reset="before_headers"), Fault(reset="after_headers"), Fault(truncate=True)],
    ids=["reset-before-headers", "reset-after-headers", "truncated-body"],
)
def test_resets_and_cut_bodies_are_retried_for_get(
    chaos_server: ChaosServer, front: Callable[..., Front], fault: Fault
) -> None:
    """A reset or a body cut short is a retryable failure for GET; the body read is in the attempt."""
    chaos_server.route("/f", steps=[fault, Fault(body={"fine": True})])
    r = front(ResilientTransport(retry=QUICK), chaos_server.url).get("/f")
    assert r.json() == {"fine": True} and chaos_server.count("/f") == 2
    assert info_of(r).attempts == 2


def test_retry_after_is_waited_as_asked(chaos_server: ChaosServer, front: Callable[..., Front]) -> None:
    """429 Retry-After: 2, then 503 Retry-After: 3: the injected clock slept exactly those."""
    chaos_server.route("/ra", steps=[Fault(status=429, retry_after=2), Fault(status=503, retry_after=3), Fault()])
    clock = FakeClock()
    transport = ResilientTransport(retry=RetryPolicy(jitter="none", max_delay=30.0), clock=clock)
    r = front(transport, chaos_server.url).get("/ra")
    assert r.status_code == 200 and chaos_server.count("/ra") == 3
    assert clock.sleeps == [2.0, 3.0]


def test_a_retry_after_beyond_max_delay_ends_the_retries(
    chaos_server: ChaosServer, front: Callable[..., Front]
) -> None:
    """Retry-After: 3600 with max_delay 30: no sleep, one request, the 429 comes back at once."""
    chaos_server.route("/limited", status=429, retry_after=3600)
    clock = FakeClock()
    transport = ResilientTransport(retry=RetryPolicy(max_delay=30.0), clock=clock)
    r = front(transport, chaos_server.url).get("/limited")
    assert r.status_code == 429 and chaos_server.count("/limited") == 1
    assert info_of(r).stop_reason == "retry_after_too_long" and clock.sleeps == []


# -- POST: never twice unless safe ----------------------------------------------------------


@pytest.mark.parametrize("fault", [Fault(status=503), Fault(reset="before_headers")], ids=["503", "reset"])
def test_a_post_that_reached_the_server_is_not_sent_again(
    chaos_server: ChaosServer, front: Callable[..., Front], fault: Fault
) -> None:
    """No Idempotency-Key: a POST the server may have acted on goes once (once-only id checked)."""
    chaos_server.route("/pay", steps=[fault, Fault()])
    f = front(ResilientTransport(retry=QUICK), chaos_server.url)
    headers = {ONCE_HEADER: str(uuid.uuid4())}
    if fault.status == 503:
        assert f.post("/pay", json={"amount": 5}, headers=headers).status_code == 503
    else:
        with pytest.raises(httpx.TransportError):
            f.post("/pay", json={"amount": 5}, headers=headers)
    assert_sent_once(chaos_server, "/pay")


def test_an_idempotency_key_makes_a_post_retryable(
    chaos_server: ChaosServer, front: Callable[..., Front]
) -> None:
    """With Idempotency-Key the POST is resent: same key, same body, on every attempt."""
    chaos_server.route("/pay2", steps=[Fault(reset="before_headers"), Fault(status=503), Fault()])
    f = front(ResilientTransport(retry=QUICK), chaos_server.url)
    r = f.post("/pay2", json={"amount": 5}, headers={"Idempotency-Key": "idem-1"})
    assert r.status_code == 200
    seen = chaos_server.requests("/pay2")
    assert [s.headers["idempotency-key"] for s in seen] == ["idem-1"] * 3
    assert all(s.json() == {"amount": 5} for s in seen)


def test_a_post_that_never_left_is_retried(front: Callable[..., Front]) -> None:
    """Connection refused: nothing was sent, so even a POST is retried; the error stays httpx's."""
    f = front(ResilientTransport(retry=QUICK))
    with pytest.raises(RetryExhaustedError) as info:
        f.post(f"http://127.0.0.1:{closed_port()}/x", json={})
    assert isinstance(info.value, httpx.ConnectError) and info.value.attempts == 3


# -- timeouts: bounded without cancellation -------------------------------------------------


def test_a_hanging_attempt_times_out_and_the_retry_succeeds(
    chaos_server: ChaosServer, front: Callable[..., Front]
) -> None:
    """A hung first attempt ends at the attempt timeout; the retry answers. Bounded overrun."""
    chaos_server.route("/slow", steps=[Fault(hang=True), Fault()])
    timeout = 0.4
    f = front(ResilientTransport(retry=QUICK, timeout=timeout), chaos_server.url)
    t0 = time.perf_counter()
    r = f.get("/slow")
    took = time.perf_counter() - t0
    assert r.status_code == 200 and info_of(r).attempts == 2 == chaos_server.count("/slow")
    assert took / timeout < 2.0  # one attempt timeout, then a quick answer


def test_the_total_deadline_ends_the_request(chaos_server: ChaosServer, front: Callable[..., Front]) -> None:
    """Every attempt hangs: the total deadline ends the request, attempts shrunk to fit it."""
    chaos_server.route("/hang", hang=True)
    total = 1.0
    transport = ResilientTransport(retry=RetryPolicy(max_attempts=10, backoff_factor=0.01), timeout=0.4,
                                   total_timeout=total)
    f = front(transport, chaos_server.url)
    t0 = time.perf_counter()
    with pytest.raises(RequestTimeoutError) as info:
        f.get("/hang")
    took = time.perf_counter() - t0
    assert info.value.phase == "total" and isinstance(info.value, httpx.TimeoutException)
    assert 2 <= chaos_server.count("/hang") <= 4
    assert 0.95 <= took / total <= 1.3, took  # the deadline, overrun bounded


def test_a_dripping_body_counts_against_the_attempt_timeout(
    chaos_server: ChaosServer, front: Callable[..., Front]
) -> None:
    """Each chunk arrives well within a read timeout, the whole body does not within the
    attempt's: the attempt fails (the body is read inside it) and the retry answers."""
    chaos_server.route("/drip", steps=[Fault(drip=0.1, body_size=400, drip_chunk=10), Fault()])
    transport = ResilientTransport(retry=QUICK, timeout=0.5)
    r = front(transport, chaos_server.url).get("/drip")
    assert r.status_code == 200 and info_of(r).attempts == 2 == chaos_server.count("/drip")


def test_the_deadline_ends_a_dripping_body(chaos_server: ChaosServer, front: Callable[..., Front]) -> None:
    """A body that would take 10 s, a chunk every 50 ms (no single read ever times out): the
    deadline of 1 s (attempt and total) still ends the request, within a bounded overrun."""
    chaos_server.route("/drip", drip=0.05, body_size=2000, drip_chunk=10)
    total = 1.0
    transport = ResilientTransport(retry=QUICK, timeout=total, total_timeout=total)
    f = front(transport, chaos_server.url)
    t0 = time.perf_counter()
    with pytest.raises(RequestTimeoutError):
        f.get("/drip")
    took = time.perf_counter() - t0
    assert 0.95 <= took / total <= 1.3, took
    assert chaos_server.count("/drip") == 1


def test_a_timeout_keeps_its_httpx_class(chaos_server: ChaosServer, front: Callable[..., Front]) -> None:
    """The last attempt timed out: the error is an httpx timeout, a RequestTimeoutError and a
    RetryExhaustedError at once, with the attempts counted at the server. On the sync path it
    is always httpx.ReadTimeout (the read timeout is the attempt timeout, clamped); on the async
    path the cancellation scope may end the attempt a hair before httpx's read timeout does
    (a loaded machine), and the class is then httpx.TimeoutException itself."""
    chaos_server.route("/h", hang=True)
    transport = ResilientTransport(retry=RetryPolicy(max_attempts=2, backoff_factor=0.001), timeout=0.2)
    f = front(transport, chaos_server.url)
    expected = httpx.ReadTimeout if f.path == "sync" else httpx.TimeoutException
    with pytest.raises(expected) as info:
        f.get("/h")
    err = info.value
    assert isinstance(err, RetryExhaustedError) and isinstance(err, RequestTimeoutError)
    assert err.attempts == 2 == chaos_server.count("/h")


# -- breaker, limiter -----------------------------------------------------------------------


def test_the_breaker_opens_and_refuses_without_sending(
    chaos_server: ChaosServer, front: Callable[..., Front]
) -> None:
    """Three 503s open it; refused calls send nothing; after the cooldown one probe closes it."""
    chaos_server.route("/svc", status=503)
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=30.0, clock=clock)
    transport = ResilientTransport(retry=RetryPolicy(max_attempts=1), circuit_breaker=breaker, clock=clock)
    f = front(transport, chaos_server.url)
    for _ in range(3):
        assert f.get("/svc").status_code == 503
    assert breaker.state is CircuitState.OPEN
    for _ in range(5):
        with pytest.raises(CircuitBreakerOpenError) as info:
            f.get("/svc")
        assert isinstance(info.value, httpx.TransportError)
    assert chaos_server.count("/svc") == 3
    chaos_server.route("/svc", status=200)
    clock.advance(31.0)
    assert f.get("/svc").status_code == 200
    assert chaos_server.count("/svc") == 4 and breaker.state is CircuitState.CLOSED  # 3 + the probe


def test_the_limiter_paces_requests_at_the_server(
    chaos_server: ChaosServer, front: Callable[..., Front]
) -> None:
    """rate=25/s, burst=1: 16 requests take at least 15 intervals, as the server saw them arrive."""
    chaos_server.route("/paced")
    rate = 25.0
    limiter = TokenBucketRateLimiter(rate=rate, burst=1)
    f = front(ResilientTransport(rate_limiter=limiter), chaos_server.url)
    for _ in range(16):
        f.get("/paced")
    stamps = sorted(r.at for r in chaos_server.requests("/paced"))
    assert len(stamps) == 16
    span = stamps[-1] - stamps[0]
    assert span * rate / 15 >= 0.95  # never faster than the rate


# -- logs, caps, bodies ---------------------------------------------------------------------


def test_a_query_secret_never_reaches_the_logs(
    chaos_server: ChaosServer, front: Callable[..., Front], caplog: pytest.LogCaptureFixture
) -> None:
    """A retry is logged (our logger and httpx's); the api_key in the query string is not."""
    chaos_server.route("/x", statuses=[503, 200])
    with caplog.at_level(logging.DEBUG):
        r = front(ResilientTransport(retry=QUICK), chaos_server.url).get(
            "/x", params={"api_key": "TOPSECRET", "q": "ok"}
        )
    assert r.status_code == 200 and chaos_server.requests("/x")[0].query.count("TOPSECRET") == 1
    assert any(rec.name.startswith("httpx_resilience") for rec in caplog.records)
    assert "TOPSECRET" not in caplog.text and "api_key=" in caplog.text


def test_max_response_bytes_caps_the_body(chaos_server: ChaosServer, front: Callable[..., Front]) -> None:
    """A 2 MB body over a 1 MiB cap: ResponseTooLargeError, not retried."""
    chaos_server.route("/big", body_size=2_000_000)
    transport = ResilientTransport(retry=QUICK, config=ClientConfig(max_response_bytes=1 << 20))
    with pytest.raises(ResponseTooLargeError):
        front(transport, chaos_server.url).get("/big")
    assert chaos_server.count("/big") == 1


DATA = b"0123456789abcdef" * 4096  # 64 KiB


def chunks() -> Iterator[bytes]:
    for i in range(0, len(DATA), 8192):
        yield DATA[i : i + 8192]


async def achunks() -> AsyncIterator[bytes]:
    for chunk in chunks():
        yield chunk


def test_a_streamed_body_is_never_resent_empty(chaos_server: ChaosServer, front: Callable[..., Front]) -> None:
    """A PUT from a generator (a SyncByteStream on the sync path): 503 with a retry due gives
    RequestNotReplayableError; the server got the body once, whole."""
    chaos_server.route("/up", statuses=[503, 200])
    f = front(ResilientTransport(retry=QUICK), chaos_server.url)
    content = chunks() if f.path == "sync" else achunks()
    with pytest.raises(RequestNotReplayableError):
        f.request("PUT", "/up", content=content)
    seen = chaos_server.requests("/up")
    assert chaos_server.count("/up") == 1 and seen[0].body == DATA


# -- hedging, fallback, throttle, the testing switch ----------------------------------------


def test_hedging_is_refused_on_the_sync_path_only(chaos_server: ChaosServer) -> None:
    """The same transport: a sync request raises ConfigurationError naming hedging and sends
    nothing; under httpx.AsyncClient it hedges."""
    chaos_server.route("/h", steps=[Fault(latency=1.0), Fault()])
    transport = ResilientTransport(hedging=HedgingPolicy(0.05), retry=QUICK)
    sync = httpx.Client(transport=transport)  # not closed before the async use below
    with pytest.raises(ConfigurationError, match="hedging"):
        sync.get(chaos_server.url_for("/h"))
    assert chaos_server.count("/h") == 0

    async def hedged() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.get(chaos_server.url_for("/h"))

    r = asyncio.run(hedged())
    sync.close()
    assert r.status_code == 200 and info_of(r).hedges == 1


def test_the_fallback_answers_a_failed_request(front: Callable[..., Front]) -> None:
    """Three refused connections, then the fallback's response, with the failure recorded."""
    served: list[Exception] = []

    def handler(request: httpx.Request, error: Exception) -> httpx.Response:
        served.append(error)
        return httpx.Response(200, json={"from": "fallback"})

    f = front(ResilientTransport(retry=QUICK, fallback=handler))
    r = f.get(f"http://127.0.0.1:{closed_port()}/items")
    assert r.json() == {"from": "fallback"} and info_of(r).fallback
    assert isinstance(served[0], RetryExhaustedError) and isinstance(served[0], httpx.ConnectError)
    assert info_of(r).attempts == 3


def test_an_awaiting_fallback_handler_is_refused_on_the_sync_path() -> None:
    """An ``async def`` handler that awaits cannot run under httpx.Client: a ConfigurationError
    naming fallback, not whatever the coroutine raised without a loop."""

    async def handler(request: httpx.Request, error: Exception) -> httpx.Response:
        await asyncio.sleep(0.01)  # anything that needs the running loop, as a cache read would
        return httpx.Response(200)

    transport = ResilientTransport(retry=RetryPolicy(max_attempts=1), fallback=handler)
    with httpx.Client(transport=transport) as client, pytest.raises(ConfigurationError, match="fallback"):
        client.get(f"http://127.0.0.1:{closed_port()}/items")


def test_the_throttle_keeps_most_requests_home_in_an_outage(
    chaos_server: ChaosServer, front: Callable[..., Front]
) -> None:
    """A full 503 outage: once the window is full, most first attempts never leave."""
    import random

    from httpx_resilience import AdaptiveThrottle, ThrottledError

    chaos_server.route("/api", status=503)
    clock = FakeClock()
    throttle = AdaptiveThrottle(window=10.0, buckets=10, min_requests=10, clock=clock, rng=random.Random(11))
    f = front(ResilientTransport(retry=RetryPolicy(max_attempts=1), throttle=throttle), chaos_server.url)
    refused = 0
    for i in range(400):
        if i == 200:
            before = chaos_server.count("/api")
        try:
            f.get("/api")
        except ThrottledError:
            refused += i >= 200
        clock.advance(0.05)
    sent = chaos_server.count("/api") - before
    assert refused + sent == 200 and sent <= 40


class CountingClock:
    """The real clock, recording every sleep it is asked for (sync and async)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(seconds)

    def sleep_sync(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        time.sleep(seconds)


def test_the_testing_switch_caps_attempts_and_waits(
    chaos_server: ChaosServer, front: Callable[..., Front]
) -> None:
    """Backoff of 10 s, 20 s…: under testing_mode(attempts=2) two attempts, no wait asked."""
    from httpx_resilience.testing import testing_mode

    chaos_server.route("/down", status=503)
    clock = CountingClock()
    slow = RetryPolicy(max_attempts=5, backoff_factor=10.0, jitter="none", max_delay=60.0)
    f = front(ResilientTransport(retry=slow, clock=clock), chaos_server.url)  # type: ignore[arg-type]
    with testing_mode(attempts=2):
        r = f.get("/down")
    assert r.status_code == 503 and chaos_server.count("/down") == 2
    assert all(s == 0 for s in clock.sleeps), clock.sleeps


# -- the generic helpers on plain functions, live -------------------------------------------


@pytest.mark.parametrize("stack", ["httpx", "requests"])
def test_with_api_retry_on_a_plain_function(chaos_server: ChaosServer, stack: str) -> None:
    """@with_api_retry on a plain def around httpx.Client or requests: a 503's Retry-After is
    slept on the injected clock, the call stays sync, the server counts both attempts; when
    every attempt fails the status error itself comes out, with the attempt count as a note."""
    from httpx_resilience import with_api_retry

    chaos_server.route("/api", steps=[Fault(status=503, retry_after="3"), Fault()])
    chaos_server.route("/always", status=502)
    clock = FakeClock()
    stack_closer = contextlib.ExitStack()
    if stack == "httpx":
        client = stack_closer.enter_context(httpx.Client(base_url=chaos_server.url))
        status_error: type[Exception] = httpx.HTTPStatusError

        def get(path: str) -> int:
            r = client.get(path)
            r.raise_for_status()
            return r.status_code
    else:
        requests = pytest.importorskip("requests")
        session = stack_closer.enter_context(requests.Session())
        status_error = requests.HTTPError

        def get(path: str) -> int:
            r = session.get(chaos_server.url_for(path), timeout=5)
            r.raise_for_status()
            return int(r.status_code)

    fetch = with_api_retry(max_attempts=3, clock=clock)(get)
    with stack_closer:
        assert fetch("/api") == 200 and clock.sleeps == [3.0]
        assert chaos_server.count("/api") == 2
        with pytest.raises(status_error) as info:
            fetch("/always")
    assert chaos_server.count("/always") == 3
    assert "gave up after 3 attempt(s)" in info.value.__notes__[0]
