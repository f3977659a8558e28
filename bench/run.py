"""Benchmark: CPU per request of raw httpx vs httpx + ResilientTransport vs tenacity vs
httpx-retries against nginx on loopback, plus retry amplification under a full outage.

Server and client are pinned to different cores; every client run is a fresh
process; variants are interleaved round by round and medians reported with
min–max. Results go to bench/RESULTS_pipeline.md.

Usage: python bench/run.py [--rounds 5] [--requests 2000] [--skip-outage]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
VARIANTS = ("httpx", "resilient", "tenacity", "httpx_retries")
LABELS = {
    "httpx": "raw httpx.AsyncClient",
    "resilient": "httpx + ResilientTransport (retry+budget, timeouts, deadline, request id)",
    "tenacity": "httpx under tenacity.AsyncRetrying",
    "httpx_retries": "httpx + httpx-retries RetryTransport",
}


from _nginx import Server, cpu_model, pin  # noqa: E402  (bench/ is the script's folder)


def run_client(variant: str, url: str, requests: int, concurrency: int) -> dict[str, Any]:
    cmd = [*pin(0), sys.executable, str(HERE / "client.py"), variant, url,
           "--requests", str(requests), "--concurrency", str(concurrency)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def throughput(rounds: int, requests: int) -> dict[str, Any]:
    server = Server()
    server.start()
    results: dict[str, dict[int, list[dict[str, Any]]]] = {v: {1: [], 64: []} for v in VARIANTS}
    try:
        for r in range(rounds):
            for concurrency in (1, 64):
                order = VARIANTS if r % 2 == 0 else tuple(reversed(VARIANTS))
                for variant in order:
                    res = run_client(variant, server.url, requests, concurrency)
                    results[variant][concurrency].append(res)
                    print(
                        f"round {r + 1}/{rounds} c={concurrency:<2} {variant:<14} "
                        f"{res['requests'] / res['wall_s']:8.0f} req/s "
                        f"{res['cpu_s'] / res['requests'] * 1e6:7.0f} µs CPU/req errors={res['errors']}",
                        flush=True,
                    )
    finally:
        server.stop()
    return {"server": server.kind, "runs": results}


async def outage(logical: int = 1000, concurrency: int = 50) -> dict[str, dict[str, float]]:
    """Every request fails with 503: how many requests reach the upstream per logical request?"""
    from httpx_retries import Retry, RetryTransport

    from httpx_resilience import ResilientTransport, RetryBudget, RetryPolicy
    from httpx_resilience.testing import ChaosServer

    quick = RetryPolicy(max_attempts=4, backoff_factor=0.001, max_delay=0.002)
    variants: dict[str, Any] = {
        "httpx-resilience, default budget (20 % + 10/s)": lambda: ResilientTransport(retry=quick),
        "httpx-resilience, budget 20 % + 1/s": lambda: ResilientTransport(
            retry=quick, retry_budget=RetryBudget(0.2, 1.0, 10.0)
        ),
        "naive: 3 retries, no budget": lambda: ResilientTransport(retry=quick, retry_budget=False),
        "httpx-retries (total=3)": lambda: RetryTransport(
            transport=httpx.AsyncHTTPTransport(),
            retry=Retry(total=3, backoff_factor=0.001, max_backoff_wait=0.002),
        ),
    }
    out: dict[str, dict[str, float]] = {}
    with ChaosServer() as server:
        for i, (name, make) in enumerate(variants.items()):
            path = f"/outage-{i}"
            server.route(path, status=503)
            sem = asyncio.Semaphore(concurrency)
            async with httpx.AsyncClient(transport=make(), base_url=server.url) as client:

                async def one(client: httpx.AsyncClient, path: str, sem: asyncio.Semaphore) -> None:
                    async with sem:
                        with contextlib.suppress(httpx.HTTPError):
                            await client.get(path)

                t0 = time.perf_counter()
                await asyncio.gather(*(one(client, path, sem) for _ in range(logical)))
                took = time.perf_counter() - t0
            upstream = server.count(path)
            out[name] = {"logical": logical, "upstream": upstream,
                         "amplification": upstream / logical, "seconds": took}
            print(f"outage: {name:<48} {upstream / logical:.2f}× ({upstream} upstream)", flush=True)
    return out


def machine() -> dict[str, str]:
    cpu = cpu_model()
    import httpx_resilience

    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "httpx": httpx.__version__,
        "httpx_resilience": httpx_resilience.__version__,
        "os": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def med(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ({min(values):.0f}–{max(values):.0f})"


def write_report(data: dict[str, Any], rounds: int, requests: int) -> None:
    m = data["machine"]
    lines = [
        "# Benchmark results",
        "",
        "Written by `bench/run.py`. Server and client pinned to different cores; every client",
        "run is a fresh process; variants interleaved round by round; medians with min–max.",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['os']}",
        f"- Python {m['python']}, httpx {m['httpx']}, httpx-resilience {m['httpx_resilience']}; {m['date']}",
        f"- Server: {data['throughput']['server']}, small JSON body, keep-alive",
        f"- {rounds} rounds × {requests} requests per client run (after 200 warm-up requests)",
        "",
        "## CPU per request (µs) and throughput",
        "",
        "| client | c | CPU µs/req, median (min–max) | ratio to raw httpx | req/s, median (min–max) |",
        "|---|---|---|---|---|",
    ]
    runs = data["throughput"]["runs"]
    for c in ("1", "64"):
        base = statistics.median(r["cpu_s"] / r["requests"] * 1e6 for r in runs["httpx"][c])
        for v in VARIANTS:
            cpu = [r["cpu_s"] / r["requests"] * 1e6 for r in runs[v][c]]
            rps = [r["requests"] / r["wall_s"] for r in runs[v][c]]
            lines.append(
                f"| {LABELS[v]} | {c} | {med(cpu)} | {statistics.median(cpu) / base:.3f}× | {med(rps)} |"
            )
    if data.get("outage"):
        lines += [
            "",
            "## Upstream load under a full outage (every response 503)",
            "",
            "1,000 logical GETs, 50 in flight, up to 4 attempts each, against the ChaosServer.",
            "",
            "| client | upstream requests | per logical request |",
            "|---|---|---|",
        ]
        for name, o in data["outage"].items():
            lines.append(f"| {name} | {o['upstream']:.0f} | {o['amplification']:.2f}× |")
    (HERE / "RESULTS_pipeline.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--skip-outage", action="store_true")
    a = p.parse_args()
    data: dict[str, Any] = {"machine": machine()}
    data["throughput"] = throughput(a.rounds, a.requests)
    # JSON keys are strings; normalise before writing the report.
    data["throughput"]["runs"] = {
        v: {str(c): runs for c, runs in per.items()} for v, per in data["throughput"]["runs"].items()
    }
    if not a.skip_outage:
        data["outage"] = asyncio.run(outage())
    (HERE / "results.json").write_text(json.dumps(data, indent=1))
    write_report(data, a.rounds, a.requests)
    print((HERE / "RESULTS_pipeline.md").read_text())


if __name__ == "__main__":
    main()
