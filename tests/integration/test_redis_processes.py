"""Shared state on Redis across OS processes: one quota, one breaker, Redis going away.

Each test drives worker processes ("spawn", started once per module and
always stopped) that hold their own ``RedisBackend`` and policies, exactly as
the workers of a multi-process server would; they share nothing but Redis.
The parent sends each worker a command and reads its answer within a bound.
A fresh key prefix per test keeps tests apart on the machine's Redis; the
Redis-down tests start a ``redis-server`` of their own and kill (or freeze) it
by its PID.

Where sharing is under test, the backends get a 2 s timeout and any fall back
to local state fails the test with its reason: on a loaded host a Redis call
can outlast the default 0.25 s, and the policy would then, correctly, decide
locally. The Redis-down tests use the default timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import signal
import time
import uuid
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

import httpx
import pytest

from httpx_resilience.testing import ChaosServer, Fault

from ._redis_server import RedisClusterNodes, RedisServer, started_cluster, started_server

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(120)]

WORKERS = 4
ANSWER_TIMEOUT = 60.0  # the longest a worker may take to answer one command


# --------------------------------------------------------------------------- #
# Inside a worker process                                                     #
# --------------------------------------------------------------------------- #


class _Worker:
    """One process's backends, policies and clients, built on first use and kept."""

    def __init__(self) -> None:
        self.backends: dict[tuple[str, str, str], Any] = {}
        self.clients: dict[tuple[Any, ...], Any] = {}
        self.breakers: dict[tuple[Any, ...], Any] = {}
        # Why each backend fell back, as its observer saw it (answered with the next
        # command that uses that backend, so a backend of an earlier test never counts).
        self.fallbacks: dict[tuple[str, str, str, float], list[str]] = {}
        self.scripts: dict[tuple[str, str, str, float], int] = {}  # Redis calls per backend

    @staticmethod
    def backend_key(msg: dict[str, Any]) -> tuple[str, str, str, float]:
        return (msg["redis"], msg["prefix"], msg.get("fail_mode", "local"), msg.get("timeout", 2.0))

    def backend(self, msg: dict[str, Any]) -> Any:
        from httpx_resilience.backends import BackendFallbackEntered, BackendScriptRan, RedisBackend

        key = self.backend_key(msg)
        if key not in self.backends:
            where: Any = key[0]
            if msg.get("cluster"):
                from redis.asyncio.cluster import RedisCluster

                where = RedisCluster.from_url(key[0])

            def observe(event: object) -> None:
                if isinstance(event, BackendFallbackEntered):
                    self.fallbacks.setdefault(key, []).append(event.reason)
                elif isinstance(event, BackendScriptRan):
                    self.scripts[key] = self.scripts.get(key, 0) + 1

            self.backends[key] = RedisBackend(
                where, prefix=key[1], fail_mode=key[2], timeout=key[3], observers=[observe]
            )
        return self.backends[key]

    def limiter(self, msg: dict[str, Any]) -> Any:
        from httpx_resilience import SlidingWindowRateLimiter, TokenBucketRateLimiter

        spec = dict(msg["limiter"])
        kind = spec.pop("kind")
        cls = TokenBucketRateLimiter if kind == "bucket" else SlidingWindowRateLimiter
        return cls(**spec, backend=self.backend(msg))

    def client(self, msg: dict[str, Any]) -> tuple[Any, Any]:
        """The client for (backend, breaker, limiter, facade) and its breaker."""
        from httpx_resilience import (
            AsyncHTTPClient,
            CircuitBreaker,
            ResilientTransport,
            RetryBudget,
            RetryPolicy,
        )

        key = (msg["redis"], msg["prefix"], msg.get("fail_mode", "local"), msg.get("timeout", 2.0),
               msg["base"], repr(msg["breaker"]), repr(msg.get("budget")), repr(msg.get("retry")),
               repr(msg.get("limiter")), msg.get("facade", False))  # fmt: skip
        if key not in self.clients:
            backend = self.backend(msg)
            breaker = CircuitBreaker(**msg["breaker"], backend=backend) if msg["breaker"] else None
            limiter = self.limiter(msg) if msg.get("limiter") else None
            retry = RetryPolicy(**msg.get("retry", {"max_attempts": 1}))
            if msg.get("facade"):
                client: Any = AsyncHTTPClient(
                    msg["base"], rate_limiter=limiter, circuit_breaker=breaker, retry=retry
                )
            else:
                budget = RetryBudget(**msg["budget"], backend=backend) if msg.get("budget") else None
                transport = ResilientTransport(retry=retry, circuit_breaker=breaker,
                                               rate_limiter=limiter, retry_budget=budget)  # fmt: skip
                client = httpx.AsyncClient(base_url=msg["base"], transport=transport, timeout=30.0)
            self.clients[key] = client
            self.breakers[key] = breaker
        return self.clients[key], self.breakers[key]

    async def get(self, msg: dict[str, Any]) -> dict[str, Any]:
        """`n` concurrent GETs of `path`: each one's status or exception class name."""
        client, breaker = self.client(msg)

        async def one() -> int | str:
            try:
                response = await client.get(msg["path"])
            except Exception as exc:
                return type(exc).__name__
            return int(response.status_code)

        outcomes = await asyncio.gather(*(one() for _ in range(msg.get("n", 1))))
        return {"outcomes": list(outcomes), "state": breaker.state.name if breaker else None}

    async def limit(self, msg: dict[str, Any]) -> dict[str, Any]:
        """`tasks` loops acquiring from start_at for `seconds`: the time of each grant."""
        from httpx_resilience import RateLimiterTimeout

        limiter = self.limiter(msg)
        await asyncio.sleep(max(0.0, msg["start_at"] - time.time()))
        stop = msg["start_at"] + msg["seconds"]
        stamps: list[float] = []
        refused: list[float] = []  # how long each refused acquire took

        async def loop() -> None:
            while (began := time.time()) < stop:
                try:
                    await limiter.acquire()
                except RateLimiterTimeout:
                    refused.append(time.time() - began)
                    await asyncio.sleep(0.01)
                else:
                    stamps.append(time.time())

        def thread_loop() -> None:  # a plain thread: acquire_sync, no event loop
            while time.time() < stop:
                limiter.acquire_sync()
                stamps.append(time.time())

        if msg.get("threads"):
            await asyncio.gather(*(asyncio.to_thread(thread_loop) for _ in range(msg["threads"])))
        await asyncio.gather(*(loop() for _ in range(msg["tasks"])))
        return {"stamps": stamps, "refused": refused, "calls": self.scripts.get(self.backend_key(msg), 0)}

    async def stream(self, msg: dict[str, Any]) -> dict[str, Any]:
        """`concurrency` loops of GETs for `seconds`: (start, duration, outcome) of each."""
        client, _ = self.client(msg)
        stop = time.time() + msg["seconds"]
        done: list[tuple[float, float, int | str]] = []

        async def loop() -> None:
            while (began := time.time()) < stop:
                try:
                    response = await client.get(msg["path"])
                    outcome: int | str = int(response.status_code)
                except Exception as exc:
                    outcome = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
                done.append((began, time.time() - began, outcome))

        await asyncio.gather(*(loop() for _ in range(msg["concurrency"])))
        return {"done": done}

    async def oauth(self, msg: dict[str, Any]) -> dict[str, Any]:
        """`n` concurrent GETs of `path` signed by OAuth2 client credentials cached in the backend."""
        from httpx_resilience import OAuth2ClientCredentials

        key = ("oauth", msg["redis"], msg["prefix"], msg["token_url"])
        if key not in self.clients:
            auth = OAuth2ClientCredentials(
                msg["token_url"], "client", "secret", backend=self.backend(msg)
            )
            self.clients[key] = httpx.AsyncClient(base_url=msg["base"], auth=auth, timeout=30.0)
        client = self.clients[key]

        async def one() -> int | str:
            try:
                return int((await client.get(msg["path"])).status_code)
            except Exception as exc:
                return type(exc).__name__

        return {"outcomes": list(await asyncio.gather(*(one() for _ in range(msg["n"]))))}

    async def aclose(self) -> None:
        for client in self.clients.values():
            with contextlib.suppress(Exception):
                await client.aclose()


