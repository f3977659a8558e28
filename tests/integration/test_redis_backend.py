"""RedisBackend against a real Redis, in one process; the contract suite on memory and Redis.

Redis is the machine's (``127.0.0.1:6379``, or ``REDIS_URL``) with a fresh key
prefix per test, or the test's own ``redis-server`` when Redis must go away.
Without a reachable Redis these tests skip (fail under ``CI=true``): see
``tests/_redis.py``. Waits are checked as ratios of the configured interval.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio
import redis.exceptions
from _redis import closed_port_url, fresh_prefix, redis_url
from redis.crc import key_slot

from httpx_resilience.backends import (
    BackendFallbackEntered,
    BackendFallbackLeft,
    BackendScriptRan,
    MemoryBackend,
    RedisBackend,
    SharedBackend,
    SharedStateUnavailableError,
)
from httpx_resilience.backends._errors import BackendDown
from httpx_resilience.backends._redis import _script
from httpx_resilience.exceptions import ConfigurationError, RateLimiterTimeout
from httpx_resilience.policies._testing_mode import testing_mode
from httpx_resilience.policies.limiter import SlidingWindowRateLimiter, TokenBucketRateLimiter

from ._redis_server import RedisServer

pytestmark = pytest.mark.redis


async def drop_keys(client: Any, prefix: str) -> None:
    keys = [k async for k in client.scan_iter(match=f"{{{prefix}:*")]
    if keys:
        await client.delete(*keys)


@pytest.fixture
async def shared() -> AsyncIterator[RedisBackend]:
    """A RedisBackend on the machine's Redis with a prefix of its own."""
    backend = RedisBackend(redis_url(), prefix=fresh_prefix())
    yield backend
    await drop_keys(backend.client, backend.prefix)
    await backend.aclose()


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[SharedBackend]:
    """The contract suite's backend: in memory, then on Redis."""
    if request.param == "memory":
        yield MemoryBackend(prefix=fresh_prefix())
        return
    b = RedisBackend(redis_url(), prefix=fresh_prefix())
    yield b
    await drop_keys(b.client, b.prefix)
    await b.aclose()


def assert_near(wait: float, expected: float) -> None:
    """``wait`` is ``expected`` less the little time that passed meanwhile (as a ratio).

    The intervals are long (seconds: nothing sleeps here), so a loaded machine's
    stall between two calls stays a small part of them.
    """
    assert 0.5 <= wait / expected <= 1.001, (wait, expected)


# -- the contract suite: the same checks on both backends --------------------------------


async def test_contract_bucket_grants_the_burst_then_reserves(backend: SharedBackend) -> None:
    grants = [
        await backend.token_bucket("b", rate=1, burst=2, tokens=1, horizon=None) for _ in range(4)
    ]
    assert [g.granted for g in grants] == [True] * 4
    assert grants[0].wait == grants[1].wait == 0.0
    assert_near(grants[2].wait, 1.0)
    assert_near(grants[3].wait, 2.0)


async def test_contract_bucket_refusal_takes_nothing(backend: SharedBackend) -> None:
    await backend.token_bucket("b", rate=0.5, burst=1, tokens=1, horizon=None)
    refused = await backend.token_bucket("b", rate=0.5, burst=1, tokens=1, horizon=0.5)
    assert not refused.granted
    assert_near(refused.wait, 2.0)
    granted = await backend.token_bucket("b", rate=0.5, burst=1, tokens=1, horizon=None)
    assert granted.granted
    assert_near(granted.wait, 2.0)  # not 4: the refusal reserved nothing


async def test_contract_bucket_takes_several_tokens(backend: SharedBackend) -> None:
    first = await backend.token_bucket("b", rate=1, burst=3, tokens=3, horizon=0)
    second = await backend.token_bucket("b", rate=1, burst=3, tokens=2, horizon=None)
    assert first == (True, 0.0)
    assert second.granted
    assert_near(second.wait, 2.0)


async def test_contract_window_is_exact(backend: SharedBackend) -> None:
    asks = [
        await backend.sliding_window("w", limit=2, window=5.0, tokens=1, horizon=None)
        for _ in range(5)
    ]
    assert all(g.granted for g in asks)
    assert asks[0].wait == asks[1].wait == 0.0
    assert_near(asks[2].wait, 5.0)
    assert_near(asks[3].wait, 5.0)
    assert_near(asks[4].wait, 10.0)
    refused = await backend.sliding_window("w", limit=2, window=5.0, tokens=2, horizon=2.0)
    assert not refused.granted
    assert_near(refused.wait, 15.0)


