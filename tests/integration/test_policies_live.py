"""Breaker, limiter, bulkhead and hedging inside the pipeline, over real sockets against ChaosServer."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from httpx_resilience import (
    AsyncHTTPClient,
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitBreakerOpenError,
    CircuitState,
    ClientConfig,
    ConfigurationError,
    HedgingPolicy,
    RateLimiter,
    ResilientTransport,
    RetryBudget,
    RetryPolicy,
    TokenBucketRateLimiter,
    with_api_retry,
    with_network_retry,
)
from httpx_resilience.testing import ChaosServer, FakeClock, Fault

FAST = ClientConfig(timeout=2.0, retry_backoff_factor=0.001, retry_max_delay=0.01, retry_jitter="none")


async def test_breaker_opens_on_nth_503_and_server_sees_nothing_until_probe(chaos_server: ChaosServer) -> None:
    """The breaker opens on the 3rd 503; later calls fail fast (nothing sent) until the probe closes it."""
    chaos_server.route("/svc", status=503)
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=30.0, clock=clock)
    async with AsyncHTTPClient(chaos_server.url, config=FAST, circuit_breaker=breaker) as c:
        with pytest.raises(CircuitBreakerOpenError) as info:
            await c.get("/svc")
        assert chaos_server.count("/svc") == 3 and breaker.state is CircuitState.OPEN
        assert info.value.retry_in == pytest.approx(30.0, abs=0.5)
        for _ in range(5):
            with pytest.raises(CircuitBreakerOpenError):
                await c.get("/svc")
        assert chaos_server.count("/svc") == 3
        chaos_server.route("/svc", status=200)
        clock.advance(31.0)
        r = await c.get("/svc")
    assert r.status_code == 200 and chaos_server.count("/svc") == 4
    assert breaker.state is CircuitState.CLOSED


async def test_half_open_admits_one_probe_among_100_callers(chaos_server: ChaosServer) -> None:
    """In half-open exactly one of 100 concurrent requests reaches the server."""
    chaos_server.route("/probe", status=503)
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=10.0, clock=clock)
    no_retry = RetryPolicy(max_attempts=1)
    async with AsyncHTTPClient(chaos_server.url, config=FAST, circuit_breaker=breaker, retry=no_retry) as c:
        await c.get("/probe")
        assert breaker.state is CircuitState.OPEN
        chaos_server.route("/probe", latency=0.2)
        clock.advance(11.0)
        results = await asyncio.gather(*(c.get("/probe") for _ in range(100)), return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, CircuitBreakerOpenError)]
    assert len(ok) == 1 and len(refused) == 99
    assert chaos_server.count("/probe") == 2


async def test_breaker_per_host_isolates_upstreams() -> None:
    """With scope="host", one failing upstream never opens another's circuit."""
    with ChaosServer() as bad, ChaosServer() as good:
        bad.route("/x", status=503)
        breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=60.0, scope="host")
        transport = ResilientTransport(circuit_breaker=breaker, retry=RetryPolicy(max_attempts=1))
        async with httpx.AsyncClient(transport=transport) as c:
            for _ in range(2):
                await c.get(bad.url_for("/x"))
            with pytest.raises(CircuitBreakerOpenError):
                await c.get(bad.url_for("/x"))
            assert (await c.get(good.url_for("/x"))).status_code == 200


async def test_breaker_does_not_count_4xx(chaos_server: ChaosServer) -> None:
    """404s are not failures: the breaker stays closed."""
    chaos_server.route("/nf", status=404)
    breaker = CircuitBreaker(failure_threshold=2)
    async with AsyncHTTPClient(chaos_server.url, config=FAST, circuit_breaker=breaker) as c:
        for _ in range(5):
            assert (await c.get("/nf")).status_code == 404
    assert breaker.state is CircuitState.CLOSED


class CountingLimiter(RateLimiter):
    """A limiter that grants everything and counts acquires and pauses."""

    def __init__(self) -> None:
        self.acquired = 0
        self.paused: list[float] = []

    async def acquire(self, tokens: int = 1) -> float:
        self.acquired += tokens
        return 0.0

    def is_configured(self) -> bool:
        return True

    def pause(self, seconds: float) -> None:
        self.paused.append(seconds)


