"""Unit tests of ResilientTransport's sync path (handle_request) over httpx.MockTransport.

Each stage of the pipeline is driven through ``httpx.Client`` with a fake
clock: retries and their sleeps, Retry-After, the budget, the deadline, the
bulkhead, the limiter, the breaker, the throttle, the fallback, the attempt
timeout, the body cap, replay rules, the request id, events, the testing
switch; and the ConfigurationErrors of the sync path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from httpx_resilience import (
    AdaptiveThrottle,
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitBreakerOpenError,
    ConfigurationError,
    Fallback,
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
from httpx_resilience.config import ClientConfig
from httpx_resilience.observe.events import AttemptStarted, RequestFinished, RetryScheduled
from httpx_resilience.testing import testing_mode
from httpx_resilience.testing.clock import FakeClock

from .test_transport_unit import Handler, sequence

QUICK = RetryPolicy(jitter="none", max_attempts=4)


def client(handler: Handler, clock: FakeClock | None = None, **kw: object) -> httpx.Client:
    kw.setdefault("retry", QUICK)
    transport = ResilientTransport(
        httpx.MockTransport(handler), clock=clock or FakeClock(), **kw  # type: ignore[arg-type]
    )
    return httpx.Client(transport=transport, base_url="http://svc.test")


def info(response: httpx.Response) -> ResilienceInfo:
    value = response.extensions["resilience"]
    assert isinstance(value, ResilienceInfo)
    return value


# -- the retry loop -------------------------------------------------------------------


def test_retries_503_then_succeeds_sleeping_on_the_clock() -> None:
    clock = FakeClock()
    handler, seen = sequence(503, 503, 200)
    with client(handler, clock) as c:
        response = c.get("/a")
    assert response.status_code == 200
    assert response.json() == {"n": 3}
    assert clock.sleeps == [1.0, 2.0]
    assert info(response).attempts == 3
    assert info(response).total_wait == 3.0
    ids = {r.headers["x-request-id"] for r in seen}
    assert len(ids) == 1 and info(response).request_id in ids


def test_caller_request_id_is_kept() -> None:
    handler, seen = sequence(200)
    with client(handler) as c:
        c.get("/a", headers={"X-Request-Id": "mine"})
    assert seen[0].headers["x-request-id"] == "mine"


def test_retry_after_is_honoured_and_a_last_retryable_response_is_exhausted() -> None:
    clock = FakeClock()
    handler, seen = sequence(429, headers={"Retry-After": "3"})
    with client(handler, clock, retry=RetryPolicy(jitter="none", max_attempts=2)) as c:
        response = c.get("/a")
    assert response.status_code == 429
    assert clock.sleeps == [3.0]
    assert info(response).exhausted and info(response).stop_reason == "attempts"
    assert info(response).retry_after == 3.0
    assert len(seen) == 2


def test_giving_up_on_a_connect_error_keeps_the_httpx_class() -> None:
    handler, seen = sequence(httpx.ConnectError("refused"))
    with client(handler) as c, pytest.raises(RetryExhaustedError) as caught:
        c.get("/a")
    assert isinstance(caught.value, httpx.ConnectError)
    assert caught.value.attempts == 4
    assert len(seen) == 4


def test_a_post_is_not_retried_after_a_read_error() -> None:
    handler, seen = sequence(httpx.ReadError("reset"), 200)
    with client(handler) as c, pytest.raises(httpx.ReadError):
        c.post("/a", content=b"x")
    assert len(seen) == 1


def test_the_retry_budget_stops_retries() -> None:
    from httpx_resilience import RetryBudget

    clock = FakeClock()
    budget = RetryBudget(ratio=0.0, min_per_second=0.0, clock=clock)
    handler, seen = sequence(503)
    with client(handler, clock, retry_budget=budget) as c:
        response = c.get("/a")
    assert info(response).stop_reason == "budget"
    assert len(seen) == 1


def test_the_total_deadline_stops_the_sleeps() -> None:
    clock = FakeClock()
    handler, seen = sequence(503)
    with client(handler, clock, total_timeout=2.5, timeout=1.0) as c:
        response = c.get("/a")
    assert info(response).stop_reason == "deadline"
    assert sum(clock.sleeps) < 2.5
    assert len(seen) == 2


def test_testing_switch_makes_waits_zero_and_caps_attempts() -> None:
    clock = FakeClock()
    handler, seen = sequence(503)
    with testing_mode(attempts=2), client(handler, clock) as c:
        response = c.get("/a")
    assert clock.sleeps == [0.0]
    assert len(seen) == 2
    assert response.status_code == 503


def test_events_are_reported_once_per_request() -> None:
    events: list[object] = []
    handler, _ = sequence(503, 200)
    with client(handler, observers=[events.append]) as c:
        c.get("/a")
    kinds = [type(e) for e in events]
    assert kinds.count(AttemptStarted) == 2
    assert kinds.count(RetryScheduled) == 1
    assert kinds.count(RequestFinished) == 1


def test_a_failed_request_reports_one_request_finished() -> None:
    events: list[object] = []
    handler, _ = sequence(httpx.ConnectError("refused"))
    retry = RetryPolicy(max_attempts=2)
    with client(handler, observers=[events.append], retry=retry) as c, pytest.raises(httpx.ConnectError):
        c.get("/a")
    finished = [e for e in events if isinstance(e, RequestFinished)]
    assert len(finished) == 1 and finished[0].outcome == "failure"


# -- replay rules ---------------------------------------------------------------------


class Consuming(httpx.BaseTransport):
    """Reads the request body as a socket would (without ``request.read()``), then answers."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses, self.bodies = statuses, list[bytes]()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        self.bodies.append(b"".join(request.stream))
        return httpx.Response(self.statuses[min(len(self.bodies), len(self.statuses)) - 1])


