"""Benchmark of shared limits on Redis: ours against `limits` and pyrate-limiter.

In one run, against one Redis (a ``redis-server`` of the bench's own on a free
loopback port when the binary is installed, else ``REDIS_URL`` or
127.0.0.1:6379), with worker processes started once ("spawn") and reused:

- throughput: grants/s from 1 and 4 processes, the limit far above what they
  can ask for, and Redis round trips per grant;
- accuracy: the aggregate rate of 1 and 4 processes asked to hold ``--rate``
  (200/s), its error, the most grants seen in any 1 s, and round trips per
  grant while waiting;
- added latency: one request at a time through
  ``httpx.AsyncClient(transport=ResilientTransport(...))`` against a loopback
  server in another process, with no policy, a local breaker + limiter, and a
  shared one (``backend=RedisBackend``): µs per request and round trips.

Round trips are counted in each worker process at the client: every
command a caller sends through ``redis.asyncio`` is one, and so is a pipeline. The
Redis commands executed per grant (``INFO commandstats`` deltas, those run by
scripts included) are shown beside them when the bench owns its Redis.

How each library waits, as its documentation shows:
- ours: ``await limiter.acquire()`` (sleeps until the time the script returns);
- limits: ``MovingWindowRateLimiter.hit()``; when refused,
  ``get_window_stats()`` gives the reset time and the caller sleeps until then;
- pyrate-limiter: ``Limiter(RedisBucket).try_acquire_async(blocking=True)``.

Usage: python bench/redis_bench.py [--seconds 2] [--accuracy-seconds 5] [--rate 200]
Writes bench/RESULTS_redis.md. Bounded: about 2.5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import multiprocessing as mp
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROCESSES = 4
TASKS_PER_PROCESS = 4
UNLIMITED = 1_000_000  # a limit no worker reaches: throughput is Redis's and the library's

# --------------------------------------------------------------------------- #
# Inside a worker process                                                     #
# --------------------------------------------------------------------------- #

_ROUND_TRIPS = [0]


def _count_round_trips() -> None:
    """Count every command and every pipeline this process sends through redis.asyncio.

    Counted where a caller asks (``Redis.execute_command``, ``Pipeline.execute``),
    so the handshake of a new connection is not a round trip of the limiter.
    """
    from redis.asyncio.client import Pipeline, Redis

    command = Redis.execute_command
    pipeline = Pipeline.execute

    async def counted_command(self: Any, *args: Any, **options: Any) -> Any:
        _ROUND_TRIPS[0] += 1
        return await command(self, *args, **options)

    async def counted_pipeline(self: Any, raise_on_error: bool = True) -> Any:
        _ROUND_TRIPS[0] += 1
        return await pipeline(self, raise_on_error)

    Redis.execute_command = counted_command  # type: ignore[method-assign]
    Pipeline.execute = counted_pipeline  # type: ignore[method-assign]


def has_ours() -> bool:
    """Whether this checkout has the Redis backend (issue 13)."""
    try:
        from httpx_resilience.backends import RedisBackend  # noqa: F401
    except ImportError:
        return False
    return True


async def _make_acquire(
    lib: str, url: str, key: str, limit: int
) -> tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    """An acquire for `lib` limited to `limit` per second on `key`, and its closer."""
    if lib.startswith("ours"):
        import redis.asyncio as aioredis

        from httpx_resilience import SlidingWindowRateLimiter, TokenBucketRateLimiter
        from httpx_resilience.backends import RedisBackend

        client = aioredis.Redis.from_url(url)
        backend = RedisBackend(client, prefix=key)
        if lib == "ours-window":
            limiter: Any = SlidingWindowRateLimiter(limit, 1.0, backend=backend)
        else:
            limiter = TokenBucketRateLimiter(limit, 1 if limit < UNLIMITED else limit, backend=backend)

        async def close_ours() -> None:
            await client.aclose()

        return limiter.acquire, close_ours
    if lib == "limits":
        from limits import RateLimitItemPerSecond
        from limits.aio.storage import RedisStorage
        from limits.aio.strategies import MovingWindowRateLimiter

        storage = RedisStorage("async+" + url, implementation="redispy", key_prefix=key)
        moving = MovingWindowRateLimiter(storage)
        item = RateLimitItemPerSecond(limit, 1)

        async def acquire_limits() -> None:
            while not await moving.hit(item, "bench"):
                stats = await moving.get_window_stats(item, "bench")
                await asyncio.sleep(max(0.0, stats.reset_time - time.time()))

        async def close_limits() -> None:
            return None

        return acquire_limits, close_limits
    if lib == "pyrate":
        import redis.asyncio as aioredis
        from pyrate_limiter import Duration, Limiter, Rate, RedisBucket

        client = aioredis.Redis.from_url(url)
        bucket = await RedisBucket.init([Rate(limit, Duration.SECOND)], client, key)
        pyrate = Limiter(bucket)

        async def acquire_pyrate() -> None:
            await pyrate.try_acquire_async("bench", blocking=True)

        async def close_pyrate() -> None:
            pyrate.close()
            await client.aclose()

        return acquire_pyrate, close_pyrate
    raise ValueError(f"unknown library {lib!r}")


async def _run_phase(
    lib: str, url: str, key: str, limit: int, start_at: float, seconds: float, tasks: int
) -> dict[str, Any]:
    """Acquire in `tasks` loops from start_at for `seconds`; grant times and round trips."""
    acquire, close = await _make_acquire(lib, url, key, limit)
    try:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        stop = start_at + seconds
        stamps: list[float] = []
        trips_before = _ROUND_TRIPS[0]

        async def loop() -> None:
            while True:
                await acquire()
                now = time.time()
                if now >= stop:
                    return
                stamps.append(now)

        await asyncio.wait_for(asyncio.gather(*(loop() for _ in range(tasks))), seconds + 30)
        trips = _ROUND_TRIPS[0] - trips_before
    finally:
        await close()
    return {"stamps": stamps, "trips": trips}


def worker_main(conn: Connection) -> None:
    """A worker process: run each phase it is sent, answer with its result."""
    _count_round_trips()
    while True:
        message = conn.recv()
        if message is None:
            return
        try:
            conn.send(asyncio.run(_run_phase(**message)))
        except Exception as exc:  # reported, not fatal: the table says what failed
            conn.send({"error": f"{type(exc).__name__}: {exc}"})


# --------------------------------------------------------------------------- #
# Redis of the bench's own, and facts about the machine                       #
# --------------------------------------------------------------------------- #


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def bench_redis() -> Iterator[tuple[str, bool]]:
    """(URL, owned): a redis-server of our own when installed, else REDIS_URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), False
        return
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="redis-bench-")
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", workdir]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", True
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def commands_executed(url: str) -> int:
    """Commands Redis has executed so far (INFO commandstats, scripts' own included)."""
    import redis

    stats = redis.Redis.from_url(url).info("commandstats")
    return sum(int(v["calls"]) for v in stats.values())


