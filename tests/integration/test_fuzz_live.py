"""Server-sent pacing headers, fuzzed (hypothesis, bounded examples), through the full client.

A real :class:`~httpx_resilience.testing.ChaosServer` answers with whatever
``Retry-After`` or rate-limit header value an example holds; the request goes
through :class:`~httpx_resilience.AsyncHTTPClient` over each inner transport.

* ``Retry-After`` on 429 and 503, any Latin-1 text: a typed outcome within a
  bound, at most one retry, never a sleep past ``retry_max_delay``; and for
  the values whose meaning is known, the known behaviour: ``0``, a date in the
  past and garbage are retried (at once, or after the computed backoff), a
  delay or a date beyond ``retry_max_delay`` ends the request at once with
  one request sent.
* ``RateLimit`` / ``RateLimit-Policy`` / ``X-RateLimit-*`` on a 200, any
  text: the 200 is returned, and the next request waits at most the
  limiter's ``max_wait`` or is refused up front (``RateLimiterTimeout``);
  an exhausted quota with a reset beyond ``max_wait`` refuses it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import traceback
from collections.abc import Coroutine, Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from httpx_resilience import (
    AsyncHTTPClient,
    ClientConfig,
    HTTPClientError,
    RateLimiterTimeout,
    TokenBucketRateLimiter,
)
from httpx_resilience.testing import ChaosServer, Fault
from httpx_resilience.transports import make_transport

KINDS = ("httpx", "native", "aiohttp")
FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MAX_DELAY = 0.3  # retry_max_delay: a longer Retry-After ends the retries
MAX_WAIT = 0.3  # the limiter's max_wait
BOUND = 5.0  # no request may take longer (a hang)
SLACK = 1.0  # scheduling noise on a loaded 2-core machine
TYPED = (HTTPClientError, httpx.HTTPError, httpx.InvalidURL)
_paths = itertools.count()


T = TypeVar("T")


class LoopRunner:
    """One event loop that runs coroutine after coroutine (``asyncio.Runner`` needs 3.11)."""

    def __enter__(self) -> LoopRunner:
        self.loop = asyncio.new_event_loop()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)


@pytest.fixture(scope="module")
def server() -> Iterator[ChaosServer]:
    with ChaosServer(max_records=1000) as chaos:
        yield chaos


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def runner() -> Iterator[LoopRunner]:
    with LoopRunner() as loop_runner:
        yield loop_runner


@pytest.fixture
def inner(kind: str, runner: LoopRunner) -> Iterator[httpx.AsyncBaseTransport]:
    """One inner transport of ``kind`` for every example of a test (its pool is reused)."""
    transport = make_transport(kind)  # type: ignore[arg-type]
    yield transport
    runner.run(transport.aclose())


CONFIG = ClientConfig(
    timeout=2.0,
    total_timeout=4.0,
    retry_attempts=1,
    retry_backoff_factor=0.01,
    retry_max_delay=MAX_DELAY,
    retry_jitter="none",
    retry_budget_min_per_second=10_000.0,  # the budget is not what these tests probe
)


async def timed(coro: Any) -> tuple[Any, BaseException | None, float]:
    """Await ``coro`` within BOUND: (result, typed exception, seconds); anything else fails."""
    started = time.monotonic()
    try:
        result = await asyncio.wait_for(coro, BOUND)
    except asyncio.TimeoutError:
        pytest.fail(f"the request did not end within {BOUND} s")
    except Exception as exc:
        if not isinstance(exc, TYPED):
            pytest.fail(
                f"untyped {type(exc).__name__}: {exc!r}\n" + "".join(traceback.format_exception(exc))
            )
        return None, exc, time.monotonic() - started
    return result, None, time.monotonic() - started


# --------------------------------------------------------------------------- #
# Retry-After                                                                 #
# --------------------------------------------------------------------------- #

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def asctime(d: datetime) -> str:
    return f"{DAYS[d.weekday()]} {MONTHS[d.month - 1]} {d.day:2d} {d:%H:%M:%S} {d.year:04d}"


def http_date(offset: timedelta, form: str) -> str:
    when = datetime.now(timezone.utc) + offset
    if form == "asctime":
        return asctime(when)
    if form == "rfc850":
        return when.strftime("%A, %d-%b-%y %H:%M:%S GMT")
    return format_datetime(when, usegmt=True)


ows = st.sampled_from(["", " ", "\t", "  "])
forms = st.sampled_from(["imf", "rfc850", "asctime"])
# (value, what it means): "retry" (at once or after the backoff) or "stop" (beyond max delay).
known = st.one_of(
    st.tuples(st.sampled_from(["0", "00", "0000"]), ows).map(lambda t: (f"{t[1]}{t[0]}{t[1]}", "retry")),
    st.integers(min_value=1, max_value=10**30).map(lambda n: (str(n), "stop")),
    st.builds(
        lambda s, f: (http_date(-timedelta(seconds=s), f), "retry"),
        st.integers(min_value=5, max_value=10**8), forms,
    ),
    st.builds(
        lambda s, f: (http_date(timedelta(seconds=s), f), "stop"),
        st.integers(min_value=3600, max_value=10**8), forms,
    ),
    st.text(st.sampled_from("abcxyzGMT,:;-=_ "), min_size=1, max_size=12)
    .filter(lambda t: t.strip() != "")
    .map(lambda t: (t, "retry")),
    st.sampled_from(["-1", "+5", "1e3", "inf", "nan", "0x10", "²", "½", "5 s", "5,5"])
    .map(lambda t: (t, "retry")),  # not delta-seconds: invalid, so the computed backoff
)
# A field value a server may send (RFC 9110: visible ASCII, obs-text, space and tab); other
# control characters make every client refuse the response, as it should.
latin1 = st.text(
    st.characters(max_codepoint=0xFF).filter(lambda c: c == "\t" or 0x20 <= ord(c) != 0x7F),
    max_size=40,
)
any_value = st.one_of(known.map(lambda kv: (kv[0], None)), latin1.map(lambda v: (v, None)))


def retry_after_route(server: ChaosServer, status: int, value: str) -> str:
    path = f"/ra-{next(_paths)}"
    server.route(path, steps=[Fault(status=status, headers={"Retry-After": value}), Fault()])
    return path


def assert_retry_after_outcome(
    runner: LoopRunner, server: ChaosServer, inner: httpx.AsyncBaseTransport, status: int,
    value: str, meaning: str | None,
) -> None:
    path = retry_after_route(server, status, value)
    client = AsyncHTTPClient(server.url, config=CONFIG, transport=inner)

    async def go() -> tuple[Any, BaseException | None, float]:
        return await timed(client.get(path))

    response, exc, seconds = runner.run(go())
    sent = server.count(path)
    note = f"Retry-After {value!r} on {status}: {sent} sent, {seconds:.3f} s, {exc!r}"
    assert 1 <= sent <= 2, note
    assert seconds < MAX_DELAY + SLACK, note  # never a sleep past retry_max_delay
    if response is not None and response.status_code == 200:
        assert sent == 2, note
    if meaning == "retry":
        assert sent == 2 and response is not None and response.status_code == 200, note
    elif meaning == "stop":
        assert sent == 1, note
        assert seconds < SLACK, note
        told = getattr(exc, "retry_after", None) if exc is not None else None
        if told is not None:
            assert told > MAX_DELAY, note


@FUZZ
@given(status=st.sampled_from([429, 503]), case=known)
def test_known_retry_after_values_are_honoured_or_refused(
    runner: LoopRunner, server: ChaosServer, inner: httpx.AsyncBaseTransport, status: int,
    case: tuple[str, str],
) -> None:
    """0, past dates and invalid values are retried; delays beyond the cap stop at once."""
    value, meaning = case
    assert_retry_after_outcome(runner, server, inner, status, value, meaning)


@FUZZ
@given(status=st.sampled_from([429, 503]), value=latin1)
def test_any_retry_after_text_gives_a_bounded_typed_outcome(
    runner: LoopRunner, server: ChaosServer, inner: httpx.AsyncBaseTransport, status: int,
    value: str,
) -> None:
    """Any Latin-1 text: a typed outcome, at most one retry, no sleep past retry_max_delay."""
    assert_retry_after_outcome(runner, server, inner, status, value, None)


# --------------------------------------------------------------------------- #
# Rate-limit headers                                                          #
# --------------------------------------------------------------------------- #

number_text = st.one_of(
    st.integers(min_value=0, max_value=10**12).map(str),
    st.sampled_from(["", "-1", "1.5", "1e9", "inf", "nan", '"0"', " 7 ", "0x10", "²"]),
)
structured = st.one_of(
    st.builds(
        lambda r, t: {"X-RateLimit-Remaining": r, "X-RateLimit-Reset": t}, number_text, number_text
    ),
    st.builds(
        lambda r, t: {"RateLimit-Remaining": r, "RateLimit-Reset": t}, number_text, number_text
    ),
    st.builds(
        lambda lim, r, t: {"RateLimit": f"limit={lim}, remaining={r}, reset={t}"},
        number_text, number_text, number_text,
    ),
    st.builds(
        lambda r, t, q: {
            "RateLimit": f'"default";r={r};t={t}',
            "RateLimit-Policy": f'"default";q={q};w=60',
        },
        number_text, number_text, number_text,
    ),
)
free_form = st.dictionaries(
    st.sampled_from(
        ["RateLimit", "RateLimit-Policy", "RateLimit-Remaining", "RateLimit-Reset",
         "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Limit", "Retry-After"]
    ),
    latin1,
    min_size=1,
    max_size=4,
)
# An exhausted quota whose reset is beyond max_wait: the next request is refused.
exhausted = st.one_of(
    st.integers(min_value=5, max_value=3600).map(
        lambda t: {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(t)}
    ),
    st.integers(min_value=5, max_value=3600).map(
        lambda t: {"RateLimit": f"limit=10, remaining=0, reset={t}"}
    ),
)


def assert_paced_by_rate_limit_headers(
    runner: LoopRunner, server: ChaosServer, inner: httpx.AsyncBaseTransport,
    headers: dict[str, str], refused: bool | None,
) -> None:
    path = f"/rl-{next(_paths)}"
    server.route(path, headers=headers)
    limiter = TokenBucketRateLimiter(1000, 100, max_wait=MAX_WAIT, header_pacing=True)
    client = AsyncHTTPClient(server.url, config=CONFIG, rate_limiter=limiter, transport=inner)

    async def go() -> tuple[Any, ...]:
        return await timed(client.get(path)), await timed(client.get(path))

    (first, first_exc, _), (second, second_exc, seconds) = runner.run(go())
    note = f"{headers!r}: {first_exc!r}, then {second_exc!r} after {seconds:.3f} s"
    assert first_exc is None and first.status_code == 200, note
    assert seconds < MAX_WAIT + SLACK, note  # waited at most max_wait, or refused up front
    if second_exc is not None:
        assert isinstance(second_exc, RateLimiterTimeout), note
        assert server.count(path) == 1, note  # nothing sent
    else:
        assert second.status_code == 200 and server.count(path) == 2, note
    if refused is True:
        assert isinstance(second_exc, RateLimiterTimeout), note
        assert seconds < SLACK, note


@FUZZ
@given(headers=st.one_of(structured, free_form))
def test_rate_limit_headers_of_any_form_pace_within_max_wait(
    runner: LoopRunner, server: ChaosServer, inner: httpx.AsyncBaseTransport,
    headers: dict[str, str],
) -> None:
    """Any rate-limit header text: the answer is returned, the next request is paced or refused."""
    assert_paced_by_rate_limit_headers(runner, server, inner, headers, None)


@settings(FUZZ, max_examples=10)
@given(headers=exhausted)
def test_an_exhausted_quota_refuses_the_next_request(
    runner: LoopRunner, server: ChaosServer, inner: httpx.AsyncBaseTransport,
    headers: dict[str, str],
) -> None:
    """remaining=0 with a reset beyond max_wait: the next request is refused, nothing sent."""
    assert_paced_by_rate_limit_headers(runner, server, inner, headers, True)
