"""Unit tests of retry_async and the seed 002 decorators, under a fake clock."""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import traceback
import types
from collections.abc import Awaitable, Callable, Iterator

import aiohttp
import httpx
import pytest

from httpx_resilience.exceptions import (
    CircuitBreakerOpenError,
    ConfigurationError,
    HTTPResponseError,
    RateLimitError,
    RetryExhaustedError,
)
from httpx_resilience.policies.budget import RetryBudget
from httpx_resilience.policies.generic import (
    RetryStats,
    is_api_error,
    is_network_error,
    retry_async,
    with_api_retry,
    with_network_retry,
    with_retry,
)
from httpx_resilience.testing.clock import FakeClock


class Flaky:
    """Fails with the given exceptions in turn, then returns 'ok'."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self, *args: object, **kwargs: object) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return f"ok {args} {kwargs}"


async def test_retry_async_success_after_failures_with_exact_backoff(caplog: pytest.LogCaptureFixture) -> None:
    """Two failures then success: waits 1 s then 2 s, logs WARNING twice and INFO once."""
    clock = FakeClock()
    f = Flaky(ConnectionError("net"), ConnectionError("net"))
    with caplog.at_level(logging.INFO, logger="httpx_resilience.retry"):
        result = await retry_async(f, 1, clock=clock, key="v")
    assert result == "ok (1,) {'key': 'v'}" and f.calls == 3
    assert clock.sleeps == [1.0, 2.0]
    levels = [r.levelname for r in caplog.records]
    assert levels == ["WARNING", "WARNING", "INFO"]
    assert "attempt 1/3 failed" in caplog.records[0].getMessage()
    assert "Retrying in 1.00 s" in caplog.records[0].getMessage()
    assert "succeeded after 3 attempts" in caplog.records[2].getMessage()


async def test_exhaustion_reraises_the_last_error_with_the_attempt_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After max_attempts failures the last exception itself propagates (seed 002), its
    traceback reaching the line that raised it, with a note giving the attempt count."""
    clock = FakeClock()
    f = Flaky(*(TimeoutError(f"t{i}") for i in range(5)))
    with pytest.raises(TimeoutError) as info:
        await retry_async(f, max_attempts=3, delay=2.0, backoff=1.5, clock=clock)
    assert str(info.value) == "t2"
    assert info.value.__notes__ == ["Flaky: gave up after 3 attempt(s) (all 3 attempts failed)"]
    assert info.traceback[-1].name == "__call__"  # where Flaky raised it
    rendered = "".join(traceback.format_exception(info.value))
    assert "raise self.errors.pop(0)" in rendered and "gave up after 3 attempt(s)" in rendered
    assert clock.sleeps == [2.0, 3.0]
    assert any(r.levelname == "ERROR" and "all 3 attempts failed" in r.getMessage() for r in caplog.records)


async def test_wrap_exhausted_gives_retry_exhausted_error() -> None:
    """wrap_exhausted=True raises RetryExhaustedError carrying attempts and the last error."""
    f = Flaky(*(KeyError(i) for i in range(3)))
    with pytest.raises(RetryExhaustedError) as info:
        await retry_async(f, max_attempts=2, wrap_exhausted=True, clock=FakeClock())
    assert info.value.attempts == 2
    assert isinstance(info.value.__cause__, KeyError) and info.value.last_error is info.value.__cause__
    assert not hasattr(info.value.__cause__, "__notes__")

    g = Flaky(OSError("a"), OSError("b"))

    @with_retry(max_attempts=2, wrap_exhausted=True, clock=FakeClock())
    async def call() -> str:
        return await g()

    with pytest.raises(RetryExhaustedError, match="all 2 attempts failed"):
        await call()


async def test_only_listed_exceptions_are_retried() -> None:
    """An exception outside `exceptions` propagates at once."""
    f = Flaky(ValueError("bad"))
    with pytest.raises(ValueError):
        await retry_async(f, exceptions=(ConnectionError,), clock=FakeClock())
    assert f.calls == 1


