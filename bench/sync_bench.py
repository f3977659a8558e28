"""The sync path's cost per request, beside plain httpx.Client and requests + urllib3 Retry.

Every client sends ``GET /`` to the same upstream, a server in another
process (nginx with one worker when it is installed, else the bench's own
minimal server, ``python -m httpx_resilience.cli._bench_server``), and the
figure is the client process's CPU time per request (``time.process_time``:
every thread of this process, nothing of the server's). The variants:

- ``httpx``: plain ``httpx.Client()`` — the baseline every ratio is taken to;
- ``resilient``: ``httpx.Client(transport=ResilientTransport())``, the
  defaults (retry with its budget, attempt timeout, request id);
- ``resilient_all``: the same with every policy on: a circuit breaker, a token
  bucket (a rate that never makes anyone wait), the retry budget and a total
  deadline;
- ``requests``: ``requests.Session()`` with urllib3's ``Retry`` (3 retries,
  backoff, the retryable statuses, ``Retry-After``) mounted on an
  ``HTTPAdapter`` — the sync stack most code uses today.

Each variant runs ``--requests`` requests per block, sequentially and from
``--threads`` threads sharing one client; blocks of every variant are
interleaved within each round (the order reversed every other round), each
after a full garbage collection, so drift on a shared machine hits every
variant alike. The report gives the median (min–max) of the blocks and the
median of the per-round ratios to plain ``httpx.Client``.

Until ``ResilientTransport`` implements ``handle_request`` (the sync path),
its variants are left out and reported as missing.

Writes ``bench/RESULTS_sync.md``.

Usage::

    python bench/sync_bench.py [--rounds 7] [--requests 1000] [--threads 8] [--server auto|nginx|python]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _nginx import Server, cpu_model  # noqa: E402  (bench/ is the script's folder)

VARIANTS = ("httpx", "resilient", "resilient_all", "requests")
LABELS = {
    "httpx": "plain `httpx.Client()`",
    "resilient": "`httpx.Client(transport=ResilientTransport())` (defaults)",
    "resilient_all": "`httpx.Client(transport=ResilientTransport(...))`, every policy on",
    "requests": "`requests.Session()` + urllib3 `Retry` on an `HTTPAdapter`",
}
Call = Callable[[], Any]


class PythonServer:
    """The bench's minimal upstream in its own process (used when nginx is missing)."""

    kind = "httpx_resilience.cli._bench_server (asyncio, own process)"

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "httpx_resilience.cli._bench_server"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # the server serves until its stdin closes
            self.proc.wait(10)
            self.proc = None


def sync_supported() -> bool:
    """Whether ResilientTransport has the sync path yet (``handle_request`` of its own)."""
    import httpx

    from httpx_resilience import ResilientTransport

    own = getattr(ResilientTransport, "handle_request", None)
    return own is not None and own is not getattr(httpx.BaseTransport, "handle_request", None)


def build(threads: int) -> tuple[dict[str, Call], list[Callable[[], None]]]:
    """One call per available variant (a shared client each) and the closers."""
    import httpx
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    calls: dict[str, Call] = {}
    closers: list[Callable[[], None]] = []
    pool = max(threads, 10)

    plain = httpx.Client()
    calls["httpx"] = plain.get
    closers.append(plain.close)

    if sync_supported():
        from httpx_resilience import (
            CircuitBreaker,
            ClientConfig,
            ResilientTransport,
            RetryBudget,
            TokenBucketRateLimiter,
        )

        resilient = httpx.Client(transport=ResilientTransport())
        calls["resilient"] = resilient.get
        closers.append(resilient.close)
        every = ResilientTransport(
            config=ClientConfig(timeout=10.0, total_timeout=30.0),
            circuit_breaker=CircuitBreaker(),
            rate_limiter=TokenBucketRateLimiter(rate=1e9, burst=1_000_000),
            retry_budget=RetryBudget(),
        )
        resilient_all = httpx.Client(transport=every)
        calls["resilient_all"] = resilient_all.get
        closers.append(resilient_all.close)

    session = requests.Session()
    retry = Retry(
        total=3, backoff_factor=1.0, status_forcelist=(429, 500, 502, 503, 504),
        respect_retry_after_header=True,
    )
    adapter = HTTPAdapter(max_retries=retry, pool_connections=pool, pool_maxsize=pool)
    session.mount("http://", adapter)
    calls["requests"] = lambda url=None: session.get(url, timeout=10.0)  # type: ignore[misc]
    closers.append(session.close)
    return calls, closers


