"""What a type checker sees of the public API, checked by mypy and by running it.

``mypy --strict tests/typing`` checks every ``assert_type`` below and every
``# type: ignore[code]``: with ``--strict`` (``warn_unused_ignores``) an
ignore on a line that is not an error is itself an error, so each marked
line proves that a mistake a user could make is caught. pytest runs the
same tests (no network: ``httpx.MockTransport``), so the runtime agrees with
the types; the rejected calls live in ``_rejected_by_the_type_checker``,
which is type-checked and never run.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Awaitable, Callable, Coroutine

import httpx
import pytest

from httpx_resilience import (
    AsyncHTTPClient,
    CircuitBreaker,
    CircuitState,
    ClientConfig,
    ConfigurationError,
    HTTPClient,
    HTTPResponse,
    ResilienceInfo,
    ResilienceOptions,
    ResilientTransport,
    RetryDecorator,
    RetryOptions,
    RetryPolicy,
    RetryStats,
    resilience_info,
    retry,
    retry_async,
    with_api_retry,
    with_network_retry,
    with_retry,
)
from httpx_resilience.pipeline._extensions import OPTION_KEYS
from httpx_resilience.testing import FakeClock

if sys.version_info >= (3, 11):
    from typing import assert_type
else:  # pragma: no cover - the CI runs 3.11+
    from typing_extensions import assert_type


def answer(status: int = 200) -> httpx.MockTransport:
    """A transport that answers every request with ``status`` and counts the calls."""
    calls: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, json={"n": len(calls)})

    transport = httpx.MockTransport(handle)
    transport.calls = calls  # type: ignore[attr-defined]
    return transport


# -- the client -------------------------------------------------------------------------


async def test_async_http_client_methods_return_http_response() -> None:
    """request/get/post/... return HTTPResponse; stream() yields an httpx.Response."""
    async with AsyncHTTPClient("http://api.test", transport=answer()) as client:
        assert_type(client, AsyncHTTPClient)
        got = await client.get("/a")
        assert_type(got, HTTPResponse)
        assert_type(await client.request("PUT", "/a", json={"x": 1}), HTTPResponse)
        assert_type(await client.post("/a", idempotency_key="k"), HTTPResponse)
        assert_type(got.status_code, int)
        assert_type(got.attempts, int)
        async with client.stream("GET", "/s") as streamed:
            assert_type(streamed, httpx.Response)
            assert streamed.status_code == 200
    assert isinstance(got, HTTPResponse) and got.status_code == 200


def test_http_client_methods_return_http_response() -> None:
    """The sync facade: the same models; stream() yields an httpx.Response."""
    with HTTPClient("http://api.test", transport=answer()) as client:
        assert_type(client, HTTPClient)
        got = client.get("/a")
        assert_type(got, HTTPResponse)
        assert_type(client.request("PUT", "/a", json={"x": 1}), HTTPResponse)
        assert_type(client.post("/a", idempotency_key="k"), HTTPResponse)
        assert_type(client.httpx_client, httpx.Client)
        with client.stream("GET", "/s") as streamed:
            assert_type(streamed, httpx.Response)
            assert streamed.status_code == 200
    assert got.status_code == 200 and client.is_closed


def test_resilient_transport_is_an_httpx_transport() -> None:
    """It fits wherever httpx takes an AsyncBaseTransport."""
    transport: httpx.AsyncBaseTransport = ResilientTransport(answer())
    client = httpx.AsyncClient(transport=ResilientTransport(answer()))
    assert isinstance(transport, httpx.AsyncBaseTransport)
    assert isinstance(client, httpx.AsyncClient)


# -- extensions["resilience"] -----------------------------------------------------------


async def test_resilience_options_in_and_resilience_info_out() -> None:
    """Typed overrides go in; the typed outcome comes out; the pipeline honours both."""
    inner = answer(503)
    options = ResilienceOptions(retry=RetryPolicy(max_attempts=2, backoff_factor=0), timeout=5.0)
    assert_type(options.get("timeout"), float | None)
    assert_type(options.get("retry"), RetryPolicy | None)
    async with httpx.AsyncClient(transport=ResilientTransport(inner)) as client:
        response = await client.get("http://api.test/x", extensions={"resilience": options})
    info = resilience_info(response)
    assert_type(info, ResilienceInfo | None)
    assert info is not None and info.attempts == 2 and info.stop_reason == "attempts"
    assert len(inner.calls) == 2  # type: ignore[attr-defined]
    assert resilience_info(httpx.Response(200)) is None


async def test_a_typed_fallback_override_answers_a_failed_request() -> None:
    """ResilienceOptions(fallback=...) reaches the pipeline: a refused connection is
    answered by the fallback response."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    options = ResilienceOptions(
        fallback=httpx.Response(200, text="cached"), retry=RetryPolicy(max_attempts=1)
    )
    async with httpx.AsyncClient(transport=ResilientTransport(httpx.MockTransport(refuse))) as c:
        response = await c.get("http://api.test/x", extensions={"resilience": options})
    assert response.status_code == 200 and response.text == "cached"