async def test_with_retry_decorator_and_stats() -> None:
    """@with_retry retries and updates RetryStats counters."""
    stats = RetryStats()
    clock = FakeClock()
    f = Flaky(OSError("x"))

    @with_retry(max_attempts=3, delay=0.5, stats=stats, clock=clock)
    async def call(n: int) -> str:
        return await f(n)

    assert await call(7) == "ok (7,) {}"
    assert (stats.calls, stats.attempts, stats.retries, stats.recovered) == (1, 2, 1, 1)
    assert stats.by_exception == {"OSError": 1}
    assert call.__name__ == "call"


async def test_with_retry_validates_options() -> None:
    """Unknown options, bad values and non-callables are ConfigurationErrors; a plain
    function stays a plain function (sync retries, tests/unit/test_generic_sync.py), and
    retry_async on one that returns something that cannot be awaited is one too (when
    called, not retried)."""
    with pytest.raises(ConfigurationError, match="bogus"):
        with_retry(bogus=1)  # type: ignore[call-arg]  # mypy refuses it too
    with pytest.raises(ConfigurationError, match="wrap_exhausted=True") as info:
        with_retry(reraise=True)  # type: ignore[call-arg]  # the old option: the message says what replaced it
    assert info.value.field == "reraise"
    with pytest.raises(ConfigurationError, match="max_attempts"):
        with_retry(max_attempts=0)
    with pytest.raises(ConfigurationError, match="not callable"):
        with_retry()(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        with_retry(jitter="sometimes")  # type: ignore[arg-type]
    calls = []

    def sync() -> int:
        calls.append(1)
        return 1

    assert with_retry(clock=FakeClock())(sync)() == 1
    with pytest.raises(ConfigurationError, match="sync returned int, which cannot be awaited"):
        await retry_async(sync, clock=FakeClock())  # type: ignore[arg-type]
    assert calls == [1, 1]


async def test_with_network_retry_skips_non_network_errors() -> None:
    """@with_network_retry retries connection errors but not ValueError or an open breaker."""
    clock = FakeClock()
    f = Flaky(httpx.ConnectError("x"))

    @with_network_retry(max_attempts=3, clock=clock)
    async def ok() -> str:
        return await f()

    assert (await ok()).startswith("ok") and f.calls == 2

    g = Flaky(CircuitBreakerOpenError("svc", 5.0))

    @with_network_retry(clock=clock)
    async def refused() -> str:
        return await g()

    with pytest.raises(CircuitBreakerOpenError):
        await refused()
    assert g.calls == 1


async def test_with_api_retry_retries_5xx_and_429_not_4xx() -> None:
    """@with_api_retry retries 5xx/429 (honouring retry_after) and never 404."""
    clock = FakeClock()
    f = Flaky(HTTPResponseError(503, "down"), RateLimitError(429, "slow", retry_after=9.0))

    @with_api_retry(max_attempts=3, clock=clock)
    async def call() -> str:
        return await f()

    assert (await call()).startswith("ok") and clock.sleeps == [1.0, 9.0]

    g = Flaky(HTTPResponseError(404, "missing"))

    @with_api_retry(clock=clock)
    async def missing() -> str:
        return await g()

    with pytest.raises(HTTPResponseError):
        await missing()
    assert g.calls == 1


def test_error_predicates() -> None:
    """Network and API predicates classify httpx, stdlib and status errors."""
    req = httpx.Request("GET", "http://x")
    status = httpx.HTTPStatusError("x", request=req, response=httpx.Response(502, request=req))
    assert is_network_error(httpx.ReadTimeout("x")) and is_network_error(ConnectionResetError())
    assert not is_network_error(ValueError())
    assert is_api_error(status) and is_api_error(HTTPResponseError(429, "x"))
    assert not is_api_error(HTTPResponseError(400, "x"))


async def test_shared_budget_limits_generic_retries() -> None:
    """A spent RetryBudget stops generic retries too; the note says why."""
    budget = RetryBudget(ratio=0.0, min_per_second=0.0, clock=FakeClock())
    f = Flaky(ConnectionError("x"), ConnectionError("x"))
    with pytest.raises(ConnectionError) as info:
        await retry_async(f, budget=budget, clock=FakeClock())
    assert f.calls == 1
    assert info.value.__notes__ == ["Flaky: gave up after 1 attempt(s) (the retry budget is spent)"]
    g = Flaky(ConnectionError("x"), ConnectionError("x"))
    with pytest.raises(RetryExhaustedError, match="budget"):
        await retry_async(g, budget=budget, wrap_exhausted=True, clock=FakeClock())


async def test_non_callable_is_rejected() -> None:
    """retry_async on a non-callable raises ConfigurationError."""
    with pytest.raises(ConfigurationError):
        await retry_async(42)  # type: ignore[arg-type]


# -- any callable that returns an awaitable ------------------------------------------------


async def _fetch(counter: list[int], fails: int, value: str) -> str:
    counter.append(1)
    if len(counter) <= fails:
        raise ConnectionError("down")
    return value


class Service:
    def __init__(self) -> None:
        self.calls: list[int] = []

    async def get(self, value: str) -> str:
        return await _fetch(self.calls, 1, value)

    @with_retry(max_attempts=3, delay=0.0)
    async def decorated(self, value: str) -> str:
        return await _fetch(self.calls, 1, value)


def _callables() -> Iterator[tuple[str, Callable[[], Awaitable[str]], list[int]]]:
    counter: list[int] = []
    yield "partial", functools.partial(_fetch, counter, 1, "ok"), counter
    svc = Service()
    yield "bound method", functools.partial(svc.get, "ok"), svc.calls
    counter2: list[int] = []
    yield "sync returning a coroutine", lambda: _fetch(counter2, 1, "ok"), counter2
    counter3: list[int] = []

    def future() -> asyncio.Future[str]:
        return asyncio.ensure_future(_fetch(counter3, 1, "ok"))

    yield "sync returning a future", future, counter3
    obj = Flaky(ConnectionError("down"))
    yield "object with async __call__", obj, []  # it counts its own calls


async def test_any_callable_returning_an_awaitable_is_retried() -> None:
    """Partials, bound methods, objects with async __call__ and sync callables returning a
    coroutine or a future: each is called again after a failure, by retry_async and by
    the decorators."""
    for name, func, counter in _callables():
        got = await retry_async(func, clock=FakeClock())
        assert str(got).startswith("ok"), name
        if name != "object with async __call__":
            assert len(counter) == 2, name
    for name, func, _ in _callables():
        wrapped = with_network_retry(clock=FakeClock())(func)
        assert str(await wrapped()).startswith("ok"), name
    svc = Service()
    assert await svc.decorated("v") == "v" and len(svc.calls) == 2


async def test_the_log_names_partials_and_instances(caplog: pytest.LogCaptureFixture) -> None:
    """A partial is logged under its function's name, an instance under its class's."""
    counter: list[int] = []
    with caplog.at_level(logging.WARNING, logger="httpx_resilience.retry"):
        await retry_async(functools.partial(_fetch, counter, 1, "ok"), clock=FakeClock())
        await retry_async(Flaky(OSError("x")), clock=FakeClock())
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("_fetch: attempt 1/3 failed")
    assert messages[1].startswith("Flaky: attempt 1/3 failed")


async def test_a_sync_callable_that_raises_before_returning_is_retried() -> None:
    """The failure may come from the call itself, before any awaitable exists."""
    calls: list[int] = []

    def connect() -> Awaitable[str]:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionRefusedError("refused")
        return _fetch([], 0, "ok")

    assert await retry_async(connect, clock=FakeClock()) == "ok" and len(calls) == 2


# -- other HTTP clients' errors --------------------------------------------------------------


def test_aiohttp_network_errors_are_network_errors_but_not_its_status_errors() -> None:
    """aiohttp's connection, timeout and truncated-body errors are retried; its
    ClientResponseError (raise_for_status) and InvalidURL are not network errors."""
    key = aiohttp.client_reqrep.ConnectionKey("h", 80, False, True, None, None, None)
    for exc in (
        aiohttp.ClientConnectorError(key, OSError(111, "refused")),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ServerTimeoutError("read"),
        aiohttp.ClientPayloadError("cut short"),
        aiohttp.ClientOSError(104, "reset"),
    ):
        assert is_network_error(exc) and is_api_error(exc), exc
    info = aiohttp.RequestInfo(httpx.URL("http://h/").__str__(), "GET", {}, "http://h/")  # type: ignore[arg-type]
    not_found = aiohttp.ClientResponseError(info, (), status=404)
    unavailable = aiohttp.ClientResponseError(info, (), status=503)
    assert not is_network_error(not_found) and not is_api_error(not_found)
    assert not is_network_error(unavailable) and is_api_error(unavailable)  # read from .status
    assert not is_network_error(aiohttp.InvalidURL("x"))


def _fake_library(monkeypatch: pytest.MonkeyPatch, module: str, names: tuple[str, ...]) -> dict[str, type[Exception]]:
    """Put a stand-in for an optional library's exceptions module in sys.modules."""
    mod = types.ModuleType(module)
    base = type("RequestException", (OSError,), {"__module__": module})
    classes = {n: type(n, (base,), {"__module__": module}) for n in names}
    for n, cls in {**classes, "RequestException": base}.items():
        setattr(mod, n, cls)
    monkeypatch.setitem(sys.modules, module, mod)
    return {**classes, "RequestException": base}


@pytest.mark.parametrize("module", ["requests.exceptions", "curl_cffi.requests.exceptions"])
def test_requests_and_curl_cffi_errors_are_recognised_once_loaded(
    monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    """Their ConnectionError, Timeout and ChunkedEncodingError are network errors; their base
    RequestException (bad URL, HTTPError, ...) is not. Nothing is imported to know it."""
    classes = _fake_library(monkeypatch, module, ("ConnectionError", "Timeout", "ChunkedEncodingError", "HTTPError"))
    for name in ("ConnectionError", "Timeout", "ChunkedEncodingError"):
        assert is_network_error(classes[name]("x")), name
    assert not is_network_error(classes["RequestException"]("x"))
    assert not is_network_error(classes["HTTPError"]("404"))
    monkeypatch.delitem(sys.modules, module)
    assert not is_network_error(classes["ConnectionError"]("x"))  # unloaded: not looked up


def test_a_bare_curl_error_is_classified_by_its_code() -> None:
    """An older curl_cffi raises its base error with only a curl code: 28 (timeout) and 7
    (could not connect) are network failures, 60 (bad certificate) is not."""
    curl_error = type("CurlError", (Exception,), {"__module__": "curl_cffi.curl"})

    def err(code: int) -> Exception:
        e = curl_error(f"curl: ({code})")
        e.code = code  # type: ignore[attr-defined]
        return e

    assert is_network_error(err(28)) and is_network_error(err(7))
    assert not is_network_error(err(60))


def test_the_optional_libraries_are_not_imported() -> None:
    """Importing the package and classifying errors loads none of aiohttp, requests, curl_cffi."""
    import subprocess

    code = (
        "import sys, httpx_resilience as h\n"
        "from httpx_resilience.policies.generic import is_api_error\n"
        "is_api_error(ConnectionError()); is_api_error(ValueError())\n"
        "print(sorted(m for m in ('aiohttp', 'requests', 'curl_cffi') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (type("E", (Exception,), {"status_code": 503})(), 503),  # ours, curl_cffi's
        (type("E", (Exception,), {"status": 502})(), 502),  # aiohttp's
        (type("E", (Exception,), {"response": types.SimpleNamespace(status_code=504)})(), 504),  # requests'
        (type("E", (Exception,), {"response": types.SimpleNamespace(status_code=404)})(), 404),
        (type("E", (Exception,), {"status_code": True})(), None),  # a bool is not a status
        (type("E", (Exception,), {"response": None})(), None),
    ],
)
def test_api_errors_read_the_status_from_three_places(exc: Exception, status: int | None) -> None:
    """.status_code, .status or .response.status_code; only 5xx, 408 and 429 are retried."""
    assert is_api_error(exc) == (status is not None and status >= 500)


# -- Retry-After on exceptions ------------------------------------------------------------


async def test_retry_after_of_a_503_carried_by_the_exception_is_honoured(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An httpx.HTTPStatusError for a 503 with Retry-After: 5 waits 5 s (the one parser reads
    it); an invalid value ('٥', another script's 5) is logged and the backoff is used."""
    req = httpx.Request("GET", "http://x")

    def status_error(value: str) -> httpx.HTTPStatusError:
        resp = httpx.Response(503, headers={"Retry-After": value.encode()}, request=req)
        return httpx.HTTPStatusError("503", request=req, response=resp)

    clock = FakeClock()
    f = Flaky(status_error("5"), status_error("\u0665"))

    @with_api_retry(max_attempts=3, clock=clock)
    async def call() -> str:
        return await f()

    with caplog.at_level(logging.WARNING, logger="httpx_resilience.retry"):
        assert (await call()).startswith("ok")
    assert clock.sleeps == [5.0, 2.0]
    assert any("ignoring invalid Retry-After" in r.getMessage() for r in caplog.records)


async def test_retry_after_on_an_aiohttp_429_and_an_http_date() -> None:
    """aiohttp's ClientResponseError carries headers itself; an HTTP-date works too, against
    the clock's wall time, and the delay is capped at max_delay."""
    clock = FakeClock()
    info = aiohttp.RequestInfo("http://h/", "GET", {}, "http://h/")  # type: ignore[arg-type]
    date = "Tue, 14 Nov 2023 22:13:50 GMT"  # FakeClock's wall time + 30 s
    f = Flaky(
        aiohttp.ClientResponseError(info, (), status=429, headers={"Retry-After": "3"}),  # type: ignore[arg-type]
        aiohttp.ClientResponseError(info, (), status=429, headers={"Retry-After": date}),  # type: ignore[arg-type]
    )
    assert (await retry_async(f, clock=clock, max_delay=20.0)).startswith("ok")
    assert clock.sleeps == [3.0, 20.0]


def test_the_real_requests_errors_when_installed() -> None:
    """With requests itself (when installed): connection errors, timeouts and broken chunked
    bodies are network errors; HTTPError is judged by its response's status."""
    requests = pytest.importorskip("requests")
    assert is_network_error(requests.ConnectionError()) and is_network_error(requests.ReadTimeout())
    assert is_network_error(requests.exceptions.ChunkedEncodingError())
    assert not is_network_error(requests.exceptions.InvalidURL())
    response = requests.Response()
    response.status_code = 503
    assert is_api_error(requests.HTTPError(response=response))
    response.status_code = 404
    assert not is_api_error(requests.HTTPError(response=response))


def test_the_real_curl_cffi_errors_when_installed() -> None:
    """With curl_cffi itself (when installed): its requests-style errors, and its base error
    by curl code (56, a receive failure, is one; 60, a bad certificate, is not)."""
    pytest.importorskip("curl_cffi")
    from curl_cffi.requests import RequestsError, exceptions

    assert is_network_error(exceptions.ConnectionError("x")) and is_network_error(exceptions.Timeout("x"))
    assert not is_network_error(exceptions.InvalidURL("x"))
    assert is_network_error(RequestsError("recv", code=56))  # type: ignore[arg-type]
    assert not is_network_error(RequestsError("cert", code=60))  # type: ignore[arg-type]
