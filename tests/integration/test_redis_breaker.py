"""CircuitBreaker, RetryBudget and the OAuth2 token cache shared through a real Redis.

Two policy objects, each on its own ``RedisBackend`` (its own connection
pool), stand for two processes: they share nothing but Redis. Every test
uses a fresh key prefix. The fail-mode tests point a backend at a loopback
port nobody listens on. The multi-process tests are in
``test_redis_processes.py``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from _redis import closed_port_url, fresh_prefix, redis_url

from httpx_resilience import CircuitBreaker, CircuitBreakerOpenError, HTTPClientError
from httpx_resilience.auth import CachedToken, OAuth2ClientCredentials, Secret
from httpx_resilience.backends import MemoryBackend, RedisBackend, SharedStateUnavailableError
from httpx_resilience.backends._tokens import RedisTokenCache, token_cache_for
from httpx_resilience.policies.breaker import BreakerTransition, CircuitState
from httpx_resilience.policies.budget import RetryBudget
from httpx_resilience.testing.clock import FakeClock

from ._auth_apps import CLIENT_ID, CLIENT_SECRET, AuthServerState, auth_app, start
from ._redis_server import RedisServer, started_server

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]

Make = Callable[..., RedisBackend]


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    """Builds RedisBackends on the machine's Redis, all with this test's fresh prefix."""
    url, prefix = redis_url(), fresh_prefix()
    made: list[RedisBackend] = []

    def build(**kw: object) -> RedisBackend:
        kw.setdefault("prefix", prefix)
        # A generous bound on each Redis call: on a loaded machine, a hundred
        # concurrent calls can outlast the default 0.25 s and fall back to local state.
        kw.setdefault("timeout", 2.0)
        backend = RedisBackend(kw.pop("url", url), **kw)  # type: ignore[arg-type]
        made.append(backend)
        return backend

    yield build
    for backend in made:
        await backend.aclose()


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own, on a free loopback port; killed by its PID after."""
    yield from started_server()


async def boom() -> None:
    raise HTTPClientError("upstream failed")


async def ok() -> str:
    return "ok"


async def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(HTTPClientError):
            await breaker.call(boom)


async def wait_until_admitted(breaker: CircuitBreaker, func: Callable[[], object]) -> int:
    """Call until the breaker admits (bounded at 5 s); the number of refusals before."""
    refused = 0
    deadline = time.monotonic() + 5.0
    while True:
        try:
            await breaker.call(func)  # type: ignore[arg-type]
            return refused
        except CircuitBreakerOpenError:
            refused += 1
            assert time.monotonic() < deadline, "the breaker never admitted a probe"
            await asyncio.sleep(0.02)


# -- the breaker ------------------------------------------------------------------------


async def test_a_breaker_opened_in_one_process_is_open_in_the_other_on_its_next_call(
    make: Make,
) -> None:
    seen: list[BreakerTransition] = []
    a = CircuitBreaker(3, 30.0, name="orders", backend=make())
    b = CircuitBreaker(3, 30.0, name="orders", backend=make(), listeners=[seen.append])
    assert await b.call(ok) == "ok"
    await fail(a, 3)
    assert a.state is CircuitState.OPEN and b.state is CircuitState.CLOSED  # b not asked yet
    called = []

    async def tracked() -> str:
        called.append(1)
        return "ok"

    with pytest.raises(CircuitBreakerOpenError) as info:
        await b.call(tracked)
    assert called == []  # nothing was sent
    assert 0 < info.value.retry_in <= 30.0
    assert b.state is CircuitState.OPEN
    assert [(t.old, t.new) for t in seen] == [(CircuitState.CLOSED, CircuitState.OPEN)]
    assert "another process" in seen[0].reason
    # Another name on the same Redis is another breaker.
    assert await CircuitBreaker(3, name="billing", backend=make()).call(ok) == "ok"