async def _serve(conn: Connection) -> None:
    worker = _Worker()
    try:
        while True:
            msg = await asyncio.to_thread(conn.recv)
            if msg is None:
                return
            reply: dict[str, Any]
            try:
                reply = {"ready": True} if msg["op"] == "ping" else await getattr(worker, msg["op"])(msg)
            except Exception as exc:
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            if "redis" in msg and (fell := worker.fallbacks.pop(worker.backend_key(msg), None)):
                reply["fallbacks"] = fell  # the parent asserts there were none, unless it caused them
            reply["seq"] = msg["seq"]
            conn.send(reply)
    finally:
        await worker.aclose()


def worker_main(conn: Connection) -> None:
    """A worker process: answer commands until told to stop (None)."""
    asyncio.run(_serve(conn))


# --------------------------------------------------------------------------- #
# The parent's side                                                           #
# --------------------------------------------------------------------------- #


class Fleet:
    """Worker processes, each with a pipe; every one is stopped (or killed) on close.

    Every answer is checked as it is read (:meth:`recv`): one that is late, that
    reports an error, or that shows a fall back to local state while the test
    keeps Redis up fails the test.
    """

    def __init__(self) -> None:
        self._ctx = mp.get_context("spawn")
        self.procs: list[Any] = []
        self.pipes: list[Connection] = []
        self.redis_may_fail = False  # set by the tests that take Redis away
        self.expected: dict[int, int] = {}  # per worker, the number of the command awaited
        self._seq = 0

    def start(self, count: int) -> list[int]:
        """Start `count` more workers and wait until each answers; their indexes."""
        new = []
        for _ in range(count):
            parent, child = self._ctx.Pipe()
            proc = self._ctx.Process(target=worker_main, args=(child,), daemon=True)
            proc.start()
            self.procs.append(proc)
            self.pipes.append(parent)
            new.append(len(self.procs) - 1)
        for i in new:
            assert self.ask(i, {"op": "ping"}) == {"ready": True}
        return new

    def send(self, i: int, msg: dict[str, Any]) -> None:
        self._seq += 1
        self.expected[i] = self._seq
        self.pipes[i].send({**msg, "seq": self._seq})

    def recv(self, i: int, timeout: float = ANSWER_TIMEOUT) -> dict[str, Any]:
        """Worker i's answer to the last command sent to it (the answer to an earlier one,
        left unread by a failed test, is dropped); it must not have fallen back to local
        state unless the test takes Redis away."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert self.pipes[i].poll(max(0.0, left)), f"worker {i} gave no answer within {timeout} s"
            reply: dict[str, Any] = self.pipes[i].recv()
            if reply.pop("seq") == self.expected[i]:
                break
        assert "error" not in reply, f"worker {i}: {reply['error']}"
        if not self.redis_may_fail:
            assert "fallbacks" not in reply, f"worker {i} fell back: {reply['fallbacks']}"
        return reply

    def ask(self, i: int, msg: dict[str, Any], timeout: float = ANSWER_TIMEOUT) -> dict[str, Any]:
        self.send(i, msg)
        return self.recv(i, timeout)

    def ask_all(self, msgs: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """Send every worker its command at once, then read every answer."""
        for i, msg in msgs.items():
            self.send(i, msg)
        return {i: self.recv(i) for i in msgs}

    def kill(self, i: int) -> None:
        """SIGKILL worker i by its PID (a crash: no cleanup runs in it)."""
        os.kill(self.procs[i].pid, signal.SIGKILL)
        self.procs[i].join(10)

    def close(self) -> None:
        for proc, pipe in zip(self.procs, self.pipes, strict=True):
            if proc.is_alive():
                with contextlib.suppress(OSError):
                    pipe.send(None)
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    """Four worker processes for the module's tests."""
    workers = Fleet()
    try:
        workers.start(WORKERS)
        yield workers
    finally:
        workers.close()


