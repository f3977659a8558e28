"""Unit tests of ResilientTransport's retry loop over httpx.MockTransport and a fake clock."""

from __future__ import annotations

import dataclasses
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from httpx_resilience import (
    ConfigurationError,
    RequestNotReplayableError,
    RetryExhaustedError,
)
from httpx_resilience.config import ClientConfig
from httpx_resilience.observe.events import (
    AttemptFailed,
    AttemptStarted,
    RequestFinished,
    RetryScheduled,
)
from httpx_resilience.pipeline import ResilienceInfo, ResilientTransport
from httpx_resilience.pipeline._attempt import _clamp
from httpx_resilience.pipeline._outcome import new_info
from httpx_resilience.pipeline._request_id import new_request_id, scan_headers
from httpx_resilience.policies.budget import RetryBudget
from httpx_resilience.policies.retry import RetryPolicy
from httpx_resilience.testing.clock import FakeClock

Handler = Callable[[httpx.Request], httpx.Response]


def sequence(*items: int | Exception, headers: dict[str, str] | None = None) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering with the given statuses/exceptions in turn (the last repeats)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        item = items[min(len(seen), len(items) - 1)]
        seen.append(request)
        if isinstance(item, Exception):
            raise item
        return httpx.Response(item, headers=headers or {}, json={"n": len(seen)})

    return handler, seen


def make(handler: Handler, clock: FakeClock, **kw: object) -> httpx.AsyncClient:
    kw.setdefault("retry", RetryPolicy(jitter="none", max_attempts=4))
    transport = ResilientTransport(httpx.MockTransport(handler), clock=clock, **kw)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://svc.test")


async def test_retries_503_then_succeeds_with_backoff() -> None:
    """503, 503, 200 → three attempts with 1 s and 2 s backoff, outcome in extensions."""
    clock = FakeClock()
    handler, seen = sequence(503, 503, 200)
    async with make(handler, clock) as c:
        r = await c.get("/a")
    assert r.status_code == 200 and len(seen) == 3
    assert clock.sleeps == [1.0, 2.0]
    info = r.extensions["resilience"]
    assert isinstance(info, ResilienceInfo)
    assert info.attempts == 3 and info.total_wait == 3.0 and not info.exhausted


async def test_same_request_id_on_every_attempt() -> None:
    """One X-Request-Id per logical request, identical on each attempt; a caller's id is kept."""
    clock = FakeClock()
    handler, seen = sequence(503, 200)
    async with make(handler, clock) as c:
        await c.get("/a")
        await c.get("/b", headers={"X-Request-Id": "mine"})
    ids = [r.headers["x-request-id"] for r in seen]
    assert ids[0] == ids[1] and len(ids[0]) == 36
    assert ids[2] == "mine"


def test_request_ids_are_uuid4_strings() -> None:
    """Generated ids read back as version-4 UUIDs in their hyphenated form."""
    ids = {new_request_id() for _ in range(200)}
    assert len(ids) == 200
    for rid in ids:
        parsed = uuid.UUID(rid)
        assert str(parsed) == rid and parsed.version == 4 and parsed.variant == uuid.RFC_4122


@pytest.mark.parametrize(
    "pairs",
    [
        [],
        [("X-Request-Id", "abc"), ("Idempotency-Key", "k")],
        [("x-request-id", "a"), ("X-REQUEST-ID", "b")],
        [("X-Request-Id", "é".encode())],
        [("Other", "é".encode()), ("X-Request-Id", "ok")],
        [("X-Request-Id", "")],
        [("X-Request-Id-Extra", "no"), ("Idempotency-Key-Old", "no")],
        [("Accept", "*/*"), ("Host", "example.com"), ("idempotency-KEY", "k")],
    ],
)
@pytest.mark.parametrize("name", ["X-Request-Id", None, "X-Ünï"])
def test_header_scan_matches_httpx_lookups(
    pairs: list[tuple[str, str | bytes]], name: str | None
) -> None:
    """The one-pass scan answers as Headers.get and ``in`` do (or fails as they fail)."""

    def lookups() -> object:
        headers = httpx.Headers(pairs)
        try:
            return (
                headers.get(name) if name is not None else None,
                "idempotency-key" in headers,
            )
        except UnicodeError as exc:
            return type(exc)

    def scan() -> object:
        try:
            return scan_headers(httpx.Headers(pairs), name)
        except UnicodeError as exc:
            return type(exc)

    assert scan() == lookups()


