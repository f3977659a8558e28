"""``httpx-resilience demo``: the same traffic through plain httpx and through ours, drawn.

An embedded :class:`~httpx_resilience.testing.ChaosServer` plays the upstream
of a scenario (:data:`~httpx_resilience.cli._demo_run.SCENARIOS`: mixed faults
by default, or flaky, outage, rate-limited, slow-tail alone, so each policy's
effect can be seen); both clients send the same requests at the same time
(:mod:`._demo_run`). While it runs, a live view shows each client's progress
and the breaker's state; at the end a table compares success, upstream load
and latency, and an HTML report (:mod:`._report`) draws the run. The exit
code says whether ours showed what the scenario is about (a higher success
rate; for the outage, less upstream load and a lower p99; for the slow tail,
a lower p99).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from ._demo_run import SCENARIOS, ClientRun, DemoRun, run

__all__ = ["DEFAULT_REPORT", "demo_summary", "run_demo", "verdict"]

DEFAULT_REPORT = "httpx-resilience-demo.html"
"""Where the report goes unless ``--report`` says otherwise (the current directory)."""

DEFAULT_RATE = 60.0
"""Requests per second each client sends: ``-n 300`` lasts five seconds."""


def demo_summary(result: ClientRun) -> dict[str, Any]:
    """One client's figures as plain data (for ``--json``)."""
    return {
        "client": result.name,
        "requests": result.requests,
        "succeeded": result.succeeded,
        "success_rate": round(result.success_rate, 4),
        "upstream_requests": result.upstream,
        "amplification": round(result.amplification, 3),
        "p50_ms": round(result.percentile(0.50) * 1000, 1),
        "p99_ms": round(result.percentile(0.99) * 1000, 1),
        "served_by_fallback": result.served_by_fallback,
        "posts_sent_twice": result.duplicates,
        "breaker_transitions": len(result.breaker),
        "limiter_waits": len(result.limiter_waits),
        "errors": result.failures(),
    }


def verdict(result: DemoRun) -> tuple[bool, str]:
    """Whether ours showed what the scenario is about, and the sentence that says it."""
    p, o = result.plain, result.ours
    kind = result.scenario.verdict
    if kind == "outage":
        ok = o.amplification < p.amplification and o.percentile(0.99) < p.percentile(0.99)
        text = (
            f"the breaker spared the dead upstream {p.upstream - o.upstream} requests "
            f"({o.amplification:.2f}× vs {p.amplification:.2f}×) and failed fast: p99 "
            f"{o.percentile(0.99) * 1000:.0f} ms vs {p.percentile(0.99) * 1000:.0f} ms"
        )
        if o.served_by_fallback:
            text += (
                f"; the fallback answered {o.served_by_fallback} GETs with a stale copy "
                f"({o.success_rate:.1%} answered vs {p.success_rate:.1%})"
            )
    elif kind == "p99":
        ok = o.percentile(0.99) < p.percentile(0.99)
        text = (
            f"hedging cut p99 from {p.percentile(0.99) * 1000:.0f} ms to "
            f"{o.percentile(0.99) * 1000:.0f} ms for {o.amplification:.2f}× upstream load"
        )
    else:
        ok = o.success_rate >= p.success_rate
        text = (
            f"httpx-resilience turned {p.success_rate:.1%} into {o.success_rate:.1%} success, "
            f"sending {o.upstream} requests upstream for {o.requests} logical ones"
        )
    duplicates = p.duplicates + o.duplicates
    if duplicates:
        ok = False
        text += f"; {duplicates} POSTs were sent twice"
    return ok, text


def _bad_args(requests: int, concurrency: int, scenario: str) -> str | None:
    if requests < 1 or concurrency < 1:
        return "demo: --requests and --concurrency must be >= 1"
    if scenario not in SCENARIOS:
        return f"demo: --scenario must be one of {', '.join(SCENARIOS)}, got {scenario!r}"
    return None


def run_demo(
    requests: int = 300,
    concurrency: int = 20,
    seed: int = 7,
    as_json: bool = False,
    progress: bool = True,
    scenario: str = "mixed",
    report: str | None = DEFAULT_REPORT,
) -> int:
    """Run the demo, print the comparison, write the report; the exit code is the verdict."""
    problem = _bad_args(requests, concurrency, scenario)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    chosen = SCENARIOS[scenario]
    duration = requests / DEFAULT_RATE
    if as_json:
        result = asyncio.run(run(chosen, requests, concurrency, seed, duration))
        path = _write(result, report)
        ok, text = verdict(result)
        out = {
            "scenario": scenario,
            "seed": seed,
            "plain": demo_summary(result.plain),
            "resilient": demo_summary(result.ours),
            "verdict": text,
            "report": str(path) if path else None,
        }
        print(json.dumps(out, indent=2))
        return 0 if ok else 1
    try:
        from ._demo_view import LiveView
    except ImportError:
        print(f"The demo's display needs rich: {INSTALL_HINT} (or use --json)", file=sys.stderr)
        return 2
    view = LiveView(chosen, requests, concurrency, seed, live=progress)
    with view:
        result = asyncio.run(
            run(chosen, requests, concurrency, seed, duration, view.tick, view.plain, view.ours)
        )
    path = _write(result, report)
    ok, text = verdict(result)
    view.summary(result, text, ok, path)
    return 0 if ok else 1


def _write(result: DemoRun, report: str | None) -> Path | None:
    if not report:
        return None
    from ._report import write_report

    return write_report(result, report)


from . import INSTALL_HINT  # noqa: E402  (import cycle: the package imports us lazily)
