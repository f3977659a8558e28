"""The openai SDK's SYNC client over ResilientTransport, against a local fake of its API.

``openai.OpenAI(http_client=httpx.Client(transport=ResilientTransport(...)), max_retries=0)``
is the sync recipe of docs/sync.md; the async twin is test_openai_sdk.py, whose
fake API bodies (``_fake_openai``) this file reuses. Proven here, with the
requests counted where they arrive (ChaosServer on loopback):

- the SDK's call succeeds through our retries (503, 429 + ``Retry-After`` on
  the injected clock, a reset), one SDK request and one request id upstream;
- the SDK's own retries multiply ours: ``max_retries=2`` × 3 attempts = 9
  requests for a call that keeps failing; ``max_retries=0`` leaves 3;
- a POST that may have reached the server is not resent by default;
- what the SDK's user catches: an open breaker is ``openai.APIConnectionError``
  (nothing sent), an attempt timeout ``openai.APITimeoutError``;
- a streamed completion arrives as it is sent (the first event before the
  server sends the rest): marked by the recipe's request hook, or not marked
  at all, since a ``text/event-stream`` answer is never buffered.
"""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest

from httpx_resilience import (
    CircuitBreaker,
    CircuitBreakerOpenError,
    RequestTimeoutError,
    ResilientTransport,
    RetryExhaustedError,
    RetryPolicy,
)
from httpx_resilience.testing import ChaosServer, FakeClock, Fault

from ._fake_openai import (
    CHAT_PATH,
    EMBEDDINGS_PATH,
    GatedStreamServer,
    chat_completion,
    embeddings,
    sse,
)

openai = pytest.importorskip("openai")

MESSAGES = [{"role": "user", "content": "ping"}]
# The recipe's policy: POST opted in (the SDK would resend POSTs itself with its retries on).
SDK_RETRY = RetryPolicy(
    max_attempts=3, backoff_factor=0.01, max_delay=5.0, methods=RetryPolicy().methods | {"POST"}
)
DEFAULT_METHODS_RETRY = RetryPolicy(max_attempts=3, backoff_factor=0.01, max_delay=0.05)


def sdk(base_url: str, transport: ResilientTransport, **options: object) -> openai.OpenAI:
    """A sync ``OpenAI`` client over ``transport`` (``max_retries=0`` unless given)."""
    options.setdefault("max_retries", 0)
    hooks = options.pop("hooks", [])
    return openai.OpenAI(
        base_url=base_url,
        api_key="sk-test",
        http_client=httpx.Client(transport=transport, event_hooks={"request": hooks}),  # type: ignore[dict-item]
        **options,  # type: ignore[arg-type]
    )


def mark_streams(request: httpx.Request) -> None:
    """The recipe's request hook, sync: a request whose JSON body asks for a stream is not buffered."""
    try:
        body = json.loads(request.content)
    except (httpx.RequestNotRead, ValueError):
        return
    if isinstance(body, dict) and body.get("stream") is True:
        request.extensions = {**request.extensions, "resilience": {"stream": True}}


def assert_one_logical_request(server: ChaosServer, path: str, attempts: int) -> None:
    """The server saw ``attempts`` requests: one SDK request (retry count 0), one request id."""
    seen = server.requests(path)
    assert len(seen) == server.count(path) == attempts
    assert {r.headers["x-stainless-retry-count"] for r in seen} == {"0"}
    assert len({r.headers["x-request-id"] for r in seen}) == 1


FAULTS = {
    "503": Fault(status=503),
    "429 with Retry-After": Fault(status=429, retry_after=2),
    "reset before the response": Fault(reset="before_headers"),
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_chat_completion_succeeds_through_our_retries(chaos_server: ChaosServer, fault: Fault) -> None:
    """One fault, then the answer: the SDK returns the completion; the server saw our 2 attempts."""
    chaos_server.route(CHAT_PATH, steps=[fault, Fault(body=chat_completion("pong"))])
    clock = FakeClock()
    transport = ResilientTransport(retry=SDK_RETRY, timeout=2.0, clock=clock)
    with sdk(chaos_server.url + "/v1", transport) as client:
        raw = client.chat.completions.with_raw_response.create(model="fake-model", messages=MESSAGES)
        completion = raw.parse()
    assert completion.choices[0].message.content == "pong"
    assert raw.http_response.extensions["resilience"].attempts == 2
    assert_one_logical_request(chaos_server, CHAT_PATH, 2)
    if fault.retry_after is not None:
        assert clock.sleeps == [2.0]  # the server's Retry-After, waited on the injected clock


def test_embeddings_succeed_through_our_retries(chaos_server: ChaosServer) -> None:
    """Another endpoint, the same sync pipeline: 502, then the vector."""
    chaos_server.route(EMBEDDINGS_PATH, steps=[Fault(status=502), Fault(body=embeddings((0.5, 1.5)))])
    with sdk(chaos_server.url + "/v1", ResilientTransport(retry=SDK_RETRY)) as client:
        result = client.embeddings.create(model="fake-embedding", input="ping")
    assert result.data[0].embedding == [0.5, 1.5]
    assert_one_logical_request(chaos_server, EMBEDDINGS_PATH, 2)


@pytest.mark.parametrize(("max_retries", "upstream"), [(2, 9), (0, 3)])
def test_sdk_retries_multiply_our_attempts(chaos_server: ChaosServer, max_retries: int, upstream: int) -> None:
    """A call that keeps failing: (SDK retries + 1) × our attempts reach the server."""
    # retry-after-ms: the SDK's own wait header, so its retries do not sleep in the test
    chaos_server.route(CHAT_PATH, status=503, headers={"retry-after-ms": "1"})
    client = sdk(chaos_server.url + "/v1", ResilientTransport(retry=SDK_RETRY), max_retries=max_retries)
    with client, pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="fake-model", messages=MESSAGES)
    assert caught.value.status_code == 503
    assert chaos_server.count(CHAT_PATH) == upstream == (max_retries + 1) * SDK_RETRY.max_attempts
    counts = [r.headers["x-stainless-retry-count"] for r in chaos_server.requests(CHAT_PATH)]
    assert counts == [str(n) for n in range(max_retries + 1) for _ in range(3)]


