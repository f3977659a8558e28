"""The retry pipeline over real sockets against ChaosServer: every rule of the pipeline, proven live."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from httpx_resilience import (
    AsyncHTTPClient,
    ClientConfig,
    RateLimitError,
    RequestTimeoutError,
    ResponseDecodeError,
    RetryExhaustedError,
    RetryPolicy,
)
from httpx_resilience.pipeline import ResilientTransport
from httpx_resilience.policies.budget import RetryBudget
from httpx_resilience.testing import ChaosServer, FakeClock, Fault

FAST = ClientConfig(timeout=2.0, retry_backoff_factor=0.01, retry_max_delay=0.05, retry_jitter="none")


def client_for(server: ChaosServer, config: ClientConfig = FAST, **kw: object) -> AsyncHTTPClient:
    return AsyncHTTPClient(server.url, config=config, **kw)  # type: ignore[arg-type]


async def test_status_sequence_retried_until_success_with_one_request_id(chaos_server: ChaosServer) -> None:
    """503, 503, 200: three attempts upstream, one X-Request-Id on all of them."""
    chaos_server.route("/items", statuses=[503, 503, 200])
    async with client_for(chaos_server) as c:
        r = await c.get("/items")
    assert r.status_code == 200 and r.attempts == 3
    seen = chaos_server.requests("/items")
    assert len(seen) == 3
    ids = {s.headers["x-request-id"] for s in seen}
    assert ids == {r.request_id}


async def test_caller_request_id_is_kept(chaos_server: ChaosServer) -> None:
    """A caller-supplied X-Request-Id is sent unchanged on every attempt."""
    chaos_server.route("/rid", statuses=[502, 200])
    async with client_for(chaos_server) as c:
        await c.get("/rid", headers={"X-Request-Id": "caller-42"})
    assert [s.headers["x-request-id"] for s in chaos_server.requests("/rid")] == ["caller-42"] * 2


async def test_post_sent_exactly_once_on_503(chaos_server: ChaosServer) -> None:
    """A POST without Idempotency-Key is never retried on a status: the server sees it once."""
    chaos_server.route("/orders", statuses=[503, 200])
    async with client_for(chaos_server) as c:
        r = await c.post("/orders", json={"sku": 1})
    assert r.status_code == 503 and chaos_server.count("/orders") == 1


async def test_post_sent_exactly_once_on_reset_after_sending(chaos_server: ChaosServer) -> None:
    """A connection reset after the POST was sent is not retried (the server may have acted)."""
    chaos_server.route("/pay", steps=[Fault(reset="before_headers"), Fault()])
    async with client_for(chaos_server) as c:
        with pytest.raises(Exception) as info:
            await c.post("/pay", json={"amount": 5})
    assert chaos_server.count("/pay") == 1
    assert isinstance(info.value, httpx.TransportError)


async def test_post_with_idempotency_key_is_retried_with_the_same_key(chaos_server: ChaosServer) -> None:
    """With idempotency_key= the POST is retried and every attempt carries the same key and body."""
    chaos_server.route("/pay2", steps=[Fault(reset="before_headers"), Fault(status=503), Fault()])
    async with client_for(chaos_server) as c:
        r = await c.post("/pay2", json={"amount": 5}, idempotency_key="idem-1")
    assert r.status_code == 200
    seen = chaos_server.requests("/pay2")
    assert [s.headers["idempotency-key"] for s in seen] == ["idem-1"] * 3
    assert all(s.json() == {"amount": 5} for s in seen)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connect_errors_retried_for_post_and_exhausted() -> None:
    """Connection refused (nothing sent) is retried even for POST; exhaustion reports attempts."""
    port = _closed_port()
    async with AsyncHTTPClient(f"http://127.0.0.1:{port}", config=FAST) as c:
        with pytest.raises(RetryExhaustedError) as info:
            await c.post("/x", json={})
    assert info.value.attempts == 4
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert f"127.0.0.1:{port}" in str(info.value)


async def test_hang_hits_attempt_timeout_then_retry_succeeds(chaos_server: ChaosServer) -> None:
    """A hung first attempt times out after the attempt timeout; the retry succeeds."""
    chaos_server.route("/slow", steps=[Fault(hang=True), Fault()])
    cfg = ClientConfig(timeout=0.3, retry_backoff_factor=0.01, retry_jitter="none")
    async with client_for(chaos_server, cfg) as c:
        t0 = time.perf_counter()
        r = await c.get("/slow")
        took = time.perf_counter() - t0
    assert r.status_code == 200 and r.attempts == 2 and chaos_server.count("/slow") == 2
    assert took < 3.0


async def test_total_deadline_bounds_the_whole_request(chaos_server: ChaosServer) -> None:
    """With every attempt hanging, the total deadline ends the request; attempts shrink to fit."""
    chaos_server.route("/hang", hang=True)
    cfg = ClientConfig(timeout=0.4, total_timeout=1.0, retry_backoff_factor=0.01, retry_jitter="none")
    async with client_for(chaos_server, cfg) as c:
        t0 = time.perf_counter()
        with pytest.raises(RequestTimeoutError) as info:
            await c.get("/hang")
        took = time.perf_counter() - t0
    assert info.value.phase == "total" and info.value.attempts is not None
    assert isinstance(info.value, httpx.TimeoutException)
    assert took < 2.5
    assert 2 <= chaos_server.count("/hang") <= 4


@pytest.mark.parametrize(
    "fault",
    [Fault(truncate=True), Fault(reset="after_headers"), Fault(reset="before_headers")],
    ids=["truncated-body", "reset-after-headers", "reset-before-headers"],
)
async def test_body_and_connection_faults_are_retried_for_get(chaos_server: ChaosServer, fault: Fault) -> None:
    """Truncated bodies and resets (before/after headers) are retried for GET and then succeed."""
    chaos_server.route("/f", steps=[fault, Fault(body={"fine": True})])
    async with client_for(chaos_server) as c:
        r = await c.get("/f")
    assert r.json_data == {"fine": True} and chaos_server.count("/f") == 2


async def test_slow_drip_body_counts_against_attempt_timeout(chaos_server: ChaosServer) -> None:
    """A body dripping past the attempt timeout fails the attempt (body read is inside it)."""
    chaos_server.route("/drip", steps=[Fault(drip=0.1, body_size=400, drip_chunk=10), Fault()])
    cfg = ClientConfig(timeout=0.5, retry_backoff_factor=0.01, retry_jitter="none")
    async with client_for(chaos_server, cfg) as c:
        r = await c.get("/drip")
    assert r.status_code == 200 and r.attempts == 2


async def test_malformed_json_is_a_typed_error(chaos_server: ChaosServer) -> None:
    """A 200 with invalid JSON gives ResponseDecodeError when json_data is read."""
    chaos_server.route("/bad", malformed_json=True)
    async with client_for(chaos_server) as c:
        r = await c.get("/bad")
    with pytest.raises(ResponseDecodeError):
        _ = r.json_data


async def test_retry_after_seconds_and_date_are_honoured(chaos_server: ChaosServer) -> None:
    """429 with Retry-After: 2 and 503 with an HTTP-date are waited as the server asked."""
    date = datetime.now(timezone.utc) + timedelta(seconds=30)
    chaos_server.route(
        "/ra",
        steps=[Fault(status=429, retry_after=2), Fault(status=503, retry_after=date), Fault()],
    )
    clock = FakeClock(wall_start=time.time())
    async with client_for(chaos_server, ClientConfig(retry_jitter="none"), clock=clock) as c:
        r = await c.get("/ra")
    assert r.status_code == 200 and chaos_server.count("/ra") == 3
    assert clock.sleeps[0] == 2.0
    assert 27.0 <= clock.sleeps[1] <= 31.0


async def test_retry_after_beyond_max_delay_stops_with_rate_limit_error(chaos_server: ChaosServer) -> None:
    """Retry-After: 3600 on 429 stops at once: RateLimitError with retry_after, one request sent."""
    chaos_server.route("/limited", status=429, retry_after=3600)
    async with client_for(chaos_server, ClientConfig(retry_max_delay=30)) as c:
        with pytest.raises(RateLimitError) as info:
            await c.get("/limited")
    assert info.value.retry_after == 3600 and chaos_server.count("/limited") == 1


async def test_rate_limited_route_recovers_after_retry_after(chaos_server: ChaosServer) -> None:
    """Above the server's rate, 429 + Retry-After is honoured and every request eventually succeeds."""
    chaos_server.route("/rl", rate_limit=20)
    clock = FakeClock()
    async with client_for(chaos_server, ClientConfig(retry_attempts=5), clock=clock) as c:
        results = []
        for _ in range(25):
            try:
                results.append((await c.get("/rl")).status_code)
            except RateLimitError:
                results.append(429)
    assert results.count(200) >= 20
    assert all(s == 1.0 for s in clock.sleeps)


