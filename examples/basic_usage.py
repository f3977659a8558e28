"""Basic usage: AsyncHTTPClient retrying a flaky endpoint (run: python examples/basic_usage.py).

An embedded ChaosServer plays the upstream: /items answers 503 twice, then 200.
"""

from __future__ import annotations

import asyncio
import logging

from httpx_resilience import AsyncHTTPClient, ClientConfig, LoggingMiddleware
from httpx_resilience.testing import ChaosServer


async def main(base_url: str) -> None:
    config = ClientConfig(
        timeout=5.0,
        total_timeout=15.0,
        retry_attempts=3,
        retry_backoff_factor=0.1,
        retry_statuses={429, 500, 502, 503, 504},
    )
    async with AsyncHTTPClient(base_url, config=config, middlewares=[LoggingMiddleware()]) as client:
        response = await client.get("/items", params={"page": 1})
        print("status:", response.status_code, "attempts:", response.attempts)
        print("json:", response.json_data)
        created = await client.post("/orders", json={"sku": "A-1", "qty": 2}, idempotency_key="order-1")
        print("created:", created.status_code, "request id:", created.request_id)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with ChaosServer() as server:
        server.route("/items", statuses=[503, 503, 200])
        asyncio.run(main(server.url))
        assert server.count("/items") == 3
        assert server.count("/orders") == 1