async def test_failures_of_two_processes_add_up_and_a_success_anywhere_resets_them(
    make: Make,
) -> None:
    a = CircuitBreaker(4, name="n", backend=make())
    b = CircuitBreaker(4, name="n", backend=make())
    await fail(a, 2)
    await fail(b, 1)
    assert await b.call(ok) == "ok"  # clears the consecutive count for both
    await fail(a, 3)
    assert a.state is CircuitState.CLOSED
    await fail(b, 1)  # the fourth in a row, counted across both
    assert b.state is CircuitState.OPEN
    with pytest.raises(CircuitBreakerOpenError):
        await a.call(ok)


async def test_exactly_half_open_max_calls_probes_among_many_concurrent_callers(
    make: Make,
) -> None:
    # A lease lasts the cooldown (1 s): far longer than the test holds its probes.
    breakers = [
        CircuitBreaker(1, 1.0, name="p", half_open_max_calls=3, backend=make()) for _ in range(2)
    ]
    await fail(breakers[0], 1)
    await asyncio.sleep(1.05)  # past the cooldown on Redis's clock too
    gate = asyncio.Event()
    probes: list[int] = []

    async def probe() -> str:
        probes.append(1)
        await gate.wait()
        return "ok"

    callers = [asyncio.ensure_future(breakers[i % 2].call(probe)) for i in range(100)]
    pending = set(callers)
    while len(pending) > 3:  # the refused callers end, the probes wait at the gate
        done, pending = await asyncio.wait(pending, timeout=5.0, return_when="FIRST_COMPLETED")
        assert done, "callers still waiting after 5 s"
    assert len(probes) == 3  # exactly half_open_max_calls, across both "processes"
    gate.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert results.count("ok") == 3
    assert sum(isinstance(r, CircuitBreakerOpenError) for r in results) == 97
    # Three successful probes closed the breaker for everyone.
    assert [await br.call(ok) for br in breakers] == ["ok", "ok"]
    assert [br.state for br in breakers] == [CircuitState.CLOSED] * 2


async def test_one_probe_for_a_hundred_callers_across_two_processes(make: Make) -> None:
    a = CircuitBreaker(1, 1.0, name="one", backend=make())
    b = CircuitBreaker(1, 1.0, name="one", backend=make())
    await fail(a, 1)
    await asyncio.sleep(1.05)  # past the cooldown: the first caller to ask probes
    gate, out = asyncio.Event(), asyncio.Event()
    sent: list[int] = []

    async def probe() -> str:
        sent.append(1)
        out.set()
        await gate.wait()
        return "ok"

    async def caller(br: CircuitBreaker) -> str:
        # Each caller asks again after a refusal until the breaker admits it (5 s at most).
        deadline = time.monotonic() + 5.0
        while True:
            try:
                return await br.call(probe)
            except CircuitBreakerOpenError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.01)

    tasks = [asyncio.ensure_future(caller(a if i % 2 else b)) for i in range(100)]
    await asyncio.wait_for(out.wait(), 5.0)
    await asyncio.sleep(0.1)  # every caller asks again several times meanwhile
    assert len(sent) == 1  # exactly one probe while it is out
    gate.set()
    assert (await asyncio.gather(*tasks)).count("ok") == 100  # then all pass, closed
    assert a.state is CircuitState.CLOSED and b.state is CircuitState.CLOSED


async def test_a_probe_lease_expires_when_its_prober_vanishes(make: Make) -> None:
    a = CircuitBreaker(1, 0.3, name="lease", backend=make())
    b = CircuitBreaker(1, 0.3, name="lease", backend=make())
    await fail(a, 1)
    hung = asyncio.Event()
    never = asyncio.Event()

    async def hangs() -> str:
        hung.set()
        await never.wait()
        raise HTTPClientError("failed late")

    await asyncio.sleep(0.3)
    prober = asyncio.ensure_future(wait_until_admitted(a, hangs))
    await hung.wait()  # a's probe is out and never comes back
    with pytest.raises(CircuitBreakerOpenError) as info:
        await b.call(ok)
    assert info.value.retry_in == 0  # half-open, every slot taken
    # After the lease's TTL (recovery_timeout), b gets the probe and closes the breaker.
    assert await wait_until_admitted(b, ok) >= 1
    assert b.state is CircuitState.CLOSED
    never.set()  # the vanished prober's late failure: the breaker is closed, it is stale
    with pytest.raises(HTTPClientError):
        await prober
    assert await b.call(ok) == "ok"