async def test_exhausted_status_returns_last_response_marked() -> None:
    """When every attempt gets 503, the last response is returned with exhausted=True."""
    clock = FakeClock()
    handler, seen = sequence(503)
    async with make(handler, clock) as c:
        r = await c.get("/a")
    assert r.status_code == 503 and len(seen) == 4
    info = r.extensions["resilience"]
    assert info.exhausted and info.stop_reason == "attempts"


async def test_post_is_not_retried_on_503() -> None:
    """POST without Idempotency-Key is sent exactly once on 503."""
    clock = FakeClock()
    handler, seen = sequence(503, 200)
    async with make(handler, clock) as c:
        r = await c.post("/a", content=b"x")
    assert r.status_code == 503 and len(seen) == 1


async def test_post_with_idempotency_key_is_retried() -> None:
    """An Idempotency-Key makes POST retryable."""
    clock = FakeClock()
    handler, seen = sequence(503, 200)
    async with make(handler, clock) as c:
        r = await c.post("/a", content=b"x", headers={"Idempotency-Key": "k1"})
    assert r.status_code == 200 and len(seen) == 2
    assert all(s.content == b"x" for s in seen)


async def test_post_retried_on_connect_error() -> None:
    """A connect error (nothing sent) is retried even for POST."""
    clock = FakeClock()
    handler, seen = sequence(httpx.ConnectError("refused"), 201)
    async with make(handler, clock) as c:
        r = await c.post("/a", json={"a": 1})
    assert r.status_code == 201 and len(seen) == 2


async def test_post_not_retried_on_read_error() -> None:
    """A read error after sending is not retried for POST: the original error propagates."""
    clock = FakeClock()
    handler, seen = sequence(httpx.ReadError("reset"), 200)
    async with make(handler, clock) as c:
        with pytest.raises(httpx.ReadError):
            await c.post("/a", content=b"x")
    assert len(seen) == 1


async def test_exhausted_exceptions_raise_retry_exhausted_with_cause() -> None:
    """Repeated connect errors end in RetryExhaustedError carrying attempts and the cause."""
    clock = FakeClock()
    handler, seen = sequence(httpx.ConnectError("refused"))
    async with make(handler, clock) as c:
        with pytest.raises(RetryExhaustedError) as info:
            await c.get("/a")
    assert info.value.attempts == 4 and len(seen) == 4
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert isinstance(info.value, httpx.TransportError)


async def test_retry_after_is_honoured() -> None:
    """A 429 with Retry-After: 7 waits 7 s instead of the computed backoff."""
    clock = FakeClock()
    handler, _ = sequence(429, 200, headers={"Retry-After": "7"})
    async with make(handler, clock) as c:
        r = await c.get("/a")
    assert r.status_code == 200 and clock.sleeps == [7.0]
    assert r.extensions["resilience"].retry_after == 7.0


async def test_retry_after_http_date_is_honoured() -> None:
    """A Retry-After HTTP-date 30 s ahead waits 30 s."""
    clock = FakeClock()
    when = httpx.Headers({"x": "x"})
    import email.utils

    date = email.utils.formatdate(clock.wall() + 30, usegmt=True)
    del when
    handler, _ = sequence(503, 200, headers={"Retry-After": date})
    async with make(handler, clock) as c:
        await c.get("/a")
    assert clock.sleeps == [pytest.approx(30.0, abs=1.0)]


async def test_retry_after_beyond_max_delay_stops_at_once(caplog: pytest.LogCaptureFixture) -> None:
    """A Retry-After above max_delay ends retries immediately, with the value reported."""
    clock = FakeClock()
    handler, seen = sequence(429, headers={"Retry-After": "3600"})
    async with make(handler, clock, retry=RetryPolicy(max_delay=60.0)) as c:
        r = await c.get("/a")
    assert len(seen) == 1 and clock.sleeps == []
    info = r.extensions["resilience"]
    assert info.stop_reason == "retry_after_too_long" and info.retry_after == 3600.0
    assert "3600" in caplog.text


async def test_invalid_retry_after_logs_warning_and_uses_backoff(caplog: pytest.LogCaptureFixture) -> None:
    """An invalid Retry-After is logged at WARNING and the computed backoff is used."""
    clock = FakeClock()
    handler, _ = sequence(503, 200, headers={"Retry-After": "tomorrow-ish"})
    with caplog.at_level(logging.WARNING):
        async with make(handler, clock) as c:
            await c.get("/a")
    assert clock.sleeps == [1.0]
    assert any("invalid Retry-After" in r.getMessage() for r in caplog.records)


