"""Benchmark: CPU per request of raw httpx vs httpx + ResilientTransport vs tenacity vs
httpx-retries against nginx on loopback, plus retry amplification under a full outage.

Server and client are pinned to different cores; every client run is a fresh
process; variants are interleaved round by round and medians reported with
min–max. Results go to bench/RESULTS_pipeline.md.

Usage: python bench/run.py [--rounds 5] [--requests 2000] [--skip-outage | --outage-only]

The outage part runs a short burst of 200 logical requests and a run of 1,000;
``--outage-only`` re-runs just that part (no nginx) and keeps the throughput
rows of ``bench/results.json``.
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


OUTAGE_SIZES = (200, 1000)
"""Logical requests per outage run: a short burst, and a longer run."""


async def outage(logical: int = 1000, concurrency: int = 50) -> dict[str, dict[str, float]]:
    """Every request fails with 503: how many requests reach the upstream per logical request?

    Each variant gets a fresh transport (so a fresh retry budget) and its own route.
    """
    from httpx_resilience import ResilientTransport, RetryBudget, RetryPolicy
    from httpx_resilience.testing import ChaosServer

    quick = RetryPolicy(max_attempts=4, backoff_factor=0.001, max_delay=0.002)
    variants: dict[str, Any] = {
        "httpx-resilience, default budget (20 % + 10/s)": lambda: ResilientTransport(retry=quick),
        "httpx-resilience, budget 20 % + 1/s": lambda: ResilientTransport(
            retry=quick, retry_budget=RetryBudget(0.2, 1.0, 10.0)
        ),
        "naive: 3 retries, no budget": lambda: ResilientTransport(retry=quick, retry_budget=False),
    }
    try:
        from httpx_retries import Retry, RetryTransport

        variants["httpx-retries (total=3)"] = lambda: RetryTransport(
            transport=httpx.AsyncHTTPTransport(),
            retry=Retry(total=3, backoff_factor=0.001, max_backoff_wait=0.002),
        )
    except ImportError:
        print("outage: httpx-retries is not installed; its row is left out", flush=True)
    out: dict[str, dict[str, float]] = {}
    with ChaosServer() as server:
        for i, (name, make) in enumerate(variants.items()):
            path = f"/outage-{logical}-{i}"
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
            print(f"outage {logical:>5}: {name:<48} {upstream / logical:.2f}× "
                  f"({upstream} upstream, {took:.2f} s)", flush=True)
    return out


async def outages() -> dict[str, dict[str, dict[str, float]]]:
    """The outage run for each of :data:`OUTAGE_SIZES`, keyed by the size (as a string)."""
    return {str(n): await outage(n) for n in OUTAGE_SIZES}


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
        runs = data["outage"]
        if "logical" in next(iter(runs.values())):  # results.json from before the 200-burst row
            runs = {str(int(next(iter(runs.values()))["logical"])): runs}
        sizes = sorted(runs, key=int)
        when = data.get("outage_date")
        lines += [
            "",
            "## Upstream load under a full outage (every response 503)",
            "",
            "Logical GETs, 50 in flight, up to 4 attempts each (1 ms backoff), against the",
            "ChaosServer; each client starts with a fresh retry budget. "
            + " and ".join(f"{int(n):,}" for n in sizes) + " requests."
            + (f" Measured {when} with `--outage-only`; the rows above are from the"
               f" run of {data['machine']['date']}." if when else ""),
            "",
            "| client | " + " | ".join(
                f"{int(n):,} requests: upstream | per logical request | seconds" for n in sizes
            ) + " |",
            "|---|" + "---|---|---|" * len(sizes),
        ]
        for name in runs[sizes[-1]]:
            cells = []
            for n in sizes:
                o = runs[n].get(name)
                cells += ["—", "—", "—"] if o is None else [
                    f"{o['upstream']:.0f}", f"{o['amplification']:.2f}×", f"{o['seconds']:.2f}"
                ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "A budget allows `ratio` × the requests plus its floor: one second's worth at once",
            "and `min_per_second` more per second, so the default's extra load is about",
            "20 % + 10 + 10 × seconds retries (the seconds are long on a loaded machine).",
        ]
    (HERE / "RESULTS_pipeline.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--skip-outage", action="store_true")
    p.add_argument(
        "--outage-only", action="store_true",
        help="re-run only the outage rows (no nginx needed); the throughput rows are "
             "kept from bench/results.json",
    )
    a = p.parse_args()
    if a.outage_only:
        data: dict[str, Any] = json.loads((HERE / "results.json").read_text())
        data["outage"] = asyncio.run(outages())
        data["outage_date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        data["outage_machine"] = machine()
        (HERE / "results.json").write_text(json.dumps(data, indent=1))
        write_report(data, a.rounds, a.requests)
        print((HERE / "RESULTS_pipeline.md").read_text())
        return
    data = {"machine": machine()}
    data["throughput"] = throughput(a.rounds, a.requests)
    # JSON keys are strings; normalise before writing the report.
    data["throughput"]["runs"] = {
        v: {str(c): runs for c, runs in per.items()} for v, per in data["throughput"]["runs"].items()
    }
    if not a.skip_outage:
        data["outage"] = asyncio.run(outages())
    (HERE / "results.json").write_text(json.dumps(data, indent=1))
    write_report(data, a.rounds, a.requests)
    print((HERE / "RESULTS_pipeline.md").read_text())


if __name__ == "__main__":
    main()
