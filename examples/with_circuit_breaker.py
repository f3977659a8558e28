"""A circuit breaker that stops hammering a failing upstream (run: python examples/with_circuit_breaker.py).

/health answers 503; after 3 failures the breaker opens and requests fail fast
without reaching the server.
"""

from __future__ import annotations

import asyncio

from httpx_resilience import (
    AsyncHTTPClient,
    CircuitBreaker,
    CircuitBreakerOpenError,
    ClientConfig,
    RetryExhaustedError,
)
from httpx_resilience.testing import ChaosServer


async def main(server: ChaosServer) -> None:
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=30.0, name="inventory")
    breaker.add_listener(lambda t: print(f"breaker {t.name}: {t.old.value} -> {t.new.value}"))
    config = ClientConfig(retry_attempts=1, retry_backoff_factor=0.01)
    async with AsyncHTTPClient(server.url, config=config, circuit_breaker=breaker) as client:
        for i in range(5):
            try:
                await client.get("/health")
            except CircuitBreakerOpenError as exc:
                print(f"call {i}: refused at once, next probe in {exc.retry_in:.0f} s")
            except RetryExhaustedError as exc:
                print(f"call {i}: failed after {exc.attempts} attempts")
    print("requests that reached the server:", server.count("/health"))


if __name__ == "__main__":
    with ChaosServer() as chaos:
        chaos.route("/health", status=503)
        asyncio.run(main(chaos))
        assert chaos.count("/health") == 3
