"""Profile benchmark: where does each client's CPU time go, per request?

For each client variant (plain ``httpx``, plain ``aiohttp``, ``AsyncHTTPClient`` with every
policy over ``NativeTransport`` (``client_native``) and over ``AiohttpTransport``
(``client_full``)) at concurrency 1 and 64, a fresh client process pinned to core 0 (nginx
pinned to core 1, from ``bench/_nginx.py``) builds the client with ``speed_bench.build``,
sends warm-up requests, then sends a fixed number of requests under ``cProfile`` with a
process-CPU-time timer (``time.process_time``), so idle waiting in ``epoll`` is not counted.

Every function's *self* time (tottime) goes to a bucket by the file it lives in (httpx,
httpcore, anyio/sniffio, h11, aiohttp+yarl+multidict, httptools, our inner transports, our
pipeline, our facade, asyncio + selectors + socket I/O, other stdlib, other). C builtins are
bucketed by their module when it names one (``_socket``/``select``/``_ssl``/``_asyncio``/
``_contextvars`` -> asyncio, ``httptools.*``, ``aiohttp.*``/``multidict.*``/``yarl.*``);
any other builtin (``len``, ``bytes.decode``, ...) is charged to the bucket of the Python
function that called it, split per caller with cProfile's caller statistics.

The profiler inflates Python-level time, so each configuration also gets an un-profiled run
(``speed_bench.run_one``: same pinning, fresh process, same warm-up and request count) whose
CPU µs/request is reported next to the profiled total; buckets are given both in profiled
µs/request and as a share of the profiled total.

Writes ``bench/RESULTS_profile.md``. The whole run takes about 1.5 minutes on 2 cores (most of it
plain httpx at c=64 under the profiler).

Usage::

    python bench/profile_bench.py [--requests 3000] [--warmup 300]
    python bench/profile_bench.py --child VARIANT URL --requests N --concurrency C   (one profiled run)
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import re
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import speed_bench  # noqa: E402  (bench/ is not a package)
from _nginx import Server, pin  # noqa: E402

VARIANTS = ("httpx", "aiohttp", "client_native", "client_full")
CONCURRENCY = (1, 64)
TOP_N = 10
TOP_FOR = (("client_native", 64), ("httpx", 64))

BUCKETS = (
    "httpx",
    "httpcore",
    "anyio/sniffio",
    "h11",
    "aiohttp+yarl+multidict",
    "httptools",
    "ours: transports/",
    "ours: pipeline",
    "ours: facade",
    "ours: other modules",
    "asyncio + selectors + socket I/O",
    "other stdlib",
    "other",
)
BUCKET_NOTES = {
    "httpx": "`httpx/`",
    "httpcore": "`httpcore/`",
    "anyio/sniffio": "`anyio/`, `sniffio/`",
    "h11": "`h11/`",
    "aiohttp+yarl+multidict": "`aiohttp/`, `yarl/`, `multidict/` (+ their helpers `propcache/`, "
    "`frozenlist/`, `aiosignal/`, `aiohappyeyeballs/`) and their C/Cython extensions (Cython code, "
    "such as aiohttp's response parser, is invisible to cProfile and counts in its Python caller, "
    "which is aiohttp's own)",
    "httptools": "`httptools/`; its parser is Cython, which cProfile cannot see, so this bucket is the "
    "self time of `transports/native/_connection.py:data_received`, the function that calls "
    "`feed_data` (a few lines of ours plus the C parsing; the parser's Python callbacks stay in "
    "`ours: transports/`)",
    "ours: transports/": "`httpx_resilience/transports/` (our inner transports)",
    "ours: pipeline": "`httpx_resilience/pipeline/`, `policies/`, `clock.py`",
    "ours: facade": "`httpx_resilience/client/`, `models.py`, `middleware/`",
    "ours: other modules": "any other `httpx_resilience/` file (config, observe, auth, ...)",
    "asyncio + selectors + socket I/O": "stdlib `asyncio/`, `selectors.py`, `socket.py`, `ssl.py`; "
    "builtins of `_socket`, `select`, `_ssl`, `_asyncio`, `_contextvars` (socket send/recv, "
    "`epoll.poll`, `Context.run`, which includes the C Task's stepping)",
    "other stdlib": "the rest of the standard library",
    "other": "everything else (the benchmark's own driver loop, `idna`, `certifi`, ...)",
}
SHORT = {
    "httpx": "httpx",
    "aiohttp": "aiohttp",
    "client_native": "client_native",
    "client_full": "client_full",
}

STDLIB = str(Path(sysconfig.get_paths()["stdlib"]).resolve())
AIOHTTP_PKGS = ("aiohttp", "yarl", "multidict", "propcache", "frozenlist", "aiosignal", "aiohappyeyeballs")
ASYNCIO_BUILTIN_MODULES = ("_socket", "socket", "select", "_ssl", "ssl", "_asyncio", "_contextvars", "_selectors")
PIPELINE_PARTS = ("pipeline", "policies", "clock.py")
FACADE_PARTS = ("client", "middleware", "models.py")
# httptools' parser is Cython: cProfile sees no call event for ``feed_data``, so the parsing time
# is the self time of the function that calls it; that function's self time goes to httptools.
PARSER_HOSTS = (("httpx_resilience/transports/native/_connection.py", "data_received"),)


# == classification =======================================================================


def is_parser_host(func: Any) -> bool:
    """The Python function that calls httptools' Cython ``feed_data`` (invisible to cProfile)."""
    filename, _, name = func
    return any(filename.replace("\\", "/").endswith(f) and name == n for f, n in PARSER_HOSTS)


