"""Unit tests of the hedging policy value and the latency tracker."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from httpx_resilience.exceptions import ConfigurationError
from httpx_resilience.policies.hedging import DEFAULT_HEDGE_METHODS, HedgingPolicy, LatencyTracker


def test_positional_delay_and_defaults() -> None:
    """HedgingPolicy(0.1) sets the delay; the rest are keyword-only defaults."""
    p = HedgingPolicy(0.1)
    assert p.delay == 0.1 and p.max_hedges == 1 and not p.adaptive
    assert p.methods == DEFAULT_HEDGE_METHODS == {"GET", "HEAD", "OPTIONS"}
    assert HedgingPolicy().adaptive
    with pytest.raises(TypeError):
        HedgingPolicy(0.1, 2)  # type: ignore[call-arg]


def test_policy_is_immutable_and_replaceable() -> None:
    """The policy is frozen; dataclasses.replace re-validates."""
    p = HedgingPolicy(0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.delay = 0.2  # type: ignore[misc]
    assert dataclasses.replace(p, max_hedges=2).max_hedges == 2
    with pytest.raises(ConfigurationError):
        dataclasses.replace(p, max_hedges=0)


def test_methods_normalised_and_applies_to() -> None:
    """Methods are upper-cased; applies_to is case-insensitive."""
    p = HedgingPolicy(0.1, methods=frozenset({"get", "put"}))
    assert p.methods == {"GET", "PUT"}
    assert p.applies_to("put") and not p.applies_to("POST")


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"delay": -0.1}, "delay"),
        ({"delay": float("nan")}, "delay"),
        ({"delay": "fast"}, "delay"),
        ({"delay": True}, "delay"),
        ({"max_hedges": 0}, "max_hedges"),
        ({"max_hedges": 11}, "max_hedges"),
        ({"percentile": 0}, "percentile"),
        ({"percentile": 95}, "percentile"),
        ({"min_delay": -1}, "min_delay"),
        ({"max_delay": float("inf")}, "max_delay"),
        ({"min_delay": 1.0, "max_delay": 0.5}, "max_delay"),
        ({"min_delay": 0.0, "max_delay": 0.0}, "max_delay"),
        ({"methods": "GET"}, "methods"),
        ({"methods": frozenset({""})}, "methods"),
    ],
)
def test_validation_names_the_field(kw: dict[str, Any], field: str) -> None:
    """Each out-of-range value raises ConfigurationError naming the field."""
    with pytest.raises(ConfigurationError) as info:
        HedgingPolicy(**kw)
    assert info.value.field == field and field in str(info.value)


def test_tracker_percentile_nearest_rank() -> None:
    """percentile() is the nearest-rank percentile of the samples, None when empty."""
    t = LatencyTracker()
    assert t.percentile(0.95) is None
    for ms in range(1, 101):
        t.observe(ms / 1000)
    assert t.percentile(0.95) == 0.095
    assert t.percentile(0.5) == 0.05
    assert t.percentile(1.0) == 0.1
    assert len(t) == 100
    with pytest.raises(ConfigurationError):
        t.percentile(0)


def test_tracker_ring_is_bounded_and_recent() -> None:
    """Only the most recent `size` samples are kept."""
    t = LatencyTracker(size=20)
    for _ in range(20):
        t.observe(5.0)
    for _ in range(20):
        t.observe(0.1)
    assert len(t) == 20 and t.percentile(1.0) == 0.1


def test_tracker_ignores_garbage() -> None:
    """Negative, NaN and infinite latencies are ignored."""
    t = LatencyTracker()
    for bad in (-1.0, float("nan"), float("inf")):
        t.observe(bad)
    assert len(t) == 0


def test_next_delay_fixed_and_cold_start() -> None:
    """A fixed delay is returned as is; adaptive uses cold_delay until min_samples."""
    t = LatencyTracker(cold_delay=1.0)
    assert t.next_delay(HedgingPolicy(0.25)) == 0.25
    adaptive = HedgingPolicy("adaptive", max_delay=0.5)
    assert t.next_delay(adaptive) == 0.5  # cold_delay clamped to max_delay
    for _ in range(19):
        t.observe(0.01)
    assert t.next_delay(HedgingPolicy()) == 1.0


def test_next_delay_adaptive_clamped() -> None:
    """Once warm, the adaptive delay is the percentile clamped to [min_delay, max_delay]."""
    t = LatencyTracker()
    for ms in range(1, 101):
        t.observe(ms / 1000)
    assert t.next_delay(HedgingPolicy()) == 0.095
    assert t.next_delay(HedgingPolicy(percentile=0.5)) == 0.05
    assert t.next_delay(HedgingPolicy(min_delay=0.2, max_delay=1.0)) == 0.2
    assert t.next_delay(HedgingPolicy(max_delay=0.03)) == 0.03


def test_next_delay_cache_refreshes() -> None:
    """The cached percentile is recomputed after refresh_every new samples."""
    t = LatencyTracker(size=20, refresh_every=4)
    for _ in range(20):
        t.observe(0.1)
    policy = HedgingPolicy()
    assert t.next_delay(policy) == 0.1
    for _ in range(3):
        t.observe(0.3)
    assert t.next_delay(policy) == 0.1  # still cached
    for _ in range(20):
        t.observe(0.3)
    assert t.next_delay(policy) == 0.3
    t.reset()
    assert len(t) == 0 and t.next_delay(policy) == 1.0


def test_tracker_repr_and_validation() -> None:
    """repr shows the sample count and p95; bad settings name the field."""
    t = LatencyTracker()
    assert repr(t) == "LatencyTracker(samples=0/512, p95=n/a)"
    t.observe(0.012)
    assert repr(t) == "LatencyTracker(samples=1/512, p95=12.0ms)"
    for kw, field in (
        ({"size": 5}, "size"),
        ({"min_samples": 0}, "min_samples"),
        ({"refresh_every": 0}, "refresh_every"),
        ({"size": 20, "min_samples": 21}, "min_samples"),
        ({"cold_delay": -1}, "cold_delay"),
    ):
        with pytest.raises(ConfigurationError) as info:
            LatencyTracker(**kw)
        assert info.value.field == field


def test_a_default_delay_bound_yields_to_the_bound_that_was_given() -> None:
    assert HedgingPolicy(min_delay=3.0).max_delay == 3.0
    assert HedgingPolicy(max_delay=0.001).min_delay == 0.001
    assert HedgingPolicy().min_delay == 0.005 and HedgingPolicy().max_delay == 2.0
    with pytest.raises(ConfigurationError, match="max_delay"):
        HedgingPolicy(min_delay=3.0, max_delay=1.0)  # both given: they contradict
