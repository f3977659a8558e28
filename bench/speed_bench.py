"""Speed benchmark: plain httpx vs plain aiohttp vs httpx over aiohttp vs the resilient pipeline.

Against nginx on 127.0.0.1 (a temporary config serving a small JSON body with
keep-alive; stopped by its PID), or the ChaosServer in a subprocess when nginx
is missing. Server and client are pinned to different cores with ``taskset``;
every client run is a fresh process; variants are interleaved round by round
(the order reversed every other round); medians with min–max are reported.

Client variants (each at concurrency 1 and 64, same pool size and timeouts):

- ``aiohttp``          plain ``aiohttp.ClientSession``
- ``httpx``            plain ``httpx.AsyncClient``
- ``httpx_ka30``       the same with ``keepalive_expiry=30`` (``ClientConfig``'s default; every
                       other variant uses httpx's 5 s)
- ``httpx_aiohttp``    ``httpx.AsyncClient`` over the ``httpx-aiohttp`` package (if installed)
- ``httpx_native``     ``httpx.AsyncClient`` over our ``NativeTransport``
- ``httpx_ours``       ``httpx.AsyncClient`` over our ``AiohttpTransport``
- ``resilient``        ``httpx.AsyncClient(transport=ResilientTransport())`` (default httpx inner)
- ``resilient_native`` ``ResilientTransport(NativeTransport(...))`` under ``httpx.AsyncClient``
- ``resilient_ours``   ``ResilientTransport(AiohttpTransport(...))`` under ``httpx.AsyncClient``
- ``client_native``    ``AsyncHTTPClient`` with every policy on (retry + budget,
                       ``CircuitBreaker()``, ``TokenBucketRateLimiter(rate=1e6, burst=10_000)``,
                       request id, ``total_timeout``) over ``NativeTransport``: what
                       ``transport="auto"`` picks with the ``fast`` extra
- ``client_full``      the same over ``AiohttpTransport``
- ``client_httpx``     the same over httpx's own transport (``transport="httpx"``)
- ``<variant>@uvloop`` the same under uvloop (if installed), for the fastest variants

Then the pipeline's own no-failure cost, in one process without sockets:
``ResilientTransport`` over an in-memory transport that returns a prebuilt
``httpx.Response`` vs that transport alone, µs per ``handle_async_request``;
and tenacity's per-call cost around a no-op coroutine for comparison.

Writes ``bench/RESULTS_speed.md``.

Usage::

    python bench/speed_bench.py [--rounds 5] [--requests 3000] [--skip-micro]
    python bench/speed_bench.py --client VARIANT URL --requests N --concurrency C   (one run)
    python bench/speed_bench.py --micro                                             (micro only)
    python bench/speed_bench.py --src before=/tmp/before/src --src after=src        (+ trees compared)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BODY = '{"ok":true,"items":[{"id":1,"name":"a"},{"id":2,"name":"b"}]}'
CONCURRENCY = (1, 64)
# httpx's default keep-alive expiry, used by every variant (ClientConfig's default was 30 s,
# and httpcore's pool is ~2.4x slower at c=64 with it: see the report).
KEEPALIVE_EXPIRY = 5.0
BASE_VARIANTS = (
    "aiohttp",
    "httpx",
    "httpx_ka30",
    "httpx_aiohttp",
    "httpx_native",
    "httpx_ours",
    "resilient",
    "resilient_native",
    "resilient_ours",
    "client_native",
    "client_full",
    "client_httpx",
)
UVLOOP_VARIANTS = ("aiohttp@uvloop", "httpx_native@uvloop", "client_native@uvloop", "client_full@uvloop")
LABELS = {
    "aiohttp": "plain aiohttp.ClientSession",
    "httpx": "plain httpx.AsyncClient",
    "httpx_ka30": "plain httpx.AsyncClient, keepalive_expiry=30 (ClientConfig's former default)",
    "httpx_aiohttp": "httpx.AsyncClient + httpx-aiohttp transport",
    "httpx_native": "httpx.AsyncClient + our NativeTransport",
    "httpx_ours": "httpx.AsyncClient + our AiohttpTransport",
    "resilient": "httpx.AsyncClient + ResilientTransport (default httpx inner)",
    "resilient_native": "httpx.AsyncClient + ResilientTransport(NativeTransport)",
    "resilient_ours": "httpx.AsyncClient + ResilientTransport(AiohttpTransport)",
    "client_native": "AsyncHTTPClient over NativeTransport (\"auto\"), every policy on",
    "client_full": "AsyncHTTPClient over AiohttpTransport, every policy on",
    "client_httpx": "AsyncHTTPClient over httpx's transport, every policy on",
}


def label(variant: str) -> str:
    base, _, loop = variant.partition("@")
    return LABELS[base] + (" [uvloop]" if loop else "")


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# == one client run (in its own process) ===================================================


def pool_limits(concurrency: int, keepalive_expiry: float = KEEPALIVE_EXPIRY) -> Any:
    import httpx

    return httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency,
        keepalive_expiry=keepalive_expiry,
    )


Call = Callable[[], Awaitable[int]]


async def build(variant: str, url: str, concurrency: int) -> tuple[Call, Callable[[], Awaitable[None]]]:
    """The per-request call and the close function for one variant."""
    import httpx

    timeout = httpx.Timeout(10.0)
    if variant == "aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency),
            timeout=aiohttp.ClientTimeout(total=10.0),
        )

        async def aio_get() -> int:
            async with session.get(url) as r:
                await r.read()
                return r.status

        return aio_get, session.close

    if variant in ("client_native", "client_full", "client_httpx"):
        from httpx_resilience import (
            AsyncHTTPClient,
            CircuitBreaker,
            ClientConfig,
            TokenBucketRateLimiter,
        )
        from httpx_resilience.transports import AiohttpTransport, NativeTransport

        config = ClientConfig(
            timeout=10.0, total_timeout=30.0, keepalive_expiry=KEEPALIVE_EXPIRY,
            max_connections=concurrency, max_keepalive_connections=concurrency,
            transport="native" if variant == "client_native" else "httpx",
        )
        inner: httpx.AsyncBaseTransport | None = (
            AiohttpTransport(limits=pool_limits(concurrency)) if variant == "client_full" else None
        )
        client = AsyncHTTPClient(
            config=config,
            circuit_breaker=CircuitBreaker(),
            rate_limiter=TokenBucketRateLimiter(rate=1e6, burst=10_000),
            transport=inner,
        )
        if variant == "client_native":
            assert isinstance(client.transport._inner, NativeTransport)

        async def full_get() -> int:
            return (await client.get(url)).status_code

        return full_get, client.aclose

    transport: httpx.AsyncBaseTransport | None
    if variant in ("httpx", "httpx_ka30"):
        transport = None
    elif variant == "httpx_aiohttp":
        from httpx_aiohttp import AiohttpTransport as ThirdParty

        transport = ThirdParty(limits=pool_limits(concurrency))
    elif variant == "httpx_ours":
        from httpx_resilience.transports import AiohttpTransport

        transport = AiohttpTransport(limits=pool_limits(concurrency))
    elif variant == "httpx_native":
        from httpx_resilience.transports import NativeTransport

        transport = NativeTransport(limits=pool_limits(concurrency))
    elif variant in ("resilient", "resilient_ours", "resilient_native"):
        from httpx_resilience import ClientConfig, ResilientTransport
        from httpx_resilience.transports import AiohttpTransport, NativeTransport

        config = ClientConfig(
            timeout=10.0, total_timeout=30.0, keepalive_expiry=KEEPALIVE_EXPIRY,
            max_connections=concurrency, max_keepalive_connections=concurrency,
            transport="httpx",  # "auto" would pick aiohttp; this variant measures httpx's own
        )
        inner_t: httpx.AsyncBaseTransport | None = (
            AiohttpTransport(limits=pool_limits(concurrency)) if variant == "resilient_ours"
            else NativeTransport(limits=pool_limits(concurrency)) if variant == "resilient_native"
            else None
        )
        transport = ResilientTransport(inner_t, config=config)
    else:
        raise SystemExit(f"unknown variant {variant!r}")
    if variant == "httpx_ka30":
        client = httpx.AsyncClient(timeout=timeout, limits=pool_limits(concurrency, 30.0))
    elif transport is None:
        client = httpx.AsyncClient(timeout=timeout, limits=pool_limits(concurrency))
    else:
        client = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def httpx_get() -> int:
        return (await client.get(url)).status_code

    return httpx_get, client.aclose


async def drive(call: Call, total: int, concurrency: int) -> int:
    """Send ``total`` requests with ``concurrency`` workers; the number that failed."""
    remaining = total
    errors = 0

    async def worker() -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            try:
                if await call() != 200:
                    errors += 1
            except Exception:
                errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return errors


async def run_client(variant: str, url: str, requests: int, concurrency: int, warmup: int) -> dict[str, Any]:
    call, close = await build(variant.partition("@")[0], url, concurrency)
    try:
        errors = await drive(call, warmup, concurrency)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        errors += await drive(call, requests, concurrency)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        await close()
    return {
        "variant": variant, "concurrency": concurrency, "requests": requests,
        "wall_s": wall, "cpu_s": cpu, "errors": errors,
    }


def client_main(variant: str, url: str, requests: int, concurrency: int, warmup: int) -> None:
    coro = run_client(variant, url, requests, concurrency, warmup)
    if variant.endswith("@uvloop"):
        import uvloop

        result = uvloop.run(coro)
    else:
        result = asyncio.run(coro)
    print(json.dumps(result))


# == the pipeline's own cost, without sockets ==============================================


async def micro(iterations: int = 20_000) -> dict[str, float]:
    """µs per call: the pipeline over an in-memory transport, and tenacity around a no-op."""
    import httpx
    from tenacity import (
        AsyncRetrying,
        retry,
        retry_if_exception_type,
        stop_after_attempt,
        wait_exponential,
    )

    from httpx_resilience import (
        CircuitBreaker,
        ClientConfig,
        ResilientTransport,
        RetryPolicy,
        TokenBucketRateLimiter,
    )

    prebuilt = httpx.Response(200, content=BODY.encode(), headers={"content-type": "application/json"})

    class Memory(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return prebuilt

    url = httpx.URL("http://memory.local/items")
    memory = Memory()
    config = ClientConfig(timeout=10.0, total_timeout=30.0)
    pipelines = {
        "memory": memory,
        "resilient_default": ResilientTransport(memory, config=config),
        "resilient_all": ResilientTransport(
            memory, config=config, retry=RetryPolicy.from_config(config),
            circuit_breaker=CircuitBreaker(),
            rate_limiter=TokenBucketRateLimiter(rate=1e6, burst=10_000),
        ),
        "resilient_minimal": ResilientTransport(
            memory, retry=RetryPolicy(max_attempts=1), retry_budget=False,
            config=ClientConfig(timeout=10.0, request_id_header=None),
        ),
    }

    async def per_call(fn: Callable[[], Awaitable[Any]]) -> float:
        for _ in range(1000):
            await fn()
        best = float("inf")
        for _ in range(5):  # best of 5 blocks: the least disturbed estimate
            t0 = time.perf_counter()
            for _ in range(iterations):
                await fn()
            best = min(best, (time.perf_counter() - t0) / iterations * 1e6)
        return best

    out: dict[str, float] = {}
    for name, transport in pipelines.items():

        async def send(t: httpx.AsyncBaseTransport = transport) -> httpx.Response:
            return await t.handle_async_request(httpx.Request("GET", url))

        out[name] = await per_call(send)

    async def noop() -> int:
        return 1

    async def bare() -> int:
        return await noop()

    async def tenacity_loop() -> int:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(4), wait=wait_exponential(multiplier=1, max=60),
            retry=retry_if_exception_type(httpx.TransportError), reraise=True,
        ):
            with attempt:
                return await noop()
        return 0

    decorated = retry(
        stop=stop_after_attempt(4), wait=wait_exponential(multiplier=1, max=60),
        retry=retry_if_exception_type(httpx.TransportError), reraise=True,
    )(noop)

    out["noop"] = await per_call(bare)
    out["tenacity_async_retrying"] = await per_call(tenacity_loop)
    out["tenacity_decorator"] = await per_call(decorated)
    return out


# == orchestration ========================================================================

from _nginx import Server, cpu_model, pin  # noqa: E402  (bench/ is the script's folder)


def run_one(
    variant: str, url: str, requests: int, concurrency: int, warmup: int, src: str | None = None
) -> dict[str, Any]:
    """One client process; ``src``: another source tree of the package to import instead."""
    cmd = [*pin(0), sys.executable, str(Path(__file__).resolve()), "--client", variant, url,
           "--requests", str(requests), "--concurrency", str(concurrency), "--warmup", str(warmup)]
    env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())} if src else None
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    if out.returncode != 0:
        raise SystemExit(f"client {variant} failed:\n{out.stderr}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# The variants a before/after comparison (--src) runs for each tree.
COMPARED = ("httpx", "aiohttp", "httpx_native", "resilient", "resilient_native",
            "client_native", "client_full", "client_httpx")


def available_variants(with_uvloop: bool) -> list[str]:
    variants = [v for v in BASE_VARIANTS if v != "httpx_aiohttp" or installed("httpx_aiohttp")]
    if with_uvloop and installed("uvloop"):
        variants += list(UVLOOP_VARIANTS)
    return variants


def throughput(variants: list[str], rounds: int, requests: int, warmup: int) -> dict[str, Any]:
    server = Server()
    server.start()
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {v: {str(c): [] for c in CONCURRENCY} for v in variants}
    try:
        for r in range(rounds):
            for concurrency in CONCURRENCY:
                order = variants if r % 2 == 0 else list(reversed(variants))
                for variant in order:
                    res = run_one(variant, server.url, requests, concurrency, warmup)
                    runs[variant][str(concurrency)].append(res)
                    print(
                        f"round {r + 1}/{rounds} c={concurrency:<2} {variant:<22} "
                        f"{res['requests'] / res['wall_s']:7.0f} req/s "
                        f"{res['cpu_s'] / res['requests'] * 1e6:6.0f} µs CPU/req errors={res['errors']}",
                        flush=True,
                    )
    finally:
        server.stop()
    return {"server": server.kind, "runs": runs}


def compare_trees(
    trees: dict[str, str], variants: list[str], rounds: int, requests: int, warmup: int
) -> str:
    """The same variants against several source trees, interleaved in one run; a report section.

    Each round runs every (variant, tree) pair once, trees alternating inside
    the round, so drift of the machine falls on all trees alike; ratios are to
    plain httpx measured in the same round.
    """
    server = Server()
    server.start()
    runs: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {
        t: {v: {str(c): [] for c in CONCURRENCY} for v in variants} for t in trees
    }
    try:
        for r in range(rounds):
            for concurrency in CONCURRENCY:
                order = variants if r % 2 == 0 else list(reversed(variants))
                for variant in order:
                    pairs = list(trees.items()) if r % 2 == 0 else list(reversed(trees.items()))
                    for tree, src in pairs:
                        res = run_one(variant, server.url, requests, concurrency, warmup, src)
                        runs[tree][variant][str(concurrency)].append(res)
                        print(
                            f"round {r + 1}/{rounds} c={concurrency:<2} {tree:<8} {variant:<22} "
                            f"{res['requests'] / res['wall_s']:7.0f} req/s "
                            f"{res['cpu_s'] / res['requests'] * 1e6:6.0f} µs CPU/req",
                            flush=True,
                        )
    finally:
        server.stop()
    names = list(trees)
    lines = [
        f"## Before and after, one run ({', '.join(f'{t}: `{trees[t]}`' for t in names)})",
        "",
        f"Each (variant, tree) pair once per round, {rounds} rounds × {requests} requests, trees "
        "interleaved; medians. Ratios are to plain httpx (CPU µs per request: plain httpx's "
        "divided by the variant's, so higher is faster).",
        "",
    ]
    for c in (str(x) for x in CONCURRENCY):
        head = " | ".join(f"{t}: req/s | {t}: CPU µs | {t}: × httpx" for t in names)
        lines += [f"### Concurrency {c}", "", f"| client | {head} |",
                  "|---|" + "---|---|---|" * len(names)]
        for v in variants:
            cells = []
            for t in names:
                rps = statistics.median(x["requests"] / x["wall_s"] for x in runs[t][v][c])
                base = statistics.median(x["requests"] / x["wall_s"] for x in runs[t]["httpx"][c])
                cpu = statistics.median(x["cpu_s"] / x["requests"] * 1e6 for x in runs[t][v][c])
                cells.append(f"{rps:.0f} | {cpu:.0f} | {rps / base:.2f}×")
            lines.append(f"| {label(v)} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def machine() -> dict[str, str]:
    import aiohttp
    import httpx

    cpu = cpu_model()
    versions = {"httpx": httpx.__version__, "aiohttp": aiohttp.__version__}
    for name in ("httpx_aiohttp", "uvloop", "tenacity"):
        try:
            from importlib.metadata import version

            versions[name] = version(name.replace("_", "-"))
        except Exception:
            versions[name] = "not installed"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "os": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


def med(values: list[float], digits: int = 0) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def report(data: dict[str, Any], rounds: int, requests: int, warmup: int) -> str:
    m = data["machine"]
    lines = [
        "# Speed benchmark: resilience faster than plain httpx",
        "",
        "Written by `bench/speed_bench.py`. Server and client pinned to different cores (`taskset`);",
        "every client run is a fresh process; variants interleaved round by round (order reversed",
        "every other round); medians with min–max. CPU is the client process's CPU time per request.",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['os']}",
        f"- Python {m['python']}; {m['versions']}; {m['date']}",
        f"- Server: {data['throughput']['server']}, {len(BODY)}-byte JSON body, keep-alive",
        f"- {rounds} rounds × {requests} requests per client run (after {warmup} warm-up requests);"
        " pool size = concurrency",
        "",
    ]
    runs = data["throughput"]["runs"]
    for c in (str(x) for x in CONCURRENCY):
        rps = {v: [r["requests"] / r["wall_s"] for r in per[c]] for v, per in runs.items()}
        cpu = {v: [r["cpu_s"] / r["requests"] * 1e6 for r in per[c]] for v, per in runs.items()}
        base_httpx = statistics.median(rps["httpx"])
        base_aio = statistics.median(rps["aiohttp"])
        lines += [
            f"## Concurrency {c}",
            "",
            "| client | req/s, median (min–max) | CPU µs/req, median (min–max) | × plain httpx | × plain aiohttp | errors |",
            "|---|---|---|---|---|---|",
        ]
        for v in runs:
            errors = sum(r["errors"] for r in runs[v][c])
            lines.append(
                f"| {label(v)} | {med(rps[v])} | {med(cpu[v])} | "
                f"{statistics.median(rps[v]) / base_httpx:.2f}× | {statistics.median(rps[v]) / base_aio:.2f}× | {errors} |"
            )
        lines.append("")
    if "client_native" in runs or "client_full" in runs:
        def median_rps(v: str, c: str) -> float:
            return statistics.median(r["requests"] / r["wall_s"] for r in runs[v][c])

        def median_cpu(v: str, c: str) -> float:
            return statistics.median(r["cpu_s"] / r["requests"] * 1e6 for r in runs[v][c])

        lines += ["## Goal check (default asyncio loop)", ""]
        for v, name in (("client_native", "`NativeTransport` (what `\"auto\"` picks)"),
                        ("client_full", "`AiohttpTransport`")):
            if v not in runs:
                continue
            lines.append(
                f"- `AsyncHTTPClient` + every policy over {name}: at c=64 {median_rps(v, '64'):.0f} req/s = "
                f"{median_rps(v, '64') / median_rps('httpx', '64'):.2f}× plain httpx (goal ≥ 5×), "
                f"{median_rps(v, '64') / median_rps('aiohttp', '64'):.2f}× plain aiohttp (goal ≥ 0.8×); "
                f"sequentially {median_rps(v, '1') / median_rps('httpx', '1'):.2f}× plain httpx (goal ≥ 1.5×)."
            )
        for inner, bare in (("resilient_native", "httpx_native"), ("resilient", "httpx")):
            if inner in runs and bare in runs:
                lines.append(
                    f"- `ResilientTransport` under plain `httpx.AsyncClient` vs the same client over the bare "
                    f"inner transport ({label(bare)}): CPU per request "
                    f"{median_cpu(inner, '1') / median_cpu(bare, '1'):.3f}× at c=1, "
                    f"{median_cpu(inner, '64') / median_cpu(bare, '64'):.3f}× at c=64 (goal ≤ 1.05×)."
                )
        lines.append("")
    mic = data.get("micro")
    if mic:
        lines += [
            "## The pipeline's own cost, no sockets (µs per call, best of 5 × 20,000)",
            "",
            "`handle_async_request` called directly (no `AsyncClient`), a fresh `httpx.Request` each call;",
            "the in-memory transport returns a prebuilt `httpx.Response`.",
            "",
            "| what | µs/call | added by the pipeline |",
            "|---|---|---|",
            f"| in-memory transport alone (+ building the request) | {mic['memory']:.2f} | — |",
            f"| ResilientTransport, defaults (retry + budget, attempt timeout, deadline, request id) over it | {mic['resilient_default']:.2f} | {mic['resilient_default'] - mic['memory']:.2f} |",
            f"| ResilientTransport, every policy (+ CircuitBreaker, TokenBucketRateLimiter) over it | {mic['resilient_all']:.2f} | {mic['resilient_all'] - mic['memory']:.2f} |",
            f"| ResilientTransport, minimal (no retry, budget or request id; attempt timeout only) | {mic['resilient_minimal']:.2f} | {mic['resilient_minimal'] - mic['memory']:.2f} |",
            f"| no-op coroutine | {mic['noop']:.2f} | — |",
            f"| tenacity `AsyncRetrying` loop around the no-op | {mic['tenacity_async_retrying']:.2f} | {mic['tenacity_async_retrying'] - mic['noop']:.2f} |",
            f"| tenacity `@retry` decorator around the no-op | {mic['tenacity_decorator']:.2f} | {mic['tenacity_decorator'] - mic['noop']:.2f} |",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--client", nargs=2, metavar=("VARIANT", "URL"))
    p.add_argument("--micro", action="store_true", help="run only the in-memory pipeline benchmark")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--variants", nargs="*", help="a subset of variants")
    p.add_argument("--no-uvloop", action="store_true")
    p.add_argument("--skip-micro", action="store_true")
    p.add_argument("--src", action="append", default=[], metavar="LABEL=DIR",
                   help="compare source trees in one run (repeat; e.g. before=/tmp/before/src "
                        "after=src); the section is appended to the report")
    p.add_argument("--compare-rounds", type=int, default=3)
    a = p.parse_args()
    if a.client:
        client_main(a.client[0], a.client[1], a.requests, a.concurrency, a.warmup)
        return
    if a.micro:
        print(json.dumps(asyncio.run(micro())))
        return
    variants = a.variants or available_variants(not a.no_uvloop)
    for required in ("httpx", "aiohttp"):
        if required not in variants:
            variants.insert(0, required)
    data: dict[str, Any] = {"machine": machine()}
    data["throughput"] = throughput(variants, a.rounds, a.requests, a.warmup)
    if not a.skip_micro:
        out = subprocess.run([*pin(0), sys.executable, str(Path(__file__).resolve()), "--micro"],
                             capture_output=True, text=True, check=True, timeout=900)
        data["micro"] = json.loads(out.stdout.strip().splitlines()[-1])
    text = report(data, a.rounds, a.requests, a.warmup)
    if a.src:
        trees = dict(item.split("=", 1) for item in a.src)
        compared = [v for v in COMPARED if v in variants]
        text += "\n" + compare_trees(trees, compared, a.compare_rounds, a.requests, a.warmup)
    (HERE / "RESULTS_speed.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
