"""The demo's run: a scenario's faults, plain httpx and ours side by side, every request recorded.

Both clients send the same open-loop traffic at the same time (request *i*
starts at ``i / rate`` seconds, at most ``concurrency`` in flight each) to
their own routes of one :class:`~httpx_resilience.testing.ChaosServer`, which
answers both with the same seeded faults. A scenario may change the faults
mid-run (the outage scenario takes the upstream down for a while); every
fifth request is a POST carrying a once-only id, so the server can tell
whether anything was sent twice. What comes back is a :class:`DemoRun`: one
:class:`RequestRecord` per request, the breaker's transitions and the
limiter's waits over time, and the server's own counts.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from ..client import AsyncHTTPClient
from ..clock import SYSTEM_CLOCK
from ..config import ClientConfig
from ..observe.events import AttemptStarted, Event, LimiterWaited
from ..pipeline import ResilienceInfo
from ..policies.breaker import BreakerTransition, CircuitBreaker
from ..policies.fallback import Fallback
from ..policies.hedging import HedgingPolicy
from ..policies.limiter import TokenBucketRateLimiter
from ..testing.chaos import ONCE_HEADER, ChaosServer
from ._scenarios import SCENARIOS, Phase, Scenario

FALLBACK = "served by the fallback"
"""The outcome of a request the fallback answered (the upstream did not)."""

STALE = Fallback(httpx.Response(200, json={"items": [], "stale": True}))
"""The outage scenario's fallback: an empty, stale answer for GETs."""

__all__ = [
    "FALLBACK", "SCENARIOS", "ClientRun", "DemoRun", "Phase", "RequestRecord", "Scenario", "run",
]


@dataclass(frozen=True)
class RequestRecord:
    """One logical request: when it ran, how it ended, what it cost."""

    started: float
    ended: float
    ok: bool
    outcome: str
    method: str

    @property
    def latency(self) -> float:
        return self.ended - self.started