def test_option_keys_are_the_documented_overrides() -> None:
    """The TypedDict names exactly the keys the pipeline reads (docs/pipeline.md)."""
    assert {
        "retry", "timeout", "total_timeout", "idempotent", "stream", "hedging", "service",
        "max_response_bytes", "fallback", "auth", "auth_origin",
    } == OPTION_KEYS


# -- the generic helpers ----------------------------------------------------------------


@with_retry(max_attempts=2, delay=0.0, clock=FakeClock())
async def fetch(n: int, *, label: str = "x") -> list[int]:
    return [n] * len(label)


def returns_awaitable(n: int) -> Awaitable[str]:
    """A plain function returning an awaitable: accepted, as at run time."""

    async def inner() -> str:
        return str(n)

    return inner()


async def test_with_retry_keeps_the_signature_and_result_type() -> None:
    """Parameters and result survive the decorator; the call gives a coroutine."""
    assert_type(await fetch(2, label="ab"), list[int])
    coroutine = assert_type(fetch(2), Coroutine[object, None, list[int]])
    assert await coroutine == [2]
    task = asyncio.create_task(fetch(3))
    assert_type(task, asyncio.Task[list[int]])
    assert await task == [3]
    assert str(inspect.signature(fetch)) == "(n: 'int', *, label: 'str' = 'x') -> 'list[int]'"
    decorator: RetryDecorator = with_retry(max_attempts=1)
    plain = decorator(returns_awaitable)
    assert_type(await plain(4), str)


async def test_specialised_decorators_and_retry_async_are_typed() -> None:
    """with_network_retry / with_api_retry keep types; retry_async returns func's result."""
    stats = RetryStats()
    options: RetryOptions = {"stats": stats, "clock": FakeClock(), "jitter": "none"}

    @with_network_retry(max_attempts=2, **options)
    async def ping() -> bool:
        return True

    @with_api_retry(max_attempts=2)
    async def load(key: str) -> dict[str, int]:
        return {key: 1}

    assert_type(await ping(), bool)
    assert_type(await load("k"), dict[str, int])
    result = await retry_async(fetch, 5, label="abc", max_attempts=3, clock=FakeClock())
    assert_type(result, list[int])
    assert result == [5, 5, 5] and stats.calls == 1


@with_retry(max_attempts=2, delay=0.0, clock=FakeClock())
def load(n: int, *, label: str = "x") -> list[int]:
    """A plain function: decorated, it stays a plain function."""
    return [n] * len(label)


