"""Retrying any async function with seed 002's helpers (run: python examples/generic_retry.py)."""

from __future__ import annotations

import asyncio
import logging

from httpx_resilience import HTTPResponseError, RetryStats, retry_async, with_api_retry, with_retry

calls = {"flaky": 0, "api": 0}


async def flaky_fetch(user_id: int) -> dict[str, int]:
    calls["flaky"] += 1
    if calls["flaky"] < 3:
        raise ConnectionError("network blip")
    return {"id": user_id}


stats = RetryStats()


@with_retry(max_attempts=3, delay=0.01, backoff=2.0, exceptions=(ConnectionError,), stats=stats)
async def decorated(user_id: int) -> dict[str, int]:
    return await flaky_fetch(user_id)


@with_api_retry(max_attempts=3, delay=0.01)
async def call_api() -> str:
    calls["api"] += 1
    if calls["api"] == 1:
        raise HTTPResponseError(503, "upstream busy")
    return "ok"


async def main() -> None:
    print(await retry_async(flaky_fetch, 7, max_attempts=5, delay=0.01))
    calls["flaky"] = 0
    print(await decorated(8), "retries:", stats.retries)
    print(await call_api())


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    asyncio.run(main())
    assert stats.retries == 2 and calls["api"] == 2