def test_a_read_generator_body_is_not_sent_again_empty() -> None:
    inner = Consuming([503, 200])

    def body() -> Iterator[bytes]:
        yield b"part"

    transport = ResilientTransport(inner, retry=QUICK, clock=FakeClock())
    with httpx.Client(transport=transport) as c, pytest.raises(RequestNotReplayableError):
        c.put("http://svc.test/a", content=body())
    assert inner.bodies == [b"part"]


def test_a_bytes_body_is_sent_again_whole() -> None:
    inner = Consuming([503, 200])
    transport = ResilientTransport(inner, retry=QUICK, clock=FakeClock())
    with httpx.Client(transport=transport) as c:
        assert c.put("http://svc.test/a", content=b"whole").status_code == 200
    assert inner.bodies == [b"whole", b"whole"]


def test_a_seekable_file_part_is_sent_whole_on_a_retry(tmp_path: object) -> None:
    import io

    handler, seen = sequence(503, 200)
    with client(handler) as c:
        response = c.put("/a", files={"f": ("f.txt", io.BytesIO(b"payload"))})
    assert response.status_code == 200
    assert all(b"payload" in r.content for r in seen)


# -- attempt timeout and the body cap --------------------------------------------------


class SlowStream(httpx.SyncByteStream):
    """A body in chunks, each after ``delay`` seconds."""

    def __init__(self, chunks: list[bytes], delay: float = 0.0) -> None:
        self.chunks, self.delay, self.closed = chunks, delay, False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            time.sleep(self.delay)
            yield chunk

    def close(self) -> None:
        self.closed = True


def test_the_body_is_read_inside_the_attempt_within_the_cap() -> None:
    stream = SlowStream([b"a" * 10, b"b" * 10])
    transport = ResilientTransport(
        httpx.MockTransport(lambda r: httpx.Response(200, stream=stream)),
        config=ClientConfig(max_response_bytes=15),
    )
    with httpx.Client(transport=transport) as c, pytest.raises(ResponseTooLargeError):
        c.get("http://svc.test/a")
    assert stream.closed


def test_a_body_read_whole_is_in_memory() -> None:
    stream = SlowStream([b"a" * 10, b"b" * 10])
    transport = ResilientTransport(httpx.MockTransport(lambda r: httpx.Response(200, stream=stream)))
    with httpx.Client(transport=transport) as c:
        response = c.get("http://svc.test/a")
    assert response.content == b"a" * 10 + b"b" * 10
    assert stream.closed