def test_with_retry_on_a_plain_function_stays_sync() -> None:
    """A decorated def returns its value, not a coroutine; retry() returns func's result."""
    got = load(2, label="ab")
    assert_type(got, list[int])
    assert got == [2, 2] and not inspect.iscoroutinefunction(load)
    assert str(inspect.signature(load)) == "(n: 'int', *, label: 'str' = 'x') -> 'list[int]'"

    def ping(host: str) -> bool:
        return bool(host)

    checked: Callable[[str], bool] = with_network_retry(max_attempts=2)(ping)
    assert_type(with_network_retry()(ping)("h"), bool)
    assert_type(with_api_retry()(ping)("h"), bool)
    decorator: RetryDecorator = with_retry(max_attempts=1)
    assert_type(decorator(ping)("h"), bool)
    result = retry(load, 5, label="abc", max_attempts=3, clock=FakeClock())
    assert_type(result, list[int])
    assert result == [5, 5, 5] and checked("h") is True


async def test_circuit_breaker_call_returns_the_result_type() -> None:
    """call() is typed like the callable it runs; the manual API returns plain types."""
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=1.0)
    assert_type(await breaker.call(fetch, 1, label="z"), list[int])
    assert_type(breaker.state, CircuitState)
    assert_type(breaker.can_execute(), bool)
    assert breaker.state is CircuitState.CLOSED and breaker.can_execute()


def test_policies_and_responses_have_precise_types() -> None:
    """The values users read from a policy or a response are not Any."""
    policy = RetryPolicy(max_attempts=3, jitter="none")
    assert_type(policy.backoff(1), float)
    assert_type(RetryPolicy.from_config(ClientConfig()), RetryPolicy)
    response = HTTPResponse.from_httpx(
        httpx.Response(200, text="ok", request=httpx.Request("GET", "http://api.test/")),
        None, 0.1,
    )
    assert_type(response.raise_for_status(), HTTPResponse)
    assert_type(response.text, str)
    assert policy.backoff(1) == 2.0 and response.raise_for_status() is response


async def test_unknown_options_are_still_refused_at_run_time() -> None:
    """A caller without a type checker gets a ConfigurationError, as before."""
    with pytest.raises(ConfigurationError, match="jiter"):
        with_retry(jiter="full")  # type: ignore[call-arg]


def _rejected_by_the_type_checker() -> None:  # pragma: no cover - type-checked, never run
    """Each line is a mistake mypy reports (the ignore would be unused otherwise)."""

    load("1")  # type: ignore[arg-type]
    load(1, lable="x")  # type: ignore[call-arg]
    retry(load, max_attempts="3")  # type: ignore[arg-type]
    with_retry(max_attempts=2)(load)(1).append("x")  # type: ignore[arg-type]
    asyncio.run(fetch("1"))  # type: ignore[arg-type]
    asyncio.run(fetch(1, lable="x"))  # type: ignore[call-arg]
    with_retry(jitter="sometimes")  # type: ignore[arg-type]
    with_network_retry(budget=0.2)  # type: ignore[arg-type]
    ResilienceOptions(timout=2.0)  # type: ignore[typeddict-unknown-key]
    ResilienceOptions(retry=3)  # type: ignore[typeddict-item]
    ResilientTransport(retry=3)  # type: ignore[arg-type]
    ResilienceOptions(fallback="cached")  # type: ignore[typeddict-item]
    AsyncHTTPClient(rate_limiter="10/s")  # type: ignore[arg-type]
    AsyncHTTPClient(circuit_breaker=5)  # type: ignore[arg-type]
    AsyncHTTPClient(bulkhead=10)  # type: ignore[arg-type]
    AsyncHTTPClient(hedging=0.2)  # type: ignore[arg-type]
    asyncio.run(AsyncHTTPClient().get("/", tiemout=1.0))  # type: ignore[call-arg]
    asyncio.run(AsyncHTTPClient().post("/", idempotency_key=1))  # type: ignore[arg-type]
    HTTPClient(hedging=0.2)  # type: ignore[arg-type]
    HTTPClient(transport=httpx.AsyncHTTPTransport())  # type: ignore[arg-type]
    HTTPClient().get("/", tiemout=1.0)  # type: ignore[call-arg]
    HTTPClient().post("/", idempotency_key=1)  # type: ignore[arg-type]