async def test_log_lines_per_attempt_success_and_exhaustion(caplog: pytest.LogCaptureFixture) -> None:
    """WARNING per failed attempt (n/N, cause, delay), INFO on recovery, ERROR on exhaustion."""
    clock = FakeClock()
    with caplog.at_level(logging.INFO, logger="httpx_resilience"):
        handler, _ = sequence(503, 200)
        async with make(handler, clock) as c:
            await c.get("/a?token=secret-value")
        handler, _ = sequence(500)
        async with make(handler, clock, retry=RetryPolicy(max_attempts=2, jitter="none")) as c:
            await c.get("/b")
    msgs = [(r.levelname, r.getMessage()) for r in caplog.records if r.name.startswith("httpx_resilience")]
    assert ("WARNING", msgs[0][1]) == msgs[0] and "Attempt 1/4 failed: HTTP 503" in msgs[0][1]
    assert "Retrying in 1.00 s" in msgs[0][1]
    assert any(level == "INFO" and "Succeeded after 2 attempts" in m for level, m in msgs)
    assert any(level == "ERROR" and "all 2 attempts failed" in m for level, m in msgs)
    assert "secret-value" not in caplog.text


async def test_budget_stops_retry_storm() -> None:
    """With an empty budget a failing request is not retried (stop_reason budget)."""
    clock = FakeClock()
    handler, seen = sequence(503)
    budget = RetryBudget(ratio=0.0, min_per_second=0.0, clock=clock)
    async with make(handler, clock, retry_budget=budget) as c:
        r = await c.get("/a")
    assert len(seen) == 1 and r.extensions["resilience"].stop_reason == "budget"


async def test_budget_bounds_amplification_under_outage() -> None:
    """Under a full outage, upstream load stays ≤ 1.2× the logical requests."""
    clock = FakeClock()
    handler, seen = sequence(503)
    budget = RetryBudget(ratio=0.2, min_per_second=0.0, clock=clock)
    async with make(handler, clock, retry_budget=budget) as c:
        for _ in range(200):
            await c.get("/a")
    assert len(seen) <= 240


async def test_backoff_not_slept_past_total_deadline() -> None:
    """A backoff that would pass the total deadline is not slept; retries stop."""
    clock = FakeClock()
    handler, seen = sequence(503)
    async with make(
        handler, clock, retry=RetryPolicy(jitter="none", backoff_factor=5.0), total_timeout=8.0,
        timeout=2.0,
    ) as c:
        r = await c.get("/a")
    assert len(seen) == 2 and clock.sleeps == [5.0]
    assert r.extensions["resilience"].stop_reason == "deadline"


async def test_consumed_stream_body_is_not_resent_empty() -> None:
    """A retry due on a streamed upload raises RequestNotReplayableError, not an empty resend."""
    clock = FakeClock()
    seen: list[bytes] = []

    class StreamingTransport(httpx.AsyncBaseTransport):
        """Iterates the request stream as a network transport does (MockTransport buffers it)."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(b"".join([part async for part in request.stream]))  # type: ignore[union-attr]
            return httpx.Response(503)

    async def body():  # type: ignore[no-untyped-def]
        yield b"chunk-1"
        yield b"chunk-2"

    transport = ResilientTransport(
        StreamingTransport(), clock=clock, retry=RetryPolicy(jitter="none")
    )
    async with httpx.AsyncClient(transport=transport) as c:
        with pytest.raises(RequestNotReplayableError):
            await c.put("http://svc.test/upload", content=body())
    assert seen == [b"chunk-1chunk-2"]


async def test_observers_receive_events_and_a_raising_one_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    """Observers get AttemptFailed, RetryScheduled and RequestFinished; one that raises is skipped."""
    clock = FakeClock()
    events: list[object] = []

    def broken(_: object) -> None:
        raise RuntimeError("observer bug")

    handler, _ = sequence(503, 200)
    async with make(handler, clock, observers=[broken, events.append]) as c:
        r = await c.get("/a")
    assert r.status_code == 200
    kinds = [type(e) for e in events]
    assert kinds == [AttemptStarted, AttemptFailed, RetryScheduled, AttemptStarted, RequestFinished]
    assert events[0].attempt == 1 and events[3].attempt == 2  # type: ignore[attr-defined]
    assert "observer bug" in caplog.text


async def test_per_request_override_through_extensions() -> None:
    """extensions["resilience"]["retry"] overrides the transport's policy for one request."""
    clock = FakeClock()
    handler, seen = sequence(503)
    async with make(handler, clock) as c:
        await c.get("/a", extensions={"resilience": {"retry": RetryPolicy(max_attempts=2, jitter="none")}})
    assert len(seen) == 2


