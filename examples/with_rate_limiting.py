"""Client-side rate limiting with a token bucket (run: python examples/with_rate_limiting.py)."""

from __future__ import annotations

import asyncio
import time

from httpx_resilience import AsyncHTTPClient, TokenBucketRateLimiter
from httpx_resilience.testing import ChaosServer


async def main(base_url: str) -> float:
    limiter = TokenBucketRateLimiter(rate=20, burst=5)
    async with AsyncHTTPClient(base_url, rate_limiter=limiter) as client:
        start = time.perf_counter()
        await asyncio.gather(*(client.get(f"/search?q={i}") for i in range(25)))
        took = time.perf_counter() - start
    print(f"25 requests at 20/s with a burst of 5 took {took:.2f} s")
    return took


if __name__ == "__main__":
    with ChaosServer() as server:
        took = asyncio.run(main(server.url))
        assert server.count("/search") == 25
        assert took >= 0.9  # 20 requests beyond the burst need about a second