async def test_every_retry_takes_a_limiter_token_and_429_pauses_it(chaos_server: ChaosServer) -> None:
    """A retry consumes a token (the upstream counts it) and a 429 Retry-After pauses the limiter."""
    chaos_server.route("/t", steps=[Fault(status=429, retry_after=1), Fault(status=503), Fault()])
    limiter = CountingLimiter()
    clock = FakeClock()
    cfg = ClientConfig(retry_max_delay=5.0, retry_jitter="none")
    async with AsyncHTTPClient(chaos_server.url, config=cfg, rate_limiter=limiter, clock=clock) as c:
        r = await c.get("/t")
    assert r.status_code == 200 and limiter.acquired == 3 == chaos_server.count("/t")
    # The 429's one second (the pipeline may pass it on more than once: pauses never add up).
    assert limiter.paused and set(limiter.paused) == {1.0}


async def test_token_bucket_paces_requests_at_the_server(chaos_server: ChaosServer) -> None:
    """With rate=40/s and burst=1 the server never sees more than rate+burst requests in any second."""
    chaos_server.route("/paced")
    limiter = TokenBucketRateLimiter(rate=40, burst=1)
    async with AsyncHTTPClient(chaos_server.url, config=FAST, rate_limiter=limiter) as c:
        await asyncio.gather(*(c.get("/paced") for _ in range(60)))
    stamps = sorted(r.at for r in chaos_server.requests("/paced"))
    assert len(stamps) == 60
    for i, t in enumerate(stamps):
        in_window = sum(1 for u in stamps[i:] if u - t < 1.0)
        assert in_window <= 41 + 2  # rate + burst, plus scheduling slack of the server's clock


async def test_bulkhead_rejects_beyond_capacity_without_sending(chaos_server: ChaosServer) -> None:
    """Bulkhead(2) with no queue: of 5 concurrent requests 2 run, 3 get BulkheadFullError unsent."""
    chaos_server.route("/bh", latency=0.3)
    async with AsyncHTTPClient(chaos_server.url, config=FAST, bulkhead=Bulkhead(2)) as c:
        results = await asyncio.gather(*(c.get("/bh") for _ in range(5)), return_exceptions=True)
    assert sum(isinstance(r, BulkheadFullError) for r in results) == 3
    assert chaos_server.count("/bh") == 2


async def test_hedging_beats_a_slow_first_attempt(chaos_server: ChaosServer) -> None:
    """A hedge after 50 ms wins over a 1.5 s first attempt; the loser is cancelled."""
    chaos_server.route("/hedge", steps=[Fault(latency=1.5), Fault(body={"hedge": True})])
    async with AsyncHTTPClient(chaos_server.url, config=FAST, hedging=HedgingPolicy(0.05)) as c:
        t0 = time.perf_counter()
        r = await c.get("/hedge")
        took = time.perf_counter() - t0
    assert r.json_data == {"hedge": True} and chaos_server.count("/hedge") == 2
    info = r.extensions["resilience"]
    assert info.hedges == 1 and info.attempts_with_hedges == 2
    assert took < 1.0


async def test_hedging_never_applies_to_post(chaos_server: ChaosServer) -> None:
    """POST is not hedged: a slow POST is sent exactly once."""
    chaos_server.route("/slowpost", latency=0.3)
    async with AsyncHTTPClient(chaos_server.url, config=FAST, hedging=HedgingPolicy(0.02)) as c:
        await c.post("/slowpost", json={})
    assert chaos_server.count("/slowpost") == 1


async def test_hedging_after_a_fast_failure(chaos_server: ChaosServer) -> None:
    """When the first attempt fails fast, the hedge starts at once and its success wins."""
    chaos_server.route("/hf", steps=[Fault(status=503), Fault()])
    async with AsyncHTTPClient(chaos_server.url, config=FAST, hedging=HedgingPolicy(5.0)) as c:
        r = await c.get("/hf")
    assert r.status_code == 200 and r.extensions["resilience"].hedges == 1


async def test_hedges_of_a_failed_group_are_counted(chaos_server: ChaosServer) -> None:
    """Copies of a hedged attempt that all failed, then a retry: every request sent is counted."""
    reset = Fault(reset="before_headers")
    chaos_server.route("/hreset", steps=[reset, reset, Fault()])
    async with AsyncHTTPClient(chaos_server.url, config=FAST, hedging=HedgingPolicy(5.0)) as c:
        r = await c.get("/hreset")
    info = r.extensions["resilience"]
    assert r.status_code == 200 and chaos_server.count("/hreset") == 3
    assert info.attempts == 2 and info.hedges == 1
    assert info.attempts_with_hedges == chaos_server.count("/hreset")