def machine(url: str) -> str:
    """CPU, cores, Python, Redis version and the date, as one line."""
    import redis

    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    version = redis.Redis.from_url(url).info("server")["redis_version"]
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Redis {version} (loopback), {date}; load average at the start {load}"
    )


# --------------------------------------------------------------------------- #
# The phases, driven from the parent                                          #
# --------------------------------------------------------------------------- #

LIBS: dict[str, str] = {
    "ours": "httpx-resilience TokenBucketRateLimiter(backend=RedisBackend)",
    "ours-window": "httpx-resilience SlidingWindowRateLimiter(backend=RedisBackend)",
    "limits": "limits MovingWindowRateLimiter (aio RedisStorage, redis-py)",
    "pyrate": "pyrate-limiter Limiter(RedisBucket) (redis.asyncio)",
}


def run_phase(
    pipes: list[Connection], url: str, lib: str, procs: int, limit: int, seconds: float
) -> dict[str, Any]:
    """One phase on `procs` workers at once; merged grant times, round trips, commands."""
    key = f"bench-{lib}-{uuid.uuid4().hex[:8]}"
    start_at = time.time() + 2.0  # every worker has built its limiter and connected
    before = commands_executed(url)
    for pipe in pipes[:procs]:
        pipe.send({"lib": lib, "url": url, "key": key, "limit": limit, "start_at": start_at,
                   "seconds": seconds, "tasks": TASKS_PER_PROCESS})  # fmt: skip
    results = [pipe.recv() for pipe in pipes[:procs]]
    after = commands_executed(url)
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        return {"error": errors[0]}
    stamps = sorted(s for r in results for s in r["stamps"])
    return {
        "stamps": stamps,
        "start": start_at,
        "trips": sum(r["trips"] for r in results),
        "commands": after - before,
        "grants": len(stamps),
    }


