"""The exception tree stays httpx's: the classes built per httpx class, status errors that are
``httpx.HTTPStatusError``, the client's mapping, pickling, and the pipeline's give-up errors
(over ``httpx.MockTransport`` and a fake clock; the live proof is
tests/integration/test_httpx_errors.py)."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from httpx_resilience import (
    AuthenticationError,
    BulkheadFullError,
    CircuitBreakerOpenError,
    ConfigurationError,
    ExternalServiceError,
    HTTPClientError,
    HTTPRequestError,
    HTTPResponse,
    HTTPResponseError,
    InvalidRequestError,
    InvalidURLError,
    RateLimitError,
    RateLimiterTimeout,
    RequestNotReplayableError,
    RequestTimeoutError,
    ResilientTransport,
    ResponseTooLargeError,
    RetryExhaustedError,
    RetryPolicy,
)
from httpx_resilience.client._errors import (
    RetryExhaustedHTTPStatusError,
    raise_for_outcome,
    translate_error,
)
from httpx_resilience.models import HTTPRequest
from httpx_resilience.pipeline import EXTENSION_KEY
from httpx_resilience.pipeline._httpx_errors import (
    _CLASSES,
    error_class,
    httpx_class,
    retry_exhausted_error,
)
from httpx_resilience.pipeline._outcome import new_info
from httpx_resilience.testing.clock import FakeClock

REQUEST = httpx.Request("GET", "https://api.test/items?token=s3cr3t")

# Every request error httpx defines (the bases included).
HTTPX_ERRORS: list[type[httpx.RequestError]] = sorted(
    (
        cls for name in dir(httpx)
        if isinstance(cls := getattr(httpx, name), type) and issubclass(cls, httpx.RequestError)
    ),
    key=lambda c: c.__name__,
)
TIMEOUTS = [c for c in HTTPX_ERRORS if issubclass(c, httpx.TimeoutException)]


def roundtrip(err: BaseException) -> Any:
    return pickle.loads(pickle.dumps(err))


# -- the classes built per httpx class ------------------------------------------------


@pytest.mark.parametrize("base", HTTPX_ERRORS, ids=lambda c: c.__name__)
def test_giving_up_on_an_httpx_error_is_also_of_its_class(base: type[httpx.RequestError]) -> None:
    """The give-up error of any httpx request error is a RetryExhaustedError, an
    HTTPRequestError and that httpx class (a timeout's also a RequestTimeoutError),
    with the request, the attempts and the cause; it pickles as itself."""
    last = base("boom", request=REQUEST)
    err = retry_exhausted_error("gave up", last_error=last, attempts=3, request=REQUEST)
    assert isinstance(err, base) and isinstance(err, RetryExhaustedError)
    assert isinstance(err, HTTPRequestError) and isinstance(err, httpx.TransportError)
    assert isinstance(err, RequestTimeoutError) == issubclass(base, httpx.TimeoutException)
    assert type(err).__name__ == f"RetryExhausted{base.__name__}"
    assert err.request is REQUEST and err.attempts == 3 and err.last_error is last
    assert "s3cr3t" not in str(err) and "https://api.test/items" in str(err)
    again = roundtrip(err)
    assert type(again) is type(err) and str(again) == str(err)
    assert again.attempts == 3 and again.request.url == REQUEST.url
    assert type(again.last_error) is base


@pytest.mark.parametrize("base", HTTPX_ERRORS, ids=lambda c: c.__name__)
def test_the_deadline_makes_any_error_a_timeout(base: type[httpx.RequestError]) -> None:
    """When the total deadline ended the retries, the error is also a RequestTimeoutError
    (phase "total") and an httpx.TimeoutException, and still of the last error's class."""
    err = retry_exhausted_error(
        "deadline", last_error=base("x"), attempts=2, deadline=True, timeout=1.5
    )
    assert isinstance(err, base) and isinstance(err, httpx.TimeoutException)
    assert isinstance(err, RequestTimeoutError) and isinstance(err, RetryExhaustedError)
    assert err.phase == "total" and err.timeout == 1.5 and err.attempts == 2
    assert type(roundtrip(err)) is type(err)


def test_each_class_is_built_once_and_only_for_httpx_classes() -> None:
    """The classes are cached (the same object every time) and bounded: only httpx's
    own request errors are accepted, at most four classes each."""
    for base in HTTPX_ERRORS:
        for exhausted in (False, True):
            for deadline in (False, True):
                assert error_class(base, exhausted, deadline) is error_class(
                    base, exhausted, deadline
                )
    assert len(_CLASSES) <= 4 * len(HTTPX_ERRORS)

    class MyReadError(httpx.ReadError):
        pass

    with pytest.raises(TypeError, match="httpx's request errors"):
        error_class(MyReadError)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        error_class(ValueError)  # type: ignore[arg-type]
    # A subclass stands for the httpx class it derives from.
    assert httpx_class(MyReadError("x")) is httpx.ReadError


def test_without_retries_the_class_is_ours_and_httpx() -> None:
    """error_class without retries: ours and httpx's (HTTPRequestError + ConnectError,
    RequestTimeoutError + ReadTimeout); the generic bases are ours already."""
    assert issubclass(error_class(httpx.ConnectError), HTTPRequestError)
    assert issubclass(error_class(httpx.ConnectError), httpx.ConnectError)
    assert not issubclass(error_class(httpx.ConnectError), RetryExhaustedError)
    assert issubclass(error_class(httpx.ReadTimeout), RequestTimeoutError)
    assert error_class(httpx.TransportError) is HTTPRequestError
    assert error_class(httpx.TimeoutException) is RequestTimeoutError


@pytest.mark.parametrize(
    "exc",
    [
        CircuitBreakerOpenError("api", 1.0),
        RateLimiterTimeout("slow"),
        BulkheadFullError("full"),
        ResponseTooLargeError("big", limit=1, received=2),
        RequestNotReplayableError("stream"),
        ValueError("a bug"),
        OSError("no route"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_refusals_and_non_transport_errors_keep_their_own_class(exc: Exception) -> None:
    """Our refusals, a body too large or not replayable, and non-httpx errors have no httpx
    class to take: giving up on one raises a plain RetryExhaustedError."""
    assert httpx_class(exc) is None
    err = retry_exhausted_error("gave up", last_error=exc, attempts=2)
    assert type(err) is RetryExhaustedError


def test_timeouts_without_an_httpx_class() -> None:
    """Our attempt timeout and a bare TimeoutError stand for httpx.TimeoutException; the
    attempt timeout's limit is carried over."""
    ours = RequestTimeoutError("attempt timed out", timeout=0.3)
    assert httpx_class(ours) is httpx.TimeoutException
    assert httpx_class(TimeoutError()) is httpx.TimeoutException
    err = retry_exhausted_error("gave up", last_error=ours, attempts=3)
    assert type(err).__name__ == "RetryExhaustedTimeoutException"
    assert isinstance(err, RequestTimeoutError) and err.timeout == 0.3 and err.phase == "attempt"
    assert err.attempts == 3  # not reset by RequestTimeoutError's constructor


# -- status errors are httpx.HTTPStatusError ------------------------------------------


def test_response_error_is_an_httpx_status_error_with_the_httpx_response() -> None:
    """HTTPResponseError built from an HTTPResponse: .response is the httpx.Response it wraps,
    .request its httpx.Request, .http_response the model."""
    raw = httpx.Response(404, json={"error": "missing"}, request=REQUEST)
    model = HTTPResponse.from_httpx(raw, HTTPRequest("GET", "/items"), 0.1)
    with pytest.raises(httpx.HTTPStatusError) as info:
        model.raise_for_status()
    err = info.value
    assert isinstance(err, HTTPResponseError) and err.status_code == 404
    assert err.response is raw and err.request is REQUEST
    assert err.http_response is model  # type: ignore[attr-defined]
    assert "s3cr3t" not in str(err)


def test_rate_limit_error_is_an_httpx_status_error() -> None:
    """raise_for_status() on a 429: RateLimitError with retry_after, an httpx.HTTPStatusError."""
    raw = httpx.Response(429, headers={"Retry-After": "7"}, request=REQUEST)
    raw.extensions[EXTENSION_KEY] = new_info(1, 0.1, 0.0, None, None, 7.0, False, None, 0)
    with pytest.raises(httpx.HTTPStatusError) as info:
        HTTPResponse.from_httpx(raw, None, 0.1).raise_for_status()
    assert isinstance(info.value, RateLimitError) and info.value.retry_after == 7.0
    assert info.value.response is raw


def test_a_hand_made_response_is_rebuilt_as_an_httpx_response() -> None:
    """An HTTPResponse without an httpx.Response behind it (made by hand, or a middleware
    changed its status) gives a rebuilt one: status, headers, body (not decoded twice) and
    a request with its method and URL."""
    model = HTTPResponse(
        503, {"content-type": "application/json", "content-encoding": "gzip"}, b'{"a": 1}',
        request=HTTPRequest("POST", "/x"), url="https://api.test/x",
    )
    err = HTTPResponseError(503, "down", model)
    assert isinstance(err.response, httpx.Response)
    assert err.response.status_code == 503 and err.response.json() == {"a": 1}
    assert err.request.method == "POST" and err.request.url == "https://api.test/x"
    raw = httpx.Response(200, request=REQUEST)
    changed = HTTPResponse.from_httpx(raw, None, 0.0)
    changed.status_code = 502
    assert changed.to_httpx() is not raw and changed.to_httpx().status_code == 502


def test_a_response_error_without_a_response() -> None:
    """HTTPResponseError(status, message) alone still has an httpx.Response with the status
    (so code reading err.response.status_code works); .request raises as in httpx."""
    err = HTTPResponseError(502, "bad gateway")
    assert err.response.status_code == 502 and err.http_response is None  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError):
        _ = err.request


# -- pickling ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "err",
    [
        RetryExhaustedError("gave up", attempts=3, retry_after=2.0, request=REQUEST),
        RequestTimeoutError("slow", timeout=1.0, phase="total", attempts=2),
        HTTPResponseError(500, "down", httpx.Response(500, request=REQUEST)),
        RateLimitError(429, "slow down", retry_after=3.0),
        CircuitBreakerOpenError("api", 2.5, request=REQUEST),
        RateLimiterTimeout("wait", waited=1.0, needed=2.0),
        BulkheadFullError("full", max_concurrent=2, max_queue=1),
        ResponseTooLargeError("big", limit=10, received=11),
        ExternalServiceError("orders", "down", 503),
        ConfigurationError("bad", field="timeout"),
        AuthenticationError("refused", error="invalid_client", status_code=401),
        InvalidURLError("no host"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_error_pickles_with_its_attributes(err: HTTPClientError) -> None:
    """Errors cross process boundaries (multiprocessing, task queues) intact."""
    again = roundtrip(err)
    assert type(again) is type(err) and str(again) == str(err)
    plain = {k: v for k, v in vars(err).items() if not isinstance(v, (httpx.Request, httpx.Response))}
    assert {k: v for k, v in vars(again).items() if k in plain} == plain


# -- the client's mapping ---------------------------------------------------------------

REQ = HTTPRequest("GET", "/items")


@pytest.mark.parametrize("base", HTTPX_ERRORS, ids=lambda c: c.__name__)
def test_the_client_keeps_the_httpx_class(base: type[httpx.RequestError]) -> None:
    """translate_error: a raw httpx error becomes ours (RequestTimeoutError for a timeout,
    HTTPRequestError otherwise) and stays of its httpx class; the URL shown is the request's."""
    if base is httpx.UnsupportedProtocol:
        pytest.skip("mapped to InvalidRequestError (below)")
    err = translate_error(base("boom", request=REQUEST), REQ, "catalog")
    assert isinstance(err, base) and isinstance(err, HTTPRequestError)
    assert isinstance(err, RequestTimeoutError) == issubclass(base, httpx.TimeoutException)
    assert not isinstance(err, RetryExhaustedError)
    assert err.service == "catalog" and "https://api.test/items" in str(err)


def test_the_client_mapping_of_other_errors() -> None:
    """Unsupported scheme → InvalidRequestError; a stream error → RequestNotReplayableError;
    ours pass through (the service filled in); anything else is returned unchanged."""
    assert isinstance(translate_error(httpx.UnsupportedProtocol("ftp"), REQ, None), InvalidRequestError)
    assert isinstance(translate_error(httpx.StreamConsumed(), REQ, None), RequestNotReplayableError)
    ours = CircuitBreakerOpenError("api", 1.0)
    assert translate_error(ours, REQ, "svc") is ours and ours.service == "svc"
    bug, cancelled = ValueError("bug"), asyncio.CancelledError()
    assert translate_error(bug, REQ, None) is bug
    assert translate_error(cancelled, REQ, None) is cancelled


def test_the_client_mapping_hides_an_illegal_header_value() -> None:
    """httpx quotes an illegal header value in its error: neither the cause nor our error shows it."""
    exc = httpx.LocalProtocolError("Illegal header value b'Bearer sec\\nret'")
    err = translate_error(exc, REQ, None)
    assert isinstance(err, httpx.LocalProtocolError) and isinstance(err, HTTPRequestError)
    assert "sec" not in str(err) and "sec" not in str(exc)
    assert "malformed" in str(err)


def _outcome(status: int, *, exhausted: bool, retry_after: float | None = None) -> HTTPResponse:
    raw = httpx.Response(status, request=REQUEST)
    raw.extensions[EXTENSION_KEY] = new_info(
        3, 0.5, 0.3, "rid", None, retry_after, exhausted, "attempts" if exhausted else None, 0
    )
    return HTTPResponse.from_httpx(raw, REQ, 0.5)


def test_an_exhausted_status_is_an_httpx_status_error() -> None:
    """raise_for_outcome on an exhausted 503: RetryExhaustedError, HTTPResponseError and
    httpx.HTTPStatusError whose response is the last httpx.Response; it pickles."""
    response = _outcome(503, exhausted=True)
    with pytest.raises(httpx.HTTPStatusError) as info:
        raise_for_outcome(response, REQ, "svc")
    err = info.value
    assert isinstance(err, RetryExhaustedHTTPStatusError) and isinstance(err, HTTPResponseError)
    assert isinstance(err, RetryExhaustedError) and err.attempts == 3
    assert err.status_code == 503 and err.response.status_code == 503
    assert err.last_response is response and err.request is REQUEST
    assert isinstance(err.__cause__, HTTPResponseError)
    assert roundtrip(err).attempts == 3


def test_a_final_429_is_an_httpx_status_error() -> None:
    """raise_for_outcome on a 429: RateLimitError (retry_after kept), an httpx.HTTPStatusError."""
    with pytest.raises(httpx.HTTPStatusError) as info:
        raise_for_outcome(_outcome(429, exhausted=True, retry_after=9.0), REQ, None)
    assert isinstance(info.value, RateLimitError) and info.value.retry_after == 9.0


# -- the pipeline's give-up errors -------------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]


def failing(*items: int | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering with the given statuses/exceptions in turn (the last repeats)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        item = items[min(len(seen), len(items) - 1)]
        seen.append(request)
        if isinstance(item, Exception):
            raise item
        return httpx.Response(item)

    return handler, seen


def client(handler: Handler, clock: FakeClock, **kw: Any) -> httpx.AsyncClient:
    kw.setdefault("retry", RetryPolicy(jitter="none", max_attempts=4))
    transport = ResilientTransport(
        httpx.MockTransport(handler), clock=clock, retry_budget=False, **kw
    )
    return httpx.AsyncClient(transport=transport, base_url="http://svc.test")


async def test_every_attempt_timing_out_is_a_read_timeout_after_retries() -> None:
    """Four read timeouts: RetryExhaustedReadTimeout chained to the last one."""
    handler, seen = failing(httpx.ReadTimeout("slow"))
    async with client(handler, FakeClock()) as c:
        with pytest.raises(httpx.ReadTimeout) as info:
            await c.get("/a")
    err = info.value
    assert isinstance(err, RetryExhaustedError) and isinstance(err, RequestTimeoutError)
    assert err.attempts == len(seen) == 4 and err.__cause__ is err.last_error


async def test_without_retries_the_error_is_raised_as_it_is() -> None:
    """max_attempts=1: the transport's own httpx.ReadTimeout, untouched."""
    handler, _ = failing(httpx.ReadTimeout("slow"))
    async with client(handler, FakeClock(), retry=RetryPolicy(max_attempts=1)) as c:
        with pytest.raises(httpx.ReadTimeout) as info:
            await c.get("/a")
    assert type(info.value) is httpx.ReadTimeout


async def test_a_post_timing_out_after_a_retry_is_exhausted_and_a_read_timeout() -> None:
    """POST: connection refused (retried: nothing was sent), then a read timeout (not retried:
    it may have acted). Two requests; the error is a RetryExhaustedError and an
    httpx.ReadTimeout, and says how to make the POST retryable."""
    handler, seen = failing(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"))
    async with client(handler, FakeClock()) as c:
        with pytest.raises(httpx.ReadTimeout) as info:
            await c.post("/pay", json={"amount": 1})
    err = info.value
    assert isinstance(err, RetryExhaustedError) and err.attempts == len(seen) == 2
    assert "Idempotency-Key" in str(err)


async def test_a_fatal_error_after_a_retry_keeps_its_class() -> None:
    """503, then an illegal header value (never retried): a RetryExhaustedError that is an
    httpx.LocalProtocolError, its text scrubbed."""
    bad = httpx.LocalProtocolError("Illegal header value b'Bearer sec\\nret'")
    handler, seen = failing(503, bad)
    async with client(handler, FakeClock()) as c:
        with pytest.raises(httpx.LocalProtocolError) as info:
            await c.get("/a")
    err = info.value
    assert isinstance(err, RetryExhaustedError) and len(seen) == 2
    assert "sec" not in str(err) and "sec" not in str(bad)


async def test_an_open_breaker_after_a_retry_stays_a_breaker_error() -> None:
    """A refusal is not a failure of the transport: it keeps its own class after retries."""
    handler, _ = failing(503, CircuitBreakerOpenError("svc", 5.0))
    async with client(handler, FakeClock()) as c:
        with pytest.raises(CircuitBreakerOpenError) as info:
            await c.get("/a")
    assert not isinstance(info.value, RetryExhaustedError)


async def test_a_nested_pipeline_does_not_multiply_retries() -> None:
    """A pipeline wrapping another: the inner one's give-up (now an httpx.ConnectError too) is
    final for the outer one, so the upstream sees 4 attempts, not 16."""
    handler, seen = failing(httpx.ConnectError("refused"))
    clock = FakeClock()
    inner = ResilientTransport(
        httpx.MockTransport(handler), clock=clock, retry_budget=False,
        retry=RetryPolicy(jitter="none", max_attempts=4),
    )
    outer = ResilientTransport(
        inner, clock=clock, retry_budget=False, retry=RetryPolicy(jitter="none", max_attempts=4)
    )
    async with httpx.AsyncClient(transport=outer) as c:
        with pytest.raises(httpx.ConnectError) as info:
            await c.get("http://svc.test/a")
    assert len(seen) == 4 and info.value.attempts == 4  # type: ignore[attr-defined]


async def test_a_deadline_ending_connect_retries_is_a_timeout() -> None:
    """A refused connection, and the next backoff (1 s) would pass the deadline (0.5 s): the
    error is a RequestTimeoutError, an httpx.TimeoutException and an httpx.ConnectError."""
    handler, _ = failing(httpx.ConnectError("refused"))
    async with client(handler, FakeClock(), timeout=0.5, total_timeout=0.5) as c:
        with pytest.raises(httpx.TimeoutException) as info:
            await c.get("/a")
    err = info.value
    assert isinstance(err, httpx.ConnectError) and isinstance(err, RetryExhaustedError)
    assert isinstance(err, RequestTimeoutError) and err.phase == "total" and err.attempts == 1


class Oversleeping(FakeClock):
    """A clock whose sleeps take 10 s longer than asked (a loop stalled by other work)."""

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        self.advance(10.0)


@pytest.mark.parametrize(
    ("first", "expected"),
    [(httpx.ReadError("reset"), httpx.ReadError), (503, httpx.TimeoutException)],
    ids=["after-read-error", "after-503"],
)
async def test_a_deadline_passed_before_the_next_attempt(
    first: int | Exception, expected: type[Exception]
) -> None:
    """The deadline passed while sleeping before a retry: a RequestTimeoutError (phase total)
    and RetryExhaustedError, of the last failure's httpx class; after a status, its code."""
    handler, seen = failing(first)
    async with client(handler, Oversleeping(), timeout=5.0, total_timeout=5.0) as c:
        with pytest.raises(RequestTimeoutError) as info:
            await c.get("/a")
    err = info.value
    assert isinstance(err, expected) and isinstance(err, RetryExhaustedError)
    assert err.phase == "total" and err.attempts == len(seen) == 1
    assert err.status_code == (503 if first == 503 else None)


async def test_the_deadline_cutting_a_first_attempt_keeps_the_timeout_class() -> None:
    """httpx's read timeout, clamped to the deadline, fires on the first attempt: a
    RequestTimeoutError (phase total) that is an httpx.ReadTimeout, not a RetryExhaustedError."""
    handler, _ = failing(httpx.ReadTimeout("slow"))
    async with client(handler, FakeClock(), timeout=2.0, total_timeout=2.0) as c:
        with pytest.raises(httpx.ReadTimeout) as info:
            await c.get("/a", extensions={"resilience": {"timeout": None}})
    err = info.value
    assert isinstance(err, RequestTimeoutError) and err.phase == "total" and err.attempts == 1
    assert not isinstance(err, RetryExhaustedError)
    assert isinstance(err.__cause__, httpx.ReadTimeout)