def test_contradictory_policies_rejected() -> None:
    """Polly-style validation: time window < 2× attempt timeout, hedges × delay ≥ total timeout."""
    with pytest.raises(ConfigurationError, match="window_size"):
        ResilientTransport(
            timeout=5.0,
            circuit_breaker=CircuitBreaker(failure_rate_threshold=0.5, window_type="time", window_size=6),
        )
    with pytest.raises(ConfigurationError, match="hedging"):
        ResilientTransport(timeout=1.0, total_timeout=2.0, hedging=HedgingPolicy(1.0, max_hedges=2))


async def test_rate_limit_headers_pace_the_limiter(chaos_server: ChaosServer) -> None:
    """With header_pacing, X-RateLimit-Remaining: 0 and -Reset pause the host's limiter."""
    chaos_server.route("/quota", headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "7"})
    clock = FakeClock()
    limiter = TokenBucketRateLimiter(rate=100, burst=10, header_pacing=True, clock=clock)
    async with AsyncHTTPClient(chaos_server.url, config=FAST, rate_limiter=limiter, clock=clock) as c:
        assert (await c.get("/quota")).status_code == 200
    assert 6.0 <= limiter.paused_for <= 7.0
    plain = TokenBucketRateLimiter(rate=100, burst=10, clock=clock)
    async with AsyncHTTPClient(chaos_server.url, config=FAST, rate_limiter=plain, clock=clock) as c:
        await c.get("/quota")
    assert plain.paused_for == 0.0


# -- Retry-After, the retry budget, the generic helpers and the hand-driven breaker, live --

KINDS = ("httpx", "native", "aiohttp")
WALL = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT, the FakeClock's wall time


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """The inner transport under the pipeline."""
    return str(request.param)


@pytest.mark.parametrize(
    ("value", "slept"),
    [
        ("7", 7.0),
        ("Tue, 14 Nov 2023 22:13:27 GMT", 7.0),  # IMF-fixdate
        ("Tuesday, 14-Nov-23 22:13:27 GMT", 7.0),  # RFC 850
        ("Tue Nov 14 22:13:27 2023", 7.0),  # asctime: GMT without a zone
        ("7.5", 0.5),  # not delta-seconds: the backoff instead, and a warning
        ("+7", 0.5),
        ("Tue, 14 Nov 2023 22:13:27 UTC", 0.5),
    ],
)
async def test_retry_after_forms_over_the_wire(
    chaos_server: ChaosServer, kind: str, value: str, slept: float, caplog: pytest.LogCaptureFixture
) -> None:
    """A 503's Retry-After in each RFC 9110 form is slept exactly; an invalid one is logged
    and the computed backoff (0.5 s here) is used; for every inner transport."""
    path = f"/ra-{kind}"
    chaos_server.route(path, steps=[Fault(status=503, retry_after=value), Fault()])
    clock = FakeClock(wall_start=WALL)
    policy = RetryPolicy(backoff_factor=0.5, jitter="none", max_delay=30.0)
    transport = ResilientTransport(kind, retry=policy, clock=clock)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=chaos_server.url) as c:
        r = await c.get(path)
    assert r.status_code == 200 and chaos_server.count(path) == 2
    assert clock.sleeps == [slept]
    warned = any("invalid Retry-After" in rec.getMessage() for rec in caplog.records)
    assert warned == (slept == 0.5)


async def test_a_burst_into_a_full_outage_stays_under_1_3x(chaos_server: ChaosServer) -> None:
    """200 requests, 50 in flight, every answer 503, 4 attempts allowed: the default budget
    (20 % + 10/s as a rate) lets about 40 + 10 retries through, not 140 (or 600 unbudgeted)."""
    chaos_server.route("/down", status=503)
    clock = FakeClock()  # the floor accrues only with the (tiny) backoff sleeps
    quick = RetryPolicy(max_attempts=4, backoff_factor=0.001, max_delay=0.002)
    sem = asyncio.Semaphore(50)
    async with httpx.AsyncClient(
        transport=ResilientTransport(retry=quick, clock=clock), base_url=chaos_server.url
    ) as c:

        async def one() -> None:
            async with sem:
                assert (await c.get("/down")).status_code == 503

        await asyncio.gather(*(one() for _ in range(200)))
    upstream = chaos_server.count("/down")
    assert 240 <= upstream <= 260, upstream  # 1.2× .. 1.3×