def max_in_one_second(stamps: list[float]) -> int:
    """The most grant times within any 1 s span (two pointers over sorted times)."""
    best, lo = 0, 0
    for hi, t in enumerate(stamps):
        while t - stamps[lo] >= 1.0:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _per(value: float, grants: int) -> str:
    return f"{value / grants:.2f}" if grants else "n/a"


def throughput_rows(
    pipes: list[Connection], url: str, libs: list[str], seconds: float, owned: bool, rounds: int = 2
) -> list[str]:
    """Grants/s (the best of `rounds`, taken in turns) and the exact counts per grant."""
    best: dict[tuple[str, int], float] = {}
    counts: dict[tuple[str, int], list[int]] = {}
    failed: dict[tuple[str, int], str] = {}
    for _ in range(rounds):
        for lib in libs:
            for procs in (1, PROCESSES):
                res = run_phase(pipes, url, lib, procs, UNLIMITED, seconds)
                if "error" in res:
                    failed[lib, procs] = res["error"]
                    continue
                best[lib, procs] = max(best.get((lib, procs), 0.0), res["grants"] / seconds)
                total = counts.setdefault((lib, procs), [0, 0, 0])
                total[0] += res["grants"]
                total[1] += res["trips"]
                total[2] += res["commands"]
    rows = []
    for lib in libs:
        for procs in (1, PROCESSES):
            if (lib, procs) in failed:
                rows.append(f"| {LIBS[lib]} | {procs} | failed: {failed[lib, procs]} | | |")
                continue
            grants, trips, commands = counts[lib, procs]
            per_command = _per(commands, grants) if owned else "n/a"
            rows.append(
                f"| {LIBS[lib]} | {procs} | {best[lib, procs]:,.0f} | "
                f"{_per(trips, grants)} | {per_command} |"
            )
            print(rows[-1], flush=True)
    return rows


def accuracy_rows(
    pipes: list[Connection], url: str, libs: list[str], seconds: float, rate: int
) -> list[str]:
    rows = []
    warmup = 1.0  # the first second is left out: the bucket's start is not the steady state
    for lib in libs:
        for procs in (1, PROCESSES):
            res = run_phase(pipes, url, lib, procs, rate, seconds + warmup)
            if "error" in res:
                rows.append(f"| {LIBS[lib]} | {procs} | failed: {res['error']} | | | |")
                continue
            lo = res["start"] + warmup
            hi = lo + seconds
            inside = [s for s in res["stamps"] if lo <= s < hi]
            achieved = len(inside) / seconds
            error = (achieved - rate) / rate * 100
            rows.append(
                f"| {LIBS[lib]} | {procs} | {achieved:.1f}/s | {error:+.2f} % | "
                f"{max_in_one_second(inside)} | {_per(res['trips'], res['grants'])} |"
            )
            print(rows[-1], flush=True)
    return rows


# --------------------------------------------------------------------------- #
# Added latency per request through ResilientTransport                        #
# --------------------------------------------------------------------------- #


def serve_http(conn: Connection) -> None:
    """A ChaosServer in its own process (so it does not share the client's GIL)."""
    from httpx_resilience.testing import ChaosServer

    with ChaosServer() as server:
        conn.send(server.url)
        conn.recv()  # until told to stop


