"""AdaptiveThrottle: the SRE book's formula, the sliding window, per host, a seeded random source;
and the throttle inside ResilientTransport over httpx.MockTransport and a fake clock."""

from __future__ import annotations

import contextlib
import random

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from httpx_resilience import (
    CircuitBreakerOpenError,
    ConfigurationError,
    RateLimiterTimeout,
    ResponseTooLargeError,
)
from httpx_resilience.observe.events import RequestFinished
from httpx_resilience.pipeline import ResilientTransport
from httpx_resilience.policies.retry import RetryPolicy
from httpx_resilience.policies.throttle import (
    AdaptiveThrottle,
    ThrottledError,
    ThrottleRejected,
)
from httpx_resilience.testing.clock import FakeClock


def exact(clock: FakeClock, **kw: object) -> AdaptiveThrottle:
    """The book's exact formula: no floor of requests, no cap."""
    kw.setdefault("window", 10.0)
    kw.setdefault("buckets", 10)
    return AdaptiveThrottle(min_requests=0, max_probability=1.0, clock=clock, **kw)  # type: ignore[arg-type]


def feed(t: AdaptiveThrottle, key: str, requests: int, accepts: int) -> None:
    for i in range(requests):
        t.record(key, i < accepts)


@pytest.mark.parametrize(
    ("requests", "accepts", "k", "expected"),
    [
        (0, 0, 2.0, 0.0),
        (10, 10, 2.0, 0.0),  # all accepted: never refuse
        (10, 5, 2.0, 0.0),  # half rejected: k=2 still tolerates it
        (10, 4, 2.0, 2 / 11),  # (10 - 8) / 11
        (10, 0, 2.0, 10 / 11),
        (100, 0, 2.0, 100 / 101),
        (10, 4, 1.0, 6 / 11),  # k=1: every rejection counts
        (10, 4, 3.0, 0.0),
    ],
)
def test_probability_is_the_sre_formula(requests: int, accepts: int, k: float, expected: float) -> None:
    """p = max(0, (requests − k·accepts) / (requests + 1))."""
    t = exact(FakeClock(), k=k)
    feed(t, "h", requests, accepts)
    assert t.counts("h") == (requests, accepts)
    assert t.probability("h") == pytest.approx(expected)


def test_cap_and_floor_of_requests() -> None:
    """max_probability caps p; below min_requests nothing is refused."""
    clock = FakeClock()
    capped = AdaptiveThrottle(min_requests=0, max_probability=0.5, clock=clock)
    feed(capped, "h", 50, 0)
    assert capped.probability("h") == 0.5
    floor = AdaptiveThrottle(min_requests=20, max_probability=1.0, clock=clock)
    feed(floor, "h", 19, 0)
    assert floor.probability("h") == 0.0
    floor.record("h", False)
    assert floor.probability("h") == pytest.approx(20 / 21)


def test_counts_slide_out_of_the_window() -> None:
    """Rejections age out bucket by bucket: p falls back to 0 by itself."""
    clock = FakeClock()
    t = exact(clock)  # 10 s window, 1 s buckets
    feed(t, "h", 10, 0)
    p0 = t.probability("h")
    clock.advance(5.0)
    feed(t, "h", 10, 10)  # recovered: 10 accepted
    assert t.counts("h") == (20, 10)
    assert t.probability("h") == 0.0  # (20 - 20) / 21
    clock.advance(5.5)  # the first ten left the window
    assert t.counts("h") == (10, 10)
    clock.advance(20.0)  # everything left it
    assert t.counts("h") == (0, 0)
    assert p0 == pytest.approx(10 / 11)


def test_partial_slide_keeps_the_recent_buckets() -> None:
    """Only the buckets older than the window are dropped."""
    clock = FakeClock(start=0.0)
    t = exact(clock)
    for _ in range(10):
        feed(t, "h", 1, 0)
        clock.advance(1.0)
    assert t.counts("h")[0] == 9  # the first second's request is gone
    clock.advance(3.0)
    assert t.counts("h")[0] == 6


def test_each_host_has_its_own_counts() -> None:
    """A failing host is throttled; another, healthy, is not."""
    t = exact(FakeClock())
    feed(t, "down:80", 30, 0)
    feed(t, "up:80", 30, 30)
    assert t.probability("down:80") > 0.9
    assert t.probability("up:80") == 0.0
    assert t.counts("new:80") == (0, 0)


def test_hosts_are_bounded_least_recently_used_first() -> None:
    """Past max_keys the least recently used host is forgotten."""
    t = AdaptiveThrottle(max_keys=2, min_requests=0, clock=FakeClock())
    t.record("a", False)
    t.record("b", False)
    t.record("a", False)  # a is now the most recent
    t.record("c", False)  # b goes
    assert t.counts("a") == (2, 0)
    assert t.counts("b") == (0, 0)