async def test_a_quiet_client_still_gets_its_retries(chaos_server: ChaosServer) -> None:
    """One request a second to a flaky upstream (each fails twice, then succeeds): with the
    default budget and with a floor of 2/s, every request gets both of its retries."""
    for floor in (None, 2.0):
        clock = FakeClock()
        budget = None if floor is None else RetryBudget(0.2, floor, 10.0, clock=clock)
        transport = ResilientTransport(
            retry=RetryPolicy(backoff_factor=0.001, jitter="none"), retry_budget=budget, clock=clock
        )
        async with httpx.AsyncClient(transport=transport, base_url=chaos_server.url) as c:
            for i in range(30):
                path = f"/quiet-{floor}-{i}"
                chaos_server.route(path, statuses=[503, 503, 200])
                assert (await c.get(path)).status_code == 200
                assert chaos_server.count(path) == 3
                clock.advance(1.0)


async def test_with_api_retry_around_httpx_honours_retry_after_and_reraises(
    chaos_server: ChaosServer,
) -> None:
    """Seed 002 around plain httpx: a 503's Retry-After (read from the HTTPStatusError's
    response) is slept; when every attempt fails, the HTTPStatusError itself comes out with a
    note giving the attempt count."""
    chaos_server.route("/api", steps=[Fault(status=503, retry_after="3"), Fault()])
    chaos_server.route("/always", status=502)
    clock = FakeClock()
    async with httpx.AsyncClient(base_url=chaos_server.url) as client:

        @with_api_retry(max_attempts=3, clock=clock)
        async def fetch(path: str) -> int:
            r = await client.get(path)
            r.raise_for_status()
            return r.status_code

        assert await fetch("/api") == 200 and clock.sleeps == [3.0]
        with pytest.raises(httpx.HTTPStatusError) as info:
            await fetch("/always")
    assert info.value.response.status_code == 502 and chaos_server.count("/always") == 3
    (note,) = info.value.__notes__
    assert note.endswith("fetch: gave up after 3 attempt(s) (all 3 attempts failed)")


async def test_with_network_retry_retries_aiohttp_connection_errors() -> None:
    """An aiohttp connection refused is a network error: retried, then re-raised as itself."""
    aiohttp = pytest.importorskip("aiohttp")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    calls = 0
    clock = FakeClock()
    async with aiohttp.ClientSession() as session:

        @with_network_retry(max_attempts=3, clock=clock)
        async def fetch() -> int:
            nonlocal calls
            calls += 1
            async with session.get(f"http://127.0.0.1:{port}/") as r:
                return int(r.status)

        with pytest.raises(aiohttp.ClientConnectorError) as info:
            await fetch()
    assert calls == 3 and clock.sleeps == [1.0, 2.0]
    assert "gave up after 3 attempt(s)" in info.value.__notes__[0]


async def test_hand_driven_breaker_guards_plain_httpx_calls(chaos_server: ChaosServer) -> None:
    """Seed 003's loop: raise_if_open() before, record_failure(exc)/record_success() after.
    Three 503s open it and the server sees nothing more; after the cooldown one probe goes
    out, and its success closes the breaker. (record_failure(exc) judges exc as call() does:
    httpx's HTTPStatusError counts when listed in expected_exception, by its status.)"""
    chaos_server.route("/svc", status=503)
    clock = FakeClock()
    breaker = CircuitBreaker(
        failure_threshold=3, cooldown_seconds=30, expected_exception=httpx.HTTPStatusError,
        name="svc", clock=clock,
    )
    async with httpx.AsyncClient(base_url=chaos_server.url) as client:

        async def call() -> int:
            breaker.raise_if_open()
            r = await client.get("/svc")
            try:
                r.raise_for_status()
            except httpx.HTTPStatusError as exc:
                breaker.record_failure(exc)
                raise
            breaker.record_success()
            return r.status_code

        for _ in range(3):
            with pytest.raises(httpx.HTTPStatusError):
                await call()
        for _ in range(5):
            with pytest.raises(CircuitBreakerOpenError) as info:
                await call()
        assert info.value.retry_in == pytest.approx(30.0) and chaos_server.count("/svc") == 3
        chaos_server.route("/svc", status=200, latency=0.05)
        clock.advance(30.0)
        results = await asyncio.gather(*(call() for _ in range(10)), return_exceptions=True)
    assert sum(r == 200 for r in results) == 1
    assert sum(isinstance(r, CircuitBreakerOpenError) for r in results) == 9
    assert breaker.state is CircuitState.CLOSED and chaos_server.count("/svc") == 4  # 3 + the probe