async def test_budget_keeps_outage_amplification_low(chaos_server: ChaosServer) -> None:
    """Under a full outage the budget keeps upstream load ≤ 1.2× logical requests; naive retry is 4×."""
    chaos_server.route("/down", status=503)
    chaos_server.route("/down-naive", status=503)
    clock = FakeClock()
    budget = RetryBudget(ratio=0.2, min_per_second=0.0, clock=clock)
    async with httpx.AsyncClient(
        transport=ResilientTransport(retry_budget=budget, clock=clock, retry=RetryPolicy(jitter="none")),
        base_url=chaos_server.url,
    ) as c:
        await asyncio.gather(*(c.get("/down") for _ in range(100)))
    async with httpx.AsyncClient(
        transport=ResilientTransport(retry_budget=False, clock=clock, retry=RetryPolicy(jitter="none")),
        base_url=chaos_server.url,
    ) as c:
        await asyncio.gather(*(c.get("/down-naive") for _ in range(100)))
    assert chaos_server.count("/down") <= 120
    assert chaos_server.count("/down-naive") == 400


async def test_plain_httpx_client_with_resilient_transport(chaos_server: ChaosServer) -> None:
    """ResilientTransport works under a plain httpx.AsyncClient; errors are httpx classes."""
    chaos_server.route("/p", statuses=[500, 200])
    chaos_server.route("/h", hang=True)
    transport = ResilientTransport(retry=RetryPolicy(backoff_factor=0.01), timeout=0.2)
    async with httpx.AsyncClient(transport=transport, base_url=chaos_server.url) as c:
        r = await c.get("/p")
        assert r.status_code == 200 and r.extensions["resilience"].attempts == 2
        with pytest.raises(httpx.TimeoutException):
            await c.get("/h", extensions={"resilience": {"retry": RetryPolicy(max_attempts=1)}})