def test_contradictory_timeouts_rejected() -> None:
    """An attempt timeout longer than the total timeout is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="timeout"):
        ResilientTransport(httpx.MockTransport(lambda r: httpx.Response(200)), timeout=10, total_timeout=5)


def test_default_inner_transport_follows_config() -> None:
    """Without an inner transport it is httpx's own unless the config or a name asks for another."""
    from httpx_resilience import AsyncHTTPClient
    from httpx_resilience.transports import NativeTransport

    t = ResilientTransport(config=ClientConfig(transport="httpx", max_connections=7, max_keepalive_connections=3))
    assert isinstance(t._inner, httpx.AsyncHTTPTransport)
    assert "ResilientTransport(" in repr(t)
    # "auto" (the config's default) keeps httpx's stack under an SDK: as httpx-retries and hishel do.
    assert type(ResilientTransport()._inner) is httpx.AsyncHTTPTransport
    assert type(ResilientTransport(config=ClientConfig())._inner) is httpx.AsyncHTTPTransport
    # Asked for by the config or by name: that one ("auto" by name picks native, httptools installed).
    assert isinstance(ResilientTransport(config=ClientConfig(transport="native"))._inner, NativeTransport)
    assert isinstance(ResilientTransport("native")._inner, NativeTransport)
    assert isinstance(ResilientTransport("auto")._inner, NativeTransport)
    # AsyncHTTPClient resolves "auto" itself.
    assert isinstance(AsyncHTTPClient("http://127.0.0.1:1").transport._inner, NativeTransport)
    assert isinstance(ResilientTransport(config=ClientConfig(http2=True))._inner, httpx.AsyncHTTPTransport)
    with pytest.raises(ConfigurationError, match="transport"):
        ResilientTransport("curl")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="transport must be"):
        ResilientTransport(object())  # type: ignore[arg-type]
    for kind in ("native", "aiohttp"):
        with pytest.raises(ConfigurationError, match="http2"):
            ClientConfig(transport=kind, http2=True)
    with pytest.raises(ConfigurationError, match="transport"):
        ClientConfig(transport="curl")  # type: ignore[arg-type]


def test_disabling_tls_verification_logs_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    """verify_ssl=False logs one WARNING naming the risk."""
    with caplog.at_level(logging.WARNING, logger="httpx_resilience.security"):
        ResilientTransport(config=ClientConfig(verify_ssl=False))
    records = [r for r in caplog.records if r.name == "httpx_resilience.security"]
    assert len(records) == 1 and "verify_ssl=False" in records[0].getMessage()


async def test_per_attempt_auth_is_reapplied_on_retry() -> None:
    """A token provider is asked again before the retry, so the retry carries the fresh token."""
    from httpx_resilience import BearerAuth

    tokens = iter(["t1", "t2", "t3"])
    clock = FakeClock()
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["authorization"])  # the request object is reused: copy now
        return httpx.Response(503 if len(sent) == 1 else 200)

    async with make(handler, clock) as c:
        c.auth = BearerAuth(lambda: next(tokens))
        r = await c.get("/a")
    assert r.status_code == 200
    assert sent == ["Bearer t1", "Bearer t2"]


async def test_limiter_wait_is_reported_and_bounded_by_the_deadline() -> None:
    """A limiter wait is counted in total_wait and reported; a wait past the deadline is a total timeout."""
    from httpx_resilience import RequestTimeoutError, TokenBucketRateLimiter
    from httpx_resilience.observe.events import LimiterWaited

    clock = FakeClock()
    events: list[object] = []
    limiter = TokenBucketRateLimiter(rate=1, burst=1, clock=clock)
    handler, _ = sequence(200)
    async with make(handler, clock, rate_limiter=limiter, observers=[events.append]) as c:
        await c.get("/a")
        r = await c.get("/b")
    assert r.extensions["resilience"].total_wait == pytest.approx(1.0)
    assert any(isinstance(e, LimiterWaited) and e.waited == pytest.approx(1.0) for e in events)

    slow = TokenBucketRateLimiter(rate=0.01, burst=1)
    async with make(handler, clock, rate_limiter=slow, timeout=0.05, total_timeout=0.1) as c:
        await c.get("/c")
        with pytest.raises(RequestTimeoutError) as info:
            await c.get("/d")
    assert info.value.phase == "total"