async def test_a_cancelled_probe_gives_its_lease_back(make: Make) -> None:
    # The lease's TTL is the cooldown, 1 s: b's probe right after the cancellation
    # shows the lease was given back, not expired.
    a = CircuitBreaker(1, 1.0, name="cancel", backend=make())
    b = CircuitBreaker(1, 1.0, name="cancel", backend=make())
    await fail(a, 1)
    await asyncio.sleep(1.05)
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    task = asyncio.ensure_future(a.call(slow))
    await started.wait()
    with pytest.raises(CircuitBreakerOpenError):
        await b.call(ok)  # the slot is a's
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)  # the release runs in the background
    assert await b.call(ok) == "ok"
    assert b.state is CircuitState.CLOSED


async def test_a_failed_or_slow_probe_reopens_the_breaker_for_everyone(make: Make) -> None:
    clock = FakeClock()
    seen: list[BreakerTransition] = []
    kw = dict(slow_call_duration=5.0, slow_call_rate_threshold=1.0, clock=clock)
    a = CircuitBreaker(1, 0.2, name="re", backend=make(), listeners=[seen.append], **kw)  # type: ignore[arg-type]
    b = CircuitBreaker(1, 0.2, name="re", backend=make(), **kw)  # type: ignore[arg-type]
    await fail(a, 1)
    await asyncio.sleep(0.25)  # the cooldown passes on Redis's clock
    await fail(a, 1)  # the probe fails
    assert seen[-1].reason == "half-open probe failed" and a.state is CircuitState.OPEN
    with pytest.raises(CircuitBreakerOpenError):
        await b.call(ok)

    async def slow() -> str:
        await clock.sleep(6.0)
        return "ok"

    await asyncio.sleep(0.25)
    assert await a.call(slow) == "ok"  # a slow probe reopens too
    assert seen[-1].reason == "half-open probe was slow" and a.state is CircuitState.OPEN
    assert "SharedBreaker 're'" in repr(a._shared)


@pytest.mark.parametrize("window_type", ["count", "time"])
async def test_the_failure_rate_window_is_shared(make: Make, window_type: str) -> None:
    seen: list[BreakerTransition] = []
    kw = dict(
        failure_rate_threshold=0.5, window_type=window_type, window_size=60, minimum_calls=6
    )
    a = CircuitBreaker(100, name="rate", backend=make(), listeners=[seen.append], **kw)  # type: ignore[arg-type]
    b = CircuitBreaker(100, name="rate", backend=make(), **kw)  # type: ignore[arg-type]
    for i in range(5):
        br = a if i % 2 else b
        if i % 2:
            await fail(br, 1)
        else:
            assert await br.call(ok) == "ok"
    assert a.state is CircuitState.CLOSED  # 2 failures in 5 calls: under minimum_calls
    await fail(a, 1)  # 3 of 6: 50 %
    assert a.state is CircuitState.OPEN
    assert seen[-1].reason == "failure rate 50% >= 50% (3/6 calls)"
    with pytest.raises(CircuitBreakerOpenError):
        await b.call(ok)