async def test_streaming_and_large_bodies(chaos_server: ChaosServer) -> None:
    """stream() yields the body incrementally; a 5 MB body arrives intact."""
    chaos_server.route("/big", body_size=5_000_000)
    async with client_for(chaos_server) as c:
        total = 0
        async with c.stream("GET", "/big") as r:
            async for chunk in r.aiter_bytes():
                total += len(chunk)
        whole = await c.get("/big")
    assert total == 5_000_000 and len(whole.content) == 5_000_000


async def test_connection_limit_is_respected(chaos_server: ChaosServer) -> None:
    """max_connections caps the pool: 20 concurrent requests use at most 2 connections."""
    chaos_server.route("/pool", latency=0.02)
    cfg = ClientConfig(max_connections=2, max_keepalive_connections=2)
    async with client_for(chaos_server, cfg) as c:
        await asyncio.gather(*(c.get("/pool") for _ in range(20)))
    assert chaos_server.connections_opened <= 2 and chaos_server.count("/pool") == 20


async def test_query_string_faults_drive_the_same_rules(chaos_server: ChaosServer) -> None:
    """Faults chosen by query string (?status=503,503,200) are retried like programmed ones."""
    async with client_for(chaos_server) as c:
        r = await c.get("/q", params={"status": "503,503,200"})
    assert r.status_code == 200 and r.attempts == 3


async def test_cross_origin_redirect_carries_no_credentials() -> None:
    """Under ResilientTransport, a redirect to another origin drops X-API-KEY and Authorization."""
    from httpx_resilience import APIKeyAuth

    with ChaosServer() as a, ChaosServer() as b:
        a.route("/start", status=302, headers={"Location": b.url_for("/landing")})
        transport = ResilientTransport()
        async with httpx.AsyncClient(
            transport=transport, auth=APIKeyAuth("k-secret"), follow_redirects=True
        ) as c:
            r = await c.get(a.url_for("/start"), headers={"Proxy-Authorization": "Basic eA=="})
        assert r.status_code == 200
        assert a.requests("/start")[0].headers["x-api-key"] == "k-secret"
        landed = b.requests("/landing")[0].headers
        assert "x-api-key" not in landed and "authorization" not in landed
        assert "proxy-authorization" not in landed


async def test_httpx_own_log_lines_are_redacted(chaos_server: ChaosServer, caplog: pytest.LogCaptureFixture) -> None:
    """httpx's INFO request log does not show a query-string API key."""
    import logging

    with caplog.at_level(logging.INFO, logger="httpx"):
        async with httpx.AsyncClient(transport=ResilientTransport()) as c:
            await c.get(chaos_server.url_for("/x"), params={"api_key": "TOPSECRET", "q": "ok"})
    assert "TOPSECRET" not in caplog.text
    assert "api_key=" in caplog.text
