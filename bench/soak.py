"""Soak: many requests with every policy on against every fault, and the promises checked.

N logical requests go through :class:`~httpx_resilience.AsyncHTTPClient` with
retry (and its budget), attempt timeout and total deadline, a token-bucket rate
limiter, a circuit breaker, a bulkhead, hedging for GETs, Bearer auth and a
request id, against a :class:`~httpx_resilience.testing.ChaosServer` running
in a child process (so the client's sockets, tasks and memory are measured
alone) that answers with its whole fault mix: 500/502/503, 429 with
``Retry-After``, resets before and after the head, hangs, slow heads, slow
(dripping) and truncated bodies, and silent closes after a response.

The requests are a seeded mix of GETs (some through ``client.stream``, a few
of them left after the first piece of the body), JSON POSTs with and without an
``Idempotency-Key``, streamed uploads (async generator bodies) and multipart
uploads. Every upload declares its length and SHA-256 (the server checks
them), and every POST without a key carries a once-only id (the server counts
repeats). What is checked, per inner transport:

- unhandled exceptions: anything outside our exception tree and httpx's (0);
- non-idempotent requests sent twice: a POST without ``Idempotency-Key`` whose
  id the server saw twice (0);
- uploads that arrived short, altered or empty (0), and 2xx answers whose body
  is not the one the server sent (0);
- sockets and asyncio tasks left after the client is closed (0);
- RSS growth over the second half of the run (< 5 MB);
- requests that ended later than 50 ms past their deadline (the bulkhead's
  queue wait, which comes before the deadline starts, plus ``total_timeout``) (0);
- the secret token in any error text, and errors the event loop reported (0);
- connection-pool slots held once no request is in flight (0), and the success
  rate of the second half of the run against the first (at most 5 points lower):
  a pool that leaks slots runs dry after tens of thousands of requests;
- new connections per upstream request (< 25 %: the faults end about 7 % of
  connections; a pool that stops reusing them opens one per request).

Usage::

    python bench/soak.py [--requests 100000] [--transport httpx|native|aiohttp|all]
                         [--seed 1] [--concurrency 48] [--out bench/RESULTS_soak.md]

Exits 1 when an invariant fails. ``tests/integration/test_soak.py`` runs the
same machinery for 5,000 requests per transport.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import platform
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import httpx

from httpx_resilience import (
    AsyncHTTPClient,
    BearerAuth,
    Bulkhead,
    CircuitBreaker,
    ClientConfig,
    HedgingPolicy,
    HTTPClientError,
    RequestIdMiddleware,
    TokenBucketRateLimiter,
)
from httpx_resilience.serializers import JSONSerializer
from httpx_resilience.testing import ChaosServer, FaultMix, upload_headers

HERE = Path(__file__).resolve().parent
TRANSPORTS = ("httpx", "native", "aiohttp")
GET_BODY_SIZE = 1024
RSS_LIMIT_MB = 5.0
OVERRUN_SLACK = 0.05
# Faults end about 7 % of connections (resets, truncations, hangs, silent closes)
# and lost hedges drop theirs: a pool that keeps reusing connections opens well
# under this many per upstream request.
NEW_CONNECTION_LIMIT = 0.25
# The fault mix is the same all along: the second half succeeds as often as the first.
DEGRADATION_LIMIT = 0.05
SECRET = "soak-secret-7f3c9a1e5b"

# Every exception a caller may meet: ours, and httpx's (whose tree is not one class).
TYPED: tuple[type[BaseException], ...] = (
    HTTPClientError,
    httpx.HTTPError,
    httpx.InvalidURL,
    httpx.StreamError,
    httpx.CookieConflict,
)


def fault_mix(seed: int) -> FaultMix:
    """The server's fault mix: about 18 % of answers go wrong, each way a server can fail."""
    return FaultMix(
        error_500=0.02,
        error_502=0.01,
        error_503=0.02,
        rate_limited=0.02,
        retry_after="0",  # honoured; a longer pause would stop the whole host's limiter
        reset=0.01,
        reset_after_headers=0.01,
        hang=0.003,
        slow=0.03,
        slow_latency=0.08,
        truncate=0.01,
        slow_body=0.02,
        slow_body_drip=0.004,
        slow_body_chunk=256,
        close=0.03,
        seed=seed,
    )


