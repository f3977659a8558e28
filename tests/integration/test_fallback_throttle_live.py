"""Fallback and AdaptiveThrottle over real sockets against ChaosServer.

The fallback: served on an open breaker, on retries that ran out (a refused
connection, a 503 that stays), on the total deadline; the failure is passed
in and the outcome records it; per request; under AsyncHTTPClient and under
httpx.AsyncClient(transport=ResilientTransport(...)). The throttle: during a
full outage (503, or connections refused) most first attempts never reach the
server, and once it is back the throttle lets the traffic back by itself. The
throttle's clock is a FakeClock moved by the test (the window slides without
waiting); the server and the sockets are real.
"""

from __future__ import annotations

import random
import socket

import httpx
import pytest

from httpx_resilience import (
    AsyncHTTPClient,
    CircuitBreakerOpenError,
    ClientConfig,
    RequestTimeoutError,
    RetryExhaustedError,
)
from httpx_resilience.pipeline import ResilienceInfo, ResilientTransport
from httpx_resilience.policies.breaker import CircuitBreaker
from httpx_resilience.policies.fallback import Fallback, FallbackServed
from httpx_resilience.policies.throttle import AdaptiveThrottle, ThrottledError
from httpx_resilience.testing import ChaosServer, FakeClock

FAST = ClientConfig(
    timeout=2.0, retry_attempts=2, retry_backoff_factor=0.01, retry_max_delay=0.02,
    retry_jitter="none",
)


def closed_port() -> int:
    """A loopback port nobody listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class Recorder:
    """A fallback handler that remembers what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[httpx.Request, Exception]] = []

    async def __call__(self, request: httpx.Request, error: Exception) -> httpx.Response:
        self.calls.append((request, error))
        return httpx.Response(200, json={"from": "fallback", "error": type(error).__name__})


def info_of(extensions: dict[str, object]) -> ResilienceInfo:
    info = extensions["resilience"]
    assert isinstance(info, ResilienceInfo)
    return info


# -- fallback -----------------------------------------------------------------------------


async def test_open_breaker_is_served_without_reaching_the_server(chaos_server: ChaosServer) -> None:
    """AsyncHTTPClient: two 503s open the breaker; the third request is the fallback's."""
    chaos_server.route("/down", status=503)
    handler = Recorder()
    events: list[object] = []
    breaker = CircuitBreaker(2, 30.0, failure_statuses={503})
    config = ClientConfig(timeout=2.0, retry_attempts=0)
    async with AsyncHTTPClient(
        chaos_server.url, config=config, circuit_breaker=breaker,
        fallback=Fallback(handler, statuses={503}), observers=[events.append],
    ) as client:
        for _ in range(2):
            r = await client.get("/down")
            assert r.json()["error"] == "RetryExhaustedError"  # a 503: served by statuses=
        sent = chaos_server.count("/down")
        r = await client.get("/down")
    assert chaos_server.count("/down") == sent == 2  # the open breaker sent nothing
    assert r.json() == {"from": "fallback", "error": "CircuitBreakerOpenError"}
    info = info_of(r.extensions)
    assert info.fallback and info.fallback_error == "CircuitBreakerOpenError"
    assert info.breaker_state == "open"
    request, error = handler.calls[-1]
    assert isinstance(error, CircuitBreakerOpenError)
    assert request.url == chaos_server.url_for("/down")
    assert [e.error_type for e in events if isinstance(e, FallbackServed)][-1] == (
        "CircuitBreakerOpenError"
    )


async def test_exhausted_retries_on_a_refused_connection_are_served() -> None:
    """httpx.AsyncClient over ResilientTransport: three refused connects, then the fallback."""
    handler = Recorder()
    transport = ResilientTransport(config=FAST, fallback=handler)
    async with httpx.AsyncClient(transport=transport) as client:
        r = await client.get(f"http://127.0.0.1:{closed_port()}/items")
    _, error = handler.calls[0]
    assert isinstance(error, RetryExhaustedError) and isinstance(error, httpx.ConnectError)
    assert error.attempts == 3
    info = info_of(r.extensions)
    assert r.status_code == 200 and info.fallback and info.attempts == 3


async def test_a_503_that_stays_is_served_after_the_last_retry(chaos_server: ChaosServer) -> None:
    """Retries ran out on a status: the fallback gets a RetryExhaustedError with it."""
    chaos_server.route("/busy", status=503)
    handler = Recorder()
    async with AsyncHTTPClient(chaos_server.url, config=FAST, fallback=handler) as client:
        r = await client.get("/busy")
    assert chaos_server.count("/busy") == 3
    _, error = handler.calls[0]
    assert isinstance(error, RetryExhaustedError) and error.status_code == 503
    assert r.status_code == 200 and r.attempts == 3
    assert info_of(r.extensions).stop_reason == "attempts"


async def test_the_total_deadline_is_served(chaos_server: ChaosServer) -> None:
    """A server slower than the deadline: the fallback answers once the deadline passes."""
    chaos_server.route("/slow", latency=2.0)
    handler = Recorder()
    transport = ResilientTransport(
        config=ClientConfig(timeout=0.3, total_timeout=0.3, retry_attempts=0),
        fallback=handler,
    )
    async with httpx.AsyncClient(transport=transport) as client:
        r = await client.get(chaos_server.url_for("/slow"))
    _, error = handler.calls[0]
    assert isinstance(error, RequestTimeoutError) and error.phase == "total"
    assert info_of(r.extensions).fallback_error == type(error).__name__


