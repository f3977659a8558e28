"""The openai SDK over ResilientTransport, against a local fake of its API with faults.

``AsyncOpenAI(http_client=httpx.AsyncClient(transport=ResilientTransport(...)))``
is the recipe of docs/recipes.md ("The openai SDK"). Proven here, with the
requests counted where they arrive (ChaosServer on loopback):

- the SDK's call succeeds through our retries (503, 429 + ``Retry-After``, a
  slow first attempt, a reset), and the server sees exactly our attempts;
- the SDK's own retries multiply ours: ``max_retries=2`` × 3 attempts = 9
  requests for a call that keeps failing; ``max_retries=0`` leaves 3;
- the SDK sends no ``Idempotency-Key``, so a POST that may have reached the
  server is not resent unless the recipe opts POST in (or a key is given);
  one that never left (connection refused) is, whatever the method;
- what the SDK's user catches: an open breaker is ``openai.APIConnectionError``,
  an attempt timeout ``openai.APITimeoutError``, a final status the SDK's
  status error, each chained to our error;
- a streamed completion is buffered by the pipeline unless the request is
  marked as a stream (the recipe's request hook), and then arrives as it is sent.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Awaitable, Callable

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
)

openai = pytest.importorskip("openai")

MESSAGES = [{"role": "user", "content": "ping"}]
# The recipe's policy: POST opted in (the SDK resends POSTs itself when its retries are on),
# short backoff for the test (a Retry-After up to max_delay is waited: the fake clock in the 429 case).
SDK_RETRY = RetryPolicy(
    max_attempts=3, backoff_factor=0.01, max_delay=5.0, methods=RetryPolicy().methods | {"POST"}
)
# The default methods: POST is resent only when it never left, or carries an Idempotency-Key.
DEFAULT_METHODS_RETRY = RetryPolicy(max_attempts=3, backoff_factor=0.01, max_delay=0.05)


def sdk(base_url: str, transport: httpx.AsyncBaseTransport, **options: object) -> openai.AsyncOpenAI:
    """An ``AsyncOpenAI`` over ``transport`` (``max_retries=0`` unless given)."""
    options.setdefault("max_retries", 0)
    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key="sk-test",
        http_client=httpx.AsyncClient(transport=transport),
        **options,  # type: ignore[arg-type]
    )


async def stream_marker(request: httpx.Request) -> None:
    """The recipe's request hook: a request whose JSON body asks for a stream is not buffered."""
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


# -- the SDK's call succeeds through our retries -------------------------------------------