def test_a_slow_body_is_an_attempt_timeout_and_retried() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        delay = 0.06 if len(calls) == 1 else 0.0
        return httpx.Response(200, stream=SlowStream([b"x", b"y"], delay))

    transport = ResilientTransport(
        httpx.MockTransport(handler), timeout=0.05,
        retry=RetryPolicy(max_attempts=2, backoff_factor=0.001, jitter="none"),
    )
    with httpx.Client(transport=transport) as c:
        response = c.get("http://svc.test/a")
    assert response.content == b"xy"
    assert info(response).attempts == 2


def test_slow_headers_past_the_attempt_end_are_a_timeout() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        time.sleep(0.06)
        return httpx.Response(200)

    transport = ResilientTransport(
        httpx.MockTransport(handler), timeout=0.05, retry=RetryPolicy(max_attempts=1)
    )
    with httpx.Client(transport=transport) as c, pytest.raises(RequestTimeoutError) as caught:
        c.get("http://svc.test/a")
    assert caught.value.phase == "attempt"
    assert isinstance(caught.value, httpx.TimeoutException)


def test_phase_timeouts_are_clamped_to_the_attempt() -> None:
    seen: list[dict[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200)

    transport = ResilientTransport(httpx.MockTransport(handler), timeout=2.0)
    with httpx.Client(transport=transport, timeout=30.0) as c:
        c.get("http://svc.test/a")
    assert seen == [{"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}]


def test_a_marked_stream_is_left_unread() -> None:
    stream = SlowStream([b"a", b"b"])
    transport = ResilientTransport(httpx.MockTransport(lambda r: httpx.Response(200, stream=stream)))
    marked = {"resilience": {"stream": True}}
    with httpx.Client(transport=transport) as c, c.stream("GET", "http://svc.test/a", extensions=marked) as r:
        assert not stream.closed
        assert r.read() == b"ab"


# -- bulkhead, limiter, breaker, throttle, fallback ------------------------------------


def test_a_full_bulkhead_refuses_from_another_thread() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_queue=0)
    entered, release = threading.Event(), threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        entered.set()
        release.wait(5)
        return httpx.Response(200)

    with client(handler, bulkhead=bulkhead) as c:
        worker = threading.Thread(target=c.get, args=("/a",))
        worker.start()
        assert entered.wait(5)
        with pytest.raises(BulkheadFullError):
            c.get("/b")
        release.set()
        worker.join(5)
    assert bulkhead.in_flight == 0


def test_the_bulkhead_wait_ends_at_the_deadline() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_queue=1, max_wait=5.0)
    entered, release = threading.Event(), threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        entered.set()
        release.wait(5)
        return httpx.Response(200)

    transport = ResilientTransport(httpx.MockTransport(handler), bulkhead=bulkhead, total_timeout=0.05)
    with httpx.Client(transport=transport) as c:
        first = {"resilience": {"total_timeout": 10.0, "timeout": 10.0}}
        worker = threading.Thread(target=c.get, args=("http://svc.test/a",), kwargs={"extensions": first})
        worker.start()
        assert entered.wait(5)
        with pytest.raises(RequestTimeoutError) as caught:
            c.get("http://svc.test/b")
        release.set()
        worker.join(5)
    assert caught.value.phase == "total"


def test_every_attempt_takes_a_limiter_permit() -> None:
    clock = FakeClock()
    limiter = TokenBucketRateLimiter(rate=1.0, burst=2, clock=clock)
    handler, seen = sequence(503, 200)
    retry = RetryPolicy(max_attempts=2, backoff_factor=0.0, jitter="none")
    with client(handler, clock, rate_limiter=limiter, retry=retry) as c:
        c.get("/a")
    assert len(seen) == 2
    assert not limiter.try_acquire()  # both tokens of the burst went to the two attempts


def test_the_limiter_wait_ends_at_the_deadline() -> None:
    limiter = TokenBucketRateLimiter(rate=0.1, burst=1, max_wait=60.0)
    assert limiter.try_acquire()
    handler, seen = sequence(200)
    transport = ResilientTransport(httpx.MockTransport(handler), rate_limiter=limiter, total_timeout=0.05)
    with httpx.Client(transport=transport) as c, pytest.raises(RequestTimeoutError) as caught:
        c.get("http://svc.test/a")
    assert caught.value.phase == "total"
    assert seen == []


def test_an_open_breaker_sends_nothing() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=30.0, clock=clock)
    handler, seen = sequence(500)
    retry = RetryPolicy(max_attempts=1)
    with client(handler, clock, circuit_breaker=breaker, retry=retry) as c:
        c.get("/a")
        c.get("/a")
        with pytest.raises(CircuitBreakerOpenError) as caught:
            c.get("/a")
    assert isinstance(caught.value, httpx.TransportError)
    assert len(seen) == 2


