"""``httpx-resilience demo``: the same requests through plain httpx and through ours.

An embedded :class:`~httpx_resilience.testing.ChaosServer` serves two identical
routes with the same seeded fault mix (5xx, resets, hangs, slow answers, 429
with ``Retry-After``). Each client sends the same number of GETs; the table
compares success rate, upstream load and latency.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from ..client import AsyncHTTPClient
from ..config import ClientConfig
from ..exceptions import HTTPClientError
from ..testing.chaos import ChaosServer, FaultMix

__all__ = ["DemoResult", "demo_mix", "run_demo", "run_demo_async"]


def demo_mix(seed: int) -> FaultMix:
    """The fault mix of the demo: about a third of first attempts go wrong."""
    return FaultMix(
        error_500=0.06,
        error_502=0.05,
        error_503=0.10,
        reset=0.05,
        hang=0.02,
        slow=0.04,
        slow_latency=0.3,
        rate_limited=0.03,
        retry_after=0.2,
        seed=seed,
    )


@dataclass
class DemoResult:
    """What one client achieved."""

    client: str
    requests: int
    succeeded: int = 0
    upstream_requests: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    wall_time: float = 0.0

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.requests if self.requests else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        data = sorted(self.latencies)
        return data[min(len(data) - 1, max(0, round(p * len(data)) - 1))]

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("latencies")
        out["errors"] = dict(self.errors)
        out["success_rate"] = round(self.success_rate, 4)
        out["p50_ms"] = round(self.percentile(0.50) * 1000, 1)
        out["p99_ms"] = round(self.percentile(0.99) * 1000, 1)
        out["amplification"] = round(self.upstream_requests / self.requests, 3)
        return out


async def _drive(
    result: DemoResult,
    call: Callable[[], Awaitable[bool]],
    concurrency: int,
    tick: Callable[[], None],
) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            t0 = time.perf_counter()
            try:
                ok = await call()
            except Exception as exc:
                ok = False
                result.errors[type(exc).__name__] += 1
            result.latencies.append(time.perf_counter() - t0)
            if ok:
                result.succeeded += 1
            tick()

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(result.requests)))
    result.wall_time = time.perf_counter() - start


async def run_demo_async(
    requests: int = 300,
    concurrency: int = 20,
    seed: int = 7,
    tick: Callable[[str], None] | None = None,
) -> tuple[DemoResult, DemoResult]:
    """Run both clients against a fresh chaos server; returns (plain httpx, httpx-resilience)."""
    notify = tick or (lambda _name: None)
    with ChaosServer() as server:
        server.route("/plain/items", mix=demo_mix(seed))
        server.route("/resilient/items", mix=demo_mix(seed))

        plain = DemoResult("plain httpx", requests)
        async with httpx.AsyncClient(base_url=server.url, timeout=2.0) as raw:

            async def plain_call() -> bool:
                r = await raw.get("/plain/items")
                if r.status_code >= 400:
                    plain.errors[f"HTTP {r.status_code}"] += 1
                    return False
                return True

            await _drive(plain, plain_call, concurrency, lambda: notify("plain"))
        plain.upstream_requests = server.count("/plain/items")

        ours = DemoResult("httpx-resilience", requests)
        config = ClientConfig(
            timeout=0.5,
            total_timeout=6.0,
            retry_attempts=4,
            retry_backoff_factor=0.05,
            retry_max_delay=2.0,
        )
        async with AsyncHTTPClient(server.url, config=config, service="demo") as client:

            async def resilient_call() -> bool:
                try:
                    r = await client.get("/resilient/items")
                except HTTPClientError as exc:
                    ours.errors[type(exc).__name__] += 1
                    return False
                if r.status_code >= 400:
                    ours.errors[f"HTTP {r.status_code}"] += 1
                    return False
                return True

            await _drive(ours, resilient_call, concurrency, lambda: notify("ours"))
        ours.upstream_requests = server.count("/resilient/items")
    return plain, ours


def run_demo(
    requests: int = 300,
    concurrency: int = 20,
    seed: int = 7,
    as_json: bool = False,
    progress: bool = True,
) -> int:
    """Run the demo and print the comparison; exit code 0 when ours did at least as well."""
    if requests < 1 or concurrency < 1:
        print("demo: --requests and --concurrency must be >= 1", file=sys.stderr)
        return 2
    if as_json:
        plain, ours = asyncio.run(run_demo_async(requests, concurrency, seed))
        print(json.dumps({"plain": plain.summary(), "resilient": ours.summary()}, indent=2))
        return 0 if ours.success_rate >= plain.success_rate else 1
    try:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
        from rich.table import Table
    except ImportError:
        print(f"The demo's display needs rich: {INSTALL_HINT} (or use --json)", file=sys.stderr)
        return 2

    console = Console()
    console.print(
        f"[bold]httpx-resilience demo[/]: {requests} GETs per client, {concurrency} in flight, "
        "against an embedded chaos server (5xx, resets, hangs, slow answers, 429)."
    )
    with Progress(
        TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
        console=console, disable=not progress, transient=False,
    ) as bar:
        tasks = {
            "plain": bar.add_task("plain httpx", total=requests),
            "ours": bar.add_task("httpx-resilience", total=requests),
        }
        plain, ours = asyncio.run(
            run_demo_async(requests, concurrency, seed, lambda name: bar.advance(tasks[name]))
        )

    table = Table(title="Same requests, same faults")
    for col in ("client", "success", "upstream", "p50", "p99", "wall"):
        table.add_column(col, justify="left" if col == "client" else "right", no_wrap=True)
    for r in (plain, ours):
        table.add_row(
            r.client,
            f"{r.success_rate:.1%}",
            f"{r.upstream_requests} ({r.upstream_requests / r.requests:.2f}×)",
            f"{r.percentile(0.5) * 1000:.0f} ms",
            f"{r.percentile(0.99) * 1000:.0f} ms",
            f"{r.wall_time:.1f} s",
        )
    console.print(table)
    for r in (plain, ours):
        failures = ", ".join(f"{k} ×{v}" for k, v in r.errors.most_common(4)) or "none"
        console.print(f"  {r.client} failures: {failures}")
    console.print(
        f"httpx-resilience turned {plain.success_rate:.1%} into [bold green]"
        f"{ours.success_rate:.1%}[/] success, sending {ours.upstream_requests} requests "
        f"upstream for {requests} logical ones."
    )
    return 0 if ours.success_rate >= plain.success_rate else 1


from . import INSTALL_HINT  # noqa: E402  (import cycle: the package imports us lazily)
