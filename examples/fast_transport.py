"""The fast inner transport: NativeTransport under AsyncHTTPClient and under plain httpx.

Run: python examples/fast_transport.py  (needs the ``fast`` extra:
``pip install 'httpx-resilience[fast]'``; without it the script says so and
uses httpx's own transport).

An embedded ChaosServer plays the upstream: ``/flaky`` resets the connection
once, answers 503 once, then 200. The same requests go through
``AsyncHTTPClient`` (``transport="auto"`` picks ``NativeTransport`` when
httptools is installed) and through a plain ``httpx.AsyncClient`` whose
transport is ``ResilientTransport(NativeTransport(...))``. Then 300 quick
GETs, 32 at a time, over each inner transport, to show what the transport
costs in client CPU.
"""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import httpx

from httpx_resilience import AsyncHTTPClient, ClientConfig, ResilientTransport
from httpx_resilience.testing import ChaosServer, Fault
from httpx_resilience.transports import make_transport, native_available

CONFIG = ClientConfig(timeout=5.0, total_timeout=15.0, retry_attempts=3, retry_backoff_factor=0.05)


async def through_the_client(base_url: str) -> str:
    async with AsyncHTTPClient(base_url, config=CONFIG) as client:
        inner = type(client.transport._inner).__name__
        response = await client.get("/flaky")
        assert response.status_code == 200, response
        assert response.attempts == 3, response.attempts  # reset, 503, then 200
        print(f"AsyncHTTPClient over {inner}: {response.status_code} after {response.attempts} attempts")
        return inner


async def through_plain_httpx(base_url: str) -> None:
    inner = make_transport("native" if native_available() else "httpx",
                           limits=httpx.Limits(max_connections=32))
    transport = ResilientTransport(inner, config=CONFIG)
    async with httpx.AsyncClient(base_url=base_url, transport=transport) as client:
        response = await client.get("/flaky2")
        info = response.extensions["resilience"]
        assert response.status_code == 200 and info.attempts == 3, (response, info)
        print(f"httpx.AsyncClient + ResilientTransport({type(inner).__name__}): "
              f"{response.status_code} after {info.attempts} attempts")


async def cpu_per_request(
    base_url: str, kind: Literal["native", "httpx"], requests: int = 300, concurrency: int = 32
) -> float:
    """Client CPU µs per request for ``requests`` GETs through AsyncHTTPClient over ``kind``."""
    config = ClientConfig(timeout=5.0, max_connections=concurrency,
                          max_keepalive_connections=concurrency, transport=kind)
    async with AsyncHTTPClient(base_url, config=config) as client:
        remaining = requests

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                assert (await client.get("/ok")).status_code == 200

        await asyncio.gather(*(worker() for _ in range(concurrency)))  # warm the pool
        remaining = requests
        start = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return (time.process_time() - start) / requests * 1e6


async def main(server: ChaosServer) -> None:
    inner = await through_the_client(server.url)
    if native_available():
        assert inner == "NativeTransport", inner  # what transport="auto" picks
    await through_plain_httpx(server.url)
    if not native_available():
        print("httptools is not installed: pip install 'httpx-resilience[fast]' for NativeTransport")
        return
    # Both numbers include the chaos server's thread, which runs in this process.
    native = await cpu_per_request(server.url, "native")
    default = await cpu_per_request(server.url, "httpx")
    print(f"client CPU per request (this process, server thread included): "
          f"native {native:.0f} µs, httpx's transport {default:.0f} µs")


if __name__ == "__main__":
    with ChaosServer() as chaos:
        flaky = [Fault(reset="before_headers"), Fault(status=503), Fault()]
        chaos.route("/flaky", steps=flaky)
        chaos.route("/flaky2", steps=flaky)
        chaos.route("/ok", body='{"ok": true}')
        asyncio.run(main(chaos))