@dataclass
class ClientRun:
    """What one client did over the run (times in seconds from its start)."""

    name: str
    records: list[RequestRecord] = field(default_factory=list)
    upstream: int = 0
    duplicates: int = 0
    attempts_at: list[float] = field(default_factory=list)
    breaker: list[tuple[float, str]] = field(default_factory=list)
    limiter_waits: list[tuple[float, float]] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.records)

    @property
    def succeeded(self) -> int:
        return sum(r.ok for r in self.records)

    @property
    def success_rate(self) -> float:
        return self.succeeded / len(self.records) if self.records else 0.0

    @property
    def served_by_fallback(self) -> int:
        return sum(r.outcome == FALLBACK for r in self.records)

    @property
    def upstream_success_rate(self) -> float:
        """Requests the upstream itself answered well (the fallback's answers left out)."""
        if not self.records:
            return 0.0
        return (self.succeeded - self.served_by_fallback) / len(self.records)

    @property
    def amplification(self) -> float:
        return self.upstream / len(self.records) if self.records else 0.0

    def percentile(self, p: float) -> float:
        """The ``p`` quantile (0..1) of the latencies, nearest rank."""
        data = sorted(r.latency for r in self.records)
        if not data:
            return 0.0
        return data[min(len(data) - 1, max(0, round(p * len(data)) - 1))]

    def failures(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.records:
            if not r.ok:
                out[r.outcome] = out.get(r.outcome, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


@dataclass
class DemoRun:
    """The whole run: the scenario, its phases in seconds, both clients."""

    scenario: Scenario
    seed: int
    duration: float
    phases: list[tuple[float, str]]
    plain: ClientRun
    ours: ClientRun
    wall_time: float = 0.0


Progress = Callable[[str, RequestRecord], None]


class _Driver:
    """Sends one client's traffic on the shared schedule and records each request."""

    def __init__(
        self, run: ClientRun, t0: float, rate: float, concurrency: int, post_every: int
    ) -> None:
        self.run, self.t0, self.rate, self.post_every = run, t0, rate, post_every
        self.sem = asyncio.Semaphore(concurrency)

    def now(self) -> float:
        return time.perf_counter() - self.t0

    async def drive(
        self, n: int, send: Callable[[str], Awaitable[tuple[bool, str]]], tick: Progress
    ) -> None:
        every = self.post_every

        async def one(i: int) -> None:
            # Open loop: the latency counts from the planned start, so time spent
            # waiting for a free slot behind slow requests is not hidden.
            started = i / self.rate
            await SYSTEM_CLOCK.sleep(started - self.now())
            method = "POST" if every and i % every == every - 1 else "GET"
            async with self.sem:
                try:
                    ok, outcome = await send(method)
                except Exception as exc:  # every failure is a data point of the demo
                    ok, outcome = False, type(exc).__name__
                record = RequestRecord(started, self.now(), ok, outcome, method)
            self.run.records.append(record)
            tick(self.run.name, record)

        await asyncio.gather(*(one(i) for i in range(n)))


def _classify(response: httpx.Response) -> tuple[bool, str]:
    if response.status_code >= 400:
        return False, f"HTTP {response.status_code}"
    return True, "ok"


class _Upstream:
    """The four routes (GET and POST for each client) and their phase changes."""

    def __init__(self, server: ChaosServer, scenario: Scenario, seed: int) -> None:
        self.server, self.scenario, self.seed = server, scenario, seed

    def paths(self, client: str) -> tuple[str, str]:
        return f"/{client}/items", f"/{client}/orders"

    def apply(self, index: int) -> None:
        phase = self.scenario.phases[index]
        for client in ("plain", "ours"):
            for k, path in enumerate(self.paths(client)):
                mix = phase.mix(self.seed * 10 + k) if phase.mix else None
                self.server.route(path, mix=mix, rate_limit=phase.rate_limit)

    def upstream(self, client: str) -> int:
        return sum(self.server.count(p) for p in self.paths(client))

    def duplicates(self, client: str) -> int:
        return sum(n - 1 for once, n in self.server.duplicates().items() if once.startswith(client))

    async def schedule(self, t0: float, duration: float) -> None:
        for index, phase in enumerate(self.scenario.phases[1:], start=1):
            await SYSTEM_CLOCK.sleep(t0 + phase.start * duration - time.perf_counter())
            self.apply(index)


def _ours_client(
    server: ChaosServer, scenario: Scenario, run: ClientRun, t0: float
) -> AsyncHTTPClient:
    def observe(event: Event) -> None:
        at = time.perf_counter() - t0
        if isinstance(event, AttemptStarted):
            run.attempts_at.append(at)
        elif isinstance(event, LimiterWaited):
            run.limiter_waits.append((at, event.waited))

    config = ClientConfig(
        timeout=0.5,
        total_timeout=6.0,
        retry_attempts=3,
        retry_backoff_factor=0.05,
        retry_max_delay=2.0,
    )
    limiter = (
        TokenBucketRateLimiter(rate=scenario.limiter_rate, burst=5, max_wait=5.0)
        if scenario.limiter_rate
        else None
    )
    hedging = HedgingPolicy(scenario.hedging_delay) if scenario.hedging_delay else None

    def transitioned(change: BreakerTransition) -> None:
        run.breaker.append((time.perf_counter() - t0, change.new.value))

    # Open on a failure rate, as a production breaker should: a third of calls
    # failing is the flaky upstream retries are for, not an outage.
    breaker = CircuitBreaker(
        failure_threshold=25,
        failure_rate_threshold=0.6,
        window_size=40,
        minimum_calls=20,
        recovery_timeout=0.25,
        half_open_max_calls=2,
        name="demo",
        listeners=[transitioned],
    )
    return AsyncHTTPClient(
        server.url,
        config=config,
        circuit_breaker=breaker,
        rate_limiter=limiter,
        hedging=hedging,
        service="demo",
        observers=[observe],
    )


async def run(
    scenario: Scenario,
    requests: int = 300,
    concurrency: int = 20,
    seed: int = 7,
    duration: float = 5.0,
    tick: Progress | None = None,
    plain: ClientRun | None = None,
    ours: ClientRun | None = None,
) -> DemoRun:
    """Run both clients through ``scenario`` at once; ``requests`` each over ``duration`` s.

    ``tick`` is called after each request; ``plain`` and ``ours``, when given,
    are filled as the run goes (a live view reads them).
    """
    notify: Progress = tick or (lambda _name, _record: None)
    plain = plain if plain is not None else ClientRun("plain")
    ours = ours if ours is not None else ClientRun("ours")
    with ChaosServer() as server:
        upstream = _Upstream(server, scenario, seed)
        upstream.apply(0)
        t0 = time.perf_counter()
        rate = requests / duration
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=2.0) as raw,
            _ours_client(server, scenario, ours, t0) as client,
        ):

            async def send_plain(method: str) -> tuple[bool, str]:
                items, orders = upstream.paths("plain")
                if method == "POST":
                    once = {ONCE_HEADER: f"plain-{uuid.uuid4()}"}
                    return _classify(await raw.post(orders, json={"sku": "A-1"}, headers=once))
                return _classify(await raw.get(items))

            # A GET that finally fails gets the last known answer, marked stale; a
            # POST never does (its caller must know the order was not placed).
            stale = {"resilience": {"fallback": STALE}} if scenario.fallback else None

            async def send_ours(method: str) -> tuple[bool, str]:
                items, orders = upstream.paths("ours")
                if method == "POST":
                    once = {ONCE_HEADER: f"ours-{uuid.uuid4()}"}
                    r = await client.post(orders, json={"sku": "A-1"}, headers=once)
                else:
                    r = await client.get(items, extensions=stale)
                info = r.extensions.get("resilience")
                if isinstance(info, ResilienceInfo) and info.fallback:
                    return True, FALLBACK
                return (True, "ok") if r.status_code < 400 else (False, f"HTTP {r.status_code}")

            every = scenario.post_every
            phases = asyncio.ensure_future(upstream.schedule(t0, duration))
            try:
                drivers = (_Driver(r, t0, rate, concurrency, every) for r in (plain, ours))
                await asyncio.gather(
                    next(drivers).drive(requests, send_plain, notify),
                    next(drivers).drive(requests, send_ours, notify),
                )
            finally:
                phases.cancel()
        wall = time.perf_counter() - t0
        for result, name in ((plain, "plain"), (ours, "ours")):
            result.upstream = upstream.upstream(name)
            result.duplicates = upstream.duplicates(name)
            result.records.sort(key=lambda r: r.started)
    marks = [(p.start * duration, p.label) for p in scenario.phases]
    return DemoRun(scenario, seed, duration, marks, plain, ours, wall)