async def test_contract_pause(backend: SharedBackend) -> None:
    assert_near(await backend.pause("p", 10.0), 10.0)
    assert_near(await backend.pause("p", 2.0), 10.0)  # never shortened
    assert_near(await backend.paused_for("p"), 10.0)
    grant = await backend.token_bucket("p", rate=100, burst=5, tokens=1, horizon=None)
    assert grant.granted
    assert_near(grant.wait, 10.0)
    refused = await backend.sliding_window("p", limit=5, window=1.0, tokens=1, horizon=5.0)
    assert not refused.granted
    assert await backend.paused_for("other") == 0.0
    known = await backend.token_bucket("q", rate=100, burst=5, tokens=1, horizon=None, paused_for=3.0)
    assert_near(known.wait, 3.0)


async def test_contract_names_keep_limits_apart(backend: SharedBackend) -> None:
    await backend.token_bucket("one", rate=1, burst=1, tokens=1, horizon=None)
    assert await backend.token_bucket("two", rate=1, burst=1, tokens=1, horizon=0) == (True, 0.0)
    assert backend.key("limiter", "one", "bucket") == f"{{{backend.prefix}:limiter:one}}:bucket"


# -- Redis: keys, time, scripts -------------------------------------------------------------


async def test_every_key_has_the_hash_tag_and_a_ttl(shared: RedisBackend) -> None:
    # rate 0.5: the bucket key lives 2 s, long enough to be read on a loaded machine
    await shared.token_bucket("api", rate=0.5, burst=1, tokens=1, horizon=None)
    await shared.sliding_window("api", limit=3, window=5.0, tokens=2, horizon=None)
    await shared.pause("api", 2.0)
    keys = [k.decode() async for k in shared.client.scan_iter(match=f"{{{shared.prefix}:*")]
    assert len(keys) == 3
    tag = f"{{{shared.prefix}:limiter:api}}"
    assert all(k.startswith(tag + ":") for k in keys), keys
    assert len({key_slot(k.encode()) for k in keys}) == 1  # one Cluster slot
    ttls = [await shared.client.pttl(k) for k in keys]
    assert all(0 < t <= 5_002 for t in ttls), ttls  # none outlives its state


async def test_scripts_read_time_from_redis(shared: RedisBackend) -> None:
    await shared.token_bucket("t", rate=1, burst=1, tokens=1, horizon=None)
    tat = float(await shared.client.get(shared.key("limiter", "t", "bucket")))
    seconds, micros = await shared.client.time()
    redis_now = seconds * 1_000_000 + micros
    # The bucket is full again one interval after Redis' own now, whatever this host's clock.
    assert 0 < tat - redis_now <= 1_000_000
    assert abs(tat - time.monotonic() * 1_000_000) > 1e12  # not this host's monotonic clock


class CountingRedis(redis.asyncio.Redis):
    """A real client that counts EVALSHA and EVAL calls."""

    evalsha_calls = 0
    eval_calls = 0

    async def evalsha(self, *args: Any) -> Any:  # type: ignore[override]
        self.evalsha_calls += 1
        return await super().evalsha(*args)

    async def eval(self, *args: Any) -> Any:  # type: ignore[override]
        self.eval_calls += 1
        return await super().eval(*args)


async def test_scripts_run_by_sha_and_are_reloaded_after_a_flush() -> None:
    client = CountingRedis.from_url(redis_url())
    backend = RedisBackend(client, prefix=fresh_prefix())
    try:
        await backend.token_bucket("s", rate=100, burst=10, tokens=1, horizon=None)
        await client.script_flush()
        before = client.eval_calls
        assert (await backend.token_bucket("s", rate=100, burst=10, tokens=1, horizon=None)).granted
        assert client.eval_calls == before + 1  # NOSCRIPT: EVAL ran it and cached it
        assert (await client.script_exists(_script("token_bucket")[1])) == [True]
        calls = client.evalsha_calls
        await backend.token_bucket("s", rate=100, burst=10, tokens=1, horizon=None)
        assert client.evalsha_calls == calls + 1 and client.eval_calls == before + 1
        assert not backend.in_fallback
    finally:
        await drop_keys(client, backend.prefix)
        await backend.aclose()
        assert await client.ping()  # a given client is left open
        await client.aclose()