def classify_file(filename: str) -> str:
    """The bucket of a Python source file."""
    path = filename.replace("\\", "/")
    parts = path.split("/")
    if "httpx_resilience" in parts:
        rest = parts[len(parts) - 1 - parts[::-1].index("httpx_resilience") + 1:]
        top = rest[0] if rest else ""
        if top == "transports":
            return "ours: transports/"
        if top in PIPELINE_PARTS:
            return "ours: pipeline"
        if top in FACADE_PARTS:
            return "ours: facade"
        return "ours: other modules"
    for pkg, bucket in (("httpx", "httpx"), ("httpcore", "httpcore"), ("anyio", "anyio/sniffio"),
                        ("sniffio", "anyio/sniffio"), ("h11", "h11"), ("httptools", "httptools")):
        if pkg in parts[:-1]:
            return bucket
    if any(pkg in parts[:-1] for pkg in AIOHTTP_PKGS):
        return "aiohttp+yarl+multidict"
    if "site-packages" not in parts and "dist-packages" not in parts:
        try:
            resolved = str(Path(path).resolve())
        except OSError:
            resolved = path
        if resolved.startswith(STDLIB):
            if "asyncio" in parts or parts[-1] in ("selectors.py", "socket.py", "ssl.py"):
                return "asyncio + selectors + socket I/O"
            return "other stdlib"
    return "other"


_BUILTIN_MODULE = re.compile(r"of '([\w.]+)' objects|built-in method ([\w.]+)")


def classify_builtin(name: str) -> str | None:
    """The bucket of a C builtin when its module names one; None: charge it to its caller."""
    m = _BUILTIN_MODULE.search(name)
    if not m:
        return None
    qual = m.group(1) or m.group(2) or ""
    module = qual.split(".")[0]
    if module in ASYNCIO_BUILTIN_MODULES:
        return "asyncio + selectors + socket I/O"
    if module == "httptools":
        return "httptools"
    if module in AIOHTTP_PKGS:
        return "aiohttp+yarl+multidict"
    return None


def bucket_stats(stats: dict[Any, Any]) -> dict[str, float]:
    """Seconds of self time per bucket; unattributed builtins charged to their callers' buckets."""
    memo: dict[Any, str] = {}

    def own_bucket(func: Any, depth: int = 0) -> str:
        if func in memo:
            return memo[func]
        filename, _, name = func
        if is_parser_host(func):
            bucket = "httptools"
        elif filename != "~":
            bucket = classify_file(filename)
        else:
            bucket = classify_builtin(name) or ""
            if not bucket:
                # a builtin called from another builtin: follow its heaviest caller
                callers = stats.get(func, (0, 0, 0, 0, {}))[4]
                if callers and depth < 5:
                    heaviest = max(callers, key=lambda c: callers[c][2])
                    bucket = own_bucket(heaviest, depth + 1)
                else:
                    bucket = "other stdlib"
        memo[func] = bucket
        return bucket

    out = dict.fromkeys(BUCKETS, 0.0)
    for func, (_cc, _nc, tt, _ct, callers) in stats.items():
        filename, _, name = func
        if filename != "~" or classify_builtin(name):
            out[own_bucket(func)] += tt
            continue
        # a generic builtin: split its self time among its callers
        per_caller = {c: v[2] for c, v in callers.items()}
        known = sum(per_caller.values())
        if not per_caller or known <= 0:
            out[own_bucket(func)] += tt
            continue
        for caller, share in per_caller.items():
            out[own_bucket(caller)] += tt * share / known
    return out


