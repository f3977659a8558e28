"""Unit tests of the circuit breaker: the pure state machine and the edge around it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from httpx_resilience.exceptions import (
    AuthenticationError,
    BulkheadFullError,
    CircuitBreakerOpenError,
    ConfigurationError,
    HTTPClientError,
    HTTPRequestError,
    HTTPResponseError,
    RateLimiterTimeout,
    RetryExhaustedError,
)
from httpx_resilience.policies.breaker import (
    BreakerPermit,
    BreakerTransition,
    CircuitBreaker,
    CircuitState,
)
from httpx_resilience.policies.breaker._machine import (
    ADMITTED,
    PROBE,
    REFUSED,
    BreakerMachine,
)
from httpx_resilience.policies.breaker._settings import BreakerSettings
from httpx_resilience.testing.clock import FakeClock

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


def machine(**kw: Any) -> BreakerMachine:
    return BreakerMachine(BreakerSettings(**kw))


def fail(m: BreakerMachine, now: float = 0.0, duration: float = 0.01) -> Any:
    verdict, _ = m.try_admit(now)
    assert verdict != REFUSED
    return m.record(m.generation, verdict == PROBE, True, duration, now)


def ok(m: BreakerMachine, now: float = 0.0, duration: float = 0.01) -> Any:
    verdict, _ = m.try_admit(now)
    assert verdict != REFUSED
    return m.record(m.generation, verdict == PROBE, False, duration, now)


def response(status: int) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("GET", "https://api.example.com/x"))


# -- the pure machine ---------------------------------------------------------------


def test_machine_opens_after_consecutive_failures() -> None:
    """failure_threshold consecutive failures open the breaker, and not one fewer."""
    m = machine(failure_threshold=3)
    assert fail(m) is None
    assert fail(m) is None
    change = fail(m, now=5.0)
    assert change is not None and change.old is CLOSED and change.new is OPEN
    assert "3 consecutive failures" in change.reason
    assert m.state is OPEN and m.open_until == 5.0 + 60.0


def test_machine_success_resets_consecutive_count() -> None:
    """A success between failures resets the consecutive-failure count."""
    m = machine(failure_threshold=2)
    fail(m)
    ok(m)
    assert fail(m) is None
    assert m.state is CLOSED and m.consecutive_failures == 1


def test_machine_count_window_rate_trips() -> None:
    """With a count window, a failure rate at the threshold opens the breaker."""
    m = machine(failure_threshold=100, failure_rate_threshold=0.5, window_size=10, minimum_calls=10)
    for _ in range(5):
        ok(m)
    for _ in range(4):
        assert fail(m) is None  # 9 calls: below minimum_calls
    change = fail(m)
    assert change is not None and change.new is OPEN and "failure rate 50%" in change.reason


def test_machine_count_window_forgets_old_calls() -> None:
    """Only the last window_size calls count toward the failure rate."""
    m = machine(failure_threshold=100, failure_rate_threshold=0.5, window_size=4, minimum_calls=4)
    fail(m)
    ok(m)
    ok(m)
    ok(m)  # window: F S S S (25 %)
    ok(m)  # the failure drops out: S S S S
    assert m.window_counts(0.0) == (4, 0, 0)
    assert fail(m) is None  # S S S F = 25 %
    change = fail(m)  # S S F F = 50 %
    assert change is not None and change.new is OPEN


def test_machine_minimum_calls_holds_rate_rule_back() -> None:
    """Below minimum_calls, even a 100 % failure rate does not open the breaker."""
    m = machine(failure_threshold=100, failure_rate_threshold=0.5, window_size=50, minimum_calls=20)
    for _ in range(19):
        assert fail(m) is None
    assert m.state is CLOSED
    assert fail(m) is not None


def test_machine_time_window_rate_trips_and_expires() -> None:
    """A time window counts only the calls of the last window_size seconds."""
    m = machine(
        failure_threshold=100,
        failure_rate_threshold=0.5,
        window_type="time",
        window_size=10,
        minimum_calls=4,
    )
    t = 1000.0
    for _ in range(3):
        fail(m, now=t)
    # Eleven seconds later the three failures have left the window.
    t += 11.0
    assert m.window_counts(t) == (0, 0, 0)
    ok(m, now=t)
    ok(m, now=t)
    assert fail(m, now=t + 1) is None  # 1/3, below minimum_calls anyway
    change = fail(m, now=t + 2)  # 2/4 = 50 %
    assert change is not None and change.new is OPEN


def test_machine_time_window_rolls_partially() -> None:
    """Buckets older than the window are subtracted while newer ones stay."""
    m = machine(
        failure_threshold=100,
        failure_rate_threshold=0.9,
        window_type="time",
        window_size=10,
        minimum_calls=100,
    )
    fail(m, now=100.0)
    ok(m, now=105.0)
    assert m.window_counts(105.5) == (2, 1, 0)
    assert m.window_counts(110.5) == (1, 0, 0)
    assert m.window_counts(110.0) == (1, 0, 0)  # time never goes back: no resurrection


def test_machine_slow_call_rate_trips() -> None:
    """Calls at or over slow_call_duration open the breaker at the slow-call rate."""
    m = machine(
        failure_threshold=100,
        slow_call_duration=1.0,
        slow_call_rate_threshold=0.5,
        window_size=4,
        minimum_calls=4,
    )
    ok(m, duration=0.1)
    ok(m, duration=0.1)
    assert ok(m, duration=1.0) is None
    change = ok(m, duration=2.0)
    assert change is not None and change.new is OPEN and "slow-call rate 50%" in change.reason


def test_machine_half_open_admits_exactly_n_probes() -> None:
    """After recovery_timeout, HALF_OPEN admits half_open_max_calls probes and refuses the rest."""
    m = machine(failure_threshold=1, recovery_timeout=10.0, half_open_max_calls=3)
    fail(m, now=0.0)
    assert m.try_admit(9.9) == (REFUSED, None)
    verdict, change = m.try_admit(10.0)
    assert verdict == PROBE and change is not None and change.new is HALF_OPEN
    assert [m.try_admit(10.0)[0] for _ in range(5)] == [PROBE, PROBE, REFUSED, REFUSED, REFUSED]


def test_machine_probe_successes_close() -> None:
    """half_open_max_calls successful probes close the breaker and clear the window."""
    m = machine(failure_threshold=1, recovery_timeout=1.0, half_open_max_calls=2)
    fail(m)
    m.advance(1.0)
    gen = m.generation
    assert m.try_admit(1.0)[0] == PROBE
    assert m.try_admit(1.0)[0] == PROBE
    assert m.record(gen, True, False, 0.1, 1.0) is None
    change = m.record(gen, True, False, 0.1, 1.0)
    assert change is not None and change.new is CLOSED and "2 half-open probes" in change.reason
    assert m.try_admit(1.0) == (ADMITTED, None)


def test_machine_probe_failure_reopens_with_fresh_timeout() -> None:
    """The first failed probe reopens the breaker for a new recovery_timeout."""
    m = machine(failure_threshold=1, recovery_timeout=5.0, half_open_max_calls=2)
    fail(m, now=0.0)
    m.try_admit(5.0)
    change = m.record(m.generation, True, True, 0.1, 7.0)
    assert change is not None and change.old is HALF_OPEN and change.new is OPEN
    assert m.open_until == 12.0 and m.retry_in(8.0) == 4.0


def test_machine_slow_probe_reopens() -> None:
    """With the slow-call rule on, a slow probe counts as a failed probe."""
    m = machine(
        failure_threshold=1,
        recovery_timeout=1.0,
        slow_call_duration=0.5,
        slow_call_rate_threshold=1.0,
        minimum_calls=1,
    )
    fail(m)
    m.try_admit(1.0)
    change = m.record(m.generation, True, False, 0.7, 1.0)
    assert change is not None and change.new is OPEN and "slow" in change.reason


def test_machine_release_frees_probe_slot() -> None:
    """Releasing a probe without an outcome lets another probe in and changes nothing else."""
    m = machine(failure_threshold=1, recovery_timeout=1.0)
    fail(m)
    assert m.try_admit(1.0)[0] == PROBE
    assert m.try_admit(1.0)[0] == REFUSED
    m.release(m.generation, True)
    assert m.state is HALF_OPEN
    assert m.try_admit(1.0)[0] == PROBE


def test_machine_ignores_stale_outcomes() -> None:
    """An outcome from before the last transition is ignored (a late success cannot close)."""
    m = machine(failure_threshold=1, recovery_timeout=1.0)
    old_gen = m.generation
    fail(m)
    m.try_admit(1.0)
    assert m.record(old_gen, False, False, 0.1, 1.0) is None
    m.release(old_gen, True)
    assert m.state is HALF_OPEN and m.probes_in_flight == 1


def test_machine_starts_new_probe_round_when_probes_hang() -> None:
    """Probes out for a whole recovery_timeout no longer block new probes; their outcomes go stale."""
    m = machine(failure_threshold=1, recovery_timeout=10.0, half_open_max_calls=2)
    fail(m, now=0.0)
    assert m.try_admit(10.0)[0] == PROBE
    gen = m.generation
    m.release(gen, True)
    assert m.try_admit(15.0)[0] == PROBE
    assert m.try_admit(16.0)[0] == PROBE
    assert m.try_admit(24.0)[0] == REFUSED  # the newest probe is out for 8 s only
    assert m.try_admit(26.0)[0] == PROBE  # 10 s since the newest probe: a new round
    assert m.record(gen, True, False, 0.1, 26.0) is None and m.probe_successes == 0


def test_machine_force() -> None:
    """force() moves to OPEN or CLOSED and reports only real changes."""
    m = machine()
    assert m.force(CLOSED, 0.0, "reset") is None
    change = m.force(OPEN, 0.0, "forced open")
    assert change is not None and change.new is OPEN
    assert m.force(OPEN, 1.0, "forced open") is None and m.open_until == 61.0
    change = m.force(CLOSED, 2.0, "forced closed")
    assert change is not None and change.new is CLOSED and m.retry_in(2.0) == 0.0


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"failure_threshold": True}, "failure_threshold"),
        ({"recovery_timeout": 0}, "recovery_timeout"),
        ({"recovery_timeout": float("inf")}, "recovery_timeout"),
        ({"half_open_max_calls": 0}, "half_open_max_calls"),
        ({"minimum_calls": 0}, "minimum_calls"),
        ({"failure_rate_threshold": 0.0}, "failure_rate_threshold"),
        ({"failure_rate_threshold": 1.5}, "failure_rate_threshold"),
        ({"window_type": "sliding"}, "window_type"),
        ({"window_size": 0}, "window_size"),
        ({"window_size": 10.5}, "window_size"),
        ({"failure_rate_threshold": 0.5, "window_size": 5, "minimum_calls": 10}, "minimum_calls"),
        ({"slow_call_duration": -1.0, "slow_call_rate_threshold": 0.5}, "slow_call_duration"),
        ({"slow_call_duration": 1.0}, "slow_call_rate_threshold"),
        ({"slow_call_rate_threshold": 0.5}, "slow_call_duration"),
    ],
)
def test_settings_validation_names_the_field(kw: dict[str, Any], field: str) -> None:
    """Each out-of-range setting raises ConfigurationError naming the field."""
    with pytest.raises(ConfigurationError) as info:
        BreakerSettings(**kw)
    assert info.value.field == field
    assert field in str(info.value)


def test_time_window_accepts_fractional_size() -> None:
    """A time window may be a fraction of a second and ignores the count-window bound."""
    s = BreakerSettings(window_type="time", window_size=0.5, failure_rate_threshold=0.5)
    assert s.uses_window and s.window_size == 0.5


# -- the edge -------------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def trip(b: CircuitBreaker, n: int | None = None) -> None:
    for _ in range(n if n is not None else b.failure_threshold):
        b.acquire().failure(0.01)


def test_acquire_refuses_when_open(clock: FakeClock) -> None:
    """An open breaker refuses with CircuitBreakerOpenError carrying its name and retry_in."""
    b = CircuitBreaker(2, 30.0, name="store", clock=clock)
    trip(b)
    assert b.state is OPEN
    clock.advance(10.0)
    with pytest.raises(CircuitBreakerOpenError) as info:
        b.acquire()
    assert info.value.name == "store" and info.value.retry_in == pytest.approx(20.0)
    assert isinstance(info.value, httpx.TransportError)
    assert b.retry_in == pytest.approx(20.0)


def test_state_moves_to_half_open_after_timeout(clock: FakeClock) -> None:
    """Reading state after recovery_timeout shows HALF_OPEN; retry_in is 0 then."""
    b = CircuitBreaker(1, 30.0, clock=clock)
    trip(b)
    clock.advance(29.9)
    assert b.state is OPEN
    clock.advance(0.1)
    assert b.state is HALF_OPEN and b.retry_in == 0.0


async def test_half_open_admits_exactly_n_among_100_concurrent(clock: FakeClock) -> None:
    """100 concurrent callers in HALF_OPEN: exactly half_open_max_calls get through."""
    b = CircuitBreaker(1, 5.0, half_open_max_calls=3, clock=clock)
    trip(b)
    clock.advance(5.0)
    gate = asyncio.Event()
    calls = 0

    async def upstream() -> str:
        nonlocal calls
        calls += 1
        await gate.wait()
        return "ok"

    tasks = [asyncio.create_task(b.call(upstream)) for _ in range(100)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert calls == 3
    assert results.count("ok") == 3
    assert sum(isinstance(r, CircuitBreakerOpenError) for r in results) == 97
    assert b.state is CLOSED


def test_probe_success_closes_and_failure_reopens(clock: FakeClock) -> None:
    """A successful probe closes the breaker; a failed one reopens it for a fresh timeout."""
    b = CircuitBreaker(1, 10.0, clock=clock)
    trip(b)
    clock.advance(10.0)
    b.acquire().failure(0.1)
    assert b.state is OPEN and b.retry_in == pytest.approx(10.0)
    clock.advance(10.0)
    permit = b.acquire()
    assert permit.is_probe
    permit.success(0.1)
    assert b.state is CLOSED


def test_release_frees_probe_slot(clock: FakeClock) -> None:
    """release() on a probe frees its slot without recording an outcome."""
    b = CircuitBreaker(1, 1.0, clock=clock)
    trip(b)
    clock.advance(1.0)
    probe = b.acquire()
    with pytest.raises(CircuitBreakerOpenError) as info:
        b.acquire()
    assert info.value.retry_in == 0.0
    probe.release()
    assert b.state is HALF_OPEN
    b.acquire().success(0.1)
    assert b.state is CLOSED


def test_permit_is_ended_once(clock: FakeClock) -> None:
    """Only the first of success/failure/release counts; later calls are no-ops."""
    b = CircuitBreaker(2, clock=clock)
    p = b.acquire()
    assert isinstance(p, BreakerPermit)
    p.failure(0.1)
    p.failure(0.1)
    p.success(0.1)
    p.release()
    assert p.done and b.failure_count == 1 and b.state is CLOSED
    assert "call" in repr(p) and not p.is_probe
    q = b.acquire()
    q.release()
    q.failure(0.1)
    assert b.failure_count == 1  # released: nothing recorded


def test_stale_permit_does_not_close(clock: FakeClock) -> None:
    """A call admitted before the breaker opened cannot close it by succeeding late."""
    b = CircuitBreaker(1, 1.0, clock=clock)
    early = b.acquire()
    trip(b)
    clock.advance(1.0)
    assert b.state is HALF_OPEN
    early.success(0.1)
    assert b.state is HALF_OPEN


def test_transitions_logged_and_delivered(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Every transition logs a WARNING with structured extras and reaches every listener."""
    seen: list[BreakerTransition] = []
    b = CircuitBreaker(1, 5.0, name="dapr", listeners=[seen.append], clock=clock)
    late: list[BreakerTransition] = []
    b.add_listener(late.append)
    with caplog.at_level(logging.WARNING, logger="httpx_resilience.breaker"):
        trip(b)
        clock.advance(5.0)
        b.acquire().success(0.1)
    assert [(t.old, t.new) for t in seen] == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]
    assert seen == late
    assert seen[0] == BreakerTransition("dapr", CLOSED, OPEN, 1000.0, "1 consecutive failure")
    assert seen[1].at == 1005.0
    records = [r for r in caplog.records if r.name == "httpx_resilience.breaker"]
    assert [r.levelno for r in records] == [logging.WARNING] * 3
    first = records[0]
    assert first.breaker == "dapr"  # type: ignore[attr-defined]
    assert first.old_state == "closed" and first.new_state == "open"  # type: ignore[attr-defined]
    assert first.reason == "1 consecutive failure"  # type: ignore[attr-defined]