async def test_a_ready_client_is_described_without_secrets() -> None:
    client = redis.asyncio.Redis.from_url(redis_url())
    backend = RedisBackend(client)
    assert backend.describe().startswith("redis://") and backend.client is client
    await client.aclose()
    secret = RedisBackend("redis://user:s3cret@127.0.0.1:1/0")
    assert "s3cret" not in repr(secret)
    unix = RedisBackend(redis.asyncio.Redis(unix_socket_path="/run/redis.sock"))
    assert unix.describe() == "unix:///run/redis.sock"
    assert RedisBackend(FailingRedis(OSError())).describe() == "FailingRedis"


# -- faults: never a raw redis exception, never a stall ---------------------------------------


class FailingRedis:
    """A client whose every call raises ``exc`` (and counts the calls)."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.calls = 0

    async def evalsha(self, *args: Any) -> Any:
        self.calls += 1
        raise self.exc

    async def eval(self, *args: Any) -> Any:
        raise self.exc


@pytest.mark.parametrize(
    "exc",
    [
        redis.exceptions.ConnectionError("refused"),
        redis.exceptions.ResponseError("ERR script error"),
        redis.exceptions.TimeoutError("slow"),
        redis.exceptions.AuthenticationError("NOAUTH"),
        OSError("network is unreachable"),
        RuntimeError("anything else"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_any_fault_becomes_backend_down(exc: BaseException) -> None:
    backend = RedisBackend(FailingRedis(exc))
    with pytest.raises(BackendDown) as err:
        await backend.token_bucket("x", rate=1, burst=1, tokens=1, horizon=None)
    assert type(exc).__name__ in err.value.reason
    assert err.value.__cause__ is None and err.value.__suppress_context__


async def test_a_silent_server_costs_no_more_than_the_timeout() -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)  # reads the command, answers nothing
        await asyncio.Event().wait()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    backend = RedisBackend(f"redis://127.0.0.1:{port}/0", timeout=0.1)
    started = time.perf_counter()
    with pytest.raises(BackendDown) as err:
        await backend.token_bucket("x", rate=1, burst=1, tokens=1, horizon=None)
    elapsed = time.perf_counter() - started
    assert elapsed / backend.timeout < 5
    assert "timeout" in err.value.reason
    server.close()
    await backend.aclose()


async def test_fallback_warns_once_and_leaves_redis_alone_until_the_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = FailingRedis(redis.exceptions.ConnectionError("Connection refused"))
    events: list[Any] = []
    backend = RedisBackend(client, retry_interval=60, observers=[events.append])
    with caplog.at_level(logging.INFO, "httpx_resilience.backend"):
        for _ in range(20):
            with pytest.raises(BackendDown):
                await backend.token_bucket("x", rate=1, burst=1, tokens=1, horizon=None)
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and r.name.endswith("backend")
    ]
    assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()
    assert client.calls == 1  # the other 19 fell back at once
    assert backend.in_fallback and "in fallback" in repr(backend)
    assert [type(e) for e in events] == [BackendScriptRan, BackendFallbackEntered]
    assert events[0].ok is False


@pytest.mark.parametrize("mode", ["local", "open", "closed"])
async def test_fail_modes_with_an_unreachable_redis(mode: Any) -> None:
    backend = RedisBackend(closed_port_url(), fail_mode=mode)
    limiter = TokenBucketRateLimiter(5, 1, backend=backend, name="down")
    if mode == "closed":
        with pytest.raises(SharedStateUnavailableError) as err:
            await limiter.acquire()
        assert isinstance(err.value, httpx.TransportError)
        assert "unreachable" in str(err.value) and backend.describe() in str(err.value)
        return
    waits = [await limiter.acquire() for _ in range(3)]
    if mode == "open":
        assert waits == [0.0, 0.0, 0.0]
    else:  # local: the limiter's own bucket, one token every 1/5 s
        assert waits[0] == 0.0
        assert 0.5 <= waits[1] / 0.2 <= 3 and 0.5 <= waits[2] / 0.2 <= 3
    await backend.aclose()


async def test_fallback_is_left_when_redis_answers_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis_url()  # the skip rule: no Redis tests without redis-server
    events: list[Any] = []
    with RedisServer() as server:
        server.start()
        backend = RedisBackend(server.url, retry_interval=0.05, observers=[events.append])
        limiter = SlidingWindowRateLimiter(1000, 1.0, backend=backend, name="back")
        assert await limiter.acquire() == 0.0
        server.kill()
        with caplog.at_level(logging.INFO, "httpx_resilience.backend"):
            for _ in range(5):
                assert await limiter.acquire() == 0.0  # local state: requests keep flowing
            assert backend.in_fallback
            server.start()
            deadline = time.monotonic() + 10
            while backend.in_fallback and time.monotonic() < deadline:
                await limiter._clock.sleep(0.05)
                await limiter.acquire()
        assert not backend.in_fallback
        records = [
            (r.levelno, r.getMessage())
            for r in caplog.records
            if r.name == "httpx_resilience.backend"
        ]
        assert [lvl for lvl, _ in records] == [logging.WARNING, logging.INFO], records
        assert "answers again" in records[1][1]
        kinds = {type(e) for e in events}
        assert {BackendFallbackEntered, BackendFallbackLeft, BackendScriptRan} <= kinds
        assert all(e.latency >= 0 for e in events if isinstance(e, BackendScriptRan))
        await backend.aclose()


async def test_an_observer_that_raises_is_ignored(
    shared: RedisBackend, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Any) -> None:
        raise ValueError("observer bug")

    backend = RedisBackend(shared.client, prefix=shared.prefix, observers=[broken])
    with caplog.at_level(logging.ERROR, "httpx_resilience.backend"):
        assert (await backend.token_bucket("o", rate=1, burst=1, tokens=1, horizon=None)).granted
    assert "observer" in caplog.text


# -- construction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("redis://127.0.0.1:1/0",), {"prefix": ""}, "prefix"),
        (("redis://127.0.0.1:1/0",), {"prefix": "a{b}"}, "prefix"),
        (("redis://127.0.0.1:1/0",), {"fail_mode": "sometimes"}, "fail_mode"),
        (("redis://127.0.0.1:1/0",), {"timeout": 0}, "timeout"),
        (("redis://127.0.0.1:1/0",), {"timeout": float("inf")}, "timeout"),
        (("redis://127.0.0.1:1/0",), {"retry_interval": -1}, "retry_interval"),
        (("redis://127.0.0.1:1/0",), {"observers": [42]}, "observers"),
        (("redis://127.0.0.1:1/0",), {"max_connections": 0}, "max_connections"),
        (("redis://127.0.0.1:1/0",), {"max_connections": True}, "max_connections"),
        (("http://127.0.0.1:6379",), {}, "url_or_client"),
        ((object(),), {}, "url_or_client"),
    ],
)
def test_settings_are_checked(args: tuple[Any, ...], kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        RedisBackend(*args, **kwargs)
    assert err.value.field == field


def test_without_the_redis_package_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("redis", "redis.asyncio", "redis.exceptions"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ConfigurationError) as err:
        RedisBackend("redis://127.0.0.1:6379/0")
    assert "pip install 'httpx-resilience[redis]'" in str(err.value)


# -- limiters on Redis --------------------------------------------------------------------------


async def test_two_backends_share_one_token_bucket(shared: RedisBackend) -> None:
    other = RedisBackend(redis_url(), prefix=shared.prefix)  # as another process would
    a = TokenBucketRateLimiter(20, 1, backend=shared)
    b = TokenBucketRateLimiter(20, 1, backend=other)
    started = time.perf_counter()
    waits = await asyncio.gather(*(lim.acquire() for lim in (a, b) * 5))
    elapsed = time.perf_counter() - started
    assert sorted(waits)[0] == 0.0
    assert 0.8 <= elapsed / (9 / 20) <= 4.0  # 10 grants, one per 1/20 s, across both
    await other.aclose()


async def test_a_shared_window_holds_across_backends(shared: RedisBackend) -> None:
    other = RedisBackend(redis_url(), prefix=shared.prefix)
    a = SlidingWindowRateLimiter(3, 0.3, backend=shared, name="w")
    b = SlidingWindowRateLimiter(3, 0.3, backend=other, name="w")
    waits = sorted(await asyncio.gather(*(lim.acquire() for lim in (a, b, a, b, a, b))))
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert all(0.6 <= w / 0.3 <= 4.0 for w in waits[3:]), waits
    await other.aclose()


async def test_max_wait_refuses_on_redis_without_sleeping(shared: RedisBackend) -> None:
    limiter = TokenBucketRateLimiter(0.1, 1, backend=shared, max_wait=1.0)
    await limiter.acquire()
    started = time.perf_counter()
    with pytest.raises(RateLimiterTimeout) as err:
        await limiter.acquire()
    assert err.value.needed is not None and err.value.needed > 5
    assert (time.perf_counter() - started) / 1.0 < 1  # refused up front, not after max_wait


async def test_a_pause_is_shared_through_redis(shared: RedisBackend) -> None:
    other = RedisBackend(redis_url(), prefix=shared.prefix)
    a = TokenBucketRateLimiter(100, 10, backend=shared, scope="host", name="api").for_key("h")
    b = TokenBucketRateLimiter(100, 10, backend=other, scope="host", name="api").for_key("h")
    a.pause(0.3)
    assert a._shared is not None  # type: ignore[attr-defined]
    await a._shared.drain()  # type: ignore[attr-defined]
    assert 0.5 <= await other.paused_for("api/h") / 0.3 <= 1.001
    waited = await b.acquire()
    assert 0.5 <= waited / 0.3 <= 2.0
    await other.aclose()


async def test_the_testing_switch_grants_at_once_on_redis(shared: RedisBackend) -> None:
    limiter = TokenBucketRateLimiter(0.1, 1, backend=shared)
    with testing_mode():
        waits = [await limiter.acquire() for _ in range(3)]
    assert waits == [0.0, 0.0, 0.0]




def test_a_backend_serves_one_event_loop_after_another() -> None:
    backend = RedisBackend(redis_url(), prefix=fresh_prefix())

    async def ask() -> bool:
        grant = await backend.token_bucket("l", rate=100, burst=10, tokens=1, horizon=None)
        return grant.granted and not backend.in_fallback

    assert [asyncio.run(ask()) for _ in range(3)] == [True, True, True]

    async def close() -> None:
        await drop_keys(backend.client, backend.prefix)
        await backend.aclose()

    asyncio.run(close())


async def test_a_window_takes_thousands_of_tokens_at_once(backend: SharedBackend) -> None:
    grant = await backend.sliding_window("big", limit=5000, window=1.0, tokens=5000, horizon=0)
    assert grant == (True, 0.0)
    refused = await backend.sliding_window("big", limit=5000, window=1.0, tokens=1, horizon=0)
    assert not refused.granted
    if isinstance(backend, RedisBackend):
        assert await backend.client.zcard(backend.key("limiter", "big", "window")) == 5000


async def test_a_burst_of_callers_shares_a_few_connections() -> None:
    # A generous timeout: this checks the sharing, not the latency of a loaded machine.
    backend = RedisBackend(redis_url(), prefix=fresh_prefix(), max_connections=4, timeout=5)
    grants = await asyncio.gather(
        *(backend.token_bucket("c", rate=1e6, burst=10**6, tokens=1, horizon=None) for _ in range(100))
    )
    assert all(g.granted for g in grants) and not backend.in_fallback
    assert backend.client.connection_pool.max_connections == 4
    await drop_keys(backend.client, backend.prefix)
    await backend.aclose()


async def test_the_retry_interval_runs_on_the_injected_clock() -> None:
    """Down once, the backend refuses at once without touching Redis until ``retry_interval``
    has passed on its clock (a FakeClock here), then probes Redis again."""
    from httpx_resilience.testing.clock import FakeClock

    clock = FakeClock()
    tried: list[str] = []
    backend = RedisBackend(
        closed_port_url(), prefix=fresh_prefix(), timeout=0.2, retry_interval=30.0,
        observers=[lambda e: tried.append(type(e).__name__)], clock=clock,
    )
    for _ in range(3):
        with pytest.raises(BackendDown):
            await backend.token_bucket("k", rate=1, burst=1, tokens=1, horizon=None)
    assert tried.count("BackendScriptRan") == 1  # one real attempt, then refused at once
    clock.advance(31.0)
    with pytest.raises(BackendDown):
        await backend.token_bucket("k", rate=1, burst=1, tokens=1, horizon=None)
    assert tried.count("BackendScriptRan") == 2  # the interval passed: Redis probed again