@pytest.fixture(scope="module")
def server() -> Iterator[ChaosServer]:
    with ChaosServer() as chaos:
        yield chaos


@pytest.fixture(scope="module")
def shared_redis() -> str:
    """The machine's Redis (tests/_redis.py skips, or fails under CI, without one)."""
    from _redis import redis_url  # tests/ is on sys.path (rootdir of the test packages)

    return str(redis_url())


@pytest.fixture
def own_redis(fleet: Fleet) -> Iterator[RedisServer]:
    """A redis-server of this test's own, to kill and restart; the workers may fall back."""
    fleet.redis_may_fail = True
    try:
        yield from started_server()
    finally:
        fleet.redis_may_fail = False


@pytest.fixture
def cluster() -> Iterator[RedisClusterNodes]:
    """A three-node Redis Cluster of this test's own."""
    yield from started_cluster()


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh key prefix: no state from another test or run.

    After a test on the machine's Redis, every key the policies left under it
    must have a TTL (nothing outlives its use).
    """
    fresh = f"test-{uuid.uuid4().hex}"
    yield fresh
    if "shared_redis" in request.fixturenames:
        assert_every_key_expires(request.getfixturevalue("shared_redis"), fresh)


def assert_every_key_expires(url: str, prefix: str) -> None:
    """Each key whose hash tag starts with the prefix has a TTL."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{{{prefix}:*"))
        forever = [k for k in keys if client.pttl(k) == -1]
    finally:
        client.close()
    assert forever == [], f"keys without a TTL: {forever}"


def assert_rate_within(stamps: list[float], lo: float, hi: float, rate: float, tolerance: float) -> float:
    """Grants timed within [lo, hi) make `rate`/s within ±`tolerance`; the achieved rate."""
    achieved = sum(lo <= s < hi for s in stamps) / (hi - lo)
    assert abs(achieved - rate) <= tolerance * rate, (
        f"{achieved:.1f} grants/s across processes, expected {rate}/s ± {tolerance:.0%}"
    )
    return achieved


# --------------------------------------------------------------------------- #
# One quota across processes                                                  #
# --------------------------------------------------------------------------- #

WARMUP, MEASURED = 0.5, 5.0


@pytest.mark.parametrize(
    "limiter",
    [{"kind": "bucket", "rate": 50, "burst": 1}, {"kind": "window", "limit": 50, "window": 1.0}],
    ids=["token-bucket", "sliding-window"],
)
def test_four_processes_share_one_rate(
    shared_redis: str, fleet: Fleet, prefix: str, limiter: dict[str, Any]
) -> None:
    """4 processes × 3 tasks acquiring in a loop get 50/s in all (±5 %), not 4 × 50/s, with
    one Redis call per grant (waiting processes sleep; they do not poll).

    For the sliding window the parent also reads the window's log in Redis as
    it goes (every grant stays there for a window): on Redis' clock no 1 s
    ever holds more than 50 grants.
    """
    start_at = time.time() + 1.0  # every worker has its limiter before the start
    msg = {"op": "limit", "redis": shared_redis, "prefix": prefix, "limiter": limiter,
           "start_at": start_at, "seconds": WARMUP + MEASURED, "tasks": 3}  # fmt: skip
    for i in range(WORKERS):
        fleet.send(i, msg)
    log = _read_window_log(shared_redis, prefix, fleet) if limiter["kind"] == "window" else {}
    replies = {i: fleet.recv(i) for i in range(WORKERS)}
    calls = sum(r["calls"] for r in replies.values())
    grants = sum(len(r["stamps"]) for r in replies.values())
    print(f"{calls} Redis calls for {grants} grants")  # shown with -s
    assert calls <= 1.02 * grants + WORKERS * 3, f"{calls} Redis calls for {grants} grants (polling?)"
    if limiter["kind"] == "window":
        assert len(log) >= 250, f"read {len(log)} grants from the window's log"
        assert_at_most_in_any_window(sorted(log.values()), limit=50, window=1_000_000.0)
    per_process = [r["stamps"] for r in replies.values()]
    lo = start_at + WARMUP
    assert all(sum(s >= lo for s in stamps) > 0 for stamps in per_process), "a process got nothing"
    stamps = sorted(s for each in per_process for s in each)
    achieved = assert_rate_within(stamps, lo, lo + MEASURED, rate=50, tolerance=0.05)
    print(f"{limiter['kind']}: {achieved:.2f}/s from {WORKERS} processes")  # shown with -s