@pytest.mark.parametrize(
    "settings",
    [
        {"failure_threshold": 3},
        {"failure_threshold": 4, "failure_rate_threshold": 0.5, "window_size": 8,
         "minimum_calls": 5},
        {"failure_threshold": 100, "failure_rate_threshold": 0.3, "window_size": 20,
         "minimum_calls": 10},
    ],
)
async def test_the_shared_breaker_decides_as_the_local_one(
    make: Make, settings: dict[str, object]
) -> None:
    """The same random outcomes through a local and a shared breaker: the same states and
    the same transitions, word for word (reopened by hand after each opening)."""
    rng = random.Random(13)
    local_seen: list[tuple[str, str]] = []
    shared_seen: list[tuple[str, str]] = []
    local = CircuitBreaker(name="d", recovery_timeout=600.0,
                           listeners=[lambda t: local_seen.append((t.new.value, t.reason))],
                           **settings)  # type: ignore[arg-type]
    shared = CircuitBreaker(name="d", recovery_timeout=600.0, backend=make(),
                            listeners=[lambda t: shared_seen.append((t.new.value, t.reason))],
                            **settings)  # type: ignore[arg-type]
    for _ in range(300):
        failing = rng.random() < 0.45
        for br in (local, shared):
            if failing:
                with pytest.raises(HTTPClientError):
                    await br.call(boom)
            else:
                assert await br.call(ok) == "ok"
        assert local.state is shared.state
        if local.state is CircuitState.OPEN:
            for br in (local, shared):
                br.force_closed()
            assert shared._shared is not None
            await shared._shared.settled()
    assert local_seen == shared_seen and len(local_seen) > 10


async def test_the_slow_call_rule_is_shared(make: Make) -> None:
    clock = FakeClock()
    seen: list[BreakerTransition] = []
    kw = dict(slow_call_duration=1.0, slow_call_rate_threshold=0.5, minimum_calls=2, clock=clock)
    a = CircuitBreaker(100, name="slow", backend=make(), **kw)  # type: ignore[arg-type]
    b = CircuitBreaker(100, name="slow", backend=make(), listeners=[seen.append], **kw)  # type: ignore[arg-type]

    async def slow() -> str:
        await clock.sleep(2.0)
        return "ok"

    assert await a.call(ok) == "ok"
    assert await b.call(slow) == "ok"  # 1 slow of 2
    assert b.state is CircuitState.OPEN
    assert seen[-1].reason == "slow-call rate 50% >= 50% (1/2 calls took >= 1 s)"


async def test_forcing_a_state_reaches_every_process(make: Make) -> None:
    a = CircuitBreaker(5, 30.0, name="forced", backend=make())
    b = CircuitBreaker(5, 30.0, name="forced", backend=make())
    a.force_open()
    assert a._shared is not None
    await a._shared.settled()
    with pytest.raises(CircuitBreakerOpenError):
        await b.call(ok)
    b.force_closed()
    assert b._shared is not None
    await b._shared.settled()
    assert await a.call(ok) == "ok" and a.state is CircuitState.CLOSED