def test_a_post_that_left_is_not_resent_by_default(chaos_server: ChaosServer) -> None:
    """The SDK sends no Idempotency-Key: with the default methods a POST that got a 503 goes once."""
    chaos_server.route(CHAT_PATH, steps=[Fault(status=503), Fault(body=chat_completion())])
    client = sdk(chaos_server.url + "/v1", ResilientTransport(retry=DEFAULT_METHODS_RETRY))
    with client, pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="fake-model", messages=MESSAGES)
    assert chaos_server.count(CHAT_PATH) == 1


def test_open_breaker_is_an_api_connection_error_and_sends_nothing(chaos_server: ChaosServer) -> None:
    """Two 503s open the breaker; the third call fails at once as ``APIConnectionError``."""
    chaos_server.route(CHAT_PATH, status=503)
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=60.0)
    transport = ResilientTransport(retry=RetryPolicy(max_attempts=1), circuit_breaker=breaker)
    with sdk(chaos_server.url + "/v1", transport) as client:
        for _ in range(2):
            with pytest.raises(openai.InternalServerError):
                client.chat.completions.create(model="fake-model", messages=MESSAGES)
        with pytest.raises(openai.APIConnectionError) as caught:
            client.chat.completions.create(model="fake-model", messages=MESSAGES)
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert isinstance(caught.value.__cause__, CircuitBreakerOpenError)
    assert chaos_server.count(CHAT_PATH) == 2  # the open breaker sent nothing


def test_attempt_timeout_is_an_api_timeout_error(chaos_server: ChaosServer) -> None:
    """Every attempt too slow: ``APITimeoutError``, chained to our timeout after 2 attempts."""
    chaos_server.route(CHAT_PATH, latency=30.0)
    retry = RetryPolicy(max_attempts=2, backoff_factor=0.01, methods=SDK_RETRY.methods)
    client = sdk(chaos_server.url + "/v1", ResilientTransport(retry=retry, timeout=0.3))
    with client, pytest.raises(openai.APITimeoutError) as caught:
        client.chat.completions.create(model="fake-model", messages=MESSAGES)
    cause = caught.value.__cause__
    assert isinstance(cause, RequestTimeoutError) and isinstance(cause, RetryExhaustedError)
    assert cause.attempts == 2 == chaos_server.count(CHAT_PATH)


def test_a_marked_stream_arrives_whole(chaos_server: ChaosServer) -> None:
    """``stream=True`` with the recipe's hook: the events come through the sync pipeline unbuffered."""
    chaos_server.route(
        CHAT_PATH, body=sse(["a", "b", "c"]), headers={"content-type": "text/event-stream"}
    )
    transport = ResilientTransport(retry=RetryPolicy(max_attempts=1), timeout=2.0)
    with sdk(chaos_server.url + "/v1", transport, hooks=[mark_streams]) as client:
        stream = client.chat.completions.create(model="fake-model", messages=MESSAGES, stream=True)
        words = [chunk.choices[0].delta.content for chunk in stream]
    assert words == ["a", "b", "c"] and chaos_server.count(CHAT_PATH) == 1


class GateInAThread:
    """:class:`GatedStreamServer` on an event loop of its own thread, for the sync client."""

    def __init__(self, words: list[str]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = GatedStreamServer(words)

    def __enter__(self) -> GatedStreamServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.__aenter__(), self.loop).result(5)
        return self.server

    def open_gate(self) -> None:
        self.loop.call_soon_threadsafe(self.server.open_gate)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.__aexit__(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def first_then_rest(gate: GateInAThread, server: GatedStreamServer, hooks: list[object]) -> list[str]:
    """Stream a completion; open the server's gate only once the first event has arrived."""
    transport = ResilientTransport(retry=RetryPolicy(max_attempts=1), timeout=1.0)
    words: list[str] = []
    with sdk(server.url, transport, hooks=hooks) as client:
        stream = client.chat.completions.create(model="fake-model", messages=MESSAGES, stream=True)
        for chunk in stream:
            words.append(chunk.choices[0].delta.content or "")
            gate.open_gate()  # only now may the server send the rest
    return words


def test_a_marked_stream_arrives_as_it_is_sent() -> None:
    """With the recipe's sync hook the first event reaches the caller before the server sends
    the rest: the sync path hands the stream over unbuffered."""
    gate = GateInAThread(["a", "b", "c"])
    with gate as server:
        words = first_then_rest(gate, server, [mark_streams])
    assert words == ["a", "b", "c"] and server.requests == 1


def test_an_event_stream_arrives_as_it_is_sent_without_the_hook() -> None:
    """A text/event-stream answer is never buffered on the sync path either: the first event
    reaches the caller before the server sends the rest, with no hook."""
    gate = GateInAThread(["a", "b", "c"])
    with gate as server:
        words = first_then_rest(gate, server, [])
        assert words == ["a", "b", "c"] and server.requests == 1