def test_the_throttle_refuses_locally() -> None:
    from httpx_resilience import ThrottledError

    clock = FakeClock()
    throttle = AdaptiveThrottle(min_requests=1, max_probability=1.0, clock=clock, rng=_Always())
    handler, seen = sequence(503)
    retry = RetryPolicy(max_attempts=1)
    refused = 0
    with client(handler, clock, throttle=throttle, retry=retry) as c:
        for _ in range(5):
            before = len(seen)
            try:
                c.get("/a")
            except ThrottledError:
                refused += 1
                assert len(seen) == before  # nothing was sent
    assert refused >= 1 and len(seen) + refused == 5


class _Always:
    def random(self) -> float:
        return 0.0


def test_the_fallback_serves_a_failure() -> None:
    handler, _ = sequence(httpx.ConnectError("refused"))
    fallback = Fallback(lambda request, error: httpx.Response(200, text="cached"))
    with client(handler, fallback=fallback, retry=RetryPolicy(max_attempts=1)) as c:
        response = c.get("/a")
    assert response.text == "cached"
    assert info(response).fallback and info(response).fallback_error == "ConnectError"


def test_the_fallback_serves_an_exhausted_status() -> None:
    handler, _ = sequence(503)
    fallback = Fallback(httpx.Response(200, text="cached"), statuses=None)
    with client(handler, fallback=fallback, retry=RetryPolicy(max_attempts=2, backoff_factor=0.0)) as c:
        response = c.get("/a")
    assert response.text == "cached"
    assert info(response).fallback and info(response).fallback_error == "RetryExhaustedError"


def test_an_async_fallback_handler_is_refused_on_the_sync_path() -> None:
    async def handler_(request: httpx.Request, error: Exception) -> httpx.Response:
        import asyncio

        await asyncio.sleep(0)
        return httpx.Response(200)

    handler, _ = sequence(httpx.ConnectError("refused"))
    retry = RetryPolicy(max_attempts=1)
    with client(handler, fallback=Fallback(handler_), retry=retry) as c, pytest.raises(
        ConfigurationError, match="plain function"
    ):
        c.get("/a")


# -- configuration --------------------------------------------------------------------


def test_hedging_is_refused_at_the_first_sync_request() -> None:
    transport = ResilientTransport(httpx.MockTransport(lambda r: httpx.Response(200)),
                                   hedging=HedgingPolicy(delay=0.1))
    with httpx.Client(transport=transport) as c, pytest.raises(ConfigurationError, match="async path"):
        c.get("http://svc.test/a")


def test_hedging_asked_for_by_a_request_is_refused() -> None:
    handler, seen = sequence(200)
    with client(handler) as c, pytest.raises(ConfigurationError, match="hedging"):
        c.get("/a", extensions={"resilience": {"hedging": HedgingPolicy(delay=0.1)}})
    assert seen == []


def test_an_async_only_inner_is_refused_on_the_sync_path() -> None:
    class AsyncOnly(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200)

    transport = ResilientTransport(AsyncOnly())
    with httpx.Client(transport=transport) as c, pytest.raises(ConfigurationError, match="sync_transport"):
        c.get("http://svc.test/a")


class SyncOnly(httpx.BaseTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="sync")


def test_a_sync_only_inner_serves_the_sync_path() -> None:
    with httpx.Client(transport=ResilientTransport(SyncOnly())) as c:
        assert c.get("http://svc.test/a").text == "sync"


async def test_a_sync_only_inner_is_refused_on_the_async_path() -> None:
    transport = ResilientTransport(SyncOnly())
    async with httpx.AsyncClient(transport=transport) as ac:
        with pytest.raises(ConfigurationError, match=r"httpx\.AsyncBaseTransport"):
            await ac.get("http://svc.test/a")


