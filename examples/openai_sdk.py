"""The openai SDK over the resilience pipeline, against a local fake of its API
(run: python examples/openai_sdk.py; needs `pip install openai`).

The recipe of docs/recipes.md: the SDK's own retries off (``max_retries=0``)
so attempts do not multiply, POST opted in to our retries (the SDK resends
POSTs itself when its retries are on); a streamed completion is a
``text/event-stream``, which the pipeline never buffers.
"""

from __future__ import annotations

import asyncio
import json

import httpx

from httpx_resilience import CircuitBreaker, ResilientTransport, RetryPolicy
from httpx_resilience.testing import ChaosServer, Fault

try:
    import openai
except ImportError:  # pragma: no cover - the example needs the SDK
    raise SystemExit("this example needs the openai package: pip install openai") from None

COMPLETION = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": "fake",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "pong"}}],
}
PATH = "/v1/chat/completions"
CHUNK = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000,
         "model": "fake", "choices": [{"index": 0, "delta": {"content": "po"}, "finish_reason": None}]}
EVENTS = f"data: {json.dumps(CHUNK)}\n\n" * 2 + "data: [DONE]\n\n"


def resilient_openai(base_url: str, *, max_retries: int = 0, breaker: bool = True) -> openai.AsyncOpenAI:
    """The recipe: our pipeline retries, the SDK does not (max_retries=0)."""
    transport = ResilientTransport(
        retry=RetryPolicy(max_attempts=3, backoff_factor=0.05, max_delay=10.0,
                          methods=RetryPolicy().methods | {"POST"}),
        circuit_breaker=(CircuitBreaker(failure_threshold=5, recovery_timeout=30.0, scope="host")
                         if breaker else None),
        timeout=60.0,          # one attempt
        total_timeout=180.0,   # the whole call, retries and waits included
    )
    http_client = httpx.AsyncClient(transport=transport)
    return openai.AsyncOpenAI(base_url=base_url, api_key="sk-local", http_client=http_client,
                              max_retries=max_retries)


async def main(server: ChaosServer) -> None:
    # 503, then 429 with Retry-After: 1, then the answer: one SDK call, three attempts.
    server.route(PATH, steps=[Fault(status=503), Fault(status=429, retry_after=1),
                              Fault(body=COMPLETION)])
    async with resilient_openai(server.url + "/v1") as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="fake", messages=[{"role": "user", "content": "ping"}])
        info = raw.http_response.extensions["resilience"]
        print(f"answer {raw.parse().choices[0].message.content!r} after {info.attempts} attempts, "
              f"waited {info.total_wait:.2f} s; the server saw {server.count(PATH)} requests")
        assert info.attempts == server.count(PATH) == 3

    # A streamed completion (text/event-stream): never buffered, its events come as sent.
    server.route(PATH, body=EVENTS, headers={"content-type": "text/event-stream"},
                 drip=0.01, drip_chunk=64)
    async with resilient_openai(server.url + "/v1") as client:
        stream = await client.chat.completions.create(
            model="fake", messages=[{"role": "user", "content": "ping"}], stream=True)
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
        print(f"streamed {text!r}")
        assert text == "popo"

    # A call that keeps failing: the SDK's retries multiply ours. (No breaker here: with the
    # SDK's retries on, this one call alone would open it after 5 of its 9 attempts.)
    for max_retries in (2, 0):
        server.reset()
        server.route(PATH, status=503, headers={"retry-after-ms": "1"})
        async with resilient_openai(server.url + "/v1", max_retries=max_retries, breaker=False) as client:
            try:
                await client.chat.completions.create(
                    model="fake", messages=[{"role": "user", "content": "ping"}])
            except openai.InternalServerError as exc:
                print(f"max_retries={max_retries}: {type(exc).__name__} after "
                      f"{server.count(PATH)} upstream requests")
        assert server.count(PATH) == (max_retries + 1) * 3


if __name__ == "__main__":
    with ChaosServer() as chaos:
        asyncio.run(main(chaos))