async def test_inner_timeout_under_the_deadline_is_a_total_timeout() -> None:
    """When the deadline is the binding limit, an httpx timeout surfaces as RequestTimeoutError(total)."""
    from httpx_resilience import RequestTimeoutError

    clock = FakeClock()
    handler, seen = sequence(httpx.ReadTimeout("slow"))
    async with make(handler, clock, timeout=5.0, total_timeout=5.0) as c:
        with pytest.raises(RequestTimeoutError) as info:
            await c.get("/a")
    assert info.value.phase == "total" and info.value.attempts == len(seen) == 2
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


async def test_no_timeout_and_stream_mode() -> None:
    """With the attempt timeout overridden to None and stream mode on, the response is passed through."""
    clock = FakeClock()
    handler, _ = sequence(200)
    async with make(handler, clock) as c:
        r = await c.get("/a", extensions={"resilience": {"timeout": None, "stream": True}})
        r2 = await c.get("/b", extensions={"resilience": {"stream": True}})
    assert r.status_code == 200 and r2.status_code == 200


async def test_cancelled_attempt_releases_the_half_open_probe() -> None:
    """Cancelling a request during its half-open probe frees the probe slot."""
    import asyncio

    from httpx_resilience import CircuitBreaker, CircuitState

    clock = FakeClock()
    gate = asyncio.Event()

    class Hanging(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await gate.wait()
            return httpx.Response(200)

    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=5.0, clock=clock)
    breaker.force_open()
    clock.advance(6.0)
    transport = ResilientTransport(Hanging(), circuit_breaker=breaker, clock=clock)
    async with httpx.AsyncClient(transport=transport) as c:
        task = asyncio.ensure_future(c.get("http://svc.test/x"))
        await asyncio.sleep(0.01)
        assert breaker.state is CircuitState.HALF_OPEN
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.set()
        r = await c.get("http://svc.test/x")
    assert r.status_code == 200 and breaker.state is CircuitState.CLOSED


def test_retry_must_be_a_policy() -> None:
    """A retry= that is not a RetryPolicy is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="RetryPolicy"):
        ResilientTransport(retry=3)  # type: ignore[arg-type]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_workers_do_not_share_request_ids() -> None:
    """A forked worker reseeds the id generator: its next id differs from the parent's."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert uuid.UUID(child).version == 4
    assert child != new_request_id()


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        ({"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0},
         {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}),
        ({"connect": 5.0, "read": 20.0, "write": 5.0, "pool": 5.0},
         {"connect": 5.0, "read": 10.0, "write": 5.0, "pool": 5.0}),
        ({"connect": None, "read": 1.0, "write": 5.0, "pool": 5.0},
         {"connect": 10.0, "read": 1.0, "write": 5.0, "pool": 5.0}),
        ({"read": 3.0}, {"connect": 10.0, "read": 3.0, "write": 10.0, "pool": 10.0}),
    ],
)
def test_phase_timeouts_are_clamped_to_the_attempt(
    phases: dict[str, float | None], expected: dict[str, float]
) -> None:
    """Phases longer than the attempt, missing or unlimited are capped; shorter ones kept."""
    assert _clamp(phases, 10.0) == expected


def test_the_outcome_record_built_directly_equals_the_dataclass() -> None:
    """new_info gives the same frozen ResilienceInfo as its constructor, attempts_with_hedges summed."""
    built = new_info(3, 0.5, 0.25, "rid", "closed", 2.0, True, "attempts", 1)
    assert built == ResilienceInfo(3, 0.5, 0.25, "rid", "closed", 2.0, True, "attempts", 1, 4)
    assert hash(built) == hash(ResilienceInfo(3, 0.5, 0.25, "rid", "closed", 2.0, True, "attempts", 1, 4))
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.attempts = 5  # type: ignore[misc]


# -- bodies, overrides and limits -----------------------------------------------------------