def test_sync_transport_must_be_a_sync_transport() -> None:
    with pytest.raises(ConfigurationError, match="sync_transport"):
        ResilientTransport(sync_transport=object())  # type: ignore[arg-type]


def test_sync_transport_is_used_beside_an_async_inner() -> None:
    handler, seen = sequence(200)
    transport = ResilientTransport("httpx", sync_transport=httpx.MockTransport(handler))
    with httpx.Client(transport=transport) as c:
        assert c.get("http://svc.test/a").status_code == 200
    assert len(seen) == 1


def test_the_lazily_built_inner_takes_the_config() -> None:
    cfg = ClientConfig(max_connections=7, max_keepalive_connections=3, keepalive_expiry=2.0)
    transport = ResilientTransport(config=cfg)
    assert transport._sync.inner is None  # built at the first sync request
    with httpx.Client(transport=transport) as c, pytest.raises(httpx.ConnectError):
        c.get("http://127.0.0.1:1/", extensions={"resilience": {"retry": RetryPolicy(max_attempts=1)}})
    inner = transport._sync.inner
    assert isinstance(inner, httpx.HTTPTransport)
    pool = inner._pool
    assert (pool._max_connections, pool._max_keepalive_connections, pool._keepalive_expiry) == (7, 3, 2.0)
    transport.close()


def test_an_invalid_url_is_refused_before_anything() -> None:
    from httpx_resilience.exceptions import InvalidURLError

    handler, seen = sequence(200)
    with client(handler) as c, pytest.raises(InvalidURLError):
        c.get("http://svc.test:0/a")
    assert seen == []


@pytest.mark.parametrize("deadline", [None, 10.0])
def test_a_limiter_wait_is_slept_on_the_limiter_clock_and_counted(deadline: float | None) -> None:
    clock = FakeClock()
    limiter = TokenBucketRateLimiter(rate=2.0, burst=1, clock=clock)
    assert limiter.try_acquire()
    handler, seen = sequence(200)
    timeout = None if deadline is None else 5.0
    with client(handler, clock, rate_limiter=limiter, total_timeout=deadline, timeout=timeout) as c:
        response = c.get("/a")
    assert len(seen) == 1
    assert info(response).total_wait == pytest.approx(0.5)


def test_a_final_retry_after_pauses_the_limiter() -> None:
    clock = FakeClock()
    limiter = TokenBucketRateLimiter(rate=100.0, burst=5, clock=clock)
    handler, _ = sequence(429, headers={"Retry-After": "4"})
    with client(handler, clock, rate_limiter=limiter, retry=RetryPolicy(max_attempts=1)) as c:
        assert c.get("/a").status_code == 429
    assert not limiter.try_acquire()  # paused for the Retry-After


def test_no_time_left_before_an_attempt_is_the_deadline_error() -> None:
    clock = FakeClock()

    def handler(request: httpx.Request) -> httpx.Response:
        clock.advance(5.0)  # the attempt used up the deadline
        return httpx.Response(503)

    transport = ResilientTransport(
        httpx.MockTransport(handler), clock=clock, total_timeout=5.0, timeout=5.0,
        retry=RetryPolicy(max_attempts=3, backoff_factor=0.0, jitter="none"),
    )
    with httpx.Client(transport=transport) as c:
        response = c.get("http://svc.test/a")
    assert info(response).stop_reason == "deadline"


def test_the_throttle_counts_errors() -> None:
    clock = FakeClock()
    throttle = AdaptiveThrottle(min_requests=100, clock=clock)
    handler, _ = sequence(httpx.ConnectError("refused"))
    with client(handler, clock, throttle=throttle, retry=RetryPolicy(max_attempts=1)) as c, pytest.raises(
        httpx.ConnectError
    ):
        c.get("/a")
    assert throttle.counts("svc.test") == (1, 0)


def test_per_attempt_auth_signs_every_attempt() -> None:
    from httpx_resilience import BearerAuth

    tokens = iter(["t1", "t2", "t3"])
    auth = BearerAuth(lambda: next(tokens))
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["authorization"])
        return httpx.Response(503 if len(sent) == 1 else 200)

    with client(handler) as c:
        c.get("/a", auth=auth)
    assert sent == ["Bearer t1", "Bearer t2"]