async def _latency(url: str, base: str, requests: int, rounds: int) -> dict[str, tuple[float, float, float]]:
    """Per configuration: µs per request (median and best round) and round trips per request.

    The configurations run in turns within each round, so a load change on the
    machine touches them alike. "redis" is one bare round trip (EVALSHA of a
    script returning 1), for scale.
    """
    import httpx
    import redis.asyncio as aioredis

    from httpx_resilience import (
        CircuitBreaker,
        ResilientTransport,
        RetryPolicy,
        TokenBucketRateLimiter,
    )

    client = aioredis.Redis.from_url(url)
    prefix = f"bench-latency-{uuid.uuid4().hex[:8]}"

    def build(kind: str) -> httpx.AsyncClient:
        policies: dict[str, Any] = {}
        if kind != "none":
            extra: dict[str, Any] = {}
            if kind == "shared":
                from httpx_resilience.backends import RedisBackend

                extra["backend"] = RedisBackend(client, prefix=prefix)
            policies = {
                "circuit_breaker": CircuitBreaker(failure_threshold=5, recovery_timeout=30, **extra),
                "rate_limiter": TokenBucketRateLimiter(UNLIMITED, UNLIMITED, **extra),
            }
        transport = ResilientTransport(retry=RetryPolicy(max_attempts=1), **policies)
        return httpx.AsyncClient(base_url=base, transport=transport)

    kinds = ["none", "local"] + (["shared"] if has_ours() else [])
    clients = {kind: build(kind) for kind in kinds}
    sha = await client.script_load("return 1")
    per_round: dict[str, list[float]] = {kind: [] for kind in [*kinds, "redis"]}
    trips: dict[str, int] = dict.fromkeys([*kinds, "redis"], 0)
    try:
        for kind in kinds:  # warm: connections, scripts loaded
            for _ in range(50):
                (await clients[kind].get("/warm")).raise_for_status()
        for _ in range(rounds):
            for kind in [*kinds, "redis"]:
                before = _ROUND_TRIPS[0]
                started = time.perf_counter()
                if kind == "redis":
                    for _ in range(requests):
                        await client.evalsha(sha, 0)
                else:
                    http = clients[kind]
                    for _ in range(requests):
                        await http.get("/x")
                per_round[kind].append((time.perf_counter() - started) / requests * 1e6)
                trips[kind] += _ROUND_TRIPS[0] - before
    finally:
        for http in clients.values():
            await http.aclose()
        await client.aclose()
    total = requests * rounds
    return {
        kind: (statistics.median(v), min(v), trips[kind] / total) for kind, v in per_round.items()
    }


def latency_rows(url: str, requests: int, rounds: int) -> list[str]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=serve_http, args=(child,), daemon=True)
    server.start()
    try:
        if not parent.poll(30):
            raise RuntimeError("the loopback server did not start within 30 s")
        base = parent.recv()
        _count_round_trips()
        result = asyncio.run(_latency(url, base, requests, rounds))
    finally:
        with contextlib.suppress(OSError):
            parent.send(None)
        server.join(10)
        if server.is_alive():
            server.kill()
            server.join(5)
    names = {
        "none": "no policy",
        "local": "local breaker + token bucket",
        "shared": "shared breaker + token bucket (RedisBackend)",
        "redis": "for scale: one bare Redis round trip (EVALSHA `return 1`)",
    }
    rows = []
    for kind, (median, best, per) in result.items():
        if kind == "redis":
            added = over_local = ""
        else:
            added = "" if kind == "none" else (
                f"{median - result['none'][0]:+.0f} ({best - result['none'][1]:+.0f})"
            )
            over_local = (
                f"{median - result['local'][0]:+.0f} ({best - result['local'][1]:+.0f})"
                if kind == "shared" else ""
            )
        rows.append(
            f"| {names[kind]} | {median:.0f} ({best:.0f}) | {added} | {over_local} | {per:.2f} |"
        )
        print(rows[-1], flush=True)
    return rows