def test_listener_that_raises_is_ignored(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A listener that raises is logged; the transition and other listeners still happen."""
    seen: list[BreakerTransition] = []

    def broken(t: BreakerTransition) -> None:
        raise RuntimeError("boom")

    b = CircuitBreaker(1, listeners=[broken, seen.append], clock=clock)
    with caplog.at_level(logging.WARNING, logger="httpx_resilience.breaker"):
        trip(b)
    assert b.state is OPEN and len(seen) == 1
    assert any(r.levelno == logging.ERROR and "listener" in r.getMessage() for r in caplog.records)


def test_add_listener_rejects_non_callable() -> None:
    """add_listener refuses something that is not callable."""
    with pytest.raises(ConfigurationError):
        CircuitBreaker().add_listener("nope")  # type: ignore[arg-type]


def test_force_open_force_closed_reset(clock: FakeClock) -> None:
    """force_open refuses at once, force_closed and reset restore a clean CLOSED breaker."""
    seen: list[BreakerTransition] = []
    b = CircuitBreaker(3, 10.0, listeners=[seen.append], clock=clock)
    b.acquire().failure(0.1)
    b.force_open()
    with pytest.raises(CircuitBreakerOpenError):
        b.acquire()
    b.force_closed()
    assert b.state is CLOSED and b.failure_count == 0
    b.acquire().failure(0.1)
    b.reset()
    assert b.failure_count == 0
    assert [t.reason for t in seen] == ["forced open", "forced closed"]
    b.force_open()
    clock.advance(10.0)
    assert b.state is HALF_OPEN  # a forced open recovers like a trip


def test_host_scope_isolates_keys(clock: FakeClock) -> None:
    """With scope='host', each key has its own state; one host's outage spares the others."""
    seen: list[BreakerTransition] = []
    b = CircuitBreaker(2, scope="host", listeners=[seen.append], clock=clock)
    a = b.for_key("a.example")
    assert b.for_key("a.example") is a and a.name == "a.example"
    trip(a)
    assert a.state is OPEN
    assert b.for_key("b.example").state is CLOSED
    assert b.state is CLOSED
    assert seen[0].name == "a.example"
    assert a.for_key("x") is a
    assert set(b.children()) == {"a.example", "b.example"}
    assert b.scope == "host" and a.scope == "global"
    b.reset()
    assert b.children() == {}


def test_host_scope_bounded_evicts_closed_first(clock: FakeClock) -> None:
    """The per-key LRU keeps max_keys children and evicts least-recently-used CLOSED ones first."""
    b = CircuitBreaker(1, scope="host", max_keys=3, clock=clock)
    trip(b.for_key("k0"))  # oldest, but OPEN: kept
    b.for_key("k1")
    b.for_key("k2")
    b.for_key("k3")  # evicts k1, the oldest CLOSED one
    assert set(b.children()) == {"k0", "k2", "k3"}
    for k in ("k2", "k3"):
        trip(b.for_key(k))
    b.for_key("k4")  # none CLOSED: evicts the least recently used overall
    assert set(b.children()) == {"k2", "k3", "k4"}
    assert "keys=3/3" in repr(b)


def test_global_scope_for_key_returns_self() -> None:
    """With scope='global', for_key returns the breaker itself."""
    b = CircuitBreaker()
    assert b.for_key("anything") is b and b.children() == {}


async def test_call_records_expected_exception(clock: FakeClock) -> None:
    """call() counts expected_exception as failures and re-raises; nothing runs once open."""
    b = CircuitBreaker(2, expected_exception=(KeyError,), clock=clock)
    ran = 0

    async def boom() -> None:
        nonlocal ran
        ran += 1
        raise KeyError("x")

    for _ in range(2):
        with pytest.raises(KeyError):
            await b.call(boom)
    assert b.state is OPEN
    with pytest.raises(CircuitBreakerOpenError):
        await b.call(boom)
    assert ran == 2


async def test_call_non_failure_exception_is_success(clock: FakeClock) -> None:
    """An exception that is not a failure is re-raised but recorded as a success."""
    b = CircuitBreaker(2, clock=clock)
    b.acquire().failure(0.1)

    async def bad() -> None:
        raise ValueError("caller bug")

    with pytest.raises(ValueError):
        await b.call(bad)
    assert b.failure_count == 0


async def test_call_passes_arguments_and_measures_duration(clock: FakeClock) -> None:
    """call() passes args through, returns the result and feeds the slow-call rule."""
    b = CircuitBreaker(
        100,
        slow_call_duration=1.0,
        slow_call_rate_threshold=1.0,
        minimum_calls=1,
        window_size=1,
        clock=clock,
    )

    async def slow(x: int, *, y: int) -> int:
        await clock.sleep(2.0)
        return x + y

    assert await b.call(slow, 1, y=2) == 3
    assert b.state is OPEN


async def test_call_classifies_returned_response(clock: FakeClock) -> None:
    """call() on a function returning an httpx.Response records a 5xx as a failure."""
    b = CircuitBreaker(1, clock=clock)

    async def get(status: int) -> httpx.Response:
        return response(status)

    assert (await b.call(get, 404)).status_code == 404
    assert b.state is CLOSED
    await b.call(get, 503)
    assert b.state is OPEN


async def test_call_cancelled_records_nothing(clock: FakeClock) -> None:
    """A cancelled call() frees its probe slot and records no outcome."""
    b = CircuitBreaker(1, 1.0, clock=clock)
    trip(b)
    clock.advance(1.0)
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(b.call(hang))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.state is HALF_OPEN
    b.acquire().success(0.1)  # the slot is free again
    assert b.state is CLOSED


def test_is_failure_response_rules() -> None:
    """By default every 5xx is a failure and no 4xx is; failure_statuses replaces the set."""
    b = CircuitBreaker()
    assert [b.is_failure_response(response(s)) for s in (200, 404, 429, 500, 503, 599)] == [
        False,
        False,
        False,
        True,
        True,
        True,
    ]
    custom = CircuitBreaker(failure_statuses={503, 429})
    assert custom.is_failure_response(response(429))
    assert not custom.is_failure_response(response(500))


def test_failure_predicate_first_then_defaults() -> None:
    """failure_predicate decides first; returning None falls back to the default rules."""

    def predicate(resp: httpx.Response | None, exc: BaseException | None) -> bool | None:
        if resp is not None and resp.status_code == 404:
            return True
        if isinstance(exc, ZeroDivisionError):
            return True
        if isinstance(exc, httpx.ConnectError):
            return False
        return None

    b = CircuitBreaker(failure_predicate=predicate)
    assert b.is_failure_response(response(404))
    assert b.is_failure_response(response(500))
    assert b.is_failure_exception(ZeroDivisionError())
    assert not b.is_failure_exception(httpx.ConnectError("x"))
    assert b.is_failure_exception(httpx.ReadTimeout("x"))


def test_is_failure_exception_rules() -> None:
    """Transport errors and expected_exception count; refusals, cancellation and 4xx never."""
    b = CircuitBreaker()
    resp404 = response(404)
    assert b.is_failure_exception(httpx.ConnectError("x"))
    assert b.is_failure_exception(HTTPRequestError("x"))
    assert b.is_failure_exception(HTTPResponseError(502, "bad gateway"))
    assert not b.is_failure_exception(HTTPResponseError(404, "not found"))
    assert not b.is_failure_exception(AuthenticationError("refused", status_code=401))
    assert b.is_failure_exception(AuthenticationError("token endpoint unreachable"))
    assert b.is_failure_exception(RetryExhaustedError("gave up", attempts=3))
    assert not b.is_failure_exception(
        RetryExhaustedError("gave up", attempts=3, last_response=response(429))
    )
    assert not b.is_failure_exception(CircuitBreakerOpenError("x", 1.0))
    assert not b.is_failure_exception(RateLimiterTimeout("x"))
    assert not b.is_failure_exception(BulkheadFullError("x"))
    assert not b.is_failure_exception(ConfigurationError("x"))
    assert not b.is_failure_exception(asyncio.CancelledError())
    assert not b.is_failure_exception(ValueError("x"))
    status = httpx.HTTPStatusError("x", request=resp404.request, response=resp404)
    assert not CircuitBreaker(expected_exception=httpx.HTTPStatusError).is_failure_exception(status)
    resp500 = response(500)
    status500 = httpx.HTTPStatusError("x", request=resp500.request, response=resp500)
    assert CircuitBreaker(expected_exception=httpx.HTTPStatusError).is_failure_exception(status500)
    narrow = CircuitBreaker(expected_exception=KeyError)
    assert not narrow.is_failure_exception(HTTPClientError("x"))
    assert narrow.is_failure_exception(httpx.ReadError("x"))


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"recovery_timeout": -1}, "recovery_timeout"),
        ({"expected_exception": ()}, "expected_exception"),
        ({"expected_exception": "oops"}, "expected_exception"),
        ({"failure_statuses": [200, 700]}, "failure_statuses"),
        ({"failure_predicate": 3}, "failure_predicate"),
        ({"scope": "process"}, "scope"),
        ({"max_keys": 0}, "max_keys"),
        ({"name": ""}, "name"),
        ({"listeners": [1]}, "listeners"),
        ({"half_open_max_calls": 0}, "half_open_max_calls"),
    ],
)
def test_breaker_validation_names_the_field(kw: dict[str, Any], field: str) -> None:
    """Bad constructor arguments raise ConfigurationError (a ValueError) naming the field."""
    with pytest.raises(ConfigurationError) as info:
        CircuitBreaker(**kw)
    assert info.value.field == field and isinstance(info.value, ValueError)