async def test_per_request_fallback_under_both_front_ends(chaos_server: ChaosServer) -> None:
    """A request's own fallback replaces the transport's; None removes it."""
    chaos_server.route("/gone", status=503)
    per_request = httpx.Response(200, json={"per": "request"})
    ext = {"resilience": {"fallback": per_request}}
    transport = ResilientTransport(config=FAST, fallback=httpx.Response(200, json={"per": "transport"}))
    async with httpx.AsyncClient(transport=transport) as client:
        url = chaos_server.url_for("/gone")
        assert (await client.get(url)).json() == {"per": "transport"}
        assert (await client.get(url, extensions=ext)).json() == {"per": "request"}
        plain = await client.get(url, extensions={"resilience": {"fallback": None}})
        assert plain.status_code == 503 and not info_of(plain.extensions).fallback
    async with AsyncHTTPClient(chaos_server.url, config=FAST) as ours:
        r = await ours.get("/gone", extensions=ext)
        assert r.json() == {"per": "request"} and r.extensions["resilience"].fallback


# -- adaptive throttle --------------------------------------------------------------------


def throttle(clock: FakeClock, seed: int = 11) -> AdaptiveThrottle:
    return AdaptiveThrottle(window=10.0, buckets=10, min_requests=10, clock=clock, rng=random.Random(seed))


async def drive(
    client: httpx.AsyncClient, url: str, clock: FakeClock, n: int, step: float = 0.05
) -> tuple[int, int]:
    """``n`` logical requests, one every ``step`` seconds of the throttle's clock:
    (answered 200, refused by the throttle)."""
    ok = refused = 0
    for _ in range(n):
        try:
            ok += (await client.get(url)).status_code == 200
        except ThrottledError:
            refused += 1
        except httpx.TransportError:
            pass
        clock.advance(step)
    return ok, refused


async def test_throttle_during_a_503_outage_and_the_recovery(chaos_server: ChaosServer) -> None:
    """A full outage: most first attempts stay home; back up: the traffic returns by itself."""
    chaos_server.route("/api", status=503)
    clock = FakeClock()
    t = throttle(clock)
    transport = ResilientTransport(
        config=ClientConfig(timeout=2.0, retry_attempts=0), throttle=t
    )
    url = chaos_server.url_for("/api")
    async with httpx.AsyncClient(transport=transport) as client:
        await drive(client, url, clock, 200)  # 10 s of outage: the window fills
        before = chaos_server.count("/api")
        _, refused = await drive(client, url, clock, 200)  # 10 s more
        sent = chaos_server.count("/api") - before
        assert refused + sent == 200
        assert sent <= 40, f"{sent} of 200 first attempts reached a server that rejects all"
        chaos_server.route("/api", status=200)  # the upstream is back
        recovering, _ = await drive(client, url, clock, 400)  # 20 s: two windows
        assert t.probability(transport_key(url)) == 0.0
        ok, refused = await drive(client, url, clock, 50)
    assert (ok, refused) == (50, 0)
    assert recovering > 100  # the traffic came back during the recovery


def transport_key(url: str) -> str:
    u = httpx.URL(url)
    return f"{u.host}:{u.port}"


async def test_throttle_when_connections_are_refused() -> None:
    """Connect errors are rejections too: with every connection refused, most are not tried."""
    clock = FakeClock()
    t = throttle(clock, seed=5)
    transport = ResilientTransport(
        config=ClientConfig(timeout=2.0, retry_attempts=0), throttle=t
    )
    url = f"http://127.0.0.1:{closed_port()}/x"
    async with httpx.AsyncClient(transport=transport) as client:
        await drive(client, url, clock, 100)
        requests, accepts = t.counts(transport_key(url))
        _, refused = await drive(client, url, clock, 100)
    assert accepts == 0 and requests == 100
    assert refused >= 80


@pytest.mark.parametrize("front", ["client", "transport"])
async def test_throttle_refusal_is_served_by_the_fallback(chaos_server: ChaosServer, front: str) -> None:
    """ThrottledError is a failure like the others: the fallback answers it."""
    chaos_server.route("/t", status=503)
    clock = FakeClock()
    t = throttle(clock)
    config = ClientConfig(timeout=2.0, retry_attempts=0)
    fallback = Fallback(httpx.Response(200, text="cached"), statuses=())
    if front == "client":
        client: httpx.AsyncClient | AsyncHTTPClient = AsyncHTTPClient(
            chaos_server.url, config=config, throttle=t, fallback=fallback
        )
    else:
        client = httpx.AsyncClient(
            transport=ResilientTransport(config=config, throttle=t, fallback=fallback),
            base_url=chaos_server.url,
        )
    errors: list[str | None] = []
    async with client:
        for _ in range(200):
            r = await client.get("/t")
            errors.append(r.extensions["resilience"].fallback_error if r.status_code == 200 else None)
            clock.advance(0.05)
    assert "ThrottledError" in errors
    assert errors.count("ThrottledError") + chaos_server.count("/t") == 200