# --------------------------------------------------------------------------- #
# The server, in a child process                                              #
# --------------------------------------------------------------------------- #


def serve(seed: int) -> None:
    """Child process: serve the soak's routes; answer ``stats`` lines on stdin with JSON."""
    server = ChaosServer(max_records=0)
    server.start()
    server.route("/get", body_size=GET_BODY_SIZE, mix=fault_mix(seed))
    for offset, path in enumerate(("/post", "/stream", "/multipart"), start=1):
        server.route(path, mix=fault_mix(seed + offset))
    print(server.url, flush=True)
    try:
        for line in sys.stdin:
            if line.strip() == "stats":
                print(json.dumps(server.stats()), flush=True)
    finally:
        server.stop()


class ServerProcess:
    """A ChaosServer in a child process (``python bench/soak.py --serve``)."""

    def __init__(self, seed: int) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", "--seed", str(seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        assert self._proc.stdout is not None
        self.url = self._proc.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.close()
            raise RuntimeError(f"the chaos server did not start (got {self.url!r})")

    def stats(self) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write("stats\n")
        self._proc.stdin.flush()
        return dict(json.loads(self._proc.stdout.readline()))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- #
# Measuring the process                                                       #
# --------------------------------------------------------------------------- #


def rss_bytes() -> int:
    """Resident memory of this process, from /proc/self/statm."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def open_sockets() -> int:
    """Sockets this process holds open (psutil when installed, else /proc/self/fd)."""
    try:
        import psutil  # type: ignore[import-untyped, unused-ignore]

        return len(psutil.Process().net_connections(kind="all"))
    except ImportError:
        pass
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
    return count


def held_slots(client: AsyncHTTPClient, max_connections: int) -> int | None:
    """Connection-pool slots held while no request is in flight (a leak when > 0).

    Read from each inner transport's pool: httpcore's registered requests,
    NativeTransport's open minus idle connections, AiohttpTransport's
    semaphore. ``None`` for a transport this does not know.
    """
    inner = getattr(client.transport, "_inner", None)
    pool = getattr(inner, "_pool", None)
    if pool is None:
        return None
    if isinstance(inner, httpx.AsyncHTTPTransport):
        return len(pool._requests)
    if hasattr(pool, "_open") and hasattr(pool, "_idle_count"):
        return int(pool._open - pool._idle_count)
    if isinstance(pool, asyncio.Semaphore):
        return max_connections - pool._value
    return None


def other_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


# --------------------------------------------------------------------------- #
# The client side                                                             #
# --------------------------------------------------------------------------- #


@dataclass
class SoakResult:
    """What one soak run measured; :meth:`failures` names every broken invariant."""

    transport: str
    requests: int
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    unhandled: Counter[str] = field(default_factory=Counter)
    httpx_only: Counter[str] = field(default_factory=Counter)
    unhandled_examples: list[str] = field(default_factory=list)
    hung: int = 0
    corrupt_success: int = 0
    corrupt_examples: list[str] = field(default_factory=list)
    secret_leaks: int = 0
    overruns: int = 0
    max_overrun_ms: float = 0.0
    overrun_examples: list[str] = field(default_factory=list)
    loop_errors: int = 0
    loop_error_examples: list[str] = field(default_factory=list)
    log_records: Counter[str] = field(default_factory=Counter)
    breaker_transitions: int = 0
    sockets_before: int = 0
    sockets_after: int = 0
    tasks_after: int = 0
    task_examples: list[str] = field(default_factory=list)
    rss_mid_mb: float = 0.0
    rss_end_mb: float = 0.0
    ok_first_half: int = 0
    ok_second_half: int = 0
    slots_held: int | None = None
    server: dict[str, Any] = field(default_factory=dict)
    rss_limit_mb: float = RSS_LIMIT_MB

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def rss_growth_mb(self) -> float:
        return self.rss_end_mb - self.rss_mid_mb

    @property
    def sockets_left(self) -> int:
        return max(0, self.sockets_after - self.sockets_before)

    @property
    def duplicates(self) -> int:
        return int(self.server.get("duplicates", 0))

    @property
    def bad_uploads(self) -> int:
        return int(self.server.get("upload_mismatches", 0))

    @property
    def degradation(self) -> float:
        """How much lower the second half's success share is than the first half's."""
        half = max(1, self.requests // 2)
        return (self.ok_first_half - self.ok_second_half) / half

    @property
    def connections_per_request(self) -> float:
        """TCP connections the server accepted per request it received."""
        return int(self.server.get("connections_opened", 0)) / max(
            1, int(self.server.get("requests", 0))
        )

    def failures(self) -> list[str]:
        """Each broken invariant, as a sentence; empty when all hold."""
        checks = [
            (sum(self.unhandled.values()), "unhandled exceptions", self.unhandled_examples),
            (self.hung, "requests still running 5 s past their deadline", []),
            (self.duplicates, "non-idempotent requests sent twice",
             [str(self.server.get("duplicate_examples"))]),
            (self.bad_uploads, "uploads received short, altered or empty",
             [json.dumps(m) for m in self.server.get("mismatch_examples", [])[:3]]),
            (self.corrupt_success, "2xx answers with a wrong body", self.corrupt_examples),
            (self.secret_leaks, "error texts holding the secret token", []),
            (self.sockets_left, "sockets left open after close", []),
            (self.tasks_after, "asyncio tasks left after close", self.task_examples),
            (self.overruns, f"deadline overruns beyond {OVERRUN_SLACK * 1000:.0f} ms",
             self.overrun_examples),
            (self.loop_errors, "errors reported by the event loop", self.loop_error_examples),
        ]
        out = [
            f"{self.transport}: {n} {what}" + (f" (e.g. {'; '.join(ex[:3])})" if ex else "")
            for n, what, ex in checks
            if n
        ]
        if self.slots_held:
            out.append(
                f"{self.transport}: {self.slots_held} connection-pool slots still held with no "
                "request in flight (leaked: the pool runs dry over time)"
            )
        if self.degradation > DEGRADATION_LIMIT:
            out.append(
                f"{self.transport}: the success rate fell by {self.degradation:.0%} from the first "
                f"half of the run to the second (limit {DEGRADATION_LIMIT:.0%})"
            )
        if self.connections_per_request > NEW_CONNECTION_LIMIT:
            out.append(
                f"{self.transport}: {self.connections_per_request:.0%} of upstream requests "
                f"opened a new connection (limit {NEW_CONNECTION_LIMIT:.0%}): the pool stops "
                "reusing connections"
            )
        if self.rss_growth_mb >= self.rss_limit_mb:
            out.append(
                f"{self.transport}: RSS grew {self.rss_growth_mb:.1f} MB over the second half "
                f"(limit {self.rss_limit_mb:g} MB)"
            )
        return out

    def as_json(self) -> dict[str, Any]:
        # asdict() would rebuild each Counter from (key, value) pairs, counting the pairs.
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.update(
            throughput=self.throughput,
            rss_growth_mb=self.rss_growth_mb,
            connections_per_request=self.connections_per_request,
        )
        return data


@dataclass(frozen=True)
class SoakSettings:
    """The client's set-up; the defaults keep 100,000 requests within a few minutes."""

    concurrency: int = 24
    timeout: float = 0.5
    total_timeout: float = 2.0
    bulkhead_wait: float = 0.1
    rate: float = 20_000.0
    # More consecutive failures than callers: a stall of the whole process (every
    # attempt in flight timing out at once) alone does not trip it; the failure
    # rate over the last 200 calls does, above 50 %.
    breaker_failures: int = 30
    # Longer than an attempt: a probe slower than this is taken for a hung one.
    breaker_recovery: float = 0.6