def test_admit_with_a_seeded_random_source_replays_exactly() -> None:
    """Two throttles with the same seed refuse the same attempts; about p of them."""

    def run(seed: int) -> list[float]:
        t = exact(FakeClock(), rng=random.Random(seed))
        feed(t, "h", 100, 0)
        return [t.admit("h") for _ in range(200)]

    first, again = run(7), run(7)
    assert first == again
    refused = sum(1 for p in first if p > 0)
    assert 170 <= refused <= 200  # p ≈ 0.99 and climbing as refusals count


def test_a_refusal_counts_as_a_request_an_admission_does_not() -> None:
    """Refused attempts count at once; admitted ones when they end (record)."""
    t = exact(FakeClock(), rng=random.Random(1))
    feed(t, "h", 10, 0)
    before = t.counts("h")
    results = [t.admit("h") for _ in range(20)]
    refused = sum(1 for p in results if p > 0)
    assert t.counts("h") == (before[0] + refused, 0)
    healthy = exact(FakeClock())
    assert healthy.admit("h") == 0.0 and healthy.counts("h") == (0, 0)


def test_what_counts_as_accepted() -> None:
    """429/5xx and transport failures are rejections; other answers accepts; local refusals nothing."""
    t = exact(FakeClock())
    t.record_status("h", 200)
    t.record_status("h", 404)
    t.record_status("h", 429)
    t.record_status("h", 503)
    assert t.counts("h") == (4, 2)
    t.record_error("h", httpx.ConnectError("refused"))
    t.record_error("h", httpx.ReadTimeout("slow"))
    assert t.counts("h") == (6, 2)
    t.record_error("h", ResponseTooLargeError("big", limit=1, received=2))  # the upstream answered
    assert t.counts("h") == (7, 3)
    t.record_error("h", CircuitBreakerOpenError("h", 1.0))
    t.record_error("h", RateLimiterTimeout("busy"))
    t.record_error("h", ThrottledError("h", 0.5, 10, 0))
    assert t.counts("h") == (7, 3)
    custom = exact(FakeClock(), reject_statuses={503})
    custom.record_status("h", 500)
    assert custom.counts("h") == (1, 1)


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"k": 0.5}, "k"),
        ({"window": 0}, "window"),
        ({"buckets": 0}, "buckets"),
        ({"min_requests": -1}, "min_requests"),
        ({"max_probability": 1.5}, "max_probability"),
        ({"reject_statuses": [700]}, "reject_statuses"),
        ({"reject_statuses": "503"}, "reject_statuses"),
        ({"rng": 42}, "rng"),
    ],
)
def test_bad_settings_name_the_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        AdaptiveThrottle(**kw)  # type: ignore[arg-type]
    assert info.value.field == field


def test_the_error_says_what_happened_and_what_to_do() -> None:
    """ThrottledError: an httpx.TransportError naming host, counts and probability."""
    err = ThrottledError("api:443", 0.9, 40, 2, attempt=2, window=10.0)
    assert isinstance(err, httpx.TransportError)
    text = str(err)
    assert "api:443" in text and "2 of the last 40" in text and "90%" in text
    assert "retry (attempt 2)" in text and "fallback" in text
    assert "AdaptiveThrottle(k=2" in repr(AdaptiveThrottle())


# -- inside the pipeline ------------------------------------------------------------------


def outage_transport(
    clock: FakeClock, throttle: AdaptiveThrottle, status: int = 503, **kw: object
) -> tuple[httpx.AsyncClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status)

    kw.setdefault("retry", RetryPolicy(max_attempts=1))
    transport = ResilientTransport(
        httpx.MockTransport(handler), clock=clock, throttle=throttle, **kw  # type: ignore[arg-type]
    )
    return httpx.AsyncClient(transport=transport, base_url="http://svc.test"), seen


async def test_during_an_outage_most_first_attempts_are_not_sent() -> None:
    """With every answer a 503, the throttle refuses most requests before sending."""
    clock = FakeClock()
    throttle = exact(clock, rng=random.Random(3))
    client, seen = outage_transport(clock, throttle)
    refused = 0
    async with client:
        for _ in range(200):
            try:
                await client.get("/x")
            except ThrottledError as exc:
                refused += 1
                assert exc.host == "svc.test" and exc.attempt == 1
    assert refused + len(seen) == 200
    assert len(seen) < 40  # most first attempts never left
    assert throttle.counts("svc.test") == (200, 0)


