"""The demo's scenarios: the upstream's faults phase by phase, and what ours brings to each.

``mixed`` (the default) throws every kind of fault at once; the others show
one policy's effect alone (``flaky``: retries; ``outage``: the breaker and a
fallback; ``rate-limited``: the limiter; ``slow-tail``: hedging). Each names
what ours must show for the demo's exit code to be 0 (``verdict``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..testing.chaos import FaultMix

__all__ = ["SCENARIOS", "Phase", "Scenario"]


@dataclass(frozen=True)
class Phase:
    """The upstream's behaviour from ``start`` (a fraction of the run) on."""

    start: float
    label: str
    mix: Callable[[int], FaultMix] | None = None
    rate_limit: int | None = None


@dataclass(frozen=True)
class Scenario:
    """A named set of faults, and the policies of ours that answer them."""

    name: str
    summary: str
    phases: tuple[Phase, ...]
    limiter_rate: float | None = None
    hedging_delay: float | None = None
    post_every: int = 5  # every n-th request is a POST with a once-only id; 0: none
    verdict: str = "success"  # what ours must show: "success", "outage", "p99"
    fallback: bool = False  # ours answers a GET that finally fails with a stale copy


def _mixed(seed: int) -> FaultMix:
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


def _flaky(seed: int) -> FaultMix:
    return FaultMix(error_502=0.10, error_503=0.15, reset=0.10, seed=seed)


def _down(seed: int) -> FaultMix:
    return FaultMix(error_503=0.8, hang=0.2, seed=seed)


def _light(seed: int) -> FaultMix:
    return FaultMix(error_503=0.02, seed=seed)


def _slow_tail(seed: int) -> FaultMix:
    return FaultMix(slow=0.05, slow_latency=1.0, seed=seed)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "mixed",
            "a third of first attempts fail: 5xx, resets, hangs, slow answers, 429",
            (Phase(0.0, "mixed faults", _mixed),),
        ),
        Scenario(
            "flaky",
            "a third of answers are 502/503 or a reset connection: retries repair them",
            (Phase(0.0, "flaky", _flaky),),
        ),
        Scenario(
            "outage",
            "the upstream is down for a while (503 or no answer): the breaker opens and "
            "fails fast, a fallback answers GETs with a stale copy, then it recovers",
            (
                Phase(0.0, "healthy", _light),
                Phase(0.3, "outage", _down),
                Phase(0.65, "recovered", _light),
            ),
            verdict="outage",
            fallback=True,
        ),
        Scenario(
            "rate-limited",
            "the upstream takes 40 requests/s and answers 429 beyond: our limiter paces at 38/s",
            (Phase(0.0, "40 req/s limit", None, rate_limit=40),),
            limiter_rate=38.0,
        ),
        Scenario(
            "slow-tail",
            "5 % of answers take a second: hedging races a copy of a GET after 50 ms",
            (Phase(0.0, "slow tail", _slow_tail),),
            hedging_delay=0.05,
            post_every=0,  # hedging is for idempotent reads
            verdict="p99",
        ),
    )
}