class _Counting(logging.Handler):
    def __init__(self, counts: Counter[str]) -> None:
        super().__init__(logging.DEBUG)
        self.counts = counts

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[f"{record.name}:{record.levelname}"] += 1


@contextlib.contextmanager
def quiet_logs(counts: Counter[str]) -> Iterator[None]:
    """Count the library's log records instead of printing 100,000 of them."""
    handler = _Counting(counts)
    names = ("httpx_resilience", "httpx", "httpcore", "aiohttp", "asyncio")
    saved = [(logging.getLogger(n), logging.getLogger(n).propagate) for n in names]
    for logger, _ in saved:
        logger.addHandler(handler)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, propagate in saved:
            logger.removeHandler(handler)
            logger.propagate = propagate


def build_client(url: str, kind: str, cfg: SoakSettings, result: SoakResult) -> AsyncHTTPClient:
    """AsyncHTTPClient with every policy on, over the ``kind`` inner transport."""

    def transition(_event: object) -> None:
        result.breaker_transitions += 1

    config = ClientConfig(
        timeout=cfg.timeout,
        total_timeout=cfg.total_timeout,
        retry_attempts=3,
        retry_backoff_factor=0.005,
        retry_max_delay=0.05,
        max_connections=cfg.concurrency,
        max_keepalive_connections=cfg.concurrency,
        transport=kind,  # type: ignore[arg-type]
    )
    return AsyncHTTPClient(
        url,
        config=config,
        auth=BearerAuth(SECRET),
        middlewares=[RequestIdMiddleware()],
        rate_limiter=TokenBucketRateLimiter(
            cfg.rate, 200, max_wait=0.2, scope="host", header_pacing=True
        ),
        circuit_breaker=CircuitBreaker(
            # more than the callers, whatever their number (see SoakSettings)
            max(cfg.breaker_failures, cfg.concurrency + 6), cfg.breaker_recovery,
            half_open_max_calls=4, scope="host",
            failure_rate_threshold=0.5, window_size=200, minimum_calls=50,
            listeners=[transition],
        ),
        bulkhead=Bulkhead(bulkhead_size(cfg), cfg.concurrency, max_wait=cfg.bulkhead_wait),
        hedging=HedgingPolicy("adaptive", min_delay=0.02, max_delay=0.2),
        service="soak",
    )