def test_settings_exposed_read_only() -> None:
    """The settings are readable on the breaker and immutable."""
    b = CircuitBreaker(3, 30.0, KeyError, half_open_max_calls=2)
    assert (b.failure_threshold, b.recovery_timeout, b.half_open_max_calls) == (3, 30.0, 2)
    assert b.expected_exception == (KeyError,)
    assert CircuitBreaker.failure_threshold.__doc__ == "Consecutive failures that open the breaker."
    assert (b.window_type, b.window_size, b.minimum_calls) == ("count", 100, 10)
    with pytest.raises(AttributeError):
        b.settings.failure_threshold = 9  # type: ignore[misc]


def test_repr_shows_live_state(clock: FakeClock) -> None:
    """repr shows the state, the failure count and what an open breaker waits for."""
    b = CircuitBreaker(2, 10.0, half_open_max_calls=2, name="svc", clock=clock)
    b.acquire().failure(0.1)
    assert repr(b) == "<CircuitBreaker 'svc' state=closed failures=1/2>"
    b.acquire().failure(0.1)
    assert "state=open" in repr(b) and "retry_in=10.0s" in repr(b)
    clock.advance(10.0)
    b.acquire()
    assert "state=half_open" in repr(b) and "probes=1+0/2" in repr(b)


def test_time_window_breaker_end_to_end(clock: FakeClock) -> None:
    """A time-window breaker trips on rate and reports its window counts."""
    b = CircuitBreaker(
        100,
        failure_rate_threshold=0.5,
        window_type="time",
        window_size=60,
        minimum_calls=4,
        clock=clock,
    )
    for i in range(4):
        permit = b.acquire()
        clock.advance(1.0)
        (permit.failure if i % 2 else permit.success)(1.0)
    assert b.state is OPEN
    assert b.window_counts() == (4, 2, 0)