# --------------------------------------------------------------------------- #
# Report                                                                      #
# --------------------------------------------------------------------------- #


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="throughput phase length")
    parser.add_argument("--accuracy-seconds", type=float, default=5.0, help="measured accuracy window")
    parser.add_argument("--rate", type=int, default=200, help="rate the accuracy phase holds")
    parser.add_argument("--requests", type=int, default=300, help="requests per latency round")
    parser.add_argument("--rounds", type=int, default=7, help="latency rounds (median shown)")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS_redis.md")
    args = parser.parse_args()

    started = time.monotonic()
    with bench_redis() as (url, owned):
        try:
            import redis

            redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        except Exception as exc:
            print(f"no Redis at {url} ({exc}); start one or set REDIS_URL", file=sys.stderr)
            return 1
        libs = (["ours", "ours-window"] if has_ours() else []) + ["limits", "pyrate"]
        about = machine(url)
        print(about, flush=True)
        ctx = mp.get_context("spawn")
        pipes: list[Connection] = []
        workers = []
        for _ in range(PROCESSES):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child,), daemon=True)
            proc.start()
            pipes.append(parent)
            workers.append(proc)
        try:
            throughput = throughput_rows(pipes, url, libs, args.seconds, owned)
            accuracy = accuracy_rows(pipes, url, libs, args.accuracy_seconds, args.rate)
            latency = latency_rows(url, args.requests, args.rounds)
        finally:
            for pipe in pipes:
                with contextlib.suppress(OSError):
                    pipe.send(None)
            for proc in workers:
                proc.join(10)
                if proc.is_alive():
                    proc.kill()
                    proc.join(5)
    took = time.monotonic() - started
    missing = "" if has_ours() else (
        "\n*Ours is not measured: this checkout has no `RedisBackend` yet.*\n"
    )
    text = f"""## Shared limits on Redis (`bench/redis_bench.py`)

Machine: {about}. One run, {took:.0f} s; every library against the same Redis
({"a redis-server of the bench's own" if owned else url}). {PROCESSES} worker processes
(spawned once, reused), {TASKS_PER_PROCESS} tasks acquiring in a loop in each.
Round trips are counted at the client in each process (every command or
pipeline sent through `redis.asyncio`, connection handshakes not included); "Redis commands" counts what Redis executed
(`INFO commandstats` deltas, the commands scripts run included).
{missing}
### Throughput (limit far above demand; the best of 2 runs of {args.seconds:.0f} s, in turns)

On {os.cpu_count()} cores shared by Redis, the workers and whatever else runs,
the workers are CPU-bound: more processes do not mean more grants, and
grants/s move with the machine's other work. The round trips and commands
per grant are exact counts.

| limiter | processes | grants/s | round trips / grant | Redis commands / grant |
|---|---|---|---|---|
{chr(10).join(throughput)}

### Holding {args.rate}/s ({args.accuracy_seconds:.0f} s measured after 1 s)

"max in 1 s" is the most grants whose *return times* (taken by the caller
when its acquire returns) fall within any 1 s: a sliding window allows
{args.rate}, a token bucket {args.rate} + its burst. Ours reserves a slot and
sleeps until it, so its return times carry the event loop's timer lateness
(tens of ms on a busy machine) and a few grants from the next second can
land in this one; on Redis' clock our window's own log never holds more than
the limit (`tests/integration/test_redis_processes.py` reads it as 4
processes run). The column is a caller's view, for every library.

| limiter | processes | aggregate rate | error | max in 1 s | round trips / grant |
|---|---|---|---|---|---|
{chr(10).join(accuracy)}

### Added latency per request (one at a time, loopback, median of {args.rounds} rounds of {args.requests})

Through `httpx.AsyncClient(transport=ResilientTransport(retry=RetryPolicy(max_attempts=1), ...))`
against a ChaosServer in another process.

Each cell: the median of the rounds (the best round in brackets: the least
disturbed by the other work on the machine).

| configuration | µs / request | added over none | added over local | round trips / request |
|---|---|---|---|---|
{chr(10).join(latency)}
"""
    args.out.write_text(text)
    print(f"wrote {args.out} in {took:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