def block(call: Callable[[str], Any], url: str, requests: int, threads: int) -> float:
    """CPU µs per request of ``requests`` calls, from ``threads`` threads (1: this one)."""
    gc.collect()
    if threads == 1:
        t0 = time.process_time()
        for _ in range(requests):
            call(url)
        return (time.process_time() - t0) / requests * 1e6
    share = requests // threads
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(share):
                call(url)
        except BaseException as exc:  # re-raised below, after the block
            errors.append(exc)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    t0 = time.process_time()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    cpu = time.process_time() - t0
    if errors:
        raise errors[0]
    return cpu / (share * threads) * 1e6


def measure(url: str, rounds: int, requests: int, threads: int) -> dict[str, dict[int, list[float]]]:
    calls, closers = build(threads)
    modes = (1, threads)
    out: dict[str, dict[int, list[float]]] = {name: {m: [] for m in modes} for name in calls}
    try:
        for call in calls.values():  # warm-up: connections, caches
            for _ in range(200):
                call(url)
        for r in range(rounds):
            for mode in modes:
                order = list(calls) if r % 2 == 0 else list(reversed(calls))
                for name in order:
                    out[name][mode].append(block(calls[name], url, requests, mode))
            line = ", ".join(
                f"{name} {out[name][1][-1]:.0f}/{out[name][threads][-1]:.0f}" for name in calls
            )
            print(f"round {r + 1}/{rounds} (µs CPU/request, sequential/{threads} threads): {line}",
                  flush=True)
    finally:
        for close in closers:
            close()
    return out


def measure_memory(rounds: int, requests: int) -> dict[str, list[float]]:
    """CPU µs per request over ``httpx.MockTransport`` (no sockets, so only our code differs):
    plain ``httpx.Client`` and the two ResilientTransport set-ups, interleaved."""
    import httpx

    from httpx_resilience import (
        CircuitBreaker,
        ClientConfig,
        ResilientTransport,
        RetryBudget,
        TokenBucketRateLimiter,
    )

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b'{"ok":true}', headers={"content-type": "application/json"})

    mock = httpx.MockTransport(answer)
    clients = {
        "httpx": httpx.Client(transport=mock),
        "resilient": httpx.Client(transport=ResilientTransport(sync_transport=mock)),
        "resilient_all": httpx.Client(transport=ResilientTransport(
            sync_transport=mock, config=ClientConfig(timeout=10.0, total_timeout=30.0),
            circuit_breaker=CircuitBreaker(),
            rate_limiter=TokenBucketRateLimiter(rate=1e9, burst=1_000_000), retry_budget=RetryBudget(),
        )),
    }
    url = "http://memory.local/"
    out: dict[str, list[float]] = {name: [] for name in clients}
    for client in clients.values():
        for _ in range(1000):
            client.get(url)
    for r in range(rounds):
        for name in (list(clients) if r % 2 == 0 else list(reversed(clients))):
            out[name].append(block(clients[name].get, url, requests, 1))
    for client in clients.values():
        client.close()
    return out


def memory_section(mem: dict[str, list[float]], socket_base: list[float], rounds: int, requests: int) -> list[str]:
    """What the pipeline adds, in µs (paired by round), and that as a share of a real request."""
    base = statistics.median(socket_base)
    lines = [
        "## Where the difference comes from: the pipeline alone, over httpx.MockTransport",
        "",
        "The same clients over `httpx.MockTransport` (no sockets, so only our code differs): "
        f"median (min–max) of {rounds} interleaved blocks of {requests} requests, sequential; "
        "'added' is the variant minus plain `httpx.Client` block by block, and that as a share of "
        f"plain `httpx.Client`'s median over the socket above ({base:.0f} µs).",
        "",
        "| variant | µs CPU / request | added µs / request | added, as a share of a real request |",
        "|---|---|---|---|",
    ]
    for name, values in mem.items():
        added = [v - b for v, b in zip(values, mem["httpx"], strict=True)]
        share = f"{statistics.median(added) / base:+.1%}" if name != "httpx" else "—"
        lines.append(f"| `{name}` | {med(values)} | {med(added) if name != 'httpx' else '—'} | {share} |")
    return [*lines, ""]