class _ReadOnly:
    """A file object with read() only."""

    def __init__(self, data: bytes) -> None:
        import io

        self._buf = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._buf.read(size)


def test_replayable_and_shareable_bodies() -> None:
    """In memory: both. Seekable multipart files: replayable (put back at 0), not shareable.
    A read-only or closed file, a read stream: neither."""
    import io

    from httpx_resilience.pipeline._outcome import is_replayable, is_shareable

    url = "http://svc.test/"
    assert is_replayable(httpx.Request("PUT", url, content=b"x"))
    assert is_shareable(httpx.Request("PUT", url, json={"a": 1}))
    assert is_shareable(httpx.Request("GET", url))
    fields_only = httpx.Request("POST", url, data={"a": "1"}, files={"f": ("n", b"bytes")})
    assert is_replayable(fields_only) and is_shareable(fields_only)
    f = io.BytesIO(b"0123456789")
    seekable = httpx.Request("POST", url, files={"f": ("n", f)})
    f.seek(7)
    assert is_replayable(seekable) and f.tell() == 0  # back where httpx reads it from
    assert not is_shareable(seekable)
    assert not is_replayable(httpx.Request("POST", url, files={"f": ("n", _ReadOnly(b"x"))}))
    closed = io.BytesIO(b"x")
    closed_request = httpx.Request("POST", url, files={"f": ("n", closed)})
    closed.close()
    assert not is_replayable(closed_request)

    async def gen() -> AsyncIterator[bytes]:
        yield b"x"

    streamed = httpx.Request("POST", url, content=gen())
    assert is_replayable(streamed) and not is_shareable(streamed)  # not read yet
    streamed.stream._is_stream_consumed = True  # type: ignore[union-attr]
    assert not is_replayable(streamed)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timeout", "5"),
        ("timeout", -1),
        ("total_timeout", float("nan")),
        ("total_timeout", 10**400),
        ("retry", 3),
        ("hedging", "fast"),
        ("idempotent", "no"),
        ("stream", 1),
        ("max_response_bytes", 0),
    ],
    ids=lambda v: repr(v)[:24],
)
async def test_malformed_overrides_are_configuration_errors(name: str, value: object) -> None:
    """A bad value in extensions["resilience"] names its key; nothing is sent."""
    handler, seen = sequence(200)
    async with make(handler, FakeClock()) as c:
        with pytest.raises(ConfigurationError, match=rf'\["{name}"\]'):
            await c.get("/a", extensions={"resilience": {name: value}})
        with pytest.raises(ConfigurationError, match="must be a mapping"):
            await c.get("/a", extensions={"resilience": "fast"})
    assert seen == []


def test_unusable_settings_are_refused_at_construction() -> None:
    """Durations too large for a float and a request-id header that is no header name."""
    inner = httpx.MockTransport(lambda r: httpx.Response(200))
    with pytest.raises(ConfigurationError, match=r"at most 2\*\*53") as info:
        ResilientTransport(inner, total_timeout=10**400)
    assert info.value.field == "total_timeout"
    for bad in ("X Request Id", "\x80", "a:b"):
        with pytest.raises(ConfigurationError) as info:
            ResilientTransport(inner, config=ClientConfig(request_id_header=bad))
        assert info.value.field == "request_id_header"


async def test_a_final_failure_ends_the_hedge_race() -> None:
    """A failure the policy does not retry ends the race: no further copy is started."""
    import asyncio

    from httpx_resilience.policies.hedging import HedgingPolicy

    calls: list[float] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(0.0)
        if len(calls) == 1:
            await asyncio.sleep(0.05)  # slow: the hedge fires
            return httpx.Response(200)
        raise httpx.UnsupportedProtocol("not retried")

    transport = ResilientTransport(
        httpx.MockTransport(handler), hedging=HedgingPolicy(0.01, max_hedges=3),
        retry=RetryPolicy(jitter="none"),
    )
    async with httpx.AsyncClient(transport=transport) as c:
        with pytest.raises(httpx.UnsupportedProtocol):
            await c.get("http://svc.test/")
    assert len(calls) == 2  # the first copy, one hedge; the other two never started