def _read_window_log(url: str, prefix: str, fleet: Fleet) -> dict[bytes, float]:
    """Every grant of the prefix's sliding window (member → Redis time, µs), read every
    20 ms until the workers answer: a grant stays in the log for a whole window."""
    import redis

    client = redis.Redis.from_url(url)
    seen: dict[bytes, float] = {}
    try:
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while not all(pipe.poll() for pipe in fleet.pipes[:WORKERS]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the workers did not answer within {ANSWER_TIMEOUT} s")
            for key in client.scan_iter(match=f"{{{prefix}:limiter:*}}:window"):
                seen.update(client.zrange(key, 0, -1, withscores=True))
            time.sleep(0.02)
    finally:
        client.close()
    return seen


def assert_at_most_in_any_window(times: list[float], limit: int, window: float) -> None:
    """No half-open span [t, t + window) of the sorted `times` holds more than `limit`."""
    lo = 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        assert hi - lo + 1 <= limit, f"{hi - lo + 1} grants within one window (limit {limit})"


def test_threads_of_four_processes_share_one_rate(
    shared_redis: str, fleet: Fleet, prefix: str
) -> None:
    """acquire_sync from 4 processes × 2 plain threads (the backend's sync client) holds
    one 50/s quota (±5 %)."""
    limiter = {"kind": "bucket", "rate": 50, "burst": 1}
    start_at = time.time() + 1.0
    msg = {"op": "limit", "redis": shared_redis, "prefix": prefix, "limiter": limiter,
           "start_at": start_at, "seconds": WARMUP + 3.0, "tasks": 0, "threads": 2}  # fmt: skip
    replies = fleet.ask_all({i: msg for i in range(WORKERS)})
    stamps = sorted(s for r in replies.values() for s in r["stamps"])
    lo = start_at + WARMUP
    assert all(any(s >= lo for s in r["stamps"]) for r in replies.values()), "a process got nothing"
    assert_rate_within(stamps, lo, lo + 3.0, rate=50, tolerance=0.05)


def test_refused_waits_take_no_slot_from_the_shared_rate(
    shared_redis: str, fleet: Fleet, prefix: str
) -> None:
    """max_wait=0.2 s with 4 × 6 tasks asking a 20/s bucket: most asks are refused at once,
    without reserving, and the grants still make 20/s in all (±10 %)."""
    limiter = {"kind": "bucket", "rate": 20, "burst": 1, "max_wait": 0.2}
    start_at = time.time() + 1.0
    msg = {"op": "limit", "redis": shared_redis, "prefix": prefix, "limiter": limiter,
           "start_at": start_at, "seconds": WARMUP + 2.0, "tasks": 6}  # fmt: skip
    replies = fleet.ask_all({i: msg for i in range(WORKERS)})
    refused = [t for r in replies.values() for t in r["refused"]]
    stamps = sorted(s for r in replies.values() for s in r["stamps"])
    assert len(refused) > len(stamps)  # most asks were refused ...
    assert max(refused) < 0.2 + 0.5  # ... up front or at max_wait, never after a longer wait
    lo = start_at + WARMUP
    assert_rate_within(stamps, lo, lo + 2.0, rate=20, tolerance=0.10)  # ... and took no slot


def test_a_retry_after_answered_to_one_process_pauses_the_limiter_of_all(
    shared_redis: str, fleet: Fleet, prefix: str, server: ChaosServer
) -> None:
    """A 429 + Retry-After: 1 to process A pauses the shared limiter: B's next request waits it out."""
    import redis

    common = {"op": "get", "redis": shared_redis, "prefix": prefix, "base": server.url,
              "breaker": {"name": "pause", "failure_threshold": 50},
              "limiter": {"kind": "bucket", "rate": 100, "burst": 10}}  # fmt: skip
    assert fleet.ask(0, {**common, "path": "/pause-a?status=429&retry_after=1"})["outcomes"] == [429]

    # A writes the pause in the background: wait until Redis holds it, then B asks.
    client = redis.Redis.from_url(shared_redis)
    deadline = time.monotonic() + 5
    while not any(k.endswith(b":pause") for k in client.scan_iter(match=f"{{{prefix}:limiter:*")):
        assert time.monotonic() < deadline, "the pause never reached Redis"
        time.sleep(0.01)
    client.close()
    assert fleet.ask(1, {**common, "path": "/pause-b"})["outcomes"] == [200]

    (answered,) = server.requests("/pause-a")
    (waited,) = server.requests("/pause-b")
    assert waited.at - answered.at >= 0.8  # B was held for (most of) A's Retry-After


# --------------------------------------------------------------------------- #
# One breaker across processes                                                #
# --------------------------------------------------------------------------- #


def _get(redis: str, prefix: str, base: str, path: str, n: int = 1, **breaker: Any) -> dict[str, Any]:
    return {"op": "get", "redis": redis, "prefix": prefix, "base": base, "path": path, "n": n,
            "breaker": breaker}  # fmt: skip


def test_a_breaker_opened_in_one_process_is_open_in_another(
    shared_redis: str, fleet: Fleet, prefix: str, server: ChaosServer
) -> None:
    """A opens the breaker with two 503s; B's next call is refused and never sent."""
    settings = {"name": "orders", "failure_threshold": 2, "recovery_timeout": 30.0}
    before = fleet.ask(1, _get(shared_redis, prefix, server.url, "/ab-b", **settings))
    assert before == {"outcomes": [200], "state": "CLOSED"}

    for _ in range(2):  # one after the other (concurrent outcomes: see the test below)
        opened = fleet.ask(0, _get(shared_redis, prefix, server.url, "/ab-a?status=503", **settings))
        assert opened["outcomes"] == [503]
    assert opened["state"] == "OPEN"

    after = fleet.ask(1, _get(shared_redis, prefix, server.url, "/ab-b", **settings))
    assert after == {"outcomes": ["CircuitBreakerOpenError"], "state": "OPEN"}
    assert server.count("/ab-b") == 1  # only the call made before A opened it


async def test_concurrent_outcomes_never_turn_the_local_view_back(shared_redis: str, prefix: str) -> None:
    """Two calls fail at once and the second record opens the shared breaker: this process's
    breaker must show OPEN, and announce no transition back to CLOSED, whatever order the
    two record replies are read in. 500 breakers, as the race is one of timing."""
    import redis.asyncio as aioredis

    from httpx_resilience import CircuitBreaker, CircuitState, RedisBackend

    backend = RedisBackend(shared_redis, prefix=prefix, timeout=2.0)
    request = httpx.Request("GET", "http://upstream.test/")

    async def fail() -> httpx.Response:
        await asyncio.sleep(0)
        return httpx.Response(503, request=request)

    wrong: list[tuple[str, str, list[str]]] = []
    client = aioredis.Redis.from_url(shared_redis)
    try:
        for trial in range(500):
            seen: list[str] = []
            breaker = CircuitBreaker(
                failure_threshold=2, recovery_timeout=30, name=f"race-{trial}", backend=backend,
                listeners=[lambda t, seen=seen: seen.append(f"{t.old.name}->{t.new.name}")],
            )  # fmt: skip
            await asyncio.gather(breaker.call(fail), breaker.call(fail))
            shared = await client.hget(f"{{{prefix}:breaker:race-{trial}}}:state", "state")
            if breaker.state is not CircuitState.OPEN or "OPEN->CLOSED" in seen:
                wrong.append((breaker.state.name, (shared or b"").decode(), seen))
    finally:
        await client.aclose()
        await backend.aclose()
    assert wrong == [], f"{len(wrong)} of 500 breakers went back: {wrong[:2]}"


def assert_opens_then_lets_a_round_through(
    fleet: Fleet, worker: int, msg: dict[str, Any], probe: dict[str, Any], seconds: float = 20.0
) -> dict[int, dict[str, Any]]:
    """Open the breaker from `worker`, then send `probe` to every worker, round after
    round, until a round is let through (the breaker is due for probes)."""
    assert fleet.ask(worker, msg)["state"] == "OPEN"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        replies = fleet.ask_all({i: probe for i in range(WORKERS)})
        if any(o != "CircuitBreakerOpenError" for r in replies.values() for o in r["outcomes"]):
            return replies
        time.sleep(0.05)
    raise AssertionError(f"the breaker admitted no probe within {seconds} s")


def test_one_half_open_probe_among_100_callers_in_4_processes(
    shared_redis: str, fleet: Fleet, prefix: str, server: ChaosServer
) -> None:
    """Once the breaker is due, 4 × 25 concurrent callers send exactly one probe; it closes it."""
    # The probe's lease lasts recovery_timeout: longer than the probe, which is in
    # flight (1 s) while every caller arrives.
    settings = {"name": "probe", "failure_threshold": 1, "recovery_timeout": 2.0}
    server.route("/probe", latency=1.0)
    fail = _get(shared_redis, prefix, server.url, "/probe-fail?status=503", **settings)
    probe = _get(shared_redis, prefix, server.url, "/probe", 25, **settings)

    replies = assert_opens_then_lets_a_round_through(fleet, 0, fail, probe)
    outcomes = [o for r in replies.values() for o in r["outcomes"]]
    assert server.count("/probe") == 1
    assert sorted(outcomes, key=str) == [200] + ["CircuitBreakerOpenError"] * 99

    server.route("/probe")  # no latency: the closed breaker lets every caller through
    closed = fleet.ask_all({i: probe for i in range(WORKERS)})
    assert all(r["outcomes"] == [200] * 25 and r["state"] == "CLOSED" for r in closed.values())
    assert server.count("/probe") == 101


def test_three_probes_when_half_open_max_calls_is_3_and_a_failed_probe_reopens_for_all(
    shared_redis: str, fleet: Fleet, prefix: str, server: ChaosServer
) -> None:
    """half_open_max_calls=3: 100 callers in 4 processes send exactly 3 probes; when one
    fails, the breaker is OPEN again in every process and nothing more is sent."""
    settings = {"name": "three", "failure_threshold": 1, "recovery_timeout": 2.0,
                "half_open_max_calls": 3}  # fmt: skip
    server.route("/three", steps=[Fault(latency=1.0), Fault(latency=1.0, status=503)])
    fail = _get(shared_redis, prefix, server.url, "/three-fail?status=503", **settings)
    probe = _get(shared_redis, prefix, server.url, "/three", 25, **settings)

    replies = assert_opens_then_lets_a_round_through(fleet, 0, fail, probe)
    outcomes = [o for r in replies.values() for o in r["outcomes"]]
    assert server.count("/three") == 3
    assert sorted(outcomes, key=str) == [200, 503, 503] + ["CircuitBreakerOpenError"] * 97

    after = fleet.ask_all({i: probe for i in range(WORKERS)})
    assert all(r == {"outcomes": ["CircuitBreakerOpenError"] * 25, "state": "OPEN"}
               for r in after.values())  # fmt: skip
    assert server.count("/three") == 3


def test_a_per_host_breaker_is_shared_per_host(
    shared_redis: str, fleet: Fleet, prefix: str, server: ChaosServer
) -> None:
    """scope="host": a host's breaker opened in one process is open in another; the other
    host's is not."""
    settings = {"name": "hosts", "failure_threshold": 1, "recovery_timeout": 30.0, "scope": "host"}
    with ChaosServer() as other:
        opened = fleet.ask(0, _get(shared_redis, prefix, other.url, "/h?status=503", **settings))
        assert opened["outcomes"] == [503]
        on_other = fleet.ask(1, _get(shared_redis, prefix, other.url, "/h-ok", **settings))
        on_server = fleet.ask(1, _get(shared_redis, prefix, server.url, "/h-ok", **settings))
        assert on_other["outcomes"] == ["CircuitBreakerOpenError"]
        assert other.count("/h-ok") == 0
    assert on_server["outcomes"] == [200]
    assert server.count("/h-ok") == 1


@pytest.mark.parametrize("window_type", ["count", "time"])
def test_a_failure_rate_counts_the_calls_of_every_process(
    shared_redis: str, fleet: Fleet, prefix: str, server: ChaosServer, window_type: str
) -> None:
    """failure_rate_threshold=0.5 over at least 12 calls: 4 processes × 3 calls (8 of the 12
    answered 503) fill one window, where each alone (3 calls) is under minimum_calls; the
    breaker is open for all after the next failure at the latest.

    (The rate rules are checked when a call fails: when the 12th call to be recorded is a
    success, the breaker opens on the next failure. Records across processes come in any order.)
    """
    settings = {"name": f"rate-{window_type}", "failure_threshold": 100, "recovery_timeout": 30.0,
                "failure_rate_threshold": 0.5, "window_type": window_type,
                "window_size": 60, "minimum_calls": 12}  # fmt: skip
    path = f"/rate-{window_type}"
    server.route(path, statuses=[503, 503, 200] * 4 + [503])  # in arrival order, then 503s
    calls = {i: _get(shared_redis, prefix, server.url, path, 3, **settings) for i in range(WORKERS)}
    first = fleet.ask_all(calls)
    assert sorted(o for r in first.values() for o in r["outcomes"]) == [200] * 4 + [503] * 8
    nudge = fleet.ask(0, {**calls[0], "n": 1})["outcomes"]  # one more failure, if still closed
    assert nudge in (["CircuitBreakerOpenError"], [503])
    sent = server.count(path)
    after = fleet.ask_all({i: {**calls[i], "n": 1} for i in range(WORKERS)})
    assert all(r == {"outcomes": ["CircuitBreakerOpenError"], "state": "OPEN"} for r in after.values())
    assert server.count(path) == sent  # nothing more reached the server


def test_a_prober_killed_mid_probe_does_not_wedge_the_breaker(
    shared_redis: str, fleet: Fleet, prefix: str, server: ChaosServer
) -> None:
    """SIGKILL the process whose probe hangs: once its lease expires, another probes and closes."""
    lease = 1.0  # a probe lease lasts recovery_timeout (the local breaker's bound on a hung probe)
    settings = {"name": "wedge", "failure_threshold": 1, "recovery_timeout": lease}
    (prober,) = fleet.start(1)
    server.route("/wedge-hang", hang=True)
    assert fleet.ask(prober, _get(shared_redis, prefix, server.url, "/wedge?status=503", **settings))[
        "state"
    ] == "OPEN"

    # The prober asks until it is admitted: then its request hangs at the server.
    deadline = time.monotonic() + 10
    fleet.send(prober, _get(shared_redis, prefix, server.url, "/wedge-hang", **settings))
    while server.count("/wedge-hang") == 0:
        assert time.monotonic() < deadline, "the prober was never admitted"
        if fleet.pipes[prober].poll(0.05):
            assert fleet.recv(prober)["outcomes"] == ["CircuitBreakerOpenError"]
            fleet.send(prober, _get(shared_redis, prefix, server.url, "/wedge-hang", **settings))
    fleet.kill(prober)

    # While the dead prober's lease lives, every other caller is refused and sends nothing;
    # after it expires, one probes and closes the breaker.
    ok = _get(shared_redis, prefix, server.url, "/wedge-ok", **settings)
    seen: list[int | str] = []
    deadline = time.monotonic() + lease + 10
    while 200 not in seen:
        assert time.monotonic() < deadline, f"the breaker stayed wedged: {seen[-5:]}"
        seen += fleet.ask(0, ok)["outcomes"]
        time.sleep(0.05)
    assert set(seen[:-1]) <= {"CircuitBreakerOpenError"}
    assert server.count("/wedge-ok") == 1
    assert fleet.ask(1, {**ok, "n": 5}) == {"outcomes": [200] * 5, "state": "CLOSED"}


# --------------------------------------------------------------------------- #
# One retry budget across processes                                           #
# --------------------------------------------------------------------------- #


def test_a_retry_budget_is_one_allowance_for_4_processes(
    shared_redis: str, fleet: Fleet, prefix: str, server: ChaosServer
) -> None:
    """A full outage (every answer 503) for 2 s: 4 processes retry within about one budget's
    floor (a reserve of 5, then 5 retries/s), far under the 4 floors of 4 local budgets.

    The documented precision (``backends/_budget.py``): before its first sync each
    process decides on its own state, so each may spend its own reserve once; the
    shared floor then goes into debt and pays it back. Measured over 3 s: ~29 retries
    against ~84 with four separate budgets.
    """
    seconds, floor = 2.0, 5.0
    msg = {"op": "stream", "redis": shared_redis, "prefix": prefix, "base": server.url,
           "path": "/outage?status=503", "seconds": seconds, "concurrency": 2, "breaker": None,
           "retry": {"max_attempts": 4, "backoff_factor": 0.01, "jitter": "none"},
           "budget": {"ratio": 0.0, "min_per_second": floor, "name": "outage"}}  # fmt: skip
    replies = fleet.ask_all({i: msg for i in range(WORKERS)})
    done = [d for r in replies.values() for d in r["done"]]
    assert {outcome for _, _, outcome in done} == {503}
    retries = server.count("/outage") - len(done)
    print(f"{retries} retries for {len(done)} requests")  # shown with -s
    one_budget = floor + floor * seconds  # its reserve, then the floor's rate
    first_reserves = (WORKERS - 1) * floor  # each process's own reserve, before its first sync
    local_budgets = WORKERS * one_budget
    assert 1 <= retries <= 1.2 * (one_budget + first_reserves) < local_budgets, (
        f"{retries} retries for {len(done)} requests; one shared budget allows about "
        f"{one_budget + first_reserves:.0f}, four local ones {local_budgets:.0f}"
    )


# --------------------------------------------------------------------------- #
# One OAuth2 token across processes                                           #
# --------------------------------------------------------------------------- #


def test_one_token_request_for_20_callers_in_4_processes(
    shared_redis: str, fleet: Fleet, prefix: str, server: ChaosServer
) -> None:
    """OAuth2 client credentials with backend=: 4 × 5 concurrent first requests make one call
    to the token endpoint (slow, so every process is waiting on it), and all carry its token."""
    token = f"tok-{uuid.uuid4().hex[:8]}"
    server.route("/oauth-token", latency=0.5,
                 body={"access_token": token, "token_type": "Bearer", "expires_in": 3600})  # fmt: skip
    msg = {"op": "oauth", "redis": shared_redis, "prefix": prefix, "base": server.url,
           "token_url": server.url_for("/oauth-token"), "path": "/oauth-api", "n": 5}  # fmt: skip
    replies = fleet.ask_all({i: msg for i in range(WORKERS)})
    assert all(r["outcomes"] == [200] * 5 for r in replies.values())
    assert server.count("/oauth-token") == 1
    sent = {r.headers.get("authorization") for r in server.requests("/oauth-api")}
    assert sent == {f"Bearer {token}"}
    assert server.count("/oauth-api") == 20


# --------------------------------------------------------------------------- #
# Redis killed mid-run                                                        #
# --------------------------------------------------------------------------- #


def test_redis_killed_mid_run_requests_keep_flowing_and_sharing_resumes(
    own_redis: RedisServer, fleet: Fleet, prefix: str, server: ChaosServer
) -> None:
    """fail_mode="local": Redis SIGKILLed under a stream of requests through AsyncHTTPClient
    (shared limiter + breaker) — every request succeeds, none stalls; after a restart on
    the same port a breaker opened in one process is open in another again."""
    common = {"redis": own_redis.url, "prefix": prefix, "fail_mode": "local", "base": server.url,
              "timeout": 0.25}  # fmt: skip
    stream = {**common, "op": "stream", "path": "/stream", "seconds": 2.5, "concurrency": 4,
              "facade": True, "breaker": {"name": "stream", "failure_threshold": 5,
                                          "recovery_timeout": 5.0},
              "limiter": {"kind": "bucket", "rate": 100, "burst": 10}}  # fmt: skip
    for i in (0, 1):
        fleet.send(i, stream)
    deadline = time.monotonic() + 10
    while server.count("/stream") < 40:  # both are streaming through Redis
        assert time.monotonic() < deadline, "the stream did not start"
        time.sleep(0.02)
    killed_at = time.time()
    own_redis.kill()
    done = [d for i in (0, 1) for d in fleet.recv(i)["done"]]

    failures = [outcome for _, _, outcome in done if outcome != 200]
    assert failures == [], failures[:3]
    after_kill = [d for d in done if d[0] > killed_at + 0.5]
    assert len(after_kill) >= 50, f"only {len(after_kill)} requests after Redis died"
    slowest = max(took for _, took, _ in done)
    print(f"{len(done)} requests, {len(after_kill)} after the kill, slowest {slowest:.3f} s")
    assert slowest < 2.0  # no request waited out a dead Redis

    own_redis.start()  # same port, empty
    seen_open = False
    deadline = time.monotonic() + 30
    round_ = 0
    while not seen_open:
        assert time.monotonic() < deadline, "shared state did not resume after the restart"
        round_ += 1
        settings = {"name": f"after-{round_}", "failure_threshold": 1, "recovery_timeout": 30.0}
        opened = fleet.ask(0, {**common, "op": "get", "path": "/after?status=503", "breaker": settings})
        assert opened["outcomes"] == [503]
        seen = fleet.ask(1, {**common, "op": "get", "path": "/after-ok", "breaker": settings})
        seen_open = seen["outcomes"] == ["CircuitBreakerOpenError"]
        if not seen_open:
            time.sleep(0.2)
    assert seen["state"] == "OPEN"

    # Both processes are back on Redis: their limiters share one quota again.
    start_at = time.time() + 0.5
    limit = {**common, "op": "limit", "limiter": {"kind": "bucket", "rate": 20, "burst": 1},
             "start_at": start_at, "seconds": 2.0, "tasks": 2}  # fmt: skip
    replies = fleet.ask_all({0: limit, 1: limit})
    stamps = sorted(s for r in replies.values() for s in r["stamps"])
    assert_rate_within(stamps, start_at + 0.5, start_at + 2.0, rate=20, tolerance=0.10)


def test_redis_frozen_mid_run_no_request_waits_beyond_the_backend_timeout(
    own_redis: RedisServer, fleet: Fleet, prefix: str, server: ChaosServer
) -> None:
    """Redis SIGSTOPped (connections open, no answer) under a stream of requests: in
    fail_mode="local" every request succeeds and none waits much beyond the backend's
    timeout (0.25 s); thawed, Redis is used again."""
    stream = {"op": "stream", "redis": own_redis.url, "prefix": prefix, "fail_mode": "local",
              "timeout": 0.25, "base": server.url, "path": "/frozen", "seconds": 2.0, "concurrency": 4,
              "breaker": {"name": "frozen", "failure_threshold": 5, "recovery_timeout": 5.0},
              "limiter": {"kind": "bucket", "rate": 200, "burst": 10}}  # fmt: skip
    fleet.send(0, stream)
    deadline = time.monotonic() + 10
    while server.count("/frozen") < 20:
        assert time.monotonic() < deadline, "the stream did not start"
        time.sleep(0.02)
    frozen_at = time.time()
    own_redis.freeze()
    try:
        done = fleet.recv(0)["done"]
    finally:
        own_redis.thaw()
    assert [o for _, _, o in done if o != 200] == []
    after = [took for began, took, _ in done if began > frozen_at]
    assert len(after) >= 20, f"only {len(after)} requests while Redis was frozen"
    print(f"{len(after)} requests while frozen, slowest {max(after):.3f} s")  # shown with -s
    assert max(after) < 2.0, f"a request waited {max(after):.2f} s on a frozen Redis"


@pytest.mark.parametrize(("fail_mode", "expected"), [("open", 200), ("closed", "SharedStateUnavailableError")])
def test_fail_modes_open_and_closed_with_redis_gone(
    own_redis: RedisServer, fleet: Fleet, prefix: str, server: ChaosServer, fail_mode: str, expected: Any
) -> None:
    """Redis gone: "open" lets every request through, "closed" refuses each with the typed
    error (nothing sent); never a raw redis exception. The same for the OAuth2 token cache."""
    own_redis.kill()
    msg = {"op": "get", "redis": own_redis.url, "prefix": prefix, "fail_mode": fail_mode,
           "timeout": 0.25, "base": server.url, "path": f"/gone-{fail_mode}", "n": 5,
           "breaker": {"name": "gone", "failure_threshold": 5},
           "limiter": {"kind": "bucket", "rate": 100, "burst": 10}}  # fmt: skip
    assert fleet.ask(2, msg)["outcomes"] == [expected] * 5
    assert server.count(f"/gone-{fail_mode}") == (5 if fail_mode == "open" else 0)

    # The OAuth2 token cache: "open" fetches a token of its own, "closed" refuses.
    token_path = f"/gone-token-{fail_mode}"
    server.route(token_path, body={"access_token": "t", "token_type": "Bearer", "expires_in": 60})
    oauth = {**msg, "op": "oauth", "token_url": server.url_for(token_path), "path": f"/gone-api-{fail_mode}"}
    assert fleet.ask(2, oauth)["outcomes"] == [expected] * 5
    assert server.count(token_path) == (1 if fail_mode == "open" else 0)


# --------------------------------------------------------------------------- #
# Redis Cluster                                                               #
# --------------------------------------------------------------------------- #


def test_on_a_redis_cluster_the_policies_share_state_across_processes(
    cluster: RedisClusterNodes, fleet: Fleet, prefix: str, server: ChaosServer
) -> None:
    """On a three-node Redis Cluster (``RedisCluster`` clients), with fail_mode="closed" so
    that any script refused by the cluster (CROSSSLOT, MOVED) would surface: a sliding
    window, a token bucket, a pause, a breaker, a retry budget and the token cache work
    and are shared by two processes (every key of one policy shares a hash tag)."""
    common = {"redis": cluster.url, "cluster": True, "prefix": prefix, "fail_mode": "closed",
              "base": server.url, "op": "get"}  # fmt: skip
    policies = {"breaker": {"name": "cl", "failure_threshold": 2, "recovery_timeout": 30.0},
                "limiter": {"kind": "window", "limit": 100, "window": 1.0},
                "budget": {"name": "cl"}, "retry": {"max_attempts": 1}}  # fmt: skip
    paused = fleet.ask(0, {**common, **policies, "path": "/cl-busy?status=429&retry_after=1"})
    assert paused["outcomes"] == [429]
    opened = fleet.ask(0, {**common, **policies, "path": "/cl?status=503", "n": 2})
    assert opened == {"outcomes": [503, 503], "state": "OPEN"}
    refused = fleet.ask(1, {**common, **policies, "path": "/cl-ok"})
    assert refused == {"outcomes": ["CircuitBreakerOpenError"], "state": "OPEN"}
    assert server.count("/cl-ok") == 0

    start_at = time.time() + 0.5
    limit = {**common, "op": "limit", "limiter": {"kind": "bucket", "rate": 40, "burst": 1},
             "start_at": start_at, "seconds": 2.0, "tasks": 2}  # fmt: skip
    replies = fleet.ask_all({0: limit, 1: limit})
    stamps = sorted(s for r in replies.values() for s in r["stamps"])
    assert_rate_within(stamps, start_at + 0.5, start_at + 2.0, rate=40, tolerance=0.10)

    server.route("/cl-token", latency=0.3,
                 body={"access_token": "c", "token_type": "Bearer", "expires_in": 60})  # fmt: skip
    oauth = {**common, "op": "oauth", "token_url": server.url_for("/cl-token"), "path": "/cl-api", "n": 3}
    assert all(r["outcomes"] == [200] * 3 for r in fleet.ask_all({0: oauth, 1: oauth}).values())
    assert server.count("/cl-token") == 1