def med(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ({min(values):.0f}–{max(values):.0f})"


def best(values: list[float], base: list[float]) -> str:
    """The ratio of the best (least disturbed) blocks: a CPU cost is never below its best."""
    return f"{min(values) / min(base):.3f}×"


def ratio(values: list[float], base: list[float]) -> str:
    """The median of the per-round ratios (paired, so a slow round cancels), with min–max."""
    rs = [v / b for v, b in zip(values, base, strict=True)]
    return f"{statistics.median(rs):.3f}× ({min(rs):.3f}–{max(rs):.3f})"


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def report(
    res: dict[str, dict[int, list[float]]], server: str, rounds: int, requests: int,
    threads: int, seconds: float,
) -> str:
    load = os.getloadavg()
    versions = ", ".join(
        f"{d} {version(d)}" for d in ("httpx-resilience", "httpx", "httpcore", "requests", "urllib3")
    )
    lines = [
        "# The sync path: CPU per request beside plain httpx.Client and requests",
        "",
        "Written by `bench/sync_bench.py`: `GET /` against a server in another process, CPU time "
        "of the client process (`time.process_time`, all its threads) per request; median "
        f"(min–max) of {rounds} rounds of {requests} requests per variant and mode, variants "
        "interleaved within each round (order reversed every other round), each block after a "
        "full garbage collection. Ratios are to plain `httpx.Client` in the same round "
        f"(the median of the {rounds} per-round ratios, with min–max). Run time {seconds:.0f} s.",
        "",
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores, {platform.platform()}; "
        f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
        "(the machine is shared: ratios within one run are the figures to read)",
        f"- Python {platform.python_version()}; {versions}",
        f"- Server: {server}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        "Variants:",
        "",
    ]
    lines += [f"- `{name}`: {LABELS[name]}" for name in VARIANTS]
    lines += [
        "",
        "The policies of `resilient_all`: `CircuitBreaker()`, `TokenBucketRateLimiter(rate=1e9, "
        "burst=1_000_000)` (never waits), `RetryBudget()`, `ClientConfig(timeout=10.0, "
        "total_timeout=30.0)`. `requests`: `Retry(total=3, backoff_factor=1.0, "
        "status_forcelist=(429, 500, 502, 503, 504), respect_retry_after_header=True)`.",
        "",
    ]
    for mode, title in ((1, "Sequential (one thread)"), (threads, f"{threads} threads, one shared client")):
        lines += [
            f"## {title}",
            "",
            "| variant | µs CPU / request | ratio to plain httpx.Client (per round) | ratio of the best blocks |",
            "|---|---|---|---|",
        ]
        base = res["httpx"][mode]
        for name in VARIANTS:
            if name not in res:
                lines.append(f"| `{name}` | not measured (no sync path in this tree) | — | — |")
                continue
            lines.append(
                f"| `{name}` | {med(res[name][mode])} | {ratio(res[name][mode], base)} "
                f"| {best(res[name][mode], base)} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--server", choices=("auto", "nginx", "python"), default="auto")
    p.add_argument("--out", default=str(HERE / "RESULTS_sync.md"))
    a = p.parse_args()
    if a.threads < 2 or a.requests < a.threads:
        raise SystemExit("--threads must be >= 2 and --requests >= --threads")
    started = time.perf_counter()
    server: Server | PythonServer
    server = PythonServer() if a.server == "python" else Server()
    if a.server == "nginx" and isinstance(server, Server):
        from _nginx import find_nginx

        if find_nginx(install=False) is None:
            raise SystemExit("--server nginx: nginx is not installed")
    server.start()
    if isinstance(server, Server) and "nginx" not in server.kind and a.server == "auto":
        server.stop()  # the ChaosServer fallback is too slow a peer: the bench's own server
        server = PythonServer()
        server.start()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})  # the client on core 0 (nginx is pinned to core 1)
    try:
        res = measure(server.url, a.rounds, a.requests, a.threads)
    finally:
        server.stop()
    memory = measure_memory(a.rounds, 2000) if sync_supported() else None
    text = report(res, server.kind, a.rounds, a.requests, a.threads, time.perf_counter() - started)
    if memory is not None:
        text += "\n" + "\n".join(memory_section(memory, res["httpx"][1], a.rounds, 2000))
    Path(a.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