def test_within_deadline_sync_rules() -> None:
    from httpx_resilience.pipeline._state import RequestState
    from httpx_resilience.pipeline._sync_attempt import within_deadline_sync

    s = RequestState(httpx.Request("GET", "http://svc.test/"), {}, QUICK, None, "svc.test", False,
                     0.0, None, 1.0, None)
    with pytest.raises(RequestTimeoutError, match="before the thing"):
        within_deadline_sync(lambda left: left, 0.0, s, "the thing")
    nested = RequestTimeoutError("inner deadline", phase="total")

    def raise_nested(left: float) -> float:
        raise nested

    with pytest.raises(RequestTimeoutError) as caught:
        within_deadline_sync(raise_nested, 1.0, s, "the thing")
    assert caught.value is nested
    assert within_deadline_sync(lambda left: left * 2, 1.5, s, "the thing") == 3.0


# -- observers from threads ------------------------------------------------------------


def test_prometheus_observer_counts_requests_from_threads() -> None:
    from prometheus_client import CollectorRegistry

    from httpx_resilience.observe.prometheus import PrometheusObserver

    registry = CollectorRegistry()
    observer = PrometheusObserver(registry=registry)
    gate = threading.Barrier(8)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    transport = ResilientTransport(httpx.MockTransport(handler), observers=[observer])
    with httpx.Client(transport=transport, base_url="http://svc.test") as c:

        def work() -> None:
            gate.wait(5)
            for _ in range(25):
                c.get("/a")

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    total = registry.get_sample_value(
        "httpx_resilience_requests_total",
        {"service": "svc.test", "method": "GET", "status_class": "2xx", "outcome": "success"},
    )
    assert total == 200
    assert registry.get_sample_value("httpx_resilience_requests_in_flight", {"service": "svc.test"}) == 0
    assert len(observer._tracker) == 0


def test_a_thread_abandons_only_its_own_requests() -> None:
    from httpx_resilience.observe.logging import RequestTracker

    abandoned: list[tuple[str, str]] = []
    tracker: RequestTracker[str] = RequestTracker(lambda state, reason: abandoned.append((state, reason)))
    tracker.start("mine", "main thread's")
    other = threading.Thread(target=lambda: (tracker.start("theirs", "other's"), tracker.abandon_current()))
    other.start()
    other.join(5)
    assert abandoned == [("other's", "abandoned")]
    assert tracker.get("mine") == "main thread's"
    assert tracker.current() == "main thread's"
    assert tracker.finish("mine") == "main thread's"
    assert len(tracker) == 0


def test_tracing_observer_keeps_each_thread_s_spans_apart() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from httpx_resilience.observe.otel import TracingObserver

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    gate = threading.Barrier(4)
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        rid = request.headers["x-request-id"]
        with lock:
            counts[rid] = counts.get(rid, 0) + 1
            n = counts[rid]
        time.sleep(0.001)
        return httpx.Response(503 if n == 1 else 200)

    retry = RetryPolicy(max_attempts=2, backoff_factor=0.0, jitter="none")
    transport = ResilientTransport(
        httpx.MockTransport(handler), observers=[TracingObserver(provider)], retry=retry,
        retry_budget=False,  # every request retries once
    )
    with httpx.Client(transport=transport, base_url="http://svc.test") as c:

        def work() -> None:
            gate.wait(5)
            for _ in range(10):
                assert c.get("/a").status_code == 200

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    spans = exporter.get_finished_spans()
    parents = {s.context.span_id: s for s in spans if s.parent is None}
    children = [s for s in spans if s.parent is not None]
    assert len(parents) == 40 and len(children) == 80
    per_parent: dict[int, int] = {}
    for child in children:
        assert child.parent is not None and child.parent.span_id in parents
        per_parent[child.parent.span_id] = per_parent.get(child.parent.span_id, 0) + 1
    assert set(per_parent.values()) == {2}  # each request's two attempts under its own span


def test_respx_intercepts_the_lazily_built_inner() -> None:
    import respx

    with respx.mock(assert_all_called=True) as mock:
        route = mock.get("https://api.test/items").mock(
            side_effect=[httpx.Response(503), httpx.Response(200, json={"ok": True})]
        )
        retry = RetryPolicy(max_attempts=2, backoff_factor=0.0, jitter="none")
        with httpx.Client(transport=ResilientTransport(retry=retry)) as c:
            response = c.get("https://api.test/items")
    assert response.json() == {"ok": True}
    assert route.call_count == 2
    assert info(response).attempts == 2