def test_recovery_clears_the_window(clock: FakeClock) -> None:
    """Closing after a successful probe starts a fresh window; a breaker without one reports zeros."""
    for window_type, size in (("count", 10), ("time", 60)):
        b = CircuitBreaker(
            100,
            1.0,
            failure_rate_threshold=0.5,
            window_type=window_type,  # type: ignore[arg-type]
            window_size=size,
            minimum_calls=2,
            clock=clock,
        )
        b.acquire().failure(0.1)
        b.acquire().failure(0.1)
        assert b.state is OPEN and b.window_counts()[0] == 2
        clock.advance(1.0)
        b.acquire().success(0.1)
        assert b.state is CLOSED and b.window_counts() == (0, 0, 0)
    assert CircuitBreaker().window_counts() == (0, 0, 0)


# -- seed 003's manual API ---------------------------------------------------------------


def test_seed_003_manual_api_end_to_end(clock: FakeClock) -> None:
    """5 recorded failures open it; raise_if_open fails fast with the cooldown left; after the
    cooldown one probe passes, a second caller is refused, and the probe's success closes it."""
    events: list[BreakerTransition] = []
    b = CircuitBreaker(failure_threshold=5, cooldown_seconds=30, name="walltrack", clock=clock,
                       listeners=[events.append])
    for _ in range(4):
        b.raise_if_open()
        b.record_failure()
    assert b.state is CLOSED and b.failure_count == 4 and b.can_execute()
    b.record_failure()
    assert b.state is OPEN and not b.can_execute()
    clock.advance(10.0)
    with pytest.raises(CircuitBreakerOpenError) as info:
        b.raise_if_open()
    assert info.value.name == "walltrack" and info.value.retry_in == pytest.approx(20.0)
    clock.advance(20.0)
    assert b.can_execute() and b.state is HALF_OPEN
    b.raise_if_open()  # the one probe
    assert not b.can_execute()
    with pytest.raises(CircuitBreakerOpenError) as info:
        b.raise_if_open()
    assert info.value.retry_in == 0.0
    b.record_success()
    assert b.state is CLOSED and b.can_execute()
    assert [(e.old, e.new) for e in events] == [
        (CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)
    ]