def test_forcing_without_an_event_loop_forces_this_process_only(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    br = CircuitBreaker(5, 30.0, name="noloop", backend=make())
    br.force_open()
    assert br.state is CircuitState.OPEN
    assert "forced open here only" in caplog.text


async def test_outcomes_recorded_by_hand_reach_the_shared_breaker(make: Make) -> None:
    a = CircuitBreaker(3, 30.0, name="manual", backend=make())
    b = CircuitBreaker(3, 30.0, name="manual", backend=make())
    assert await b.call(ok) == "ok"  # b has met the shared breaker
    a.raise_if_open()
    a.record_failure()
    a.record_failure(HTTPClientError("failed"))
    a.record_success()  # clears both counts
    for _ in range(3):
        a.record_failure()
    assert a._shared is not None
    await a._shared.settled()
    with pytest.raises(CircuitBreakerOpenError):
        await b.call(ok)
    assert not a.can_execute()


async def test_per_host_children_have_their_own_shared_state(make: Make) -> None:
    a = CircuitBreaker(1, 30.0, name="hosts", scope="host", backend=make())
    b = CircuitBreaker(1, 30.0, name="hosts", scope="host", backend=make())
    await fail(a.for_key("api.one"), 1)
    with pytest.raises(CircuitBreakerOpenError):
        await b.for_key("api.one").call(ok)
    assert await b.for_key("api.two").call(ok) == "ok"


async def test_breakers_on_one_memory_backend_share_their_state() -> None:
    memory = MemoryBackend()
    a = CircuitBreaker(2, 30.0, name="m", backend=memory)
    b = CircuitBreaker(2, 30.0, name="m", backend=memory)
    await fail(a, 2)
    assert b.state is CircuitState.OPEN
    assert CircuitBreaker(2, 30.0, name="m", backend=MemoryBackend()).state is CircuitState.CLOSED
    with pytest.raises(ValueError, match="other settings"):
        CircuitBreaker(3, name="m", backend=memory)


# -- fail_mode against a port nobody listens on ----------------------------------------


async def test_fail_mode_local_keeps_a_working_local_breaker(make: Make) -> None:
    down = make(url=closed_port_url(), fail_mode="local", timeout=0.2)
    br = CircuitBreaker(2, 30.0, name="down", backend=down)
    started = time.monotonic()
    assert await br.call(ok) == "ok"
    await fail(br, 2)
    with pytest.raises(CircuitBreakerOpenError):  # the local breaker opened
        await br.call(ok)
    # Five calls, and none waited for Redis longer than its short timeout.
    assert time.monotonic() - started < 5 * down.timeout
    assert down.in_fallback


async def test_fail_mode_open_allows_every_call(make: Make) -> None:
    br = CircuitBreaker(1, name="down", backend=make(url=closed_port_url(), fail_mode="open"))
    await fail(br, 3)
    assert await br.call(ok) == "ok"


async def test_fail_mode_closed_refuses_with_a_typed_error(make: Make) -> None:
    br = CircuitBreaker(1, name="down", backend=make(url=closed_port_url(), fail_mode="closed"))
    called: list[int] = []

    async def tracked() -> str:
        called.append(1)
        return "ok"

    with pytest.raises(SharedStateUnavailableError) as info:
        await br.call(tracked)
    assert called == [] and isinstance(info.value, httpx.TransportError)
    assert "fail_mode" in str(info.value)


async def test_redis_dying_mid_call_leaves_a_working_breaker_and_comes_back(
    make: Make, own_server: RedisServer
) -> None:
    backend = make(url=own_server.url, timeout=0.5, retry_interval=0.2)
    br = CircuitBreaker(2, 30.0, name="crash", backend=backend)
    assert await br.call(ok) == "ok"

    async def crash_then_fail() -> None:
        own_server.kill()  # Redis dies while the call is out
        raise HTTPClientError("upstream failed")

    with pytest.raises(HTTPClientError):  # the call's own error, never a redis one
        await br.call(crash_then_fail)
    await fail(br, 1)  # counted by the local breaker with the first: it opens
    with pytest.raises(CircuitBreakerOpenError):
        await br.call(ok)
    assert backend.in_fallback
    own_server.start()  # an empty Redis on the same port: the shared state is CLOSED
    deadline = time.monotonic() + 5.0
    while True:
        await asyncio.sleep(0.25)  # past retry_interval: the next call asks Redis again
        try:
            assert await br.call(ok) == "ok"
            break
        except CircuitBreakerOpenError:
            assert time.monotonic() < deadline, "the breaker never returned to Redis"
    assert not backend.in_fallback and br.state is CircuitState.CLOSED


async def test_objects_that_are_not_backends_are_refused() -> None:
    with pytest.raises(ValueError, match="MemoryBackend or a RedisBackend"):
        CircuitBreaker(backend=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="MemoryBackend or a RedisBackend"):
        RetryBudget(backend=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="MemoryBackend or a RedisBackend"):
        token_cache_for(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cache or backend"):
        OAuth2ClientCredentials(
            "http://127.0.0.1/token", "id", "secret", cache=RedisTokenCache(MemoryBackend()),  # type: ignore[arg-type]
            backend=MemoryBackend(),
        )
    with pytest.raises(ValueError, match="lock_ttl"):
        RedisTokenCache(MemoryBackend(), lock_ttl=0)  # type: ignore[arg-type]


# -- the retry budget --------------------------------------------------------------------


async def test_two_budgets_share_one_allowance_exactly(make: Make) -> None:
    a = RetryBudget(ratio=0.2, min_per_second=0.0, name="b", backend=make())
    b = RetryBudget(ratio=0.2, min_per_second=0.0, name="b", backend=make())
    for _ in range(50):
        a.record_request("h")
    await a.sync()
    # 50 requests earn 10 retries, wherever they are spent.
    granted = [await (a if i % 2 else b).atry_spend("h") for i in range(14)]
    assert sum(granted) == 10 and not any(granted[10:])
    await a.aclose()
    await b.aclose()


async def test_the_synchronous_budget_decides_on_the_shared_totals(make: Make) -> None:
    a = RetryBudget(ratio=0.5, min_per_second=0.0, name="s", backend=make())
    b = RetryBudget(ratio=0.5, min_per_second=0.0, name="s", backend=make())
    for _ in range(8):
        a.record_request("h")
    await a.sync()
    await b.sync("h")
    assert b.available("h") == 4.0  # b served no request; a's earned it
    assert [b.try_spend("h") for _ in range(5)] == [True] * 4 + [False]
    await b.sync()
    await a.sync()
    assert a.available("h") == 0.0 and not a.try_spend("h")
    await a.aclose()
    await b.aclose()


async def test_requests_reach_the_shared_budget_by_themselves(make: Make) -> None:
    a = RetryBudget(ratio=0.2, min_per_second=0.0, name="bg", backend=make(), sync_interval=0.05)
    b = RetryBudget(ratio=0.2, min_per_second=0.0, name="bg", backend=make())
    for _ in range(10):
        a.record_request("h")  # the background sync deposits them
    deadline = time.monotonic() + 5.0
    while True:
        await b.sync("h")
        if b.available("h") == 2.0:
            break
        assert time.monotonic() < deadline, "the requests never reached Redis"
        await asyncio.sleep(0.02)
    assert b.try_spend("h") and b.try_spend("h") and not b.try_spend("h")
    await a.aclose()
    await b.aclose()


async def test_the_floor_is_shared_too(make: Make) -> None:
    a = RetryBudget(ratio=0.0, min_per_second=0.01, name="f", backend=make())
    b = RetryBudget(ratio=0.0, min_per_second=0.01, name="f", backend=make())
    granted = [await a.atry_spend("h"), await b.atry_spend("h"), await a.atry_spend("h")]
    assert granted == [True, False, False]  # one floor of one retry for both
    await a.aclose()
    await b.aclose()


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("local", [True, False]), ("open", [True, True]), ("closed", [False, False])],
)
async def test_budget_fail_modes(make: Make, mode: str, expected: list[bool]) -> None:
    # A floor of one retry: the in-process budget ("local") grants one, then none.
    budget = RetryBudget(
        ratio=0.0, min_per_second=0.001, backend=make(url=closed_port_url(), fail_mode=mode)
    )
    budget.record_request("h")
    await budget.sync("h")  # meets the fault: from now on fail_mode decides
    assert [budget.try_spend("h"), budget.try_spend("h")] == expected
    again = RetryBudget(ratio=0.0, min_per_second=0.001, backend=make(url=closed_port_url(), fail_mode=mode))
    assert [await again.atry_spend("h"), await again.atry_spend("h")] == expected
    await budget.aclose()