def main_bucket(func: Any, stats: dict[Any, Any]) -> str:
    """The bucket that gets most of one function's self time."""
    split = bucket_stats({func: stats[func]})
    return max(split, key=lambda b: split[b])


def func_label(func: Any) -> str:
    filename, line, name = func
    if filename == "~":
        return name
    parts = filename.replace("\\", "/").split("/")
    for anchor in ("site-packages", "dist-packages", "src"):
        if anchor in parts:
            parts = parts[len(parts) - 1 - parts[::-1].index(anchor) + 1:]
            break
    else:
        if str(Path(filename).resolve()).startswith(STDLIB):
            parts = ["<stdlib>", *Path(filename).resolve().relative_to(STDLIB).parts]
        else:
            parts = parts[-2:]
    return f"{'/'.join(parts)}:{line}({name})"


# == one profiled client run (in its own process) ==========================================


async def profiled_run(variant: str, url: str, requests: int, concurrency: int, warmup: int) -> dict[str, Any]:
    call, close = await speed_bench.build(variant, url, concurrency)
    profiler = cProfile.Profile(time.process_time)
    try:
        errors = await speed_bench.drive(call, warmup, concurrency)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        profiler.enable()
        errors += await speed_bench.drive(call, requests, concurrency)
        profiler.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        profiler.disable()
        await close()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())
    top = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:TOP_N]
    return {
        "variant": variant, "concurrency": concurrency, "requests": requests, "errors": errors,
        "profiled_cpu_s": cpu, "profiled_wall_s": wall, "total_self_s": total,
        "buckets": bucket_stats(stats),
        "top": [
            {"func": func_label(f), "bucket": main_bucket(f, stats), "tottime_s": v[2], "ncalls": v[1]}
            for f, v in top
        ],
    }


def child_main(variant: str, url: str, requests: int, concurrency: int, warmup: int) -> None:
    print(json.dumps(asyncio.run(profiled_run(variant, url, requests, concurrency, warmup))))