def test_can_execute_only_looks(clock: FakeClock) -> None:
    """can_execute() takes no probe slot and counts nothing; its one change is a due
    OPEN → HALF_OPEN, announced once."""
    events: list[BreakerTransition] = []
    b = CircuitBreaker(2, 10.0, clock=clock, half_open_max_calls=1, listeners=[events.append])
    b.record_failure()
    assert all(b.can_execute() for _ in range(50)) and b.failure_count == 1
    b.record_failure()
    assert [b.can_execute() for _ in range(3)] == [False] * 3 and b.state is OPEN
    clock.advance(10.0)
    assert all(b.can_execute() for _ in range(50))
    assert len(events) == 2 and events[-1].new is HALF_OPEN
    permit = b.acquire()  # the slot is still free for whoever takes it
    assert permit.is_probe and not b.can_execute()
    permit.success(0.01)
    assert b.state is CLOSED


async def test_raise_if_open_admits_exactly_the_half_open_probes(clock: FakeClock) -> None:
    """Among 20 concurrent tasks gated by raise_if_open(), exactly half_open_max_calls run;
    their recorded successes close the breaker."""
    b = CircuitBreaker(1, 5.0, clock=clock, half_open_max_calls=3)
    b.record_failure()
    clock.advance(5.0)
    ran: list[int] = []

    async def task(i: int) -> None:
        try:
            b.raise_if_open()
        except CircuitBreakerOpenError:
            return
        await asyncio.sleep(0)
        ran.append(i)
        b.record_success(duration=0.01)

    await asyncio.gather(*(task(i) for i in range(20)))
    assert len(ran) == 3 and b.state is CLOSED