async def test_budgets_on_one_memory_backend_share_their_allowance() -> None:
    memory = MemoryBackend()
    a = RetryBudget(ratio=0.5, min_per_second=0.0, name="m", backend=memory)
    b = RetryBudget(ratio=0.5, min_per_second=0.0, name="m", backend=memory)
    for _ in range(4):
        a.record_request("h")
    assert [b.try_spend("h") for _ in range(3)] == [True, True, False]
    assert await a.atry_spend("h") is False
    await a.sync()  # nothing to sync in memory
    await a.aclose()


async def test_budget_deposits_survive_a_redis_restart(make: Make, own_server: RedisServer) -> None:
    backend = make(url=own_server.url, timeout=0.5, retry_interval=0.1)
    budget = RetryBudget(ratio=0.5, min_per_second=0.0, name="r", backend=backend)
    for _ in range(4):
        budget.record_request("h")
    own_server.kill()
    await budget.sync()  # the deposit fails: it is kept for the next sync
    own_server.start()
    await asyncio.sleep(0.15)  # past retry_interval
    await budget.sync()
    other = RetryBudget(ratio=0.5, min_per_second=0.0, name="r", backend=make(url=own_server.url))
    assert [await other.atry_spend("h") for _ in range(3)] == [True, True, False]
    await budget.aclose()
    await other.aclose()