async def test_a_response_over_its_cap_is_closed_and_not_retried() -> None:
    """buffer_response stops at the chunk that passes the cap and closes the stream."""
    from httpx_resilience import ResponseTooLargeError

    closed: list[str] = []

    class Endless(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            try:
                while True:
                    yield b"x" * 1000
            finally:
                closed.append("iterator")

        async def aclose(self) -> None:
            closed.append("stream")

    attempts: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        return httpx.Response(200, stream=Endless())

    transport = ResilientTransport(
        httpx.MockTransport(handler), config=ClientConfig(max_response_bytes=2500)
    )
    async with httpx.AsyncClient(transport=transport) as c:
        with pytest.raises(ResponseTooLargeError) as info:
            await c.get("http://svc.test/")
    assert (info.value.limit, info.value.received) == (2500, 3000)
    assert sorted(closed) == ["iterator", "stream"] and attempts == [1]


async def test_a_body_that_never_left_is_sent_on_the_retry() -> None:
    """After a connect error the read-only file was never read: the retry sends it whole."""
    bodies: list[bytes] = []

    class RefusesOnce(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if not bodies:
                bodies.append(b"")
                raise httpx.ConnectError("refused", request=request)
            bodies.append(b"".join([chunk async for chunk in request.stream]))  # type: ignore[union-attr]
            return httpx.Response(503 if len(bodies) == 2 else 200)

    transport = ResilientTransport(RefusesOnce(), retry=RetryPolicy(jitter="none", backoff_factor=0))
    async with httpx.AsyncClient(transport=transport) as c:
        with pytest.raises(RequestNotReplayableError):  # after the 503 it was read: not again
            await c.put("http://svc.test/", files={"f": ("n", _ReadOnly(b"payload"))})
    assert len(bodies) == 2 and b"payload" in bodies[1]


async def test_per_attempt_signing_ends_at_the_deadline() -> None:
    """Credentials prepared before a retry are waited for only until the total deadline."""
    import asyncio
    import time

    from httpx_resilience import RequestTimeoutError

    class SlowSigner:
        per_attempt = True

        async def prepare_request(self, request: httpx.Request) -> None:
            await asyncio.sleep(5)

    handler, seen = sequence(503)
    transport = ResilientTransport(
        httpx.MockTransport(handler), total_timeout=0.3, timeout=0.3,
        retry=RetryPolicy(jitter="none", backoff_factor=0.01),
    )
    async with httpx.AsyncClient(transport=transport) as c:
        t0 = time.monotonic()
        with pytest.raises(RequestTimeoutError, match="credentials") as info:
            await c.get("http://svc.test/", extensions={"resilience": {"auth": SlowSigner()}})
    assert info.value.phase == "total" and time.monotonic() - t0 < 1.5 and len(seen) == 1


def test_defaults_yield_to_a_deadline_or_a_timeout_given_to_the_transport() -> None:
    """The config's default attempt timeout shrinks to a total_timeout given here; the breaker's
    default time window does not contradict a long attempt timeout; two given values still do."""
    from httpx_resilience import CircuitBreaker, ConfigurationError, ResilientTransport

    assert ResilientTransport(total_timeout=0.5).timeout == 0.5
    with pytest.raises(ConfigurationError, match="timeout"):
        ResilientTransport(timeout=1, total_timeout=0.5)
    breaker = CircuitBreaker(failure_rate_threshold=0.5, window_type="time")
    assert ResilientTransport(timeout=60, circuit_breaker=breaker).timeout == 60
    given = CircuitBreaker(failure_rate_threshold=0.5, window_type="time", window_size=100)
    with pytest.raises(ConfigurationError, match="window_size"):
        ResilientTransport(timeout=60, circuit_breaker=given)


async def test_a_streamed_hedge_superseded_by_a_failure_is_closed() -> None:
    """Hedged stream mode: the first copy's retryable 503 (unread, holding its connection) is
    closed when a later copy's failure ends the race."""
    from httpx_resilience import HedgingPolicy

    closed: list[bool] = []

    class Body(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"busy"

        async def aclose(self) -> None:
            closed.append(True)

    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(503, stream=Body())
        raise httpx.ConnectError("refused", request=request)

    transport = ResilientTransport(
        httpx.MockTransport(handler),
        retry=RetryPolicy(max_attempts=1),
        hedging=HedgingPolicy(delay=0.01),
    )
    request = httpx.Request("GET", "http://api.test/x", extensions={"resilience": {"stream": True}})
    with pytest.raises(httpx.ConnectError):
        await transport.handle_async_request(request)
    assert calls == 2 and closed == [True]
