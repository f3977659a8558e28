"""Retries on AsyncHTTPClient, and what they will not do (run: python examples/with_retry.py).

An embedded ChaosServer plays a flaky upstream. The script shows:

1. a GET retried through two 503s with exponential backoff (and jitter);
2. a 429 whose ``Retry-After`` is honoured (the wait is the server's, not ours);
3. a POST that is *not* retried after it reached the server, because a second
   copy could create a second order; with an ``idempotency_key`` it is;
4. a 500 that is not retried when 500 is not in ``retry_statuses`` (seed 000);
5. giving up: the error says how many attempts were made, and is still the
   error plain httpx users catch.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from httpx_resilience import AsyncHTTPClient, ClientConfig, HTTPResponseError, RetryExhaustedError
from httpx_resilience.testing import ChaosServer


async def main(base_url: str) -> None:
    config = ClientConfig(
        retry_attempts=3,  # retries after the first attempt: 4 attempts at most
        retry_backoff_factor=0.05,  # 0.05 s, 0.1 s, ... with full jitter
        retry_statuses={429, 502, 503, 504},  # 500 is a bug upstream: not retried
        total_timeout=10.0,  # every attempt and wait fits in 10 s
    )
    async with AsyncHTTPClient(base_url, config=config) as client:
        # 1. Two 503s, then 200.
        response = await client.get("/flaky")
        print(f"GET /flaky: {response.status_code} after {response.attempts} attempts")
        assert response.attempts == 3

        # 2. A 429 asking for 1 s (delta-seconds are whole seconds, RFC 9110).
        start = time.perf_counter()
        response = await client.get("/limited")
        waited = time.perf_counter() - start
        print(f"GET /limited: {response.status_code}, waited {waited:.2f} s as Retry-After asked")
        assert response.status_code == 200 and waited >= 0.9

        # 3. A POST is sent once: the 503 came after the server had it.
        response = await client.post("/orders", json={"sku": "A-1"})
        print(f"POST /orders without a key: {response.status_code}, sent once")
        assert response.status_code == 503 and response.attempts == 1
        try:
            response.raise_for_status()  # a final failure status is the caller's to handle
        except HTTPResponseError as exc:
            print(f"  raise_for_status(): {type(exc).__name__} {exc.status_code}")
        # With an Idempotency-Key the server can de-duplicate, so it is retried.
        response = await client.post("/orders-keyed", json={"sku": "A-1"}, idempotency_key="order-42")
        print(f"POST /orders-keyed with a key: {response.status_code} after {response.attempts} attempts")

        # 4. A 500 is final here.
        response = await client.get("/broken")
        print(f"GET /broken: {response.status_code} after {response.attempts} attempt(s)")
        assert response.attempts == 1

        # 5. Always 503: the retries run out.
        try:
            await client.get("/down")
        except RetryExhaustedError as exc:
            assert isinstance(exc, httpx.HTTPStatusError)  # still httpx's error
            print(f"GET /down: gave up: {exc}")


if __name__ == "__main__":
    with ChaosServer() as server:
        server.route("/flaky", statuses=[503, 503, 200])
        server.route("/limited", statuses=[429, 200], retry_after=1)
        server.route("/orders", statuses=[503, 200])
        server.route("/orders-keyed", statuses=[503, 200])
        server.route("/broken", status=500)
        server.route("/down", status=503)
        asyncio.run(main(server.url))
        assert server.count("/orders") == 1  # never sent twice
        assert server.count("/orders-keyed") == 2
        assert server.count("/down") == 4
        print("the server saw each request as many times as printed")