FAULTS = {
    "503": Fault(status=503),
    "429 with Retry-After": Fault(status=429, retry_after=2),
    "reset before the response": Fault(reset="before_headers"),
    "slow first attempt": Fault(latency=30.0),
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
async def test_chat_completion_succeeds_through_our_retries(
    chaos_server: ChaosServer, fault: Fault
) -> None:
    """One fault, then the answer: the SDK returns the completion; the server saw our 2 attempts."""
    chaos_server.route(CHAT_PATH, steps=[fault, Fault(body=chat_completion("pong"))])
    clock = FakeClock() if fault.retry_after is not None else None
    transport = ResilientTransport(retry=SDK_RETRY, timeout=1.0, clock=clock)
    async with sdk(chaos_server.url + "/v1", transport) as client:
        raw = await client.chat.completions.with_raw_response.create(model="fake-model", messages=MESSAGES)
        completion = raw.parse()
    assert completion.choices[0].message.content == "pong"
    assert raw.http_response.extensions["resilience"].attempts == 2
    assert_one_logical_request(chaos_server, CHAT_PATH, 2)
    if clock is not None:
        assert clock.sleeps == [2.0]  # the server's Retry-After, waited by the pipeline


async def test_embeddings_succeed_through_our_retries(chaos_server: ChaosServer) -> None:
    """Another endpoint, the same pipeline: 502, then the vector."""
    chaos_server.route(EMBEDDINGS_PATH, steps=[Fault(status=502), Fault(body=embeddings((0.5, 1.5)))])
    async with sdk(chaos_server.url + "/v1", ResilientTransport(retry=SDK_RETRY)) as client:
        result = await client.embeddings.create(model="fake-embedding", input="ping")
    assert result.data[0].embedding == [0.5, 1.5]
    assert_one_logical_request(chaos_server, EMBEDDINGS_PATH, 2)


# -- the SDK's retries multiply ours --------------------------------------------------------


@pytest.mark.parametrize(("max_retries", "upstream"), [(2, 9), (0, 3)])
async def test_sdk_retries_multiply_our_attempts(
    chaos_server: ChaosServer, max_retries: int, upstream: int
) -> None:
    """A call that keeps failing: (SDK retries + 1) × our attempts reach the server."""
    # retry-after-ms: the SDK's own wait header, so its retries do not sleep in the test
    chaos_server.route(CHAT_PATH, status=503, headers={"retry-after-ms": "1"})
    transport = ResilientTransport(retry=SDK_RETRY)
    async with sdk(chaos_server.url + "/v1", transport, max_retries=max_retries) as client:
        with pytest.raises(openai.InternalServerError) as caught:
            await client.chat.completions.create(model="fake-model", messages=MESSAGES)
    assert caught.value.status_code == 503
    assert chaos_server.count(CHAT_PATH) == upstream == (max_retries + 1) * SDK_RETRY.max_attempts
    counts = [r.headers["x-stainless-retry-count"] for r in chaos_server.requests(CHAT_PATH)]
    # each SDK request (its retry count) was attempted 3 times by the pipeline
    assert counts == [str(n) for n in range(max_retries + 1) for _ in range(3)]


# -- a POST is resent only when it is safe --------------------------------------------------

SENT_FAULTS = {
    "503": (Fault(status=503), "InternalServerError"),
    "reset after sending": (Fault(reset="before_headers"), "APIConnectionError"),
    "attempt timeout": (Fault(latency=30.0), "APITimeoutError"),
}


@pytest.mark.parametrize(("fault", "error"), SENT_FAULTS.values(), ids=SENT_FAULTS.keys())
async def test_post_that_left_is_not_resent_by_default(
    chaos_server: ChaosServer, fault: Fault, error: str
) -> None:
    """The SDK sends no Idempotency-Key: with the default methods a POST that left goes once."""
    chaos_server.route(CHAT_PATH, steps=[fault, Fault(body=chat_completion())])
    transport = ResilientTransport(retry=DEFAULT_METHODS_RETRY, timeout=0.5)
    async with sdk(chaos_server.url + "/v1", transport) as client:
        with pytest.raises(getattr(openai, error)):
            await client.chat.completions.create(model="fake-model", messages=MESSAGES)
    assert chaos_server.count(CHAT_PATH) == 1
    assert "idempotency-key" not in chaos_server.requests(CHAT_PATH)[0].headers


@pytest.mark.parametrize(("fault", "error"), SENT_FAULTS.values(), ids=SENT_FAULTS.keys())
async def test_post_with_idempotency_key_is_resent_with_the_same_key(
    chaos_server: ChaosServer, fault: Fault, error: str
) -> None:
    """``extra_headers={"Idempotency-Key": ...}`` per call makes the resend safe: same key twice."""
    chaos_server.route(CHAT_PATH, steps=[fault, Fault(body=chat_completion("pong"))])
    transport = ResilientTransport(retry=DEFAULT_METHODS_RETRY, timeout=1.0)
    key = str(uuid.uuid4())
    async with sdk(chaos_server.url + "/v1", transport) as client:
        completion = await client.chat.completions.create(
            model="fake-model", messages=MESSAGES, extra_headers={"Idempotency-Key": key}
        )
    assert completion.choices[0].message.content == "pong"
    assert [r.headers["idempotency-key"] for r in chaos_server.requests(CHAT_PATH)] == [key, key]


async def test_post_that_never_left_is_retried_whatever_the_method() -> None:
    """Connection refused: nothing was sent, so our 3 attempts are made; the SDK says connection error."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: connections are refused
    transport = ResilientTransport(retry=DEFAULT_METHODS_RETRY)
    async with sdk(f"http://127.0.0.1:{port}/v1", transport) as client:
        with pytest.raises(openai.APIConnectionError) as caught:
            await client.chat.completions.create(model="fake-model", messages=MESSAGES)
    cause = caught.value.__cause__
    assert isinstance(cause, RetryExhaustedError) and isinstance(cause, httpx.ConnectError)
    assert cause.attempts == 3


# -- what the SDK's user catches ------------------------------------------------------------


async def test_open_breaker_is_an_api_connection_error_and_sends_nothing(
    chaos_server: ChaosServer,
) -> None:
    """Two 503s open the breaker; the third call fails at once as ``APIConnectionError``."""
    chaos_server.route(CHAT_PATH, status=503)
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=60.0)
    transport = ResilientTransport(retry=RetryPolicy(max_attempts=1), circuit_breaker=breaker)
    async with sdk(chaos_server.url + "/v1", transport) as client:
        for _ in range(2):
            with pytest.raises(openai.InternalServerError):
                await client.chat.completions.create(model="fake-model", messages=MESSAGES)
        with pytest.raises(openai.APIConnectionError) as caught:
            await client.chat.completions.create(model="fake-model", messages=MESSAGES)
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert isinstance(caught.value.__cause__, CircuitBreakerOpenError)
    assert chaos_server.count(CHAT_PATH) == 2  # the open breaker sent nothing


async def test_attempt_timeout_is_an_api_timeout_error(chaos_server: ChaosServer) -> None:
    """Every attempt too slow: ``APITimeoutError``, chained to our timeout after 2 attempts."""
    chaos_server.route(CHAT_PATH, latency=30.0)
    retry = RetryPolicy(max_attempts=2, backoff_factor=0.01, methods=SDK_RETRY.methods)
    async with sdk(chaos_server.url + "/v1", ResilientTransport(retry=retry, timeout=0.3)) as client:
        with pytest.raises(openai.APITimeoutError) as caught:
            await client.chat.completions.create(model="fake-model", messages=MESSAGES)
    cause = caught.value.__cause__
    assert isinstance(cause, RequestTimeoutError) and isinstance(cause, RetryExhaustedError)
    assert cause.attempts == 2 == chaos_server.count(CHAT_PATH)


# -- streamed completions -------------------------------------------------------------------


async def _first_then_rest(
    server: GatedStreamServer, hooks: list[Callable[[httpx.Request], Awaitable[None]]]
) -> list[str]:
    transport = ResilientTransport(retry=RetryPolicy(max_attempts=1), timeout=1.0)
    words: list[str] = []
    async with openai.AsyncOpenAI(
        base_url=server.url,
        api_key="sk-test",
        max_retries=0,
        http_client=httpx.AsyncClient(transport=transport, event_hooks={"request": hooks}),
    ) as client:
        stream = await client.chat.completions.create(model="fake-model", messages=MESSAGES, stream=True)
        async for chunk in stream:
            words.append(chunk.choices[0].delta.content or "")
            server.open_gate()  # only now may the server send the rest
    return words


async def test_marked_stream_arrives_as_it_is_sent() -> None:
    """With the recipe's hook the first event reaches the caller before the server sends the rest."""
    async with GatedStreamServer(["a", "b", "c"]) as server:
        words = await _first_then_rest(server, [stream_marker])
    assert words == ["a", "b", "c"] and server.requests == 1


async def test_an_event_stream_arrives_as_it_is_sent_without_the_hook() -> None:
    """A text/event-stream answer is never buffered: the first event reaches the caller before
    the server sends the rest, with no hook at all (the attempt ends at the headers)."""
    async with GatedStreamServer(["a", "b", "c"]) as server:
        words = await _first_then_rest(server, [])
    assert words == ["a", "b", "c"] and server.requests == 1