def run_profiled(variant: str, url: str, requests: int, concurrency: int, warmup: int) -> dict[str, Any]:
    cmd = [*pin(0), sys.executable, str(Path(__file__).resolve()), "--child", variant, url,
           "--requests", str(requests), "--concurrency", str(concurrency), "--warmup", str(warmup)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"profiled client {variant} failed:\n{out.stderr}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# == report ===============================================================================


def us(res: dict[str, Any], seconds: float) -> float:
    return seconds / res["requests"] * 1e6


def share(res: dict[str, Any], bucket: str) -> float:
    return res["buckets"][bucket] / res["total_self_s"] * 100 if res["total_self_s"] else 0.0


def group_share(res: dict[str, Any], buckets: tuple[str, ...]) -> float:
    return sum(share(res, b) for b in buckets)


def largest(res: dict[str, Any]) -> str:
    return max(res["buckets"], key=lambda b: res["buckets"][b])


OURS = ("ours: transports/", "ours: pipeline", "ours: facade", "ours: other modules")
IO = ("asyncio + selectors + socket I/O",)


def findings(results: dict[tuple[str, int], dict[str, Any]]) -> list[str]:
    out: list[str] = []
    hx = results.get(("httpx", 64))
    if hx:
        pool = group_share(hx, ("httpcore", "anyio/sniffio"))
        out.append(
            f"At c=64 plain httpx spends {pool:.0f} % of its profiled self time in httpcore's pool and "
            f"connection code plus anyio/sniffio ({share(hx, 'httpcore'):.0f} % httpcore, "
            f"{share(hx, 'anyio/sniffio'):.0f} % anyio/sniffio), {share(hx, 'httpx'):.0f} % in httpx itself "
            f"and {share(hx, 'h11'):.0f} % in h11; its largest bucket is {largest(hx)}."
        )
        hx1 = results.get(("httpx", 1))
        if hx1:
            growth = {b: us(hx, hx["buckets"][b]) - us(hx1, hx1["buckets"][b]) for b in BUCKETS}
            grew = max(growth, key=lambda b: growth[b])
            first = hx["top"][0]
            out.append(
                f"From c=1 to c=64 plain httpx's profiled cost per request goes from "
                f"{us(hx1, hx1['total_self_s']):.0f} to {us(hx, hx['total_self_s']):.0f} µs "
                f"(un-profiled CPU {hx1['plain_cpu_us']:.0f} → {hx['plain_cpu_us']:.0f} µs); the bucket that "
                f"grows most is {grew} (+{growth[grew]:.0f} µs/request), and the top self-time function at "
                f"c=64, `{first['func']}`, runs {first['ncalls'] / hx['requests']:.0f} times per request "
                f"({first['ncalls'] / hx['requests'] / hx['concurrency']:.1f} per pooled connection)."
            )
    cn = results.get(("client_native", 64))
    if cn:
        out.append(
            f"AsyncHTTPClient over NativeTransport at c=64 spends {group_share(cn, OURS):.0f} % of its profiled "
            f"time in httpx_resilience ({share(cn, 'ours: transports/'):.0f} % inner transport, "
            f"{share(cn, 'ours: pipeline'):.0f} % pipeline, {share(cn, 'ours: facade'):.0f} % facade), "
            f"{share(cn, 'httpx'):.0f} % in httpx's own code, "
            f"{share(cn, 'httptools'):.0f} % in httptools' parser and {group_share(cn, IO):.0f} % in "
            f"asyncio and socket I/O."
        )
        if hx:
            out.append(
                f"Per request at c=64 it costs {cn['plain_cpu_us']:.0f} µs of CPU un-profiled against "
                f"{hx['plain_cpu_us']:.0f} µs for plain httpx ({hx['plain_cpu_us'] / cn['plain_cpu_us']:.1f}× less); "
                f"httpcore + anyio + h11 alone account for "
                f"{us(hx, sum(hx['buckets'][b] for b in ('httpcore', 'anyio/sniffio', 'h11'))):.0f} profiled "
                f"µs/request in plain httpx, more than client_native's whole profiled total of "
                f"{us(cn, cn['total_self_s']):.0f} µs."
                if us(hx, sum(hx["buckets"][b] for b in ("httpcore", "anyio/sniffio", "h11")))
                > us(cn, cn["total_self_s"]) else
                f"Per request at c=64 it costs {cn['plain_cpu_us']:.0f} µs of CPU un-profiled against "
                f"{hx['plain_cpu_us']:.0f} µs for plain httpx."
            )
    ai, cf = results.get(("aiohttp", 64)), results.get(("client_full", 64))
    if ai and cf:
        out.append(
            f"Plain aiohttp at c=64 spends {share(ai, 'aiohttp+yarl+multidict'):.0f} % in aiohttp/yarl/multidict "
            f"and {group_share(ai, IO):.0f} % in asyncio and socket I/O ({ai['plain_cpu_us']:.0f} µs CPU/request "
            f"un-profiled); client_full over the same aiohttp adds "
            f"{us(cf, sum(cf['buckets'][b] for b in OURS)):.0f} profiled µs/request of httpx_resilience and "
            f"{us(cf, cf['buckets']['httpx']):.0f} of httpx code ({cf['plain_cpu_us']:.0f} µs CPU/request un-profiled)."
        )
    ratios = {k: us(r, r["total_self_s"]) / r["plain_cpu_us"] for k, r in results.items() if r["plain_cpu_us"]}
    if ratios:
        lo, hi = min(ratios, key=lambda k: ratios[k]), max(ratios, key=lambda k: ratios[k])
        out.append(
            f"The profiler inflates totals by {ratios[lo]:.1f}× ({lo[0]}, c={lo[1]}) to {ratios[hi]:.1f}× "
            f"({hi[0]}, c={hi[1]}) over the un-profiled CPU time, so the µs cells are on the profiler's scale: "
            f"read them against each other and the shares, not against the un-profiled row (a deterministic "
            f"profiler adds a cost per Python call, so call-heavy Python code is overstated relative to C "
            f"code and syscalls)."
        )
    return out


def report(results: dict[tuple[str, int], dict[str, Any]], machine: dict[str, str], server: str,
           requests: int, warmup: int) -> str:
    variants = [v for v in VARIANTS if any(k[0] == v for k in results)]
    lines = [
        "# Profile benchmark: where each client's CPU time goes per request",
        "",
        "Written by `bench/profile_bench.py`.",
        "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['os']}",
        f"- Python {machine['python']}; {machine['versions']}; {machine['date']}",
        f"- Server: {server}, {len(speed_bench.BODY)}-byte JSON body, keep-alive, pinned to core 1;"
        " each client a fresh process pinned to core 0; pool size = concurrency",
        f"- Profiler: `cProfile` (deterministic) with a process-CPU-time timer (`time.process_time`), "
        f"enabled around {requests} requests after {warmup} warm-up requests; one profiled run per cell",
        "- A process-CPU timer costs more per profiler event than cProfile's default wall-clock timer (so "
        "it inflates more), but every µs it counts is CPU time: idle waits in `epoll` count as nothing",
        "- Buckets take each function's *self* time (tottime) by the file it lives in; C builtins go by "
        "their module when it names a bucket, otherwise to the bucket of their Python caller (split per caller)",
        "- Cells: profiled µs per request (share of the profiled total). The profiler inflates "
        "Python-level time, so the `un-profiled CPU` row is the client process's CPU µs/request from a "
        "separate run (`speed_bench.run_one`, same pinning, warm-up and request count, no profiler)",
        "",
        "Buckets:",
        "",
        *[f"- **{b}**: {BUCKET_NOTES[b]}" for b in BUCKETS],
        "",
    ]
    for c in CONCURRENCY:
        cols = [v for v in variants if (v, c) in results]
        if not cols:
            continue
        lines += [
            f"## Concurrency {c}",
            "",
            "| bucket | " + " | ".join(SHORT.get(v, v) for v in cols) + " |",
            "|---|" + "---|" * len(cols),
        ]
        for b in BUCKETS:
            cells = [f"{us(results[(v, c)], results[(v, c)]['buckets'][b]):.1f} ({share(results[(v, c)], b):.1f} %)"
                     for v in cols]
            lines.append(f"| {b} | " + " | ".join(cells) + " |")
        lines.append("| **profiled total** | " + " | ".join(
            f"**{us(results[(v, c)], results[(v, c)]['total_self_s']):.1f}**" for v in cols) + " |")
        lines.append("| un-profiled CPU | " + " | ".join(
            f"{results[(v, c)]['plain_cpu_us']:.1f}" for v in cols) + " |")
        lines.append("| profiled / un-profiled | " + " | ".join(
            f"{us(results[(v, c)], results[(v, c)]['total_self_s']) / results[(v, c)]['plain_cpu_us']:.1f}×"
            for v in cols) + " |")
        lines.append("| errors (profiled / un-profiled run) | " + " | ".join(
            f"{results[(v, c)]['errors']} / {results[(v, c)]['plain_errors']}" for v in cols) + " |")
        lines.append("")
    for v, c in TOP_FOR:
        res = results.get((v, c))
        if not res:
            continue
        lines += [
            f"## Top {TOP_N} functions by self time: {v}, c={c}",
            "",
            "| # | function | bucket | self µs/req | share | calls/req |",
            "|---|---|---|---|---|---|",
        ]
        for i, t in enumerate(res["top"], 1):
            lines.append(
                f"| {i} | `{t['func']}` | {t['bucket']} | {us(res, t['tottime_s']):.1f} | "
                f"{t['tottime_s'] / res['total_self_s'] * 100:.1f} % | {t['ncalls'] / res['requests']:.2f} |"
            )
        lines.append("")
    lines += ["## Findings", "", " ".join(findings(results)), ""]
    return "\n".join(lines)


# == orchestration ========================================================================


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--child", nargs=2, metavar=("VARIANT", "URL"))
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--concurrency", type=int, default=1)
    a = p.parse_args()
    if a.child:
        child_main(a.child[0], a.child[1], a.requests, a.concurrency, a.warmup)
        return
    t0 = time.perf_counter()
    machine = speed_bench.machine()
    server = Server()
    server.start()
    results: dict[tuple[str, int], dict[str, Any]] = {}
    try:
        for c in CONCURRENCY:
            for v in VARIANTS:
                res = run_profiled(v, server.url, a.requests, c, a.warmup)
                plain = speed_bench.run_one(v, server.url, a.requests, c, a.warmup)
                res["plain_cpu_us"] = plain["cpu_s"] / plain["requests"] * 1e6
                res["plain_errors"] = plain["errors"]
                results[(v, c)] = res
                print(
                    f"c={c:<2} {v:<14} profiled {us(res, res['total_self_s']):7.1f} µs/req "
                    f"un-profiled CPU {res['plain_cpu_us']:7.1f} µs/req largest: {largest(res)} "
                    f"errors={res['errors']}/{res['plain_errors']} ({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )
    finally:
        server.stop()
    text = report(results, machine, server.kind, a.requests, a.warmup)
    (HERE / "RESULTS_profile.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