def test_a_recorded_failure_in_half_open_reopens_for_a_fresh_cooldown(clock: FakeClock) -> None:
    """The probe's failure reopens the breaker; retry_in is a whole cooldown again."""
    b = CircuitBreaker(1, 8.0, clock=clock)
    b.record_failure()
    clock.advance(8.0)
    b.raise_if_open()
    assert b.record_failure(httpx.ConnectError("refused")) is True
    assert b.state is OPEN and b.retry_in == pytest.approx(8.0)


def test_outcomes_without_a_slot_still_decide_half_open(clock: FakeClock) -> None:
    """Code gated by can_execute() (no slot taken) still moves a half-open breaker: a success
    closes it, a failure reopens it."""
    b = CircuitBreaker(1, 3.0, clock=clock)
    b.record_failure()
    clock.advance(3.0)
    assert b.can_execute()
    b.record_success()
    assert b.state is CLOSED
    b.record_failure()
    clock.advance(3.0)
    assert b.can_execute()
    b.record_failure()
    assert b.state is OPEN


def test_outcomes_recorded_while_open_are_ignored(clock: FakeClock) -> None:
    """An outcome while OPEN comes from a call that began before it opened: ignored."""
    b = CircuitBreaker(1, 30.0, clock=clock)
    b.record_failure()
    b.record_success()
    assert b.state is OPEN and b.retry_in == pytest.approx(30.0)
    b.record_failure()
    assert b.retry_in == pytest.approx(30.0)  # not extended either