# -- the token cache --------------------------------------------------------------------


def _token(value: str, ttl: float = 3600.0) -> CachedToken:
    return CachedToken(Secret(value), time.time() + ttl, issued_at=time.time())


async def test_the_token_cache_is_shared_and_deletes_by_fingerprint(make: Make) -> None:
    one, two = RedisTokenCache(make()), RedisTokenCache(make())
    old, new = _token("tok-old"), _token("tok-new")
    await one.set("k", old, 60)
    got = await two.get("k")
    assert got is not None and got.access_token.get_secret_value() == "tok-old"
    await two.set("k", new, 60)
    assert not await one.delete("k", fingerprint=old.fingerprint)  # a newer token is kept
    assert (await one.get("k")) == new
    assert await one.delete("k", fingerprint=new.fingerprint)
    assert await two.get("k") is None
    await one.set("k", new, 0)  # a TTL of zero stores nothing
    assert await two.get("k") is None


async def test_the_refresh_lock_is_held_by_one_process_at_a_time(make: Make) -> None:
    one, two = RedisTokenCache(make()), RedisTokenCache(make())
    order: list[str] = []

    async def hold(cache: RedisTokenCache, name: str) -> None:
        async with cache.lock("k"):
            order.append(f"{name} in")
            await asyncio.sleep(0.05)
            order.append(f"{name} out")

    await asyncio.gather(hold(one, "a"), hold(two, "b"), hold(one, "c"))
    assert all(order[i].split()[0] == order[i + 1].split()[0] for i in range(0, 6, 2))


async def test_a_dead_lock_holder_blocks_others_for_the_lease_ttl_only(make: Make) -> None:
    backend = make()
    dead = RedisTokenCache(backend, lock_ttl=0.2)
    await dead._run("token_lock", "k", "lock", ["acquire", "gone", 200])  # never given back
    alive = RedisTokenCache(make())
    async with alive.lock("k"):
        assert await backend.client.get(backend.key("token", "k", "lock")) != b"gone"


async def test_two_oauth2_handlers_fetch_one_token_for_everyone(make: Make) -> None:
    state = AuthServerState(token_delay=0.1)
    async with start(auth_app(state)) as base:
        state.base_url = base
        handlers = [
            OAuth2ClientCredentials(
                f"{base}/token", CLIENT_ID, Secret(CLIENT_SECRET), backend=make()
            )
            for _ in range(2)
        ]
        requests = [httpx.Request("GET", f"{base}/resource") for _ in range(20)]
        await asyncio.gather(
            *(handlers[i % 2].prepare_request(r) for i, r in enumerate(requests))
        )
    assert state.token_hits == 1
    assert len({r.headers["Authorization"] for r in requests}) == 1


async def test_token_cache_fail_modes(make: Make) -> None:
    local = RedisTokenCache(make(url=closed_port_url(), fail_mode="local"))
    await local.set("k", _token("t"), 60)
    assert (await local.get("k")) is not None  # in-process, while Redis is away
    async with local.lock("k"):
        pass
    closed = RedisTokenCache(make(url=closed_port_url(), fail_mode="closed"))
    with pytest.raises(SharedStateUnavailableError):
        await closed.get("k")
    memory = MemoryBackend()
    assert token_cache_for(memory) is token_cache_for(memory)