class Recording(httpx.BaseTransport):
    """A sync inner that records what the transport's lifecycle did to it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    def __enter__(self) -> Recording:
        self.calls.append("enter")
        return self

    def __exit__(self, *args: object) -> None:
        self.calls.append("exit")

    def close(self) -> None:
        self.calls.append("close")


def test_with_and_close_reach_the_sync_inner() -> None:
    inner = Recording()
    transport = ResilientTransport(sync_transport=inner)
    with httpx.Client(transport=transport) as c:
        assert c.get("http://svc.test/a").status_code == 200
    transport.close()
    assert inner.calls == ["enter", "exit", "close"]


def test_close_before_any_sync_request_builds_nothing() -> None:
    transport = ResilientTransport()
    with transport:
        pass
    transport.close()
    assert transport._sync.inner is None


def test_the_fallback_leaves_what_it_does_not_serve() -> None:
    handler, _ = sequence(200)
    fallback = Fallback(httpx.Response(299, text="cached"))
    with client(handler, fallback=fallback) as c:
        assert c.get("/a").status_code == 200  # a success is not the fallback's
    bad, _ = sequence(ValueError("a bug, not an outage"))
    with client(bad, fallback=fallback) as c, pytest.raises(ValueError, match="a bug"):
        c.get("/a")


def test_a_fallback_handler_that_raises_closes_the_last_response() -> None:
    stream = SlowStream([b"busy"])

    def boom(request: httpx.Request, error: Exception) -> httpx.Response:
        raise RuntimeError("handler failed")

    transport = ResilientTransport(
        httpx.MockTransport(lambda r: httpx.Response(503, stream=stream)),
        fallback=Fallback(boom, statuses={503}), retry=RetryPolicy(max_attempts=1),
    )
    with httpx.Client(transport=transport) as c, pytest.raises(RuntimeError, match="handler failed"):
        c.get("http://svc.test/a", extensions={"resilience": {"stream": True}})
    assert stream.closed


def test_an_async_def_fallback_handler_is_refused_before_it_runs() -> None:
    ran: list[bool] = []

    async def handler_(request: httpx.Request, error: Exception) -> httpx.Response:
        ran.append(True)
        return httpx.Response(200)

    class AsyncCall:
        async def __call__(self, request: httpx.Request, error: Exception) -> httpx.Response:
            ran.append(True)
            return httpx.Response(200)

    failing, _ = sequence(httpx.ConnectError("refused"))
    for h in (handler_, AsyncCall()):
        with client(failing, fallback=Fallback(h), retry=RetryPolicy(max_attempts=1)) as c, pytest.raises(
            ConfigurationError, match="plain function"
        ):
            c.get("/a")
    assert ran == []


def test_a_handler_returning_a_loop_bound_awaitable_is_refused() -> None:
    import asyncio

    def handler_(request: httpx.Request, error: Exception) -> object:
        return asyncio.sleep(0.01, httpx.Response(200))  # needs a running loop

    failing, _ = sequence(httpx.ConnectError("refused"))
    with client(failing, fallback=Fallback(handler_), retry=RetryPolicy(max_attempts=1)) as c, pytest.raises(
        ConfigurationError, match="plain function"
    ):
        c.get("/a")


def test_the_sync_attempt_timeout_reads_the_injected_clock() -> None:
    """An inner transport that takes 5 s on the transport's clock (a FakeClock moved by the
    handler, no real wait) overruns a 1 s attempt: the sync path times it on that clock."""
    from httpx_resilience import RequestTimeoutError, RetryPolicy

    clock = FakeClock()

    def slow(request: httpx.Request) -> httpx.Response:
        clock.advance(5.0)
        return httpx.Response(200, content=b"late")

    transport = ResilientTransport(
        httpx.MockTransport(slow), retry=RetryPolicy(max_attempts=1), timeout=1.0, clock=clock
    )
    with httpx.Client(transport=transport) as client, pytest.raises(RequestTimeoutError):
        client.get("http://example.test/slow")