def test_record_failure_classifies_the_exception(clock: FakeClock) -> None:
    """With an exception, record_failure judges it as call() does: a 404 is a success (it clears
    the count), a connect error a failure, a cancellation nothing at all."""
    b = CircuitBreaker(3, 10.0, clock=clock)
    assert b.record_failure(httpx.ConnectError("x")) is True and b.failure_count == 1
    assert b.record_failure(HTTPResponseError(404, "missing")) is False and b.failure_count == 0
    assert b.record_failure(HTTPResponseError(503, "down")) is True
    assert b.record_failure(asyncio.CancelledError()) is False and b.failure_count == 1
    assert b.record_failure(ValueError("bug")) is False and b.failure_count == 0  # not expected_exception


def test_a_cancelled_probe_gives_its_slot_back(clock: FakeClock) -> None:
    """record_failure(CancelledError()) after raise_if_open() frees the probe slot."""
    b = CircuitBreaker(1, 5.0, clock=clock)
    b.record_failure()
    clock.advance(5.0)
    b.raise_if_open()
    assert not b.can_execute()
    b.record_failure(asyncio.CancelledError())
    assert b.state is HALF_OPEN and b.can_execute()
    b.raise_if_open()
    b.record_success()
    assert b.state is CLOSED


def test_an_unreported_manual_probe_frees_its_slot_after_the_cooldown(clock: FakeClock) -> None:
    """A slot taken by raise_if_open() and never reported blocks probes for one cooldown only."""
    b = CircuitBreaker(1, 5.0, clock=clock)
    b.record_failure()
    clock.advance(5.0)
    b.raise_if_open()
    clock.advance(4.9)
    assert not b.can_execute()
    clock.advance(0.1)
    assert b.can_execute()
    b.raise_if_open()  # a new probe round
    b.record_success()
    assert b.state is CLOSED


def test_manual_api_on_per_host_children(clock: FakeClock) -> None:
    """Each host's child has the manual API and its own state."""
    b = CircuitBreaker(1, 5.0, scope="host", clock=clock)
    b.for_key("a").record_failure()
    with pytest.raises(CircuitBreakerOpenError) as info:
        b.for_key("a").raise_if_open()
    assert info.value.name == "a"
    b.for_key("b").raise_if_open()
    assert b.for_key("b").can_execute() and not b.for_key("a").can_execute()


def test_cooldown_seconds_is_recovery_timeout(clock: FakeClock) -> None:
    """cooldown_seconds (seed 003's name) and recovery_timeout are one setting: either
    keyword sets it, both read it; giving both is refused unless they agree."""
    assert CircuitBreaker(cooldown_seconds=30).recovery_timeout == 30
    assert CircuitBreaker(recovery_timeout=45).cooldown_seconds == 45
    assert CircuitBreaker(5, 12.5, cooldown_seconds=12.5).cooldown_seconds == 12.5
    assert CircuitBreaker().cooldown_seconds == 60.0
    with pytest.raises(ConfigurationError, match="same setting") as info:
        CircuitBreaker(recovery_timeout=30, cooldown_seconds=60)
    assert info.value.field == "cooldown_seconds"
    for bad in (0, -1, float("inf"), "30", True):
        with pytest.raises(ConfigurationError) as info:
            CircuitBreaker(cooldown_seconds=bad)  # type: ignore[arg-type]
        assert info.value.field == "cooldown_seconds"
    b = CircuitBreaker(1, cooldown_seconds=7, clock=clock)
    b.record_failure()
    assert b.retry_in == pytest.approx(7.0)


