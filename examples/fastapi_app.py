"""A FastAPI service calling an upstream through httpx-resilience (run: python examples/fastapi_app.py).

The shape most services have: one long-lived client per upstream, created at
start-up and closed at shutdown (the ``lifespan``), shared by every request
handler; a deadline per inbound request; the upstream's failures mapped to
the right answer for *our* caller:

* the breaker is open → ``503`` with ``Retry-After`` (when it will probe again),
  without waiting on the upstream at all;
* the upstream stays down or too slow → ``502``/``504`` with a short message;
* the upstream's own 404 → our 404.

The script starts the app with uvicorn on a free loopback port, and a
ChaosServer as the upstream, then plays a short outage through the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request, Response

from httpx_resilience import (
    AsyncHTTPClient,
    CircuitBreaker,
    CircuitBreakerOpenError,
    ClientConfig,
    RequestTimeoutError,
    RetryExhaustedError,
)
from httpx_resilience.testing import ChaosServer


def inventory(request: Request) -> AsyncHTTPClient:
    """The shared client, as a FastAPI dependency."""
    client: AsyncHTTPClient = request.app.state.inventory
    return client


Inventory = Annotated[AsyncHTTPClient, Depends(inventory)]


def create_app(upstream_url: str) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = ClientConfig(timeout=0.5, total_timeout=2.0, retry_attempts=2, retry_backoff_factor=0.05)
        breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=1.0, name="inventory")
        async with AsyncHTTPClient(upstream_url, config=config, circuit_breaker=breaker, service="inventory") as client:
            app.state.inventory = client
            yield  # requests are served here; the client (and its pool) closes after

    app = FastAPI(lifespan=lifespan)

    @app.get("/stock/{sku}")
    async def stock(sku: str, response: Response, client: Inventory) -> dict[str, object]:
        try:
            upstream = await client.get(f"/items/{sku}")
        except CircuitBreakerOpenError as exc:
            # Fail fast and tell our caller when to come back.
            raise HTTPException(503, "inventory is unavailable", {"Retry-After": str(max(1, round(exc.retry_in)))}) from exc
        except RequestTimeoutError as exc:
            raise HTTPException(504, "inventory did not answer in time") from exc
        except RetryExhaustedError as exc:
            raise HTTPException(502, "inventory keeps failing") from exc
        if upstream.status_code == 404:
            raise HTTPException(404, f"no such item: {sku}")
        if upstream.status_code >= 400:
            raise HTTPException(502, f"inventory answered {upstream.status_code}")
        response.headers["X-Upstream-Attempts"] = str(upstream.attempts)
        return {"sku": sku, "upstream": upstream.json_data}

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def play(base: str, upstream: ChaosServer) -> list[tuple[int, str | None]]:
    seen: list[tuple[int, str | None]] = []
    async with httpx.AsyncClient(base_url=base) as caller:
        upstream.route("/items/a-1", statuses=[503, 200])
        r = await caller.get("/stock/a-1")  # a 503 repaired by a retry
        seen.append((r.status_code, r.headers.get("x-upstream-attempts")))
        upstream.route("/items/gone", status=404)
        r = await caller.get("/stock/gone")
        seen.append((r.status_code, None))
        upstream.route("/items/b-2", status=503)  # the upstream goes down
        for _ in range(3):
            r = await caller.get("/stock/b-2")
            seen.append((r.status_code, r.headers.get("retry-after")))
    return seen


async def main() -> None:
    with ChaosServer() as upstream:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(upstream.url), port=port, log_level="warning"))
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
            await asyncio.sleep(0.02)
        try:
            seen = await play(f"http://127.0.0.1:{port}", upstream)
        finally:
            server.should_exit = True
            await serving
        for status, extra in seen:
            print(status, extra or "")
        assert seen[0] == (200, "2")
        assert seen[1][0] == 404
        assert seen[2][0] == 502  # retries used up: 3 attempts (the breaker counts 3 failures)
        assert seen[3][0] == seen[4][0] == 503 and seen[3][1] is not None  # open: at once, with Retry-After
        assert upstream.count("/items/b-2") == 3  # the open breaker sent nothing more
        print("the breaker spared the upstream; our callers got 503 + Retry-After at once")


if __name__ == "__main__":
    asyncio.run(main())
