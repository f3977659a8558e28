"""One benchmark client run in its own process: N requests at concurrency C, CPU time measured.

Usage: python bench/client.py VARIANT URL --requests N --concurrency C
Prints one JSON line: {"variant", "concurrency", "requests", "wall_s", "cpu_s", "errors"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

VARIANTS = ("httpx", "resilient", "tenacity", "httpx_retries")


def limits(concurrency: int) -> httpx.Limits:
    return httpx.Limits(max_connections=max(concurrency, 1), max_keepalive_connections=max(concurrency, 1))


def build(variant: str, concurrency: int) -> tuple[httpx.AsyncClient, Callable[[httpx.AsyncClient, str], Awaitable[Any]]]:
    """The client and the call for one variant; all use the same pool limits and timeout."""
    timeout = httpx.Timeout(10.0)

    async def plain_get(client: httpx.AsyncClient, url: str) -> Any:
        return await client.get(url)

    if variant == "httpx":
        return httpx.AsyncClient(timeout=timeout, limits=limits(concurrency)), plain_get
    if variant == "resilient":
        from httpx_resilience import ClientConfig, ResilientTransport, RetryPolicy

        config = ClientConfig(
            timeout=10.0, total_timeout=30.0, transport="httpx",
            max_connections=max(concurrency, 1), max_keepalive_connections=max(concurrency, 1),
        )
        # Every policy of the pipeline issue on: retry + budget, attempt timeout,
        # total deadline, request id.
        transport = ResilientTransport(config=config, retry=RetryPolicy.from_config(config))
        return httpx.AsyncClient(timeout=timeout, transport=transport), plain_get
    if variant == "tenacity":
        from tenacity import (
            AsyncRetrying,
            retry_if_exception_type,
            stop_after_attempt,
            wait_exponential,
        )

        async def tenacious_get(client: httpx.AsyncClient, url: str) -> Any:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(4),
                wait=wait_exponential(multiplier=1, max=60),
                retry=retry_if_exception_type(httpx.TransportError),
                reraise=True,
            ):
                with attempt:
                    return await client.get(url)
            return None

        return httpx.AsyncClient(timeout=timeout, limits=limits(concurrency)), tenacious_get
    if variant == "httpx_retries":
        from httpx_retries import Retry, RetryTransport

        inner = httpx.AsyncHTTPTransport(limits=limits(concurrency))
        transport = RetryTransport(transport=inner, retry=Retry(total=3, backoff_factor=1.0))
        return httpx.AsyncClient(timeout=timeout, transport=transport), plain_get
    raise SystemExit(f"unknown variant {variant!r}; choose from {VARIANTS}")


async def run(variant: str, url: str, requests: int, concurrency: int, warmup: int) -> dict[str, Any]:
    client, call = build(variant, concurrency)
    errors = 0
    async with client:
        sem = asyncio.Semaphore(concurrency)

        async def one() -> None:
            nonlocal errors
            async with sem:
                try:
                    r = await call(client, url)
                    if r.status_code != 200:
                        errors += 1
                except Exception:
                    errors += 1

        await asyncio.gather(*(one() for _ in range(warmup)))
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one() for _ in range(requests)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "variant": variant, "concurrency": concurrency, "requests": requests,
        "wall_s": wall, "cpu_s": cpu, "errors": errors,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("variant", choices=VARIANTS)
    p.add_argument("url")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--warmup", type=int, default=200)
    a = p.parse_args()
    print(json.dumps(asyncio.run(run(a.variant, a.url, a.requests, a.concurrency, a.warmup))))


if __name__ == "__main__":
    main()
