"""Prometheus metrics of the newer policies and of a shared backend, over real sockets.

Each test drives the pipeline into the case a metric counts (a budget
refusal, a fallback served, a throttle refusal, a backend that stops
answering) against a ChaosServer, and reads the value from a registry of
its own.
"""

from __future__ import annotations

import random

import httpx
import pytest
from _redis import closed_port_url, fresh_prefix
from prometheus_client import CollectorRegistry

from httpx_resilience import PrometheusObserver, ResilientTransport, RetryBudget, RetryPolicy
from httpx_resilience.backends import RedisBackend
from httpx_resilience.policies.fallback import Fallback
from httpx_resilience.policies.limiter import TokenBucketRateLimiter
from httpx_resilience.policies.throttle import AdaptiveThrottle, ThrottledError
from httpx_resilience.testing import ChaosServer


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


async def test_budget_refusals_and_fallbacks_are_counted(chaos_server: ChaosServer) -> None:
    """A budget with no floor refuses the retries of an always-503 route; the fallback answers."""
    chaos_server.route("/down", status=503)
    registry = CollectorRegistry()
    obs = PrometheusObserver(registry)
    transport = ResilientTransport(
        retry=RetryPolicy(max_attempts=3, backoff_factor=0.001),
        retry_budget=RetryBudget(ratio=0.0, min_per_second=0.0),
        fallback=Fallback(httpx.Response(200, json={"cached": True})),
        observers=[obs],
    )
    async with httpx.AsyncClient(transport=transport, base_url=chaos_server.url) as client:
        for _ in range(4):
            r = await client.get("/down")
            assert r.status_code == 200 and r.json() == {"cached": True}
    host = f"127.0.0.1:{chaos_server.port}"
    assert chaos_server.count("/down") == 4  # the budget paid for no retry
    assert value(registry, "httpx_resilience_budget_refusals_total", host=host, spend="retry") == 4
    served = value(
        registry, "httpx_resilience_fallbacks_total", host=host, error="RetryExhaustedError"
    )
    assert served == 4


async def test_throttle_rejections_are_counted(chaos_server: ChaosServer) -> None:
    """During a full outage the adaptive throttle refuses attempts locally; each is counted."""
    chaos_server.route("/outage", status=503)
    registry = CollectorRegistry()
    obs = PrometheusObserver(registry)
    throttle = AdaptiveThrottle(k=1.5, window=60.0, min_requests=5, rng=random.Random(1))
    transport = ResilientTransport(
        retry=RetryPolicy(max_attempts=1), throttle=throttle, observers=[obs]
    )
    refused = 0
    async with httpx.AsyncClient(transport=transport, base_url=chaos_server.url) as client:
        for _ in range(60):
            try:
                await client.get("/outage")
            except ThrottledError:
                refused += 1
    total = sum(
        s.value for metric in registry.collect() if metric.name == "httpx_resilience_throttle_rejections"
        for s in metric.samples if s.name.endswith("_total")
    )
    assert refused > 20  # most attempts never left
    assert total == refused
    assert chaos_server.count("/outage") == 60 - refused


async def test_a_backend_that_stops_answering_is_visible() -> None:
    """A Redis that cannot be reached: one fallback counted, the gauge at 1, failed scripts timed."""
    registry = CollectorRegistry()
    obs = PrometheusObserver(registry)
    backend = RedisBackend(closed_port_url(), prefix=fresh_prefix(), observers=[obs], timeout=0.2)
    limiter = TokenBucketRateLimiter(rate=100, burst=10, backend=backend)
    for _ in range(3):
        await limiter.acquire()  # fail_mode="local": granted from the local state
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for metric in registry.collect() for s in metric.samples
        if metric.name.startswith("httpx_resilience_backend")
    }
    fallbacks = [v for (name, _), v in samples.items() if name == "httpx_resilience_backend_fallbacks_total"]
    gauge = [v for (name, _), v in samples.items() if name == "httpx_resilience_backend_in_fallback"]
    failed = [
        v for (name, labels), v in samples.items()
        if name == "httpx_resilience_backend_script_seconds_count" and ("ok", "false") in labels
    ]
    assert fallbacks == [1.0]
    assert gauge == [1.0]
    assert failed and failed[0] >= 1


@pytest.fixture
def chaos_server() -> ChaosServer:
    with ChaosServer() as server:
        yield server  # type: ignore[misc]