async def test_recovery_after_the_window_slides() -> None:
    """When the upstream is back, the throttle lets traffic back by itself."""
    clock = FakeClock()
    throttle = AdaptiveThrottle(window=10.0, buckets=10, clock=clock, rng=random.Random(5))
    status = {"code": 503}
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(status["code"])
        return httpx.Response(status["code"])

    transport = ResilientTransport(
        httpx.MockTransport(handler), clock=clock, throttle=throttle,
        retry=RetryPolicy(max_attempts=1),
    )

    async def burst(n: int) -> int:
        ok = 0
        async with httpx.AsyncClient(transport=transport, base_url="http://svc.test") as c:
            for _ in range(n):
                with contextlib.suppress(ThrottledError):
                    ok += (await c.get("/x")).status_code == 200
                clock.advance(0.05)
        return ok

    await burst(200)  # 10 s of outage
    assert throttle.probability("svc.test") == pytest.approx(0.9)  # the default cap
    status["code"] = 200
    await burst(400)  # 20 s after the recovery
    assert throttle.probability("svc.test") == 0.0
    assert await burst(20) == 20


async def test_retries_are_attempts_too_and_a_refused_retry_is_chained() -> None:
    """A retry consults the throttle; its refusal is chained to the failure before it."""
    clock = FakeClock()
    throttle = exact(clock, rng=random.Random(0))
    feed(throttle, "svc.test", 30, 0)
    throttle.probability("svc.test")
    seen: list[httpx.Request] = []
    results: list[BaseException] = []
    events: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        raise httpx.ConnectError("refused")

    transport = ResilientTransport(
        httpx.MockTransport(handler), clock=clock, throttle=throttle,
        retry=RetryPolicy(max_attempts=5, jitter="none"), retry_budget=False,
        observers=[events.append],
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://svc.test") as c:
        for _ in range(20):
            with pytest.raises(httpx.TransportError) as info:
                await c.get("/x")
            results.append(info.value)
    retries_refused = [e for e in results if isinstance(e, ThrottledError) and e.attempt > 1]
    assert retries_refused, "some retries were refused"
    assert all(isinstance(e.__cause__, httpx.ConnectError) for e in retries_refused)
    rejected = [e for e in events if isinstance(e, ThrottleRejected)]
    assert len(rejected) == sum(isinstance(e, ThrottledError) for e in results)
    finished = [e for e in events if isinstance(e, RequestFinished)]
    assert len(finished) == 20  # one per request, whatever path it left by


def test_a_throttle_that_is_not_one_is_refused() -> None:
    """throttle= takes an AdaptiveThrottle or None: anything else names the field."""
    with pytest.raises(ConfigurationError) as info:
        ResilientTransport(httpx.MockTransport(lambda r: httpx.Response(200)), throttle=object())  # type: ignore[arg-type]
    assert info.value.field == "throttle"


async def test_async_http_client_raises_the_typed_refusal_with_its_service() -> None:
    """Under AsyncHTTPClient a refusal is a ThrottledError naming the service; nothing sent."""
    from httpx_resilience import AsyncHTTPClient, ClientConfig

    clock = FakeClock()
    throttle = exact(clock, rng=random.Random(2))
    feed(throttle, "svc.test", 50, 0)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    async with AsyncHTTPClient(
        "http://svc.test", config=ClientConfig(retry_attempts=0), service="inventory",
        transport=httpx.MockTransport(handler), throttle=throttle, clock=clock,
    ) as client:
        refused: list[ThrottledError] = []
        for _ in range(10):
            try:
                await client.get("/items")
            except ThrottledError as exc:
                refused.append(exc)
    assert refused and len(refused) + len(seen) == 10
    assert refused[0].service == "inventory" and "inventory" in str(refused[0])


@settings(max_examples=200, deadline=None)
@given(
    outcomes=st.lists(st.tuples(st.floats(0, 3.0), st.booleans()), max_size=60),
    k=st.floats(1.0, 4.0),
    cap=st.floats(0.0, 1.0),
)
def test_probability_is_the_formula_of_what_the_window_holds(
    outcomes: list[tuple[float, bool]], k: float, cap: float
) -> None:
    """Whatever the history, p is the capped formula of the counts still in the window."""
    clock = FakeClock(start=0.0)
    t = AdaptiveThrottle(k=k, window=5.0, buckets=5, min_requests=0, max_probability=cap, clock=clock)
    kept: list[tuple[float, bool]] = []
    for step, accepted in outcomes:
        clock.advance(step)
        t.record("h", accepted)
        kept.append((clock.monotonic(), accepted))
    now = clock.monotonic()
    # a record stays while its 1 s bucket is among the last five
    inside = [a for (when, a) in kept if int(when) > int(now) - 5]
    requests, accepts = len(inside), sum(inside)
    assert t.counts("h") == (requests, accepts)
    expected = 0.0 if requests == 0 else min(cap, max(0.0, (requests - k * accepts) / (requests + 1)))
    assert t.probability("h") == pytest.approx(expected)
