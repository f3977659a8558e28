"""``httpx-resilience bench``: a quick side-by-side against plain httpx on this machine.

A minimal upstream (:mod:`._bench_server`) runs in its own process on
loopback; the clients run here, one after another, in a few interleaved
rounds: plain ``httpx.AsyncClient``, the same client over
:class:`~httpx_resilience.ResilientTransport` (retries, budget, deadline,
request id, timeouts), and :class:`~httpx_resilience.AsyncHTTPClient` with
its default transport (``"auto"``: our HTTP/1.1 client when httptools is
installed). For each: requests per second and CPU microseconds per request
(this process only), sequentially and with requests in flight, as medians
and as ratios to plain httpx. With matplotlib (the ``plots`` extra) two PNG
plots are written. This is a first look; ``bench/`` in the repository has the
careful benchmarks.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ..client import AsyncHTTPClient
from ..pipeline import ResilientTransport

__all__ = ["CLIENTS", "Measurement", "run_bench"]

CLIENTS = ("plain httpx", "httpx + ResilientTransport", "AsyncHTTPClient")
PLOTS_HINT = "pip install 'httpx-resilience[plots]'"


@dataclass
class Measurement:
    """One client at one concurrency: every round's figures."""

    client: str
    concurrency: int
    rps: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)

    @property
    def median_rps(self) -> float:
        return statistics.median(self.rps)

    @property
    def median_cpu_us(self) -> float:
        return statistics.median(self.cpu_us)


Send = Callable[[], Awaitable[object]]


async def _round(send: Send, requests: int, concurrency: int) -> tuple[float, float]:
    async def worker(n: int) -> None:
        for _ in range(n):
            await send()

    share = [requests // concurrency + (i < requests % concurrency) for i in range(concurrency)]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(n) for n in share))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return requests / wall, cpu / requests * 1e6


async def _measure(
    url: str, requests: int, levels: list[int], rounds: int
) -> list[Measurement]:
    limits = httpx.Limits(max_connections=max(levels), max_keepalive_connections=max(levels))
    plain = httpx.AsyncClient(limits=limits)
    wrapped = httpx.AsyncClient(
        transport=ResilientTransport(httpx.AsyncHTTPTransport(limits=limits))
    )
    ours = AsyncHTTPClient()
    sends: dict[str, Send] = {
        CLIENTS[0]: lambda: plain.get(url),
        CLIENTS[1]: lambda: wrapped.get(url),
        CLIENTS[2]: lambda: ours.get(url),
    }
    results = {(c, n): Measurement(c, n) for n in levels for c in CLIENTS}
    try:
        for send in sends.values():  # warm up: connections, caches
            await _round(send, min(200, requests), max(levels))
        for _ in range(rounds):
            for n in levels:
                for name, send in sends.items():  # interleaved: drift hits every client alike
                    rps, cpu = await _round(send, requests, n)
                    results[(name, n)].rps.append(rps)
                    results[(name, n)].cpu_us.append(cpu)
    finally:
        await plain.aclose()
        await wrapped.aclose()
        await ours.aclose()
    return list(results.values())


def _start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "httpx_resilience.cli._bench_server"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    port = proc.stdout.readline().strip()
    if not port.isdigit():
        proc.kill()
        raise RuntimeError("the bench server did not start")
    return proc, f"http://127.0.0.1:{port}/bench"


def _table(results: list[Measurement]) -> list[str]:
    base = {m.concurrency: m for m in results if m.client == CLIENTS[0]}
    lines = [
        f"{'client':<28} {'in flight':>9} {'req/s':>9} {'× httpx':>8} {'CPU µs/req':>11} "
        f"{'× httpx':>8}"
    ]
    for m in sorted(results, key=lambda m: (m.concurrency, CLIENTS.index(m.client))):
        b = base[m.concurrency]
        lines.append(
            f"{m.client:<28} {m.concurrency:>9} {m.median_rps:>9.0f} "
            f"{m.median_rps / b.median_rps:>7.2f}× {m.median_cpu_us:>11.0f} "
            f"{m.median_cpu_us / b.median_cpu_us:>7.2f}×"
        )
    return lines


def _plots(results: list[Measurement], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    levels = sorted({m.concurrency for m in results})
    written = []
    for key, label, name in (
        ("median_rps", "requests per second (higher is better)", "bench-throughput.png"),
        ("median_cpu_us", "CPU µs per request (lower is better)", "bench-cpu.png"),
    ):
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
        width = 0.8 / len(CLIENTS)
        for i, client in enumerate(CLIENTS):
            values = [
                getattr(next(m for m in results if m.client == client and m.concurrency == n), key)
                for n in levels
            ]
            xs = [j + i * width for j in range(len(levels))]
            bars = ax.bar(xs, values, width, label=client)
            ax.bar_label(bars, fmt="%.0f", fontsize=8)
        ax.set_xticks([j + width * (len(CLIENTS) - 1) / 2 for j in range(len(levels))])
        ax.set_xticklabels([f"{n} in flight" for n in levels])
        ax.set_ylabel(label)
        ax.set_title(f"httpx-resilience vs plain httpx: {label.split(' (')[0]}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = folder / name
        fig.savefig(path)
        plt.close(fig)
        written.append(path.resolve())
    return written


def run_bench(
    requests: int = 2000, levels: tuple[int, ...] = (1, 32), rounds: int = 3,
    plots: str | None = ".",
) -> int:
    """Run the bench and print the table; returns the exit code."""
    if requests < 1 or rounds < 1 or not levels or min(levels) < 1:
        print("bench: -n, --rounds and each -c must be >= 1", file=sys.stderr)
        return 2
    proc, url = _start_server()
    try:
        print(f"{requests} GETs per client and round, {rounds} interleaved rounds, "
              f"against a minimal server on loopback (its own process)…", flush=True)
        results = asyncio.run(_measure(url, requests, list(levels), rounds))
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=10)
    print("\n".join(_table(results)))
    if plots is not None:
        try:
            for path in _plots(results, Path(plots)):
                print(f"plot: {path}")
        except ImportError:
            print(f"(no plots: matplotlib is not installed; {PLOTS_HINT})")
    return 0