def bulkhead_size(cfg: SoakSettings) -> int:
    """Fewer slots than callers, so that some wait in the bulkhead's queue."""
    return max(1, cfg.concurrency * 5 // 6)


async def _chunks(payload: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(payload), size):
        await asyncio.sleep(0)
        yield payload[start : start + size]


Check = Callable[[httpx.Response | Any], str | None]


def _expect_get(response: Any) -> str | None:
    content = response.content
    if len(content) != GET_BODY_SIZE:
        return f"GET body of {len(content)} bytes, expected {GET_BODY_SIZE}"
    try:
        json.loads(content)
    except ValueError:
        return "GET body is not JSON"
    return None


class _Streamed:
    """What a streamed GET read: its status and body (``None`` when left unread)."""

    def __init__(self, status_code: int, content: bytes | None) -> None:
        self.status_code = status_code
        self.content = content


async def _streamed_get(client: AsyncHTTPClient, *, partial: bool) -> _Streamed:
    """``client.stream("GET")``: read the whole body, or one piece and leave the rest."""
    async with client.stream("GET", "/get") as response:
        if partial:
            async for _ in response.aiter_raw():
                break
            return _Streamed(response.status_code, None)
        return _Streamed(response.status_code, await response.aread())


def _expect_streamed(response: Any) -> str | None:
    return None if response.content is None else _expect_get(response)


def _expect_ok(response: Any) -> str | None:
    try:
        body = json.loads(response.content)
    except ValueError:
        return f"{response.status_code} body is not JSON"
    if not isinstance(body, dict) or body.get("ok") is not True:
        return f"{response.status_code} body {response.content[:80]!r}"
    return None


async def one_request(
    client: AsyncHTTPClient, n: int, rng: random.Random
) -> tuple[Any, Check]:
    """Send the n-th request of the mix; return its response and the check of a 2xx body."""
    draw = rng.random()
    keyed = rng.random() < 0.4
    ident = f"soak-{n}"
    if draw < 0.35:
        return await client.get("/get"), _expect_get
    if draw < 0.4:
        return await _streamed_get(client, partial=keyed), _expect_streamed
    payload = rng.randbytes(rng.randrange(0, 8192))
    key = {"idempotency_key": ident} if keyed else {}
    once = None if keyed else ident
    if draw < 0.65:
        document = {"id": ident, "data": payload.hex()[:4000]}
        headers = upload_headers(JSONSerializer().dumps(document), once=once)
        response = await client.post("/post", json=document, headers=headers, **key)
    elif draw < 0.82:
        headers = upload_headers(payload, once=once)
        response = await client.post(
            "/stream", content=_chunks(payload, 1024), headers=headers, **key
        )
    else:
        headers = upload_headers(payload, once=once)
        files = {"file": (f"{ident}.bin", payload, "application/octet-stream")}
        response = await client.post(
            "/multipart", data={"id": ident}, files=files, headers=headers, **key
        )
    return response, _expect_ok


def _record_error(result: SoakResult, exc: BaseException) -> None:
    name = type(exc).__name__
    result.outcomes[name] += 1
    if SECRET in f"{exc!s} {exc!r}":
        result.secret_leaks += 1
    if isinstance(exc, TYPED) and not isinstance(exc, HTTPClientError):
        result.httpx_only[name] += 1  # allowed, but AsyncHTTPClient maps failures to ours
    if not isinstance(exc, TYPED):
        result.unhandled[name] += 1
        if len(result.unhandled_examples) < 5:
            result.unhandled_examples.append(f"{name}: {str(exc)[:160]}")


def _record_response(result: SoakResult, response: Any, check: Check, n: int) -> None:
    status = response.status_code
    result.outcomes[str(status)] += 1
    if 200 <= status < 300:
        if n < result.requests // 2:
            result.ok_first_half += 1
        else:
            result.ok_second_half += 1
        problem = check(response)
        if problem is not None:
            result.corrupt_success += 1
            if len(result.corrupt_examples) < 5:
                result.corrupt_examples.append(problem)


async def run_soak(
    url: str,
    kind: str,
    requests: int,
    seed: int = 1,
    cfg: SoakSettings | None = None,
    progress: Callable[[int], None] | None = None,
) -> SoakResult:
    """Send ``requests`` requests over the ``kind`` transport and measure everything above."""
    cfg = cfg or SoakSettings()
    result = SoakResult(kind, requests)
    loop = asyncio.get_running_loop()

    def on_loop_error(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        result.loop_errors += 1
        if len(result.loop_error_examples) < 5:
            result.loop_error_examples.append(str(context.get("message") or context)[:200])

    loop.set_exception_handler(on_loop_error)
    gc.collect()
    result.sockets_before = open_sockets()
    bound = cfg.bulkhead_wait + cfg.total_timeout + OVERRUN_SLACK
    backstop = cfg.bulkhead_wait + cfg.total_timeout + 5.0
    half = requests // 2
    next_n = 0

    async def worker(client: AsyncHTTPClient, rng: random.Random) -> None:
        nonlocal next_n
        while next_n < requests:
            n, next_n = next_n, next_n + 1
            if n == half:
                result.rss_mid_mb = rss_bytes() / 2**20
            if progress is not None and n and n % 10_000 == 0:
                progress(n)
            t0 = time.monotonic()
            try:
                # A backstop: no request may hang the run (wait_for, not asyncio.timeout,
                # which needs Python 3.11).
                response, check = await asyncio.wait_for(one_request(client, n, rng), backstop)
            except Exception as exc:
                if isinstance(exc, asyncio.TimeoutError) and time.monotonic() - t0 >= backstop:
                    result.hung += 1
                    result.outcomes["hung"] += 1
                else:
                    _record_error(result, exc)
            except asyncio.CancelledError:
                # Nothing cancels the callers but a stop of the run; a CancelledError
                # that reaches them otherwise leaked out of the client (3.11 can tell).
                task = asyncio.current_task()
                cancelling = getattr(task, "cancelling", None)
                if cancelling is None or cancelling():
                    raise
                _record_error(result, asyncio.CancelledError("a CancelledError leaked out"))
            else:
                _record_response(result, response, check, n)
            elapsed = time.monotonic() - t0
            if elapsed > bound:
                result.overruns += 1
                result.max_overrun_ms = max(
                    result.max_overrun_ms, (elapsed - bound + OVERRUN_SLACK) * 1000
                )
                if len(result.overrun_examples) < 5:
                    result.overrun_examples.append(f"request {n} took {elapsed * 1000:.0f} ms")

    with quiet_logs(result.log_records):
        client = build_client(url, kind, cfg, result)
        began = time.monotonic()
        async with client:
            rngs = [random.Random(f"{seed}-{kind}-{i}") for i in range(cfg.concurrency)]
            await asyncio.gather(*(worker(client, rng) for rng in rngs))
            result.seconds = time.monotonic() - began
            result.rss_end_mb = rss_bytes() / 2**20
            await asyncio.sleep(0.2)  # lost hedges finish closing
            result.slots_held = held_slots(client, cfg.concurrency)
        del client
        # Closing may take a few loop turns: a transport's own clean-up tasks, and
        # the finalizers of async generator bodies that a failed attempt left
        # unfinished (the collector hands them to the loop as tasks).
        for _ in range(100):
            gc.collect()
            await asyncio.sleep(0.02)
            if not other_tasks() and open_sockets() <= result.sockets_before:
                break
        result.sockets_after = open_sockets()
        leftover = other_tasks()
        result.tasks_after = len(leftover)
        result.task_examples = [repr(t.get_coro())[:160] for t in leftover[:3]]
    loop.set_exception_handler(None)
    return result


def soak_one(
    kind: str, requests: int, seed: int = 1, cfg: SoakSettings | None = None,
    progress: Callable[[int], None] | None = None,
) -> SoakResult:
    """One run against a fresh server process: the client side, then the server's books."""
    with ServerProcess(seed) as server:
        result = asyncio.run(run_soak(server.url, kind, requests, seed, cfg, progress))
        result.server = server.stats()
    return result


# --------------------------------------------------------------------------- #
# The report                                                                  #
# --------------------------------------------------------------------------- #


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> dict[str, str]:
    import httpx_resilience

    versions = {"httpx": httpx.__version__}
    for name in ("aiohttp", "httptools"):
        with contextlib.suppress(ImportError):
            versions[name] = __import__(name).__version__
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "httpx_resilience": httpx_resilience.__version__,
        "os": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def write_report(results: list[SoakResult], out: Path, seed: int, cfg: SoakSettings) -> None:
    m = machine()
    lines = [
        "# Soak: every policy on, every fault, the promises checked",
        "",
        "Written by `bench/soak.py` (see its docstring for what runs and what is checked).",
        "",
        f"- Date: {m['date']}",
        f"- Machine: {m['cpu']}, {m['cores']} cores; {m['os']}",
        f"- Python {m['python']}; {m['versions']}; httpx-resilience {m['httpx_resilience']}",
        f"- Command: `python bench/soak.py --requests {results[0].requests} --transport "
        f"{'all' if len(results) > 1 else results[0].transport} --seed {seed} "
        f"--concurrency {cfg.concurrency}`",
        f"- Client: {cfg.concurrency} concurrent callers; attempt timeout {cfg.timeout:g} s, "
        f"total_timeout {cfg.total_timeout:g} s, 3 retries with budget, breaker "
        f"{cfg.breaker_failures} failures or 50 % of 200 / "
        f"{cfg.breaker_recovery * 1000:.0f} ms, token bucket {cfg.rate:g}/s, bulkhead "
        f"{bulkhead_size(cfg)} "
        f"(+{cfg.concurrency} queued, {cfg.bulkhead_wait * 1000:.0f} ms wait), adaptive "
        "hedging for GETs, Bearer auth, request id.",
        "- Server: a ChaosServer in a child process; about 18 % of answers faulty "
        f"(`{fault_mix(seed)!r}`).",
        "- Requests: 35 % GET, 5 % streamed GET (`client.stream`; 40 % of them left after "
        "the first piece), 25 % JSON POST, 17 % streamed upload (async generator), 18 % "
        "multipart upload; 40 % of the POSTs carry an Idempotency-Key.",
        "",
        "| transport | requests | seconds | req/s | unhandled exc. | non-idempotent sent "
        "twice | bad uploads | wrong 2xx bodies | sockets left | tasks left | RSS growth, "
        "2nd half | overruns > 50 ms | loop errors | secret in errors | pool slots leaked | "
        "success, 1st → 2nd half | new connections per upstream request | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        verdict = "pass" if not r.failures() else "**FAIL**"
        lines.append(
            f"| {r.transport} | {r.requests:,} | {r.seconds:.1f} | {r.throughput:,.0f} | "
            f"{sum(r.unhandled.values())} | {r.duplicates} | {r.bad_uploads} | "
            f"{r.corrupt_success} | {r.sockets_left} | {r.tasks_after} | "
            f"{r.rss_growth_mb:+.1f} MB | {r.overruns} | {r.loop_errors} | {r.secret_leaks} | "
            f"{'?' if r.slots_held is None else r.slots_held} | "
            f"{_share(r.ok_first_half, r.requests)} → {_share(r.ok_second_half, r.requests)} | "
            f"{r.connections_per_request:.1%} | {verdict} |"
        )
    lines += ["", "## Details", ""]
    for r in results:
        server = r.server
        upstream = server.get("requests", 0)
        lines += [
            f"### {r.transport}",
            "",
            f"- Outcomes: {_counts(r.outcomes)}",
            f"- Errors of httpx's tree but not ours: {_counts(r.httpx_only)}",
            f"- Upstream: {upstream:,} requests for {r.requests:,} logical "
            f"({upstream / max(1, r.requests):.2f}×), "
            f"{server.get('connections_opened', 0):,} connections; "
            f"{server.get('uploads_checked', 0):,} uploads checked by the server",
            f"- Breaker transitions: {r.breaker_transitions}; longest overrun past the "
            f"deadline: {r.max_overrun_ms:.0f} ms; RSS {r.rss_mid_mb:.1f} MB at half-way, "
            f"{r.rss_end_mb:.1f} MB at the end",
            f"- Log records: {_counts(r.log_records)}",
        ]
        for failure in r.failures():
            lines.append(f"- FAIL: {failure}")
        lines.append("")
    out.write_text("\n".join(lines), encoding="utf-8")


def _share(ok: int, requests: int) -> str:
    return f"{ok / max(1, requests // 2):.0%}"


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counter.most_common()) or "none"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=100_000)
    p.add_argument("--transport", choices=[*TRANSPORTS, "all"], default="all")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=SoakSettings.concurrency)
    p.add_argument("--out", type=Path, default=HERE / "RESULTS_soak.md")
    p.add_argument("--json", type=Path, help="also write the raw results as JSON")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve(args.seed)
        return 0
    cfg = SoakSettings(concurrency=args.concurrency)
    kinds = TRANSPORTS if args.transport == "all" else (args.transport,)
    results = []
    for kind in kinds:
        def progress(n: int, kind: str = kind) -> None:
            print(f"  {kind}: {n:,} requests", flush=True)

        result = soak_one(kind, args.requests, args.seed, cfg, progress)
        results.append(result)
        print(
            f"{kind}: {result.requests:,} requests in {result.seconds:.1f} s "
            f"({result.throughput:,.0f}/s); {_counts(result.outcomes)}",
            flush=True,
        )
        for failure in result.failures():
            print(f"  FAIL {failure}", flush=True)
    write_report(results, args.out, args.seed, cfg)
    if args.json:
        args.json.write_text(json.dumps([r.as_json() for r in results], indent=1, default=str))
    print(f"wrote {args.out}")
    return 1 if any(r.failures() for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