def test_can_admit_agrees_with_try_admit() -> None:
    """The machine's read-only can_admit() answers what try_admit() would do, through random
    admissions, outcomes, releases and time."""
    import copy
    import random

    rng = random.Random(5)
    m = machine(failure_threshold=2, recovery_timeout=3.0, half_open_max_calls=2)
    now = 0.0
    admitted: list[tuple[int, bool]] = []
    for _ in range(3000):
        now += rng.choice((0.0, 0.1, 0.5, 1.0, 3.0))
        probe = copy.deepcopy(m)
        expected = probe.try_admit(now)[0] != REFUSED
        if m.state is OPEN and now >= m.open_until:
            m.advance(now)  # as the edge does before asking
        assert m.can_admit(now) == expected
        action = rng.random()
        if action < 0.5:
            verdict, _ = m.try_admit(now)
            if verdict != REFUSED:
                admitted.append((m.generation, verdict == PROBE))
        elif admitted and action < 0.9:
            gen, is_probe = admitted.pop(rng.randrange(len(admitted)))
            m.record(gen, is_probe, rng.random() < 0.5, 0.01, now)
        elif admitted:
            gen, is_probe = admitted.pop()
            m.release(gen, is_probe)


def test_the_minimum_calls_default_yields_to_a_smaller_count_window() -> None:
    cb = CircuitBreaker(failure_rate_threshold=0.5, window_size=5)
    assert cb.minimum_calls == 5
    assert CircuitBreaker(failure_rate_threshold=0.5).minimum_calls == 10
    with pytest.raises(ConfigurationError, match="minimum_calls"):
        CircuitBreaker(failure_rate_threshold=0.5, window_size=5, minimum_calls=10)


def test_a_hung_probe_that_fails_late_reopens_the_breaker() -> None:
    """A probe given up on as hung (a new round started after recovery_timeout) still counts
    when it fails: the breaker reopens instead of admitting new probe rounds forever; a late
    success does not close it."""
    settings = BreakerSettings(failure_threshold=1, recovery_timeout=1.0, half_open_max_calls=1)
    m = BreakerMachine(settings)
    assert m.try_admit(0.0)[0] == ADMITTED
    m.record(m.generation, False, True, 0.1, 0.0)  # opens
    assert m.state is OPEN
    assert m.try_admit(1.0)[0] == PROBE and m.state is HALF_OPEN
    a = m.generation
    assert m.try_admit(2.5)[0] == PROBE  # A hung for a whole recovery_timeout: round 2
    b = m.generation
    assert m.try_admit(4.0)[0] == PROBE  # B hung too: round 3
    assert a != b != m.generation
    assert m.record(a, True, False, 3.5, 4.5) is None  # A's late success: not counted
    assert m.state is HALF_OPEN
    change = m.record(b, True, True, 2.1, 4.6)  # B's late failure: the upstream is not back
    assert change is not None and m.state is OPEN
    # an outcome from before the half-open period (a call of the old CLOSED state) stays stale
    m2 = BreakerMachine(settings)
    old = m2.generation
    m2.try_admit(0.0)
    m2.record(old, False, True, 0.1, 0.0)
    m2.try_admit(1.0)
    assert m2.record(old, True, True, 0.1, 1.1) is None and m2.state is HALF_OPEN


def test_mirror_adopts_a_state_decided_elsewhere() -> None:
    """A shared backend's state is mirrored: OPEN keeps the backend's cooldown left, each
    change is a transition (a new generation), and the same state again is no change."""
    m = BreakerMachine(BreakerSettings(failure_threshold=3, recovery_timeout=30.0))
    gen = m.generation
    change = m.mirror(OPEN, 4.0, 100.0, "seen elsewhere")
    assert change is not None and change.new is OPEN and change.reason == "seen elsewhere"
    assert m.generation == gen + 1 and m.retry_in(100.0) == 4.0  # not a fresh 30 s
    assert m.mirror(OPEN, 2.0, 101.0, "again") is None and m.retry_in(101.0) == 2.0
    change = m.mirror(HALF_OPEN, 0.0, 102.0, "elsewhere")
    assert change is not None and (change.old, change.new) == (OPEN, HALF_OPEN)
    assert m.half_open_since == m.generation
    assert m.mirror(HALF_OPEN, 0.0, 103.0, "same") is None
    change = m.mirror(CLOSED, 0.0, 104.0, "elsewhere")
    assert change is not None and change.new is CLOSED and m.consecutive_failures == 0


async def test_breakers_sharing_a_memory_backend_and_a_name_share_one_state() -> None:
    """MemoryBackend: same name, one state machine (and per-host children too)."""
    from httpx_resilience.backends import MemoryBackend

    memory = MemoryBackend()
    a = CircuitBreaker(1, 30.0, name="x", scope="host", backend=memory)
    b = CircuitBreaker(1, 30.0, name="x", scope="host", backend=memory)
    a.for_key("h1").record_failure()
    assert b.for_key("h1").state is CircuitState.OPEN
    assert b.for_key("h2").state is CircuitState.CLOSED
    with pytest.raises(ConfigurationError, match="other settings") as info:
        CircuitBreaker(2, 30.0, name="x", scope="host", backend=memory)
    assert info.value.field == "name"
