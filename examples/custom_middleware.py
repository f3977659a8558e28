"""A middleware of your own on AsyncHTTPClient (run: python examples/custom_middleware.py).

Middlewares run once per logical request, around the whole pipeline (not per
attempt): ``process_request`` in the order given, ``process_response`` in
reverse on the final response, ``process_error`` when the request ends in an
exception. This one does three things services often need:

* adds a tenant header and a ``traceparent``-style correlation id;
* measures each logical request, retries and waits included, per route;
* turns a JSON error body into a typed exception the caller can catch.

An embedded ChaosServer plays the upstream; the script checks what it saw.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict

from httpx_resilience import (
    AsyncHTTPClient,
    ClientConfig,
    HTTPRequest,
    HTTPResponse,
    Middleware,
    RequestTimeoutError,
)
from httpx_resilience.testing import ChaosServer, Fault


class UpstreamRejected(Exception):
    """The upstream answered a 4xx with a JSON error body."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(f"upstream rejected the request: {status} {code}")
        self.status, self.code = status, code


class TenantAndTiming(Middleware):
    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.started: dict[int, float] = {}
        self.timings: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []

    async def process_request(self, request: HTTPRequest, client: object) -> HTTPRequest:
        request.headers["X-Tenant"] = self.tenant
        request.headers.setdefault("X-Correlation-Id", uuid.uuid4().hex)
        self.started[id(request)] = time.perf_counter()
        return request

    async def process_response(self, response: HTTPResponse, request: HTTPRequest) -> HTTPResponse:
        took = time.perf_counter() - self.started.pop(id(request))
        self.timings[request.url.split("?")[0]].append(took)
        if 400 <= response.status_code < 500 and isinstance(response.json_data, dict):
            raise UpstreamRejected(response.status_code, str(response.json_data.get("error")))
        return response

    async def process_error(self, error: BaseException, request: HTTPRequest) -> None:
        self.started.pop(id(request), None)
        self.errors.append(type(error).__name__)


async def main(server: ChaosServer) -> TenantAndTiming:
    mw = TenantAndTiming("acme")
    config = ClientConfig(retry_attempts=2, retry_backoff_factor=0.05)
    async with AsyncHTTPClient(server.url, config=config, middlewares=[mw]) as client:
        response = await client.get("/orders")  # a 503 first: one logical request, two attempts
        print(f"GET /orders: {response.status_code} after {response.attempts} attempts")
        try:
            await client.post("/orders", json={"sku": ""})
        except UpstreamRejected as exc:
            print(f"POST /orders: {exc}")
            assert exc.code == "invalid_sku"
        try:  # every attempt times out: process_error sees the final error
            await client.get("/slow", timeout=0.2)
        except RequestTimeoutError as exc:
            print(f"GET /slow: {type(exc).__name__} after the retries")
    for route, took in mw.timings.items():
        print(f"{route}: {len(took)} logical request(s), slowest {max(took) * 1000:.0f} ms")
    return mw


if __name__ == "__main__":
    with ChaosServer() as chaos:
        chaos.route(
            "/orders",
            steps=[Fault(status=503), Fault(status=200), Fault(status=422, body={"error": "invalid_sku"})],
        )
        chaos.route("/slow", latency=1.0)
        mw = asyncio.run(main(chaos))
        seen = chaos.requests("/orders")
        assert len(seen) == 3  # 503 + 200 for the GET, 422 for the POST
        assert all(r.headers["x-tenant"] == "acme" for r in seen)
        assert seen[0].headers["x-correlation-id"] == seen[1].headers["x-correlation-id"]  # per logical request
        assert seen[1].headers["x-correlation-id"] != seen[2].headers["x-correlation-id"]
        assert len(mw.errors) == 1 and "Timeout" in mw.errors[0]
        assert chaos.count("/slow") == 3  # the first attempt and two retries
        print("the middleware ran once per logical request, on every attempt's headers")
