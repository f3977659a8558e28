"""The pipeline under a plain httpx.AsyncClient, e.g. for an SDK that accepts one
(run: python examples/plain_httpx_transport.py)."""

from __future__ import annotations

import asyncio

import httpx

from httpx_resilience import ResilientTransport, RetryPolicy
from httpx_resilience.testing import ChaosServer


async def main(base_url: str) -> None:
    transport = ResilientTransport(
        retry=RetryPolicy(max_attempts=4, backoff_factor=0.05),
        timeout=2.0,
        total_timeout=10.0,
    )
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        response = await client.get("/flaky")
        info = response.extensions["resilience"]
        print(response.status_code, f"after {info.attempts} attempts, waited {info.total_wait:.2f} s")
        try:
            await client.get("/dead", extensions={"resilience": {"retry": RetryPolicy(max_attempts=2)}})
        except httpx.TransportError as exc:  # our errors are httpx errors too
            print("gave up:", type(exc).__name__)


if __name__ == "__main__":
    with ChaosServer() as server:
        server.route("/flaky", statuses=[502, 200])
        server.route("/dead", reset="before_headers")
        asyncio.run(main(server.url))
        assert server.count("/flaky") == 2 and server.count("/dead") == 2
