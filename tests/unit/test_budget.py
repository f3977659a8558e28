"""Unit tests of RetryBudget under a fake clock."""

from __future__ import annotations

import pytest

from httpx_resilience import ConfigurationError
from httpx_resilience.policies.budget import RetryBudget
from httpx_resilience.testing.clock import FakeClock


def test_floor_allows_min_retries_when_idle() -> None:
    """With no traffic, min_per_second × ttl retries are allowed, then refused."""
    b = RetryBudget(ratio=0.0, min_per_second=1.0, ttl=5.0, clock=FakeClock())
    assert [b.try_spend("h") for _ in range(6)] == [True] * 5 + [False]


def test_ratio_caps_retries_under_full_outage() -> None:
    """Under a full outage retries stay near ratio × requests."""
    b = RetryBudget(ratio=0.2, min_per_second=0.0, ttl=10.0, clock=FakeClock())
    granted = 0
    for _ in range(1000):
        b.record_request("h")
        granted += b.try_spend("h")
    assert granted == 200


def test_window_rolls_over_with_time() -> None:
    """Old requests and retries leave the window after ttl."""
    clock = FakeClock()
    b = RetryBudget(ratio=1.0, min_per_second=0.0, ttl=10.0, clock=clock)
    b.record_request("h")
    assert b.try_spend("h")
    assert not b.try_spend("h")
    clock.advance(11)
    assert b.available("h") == 0
    b.record_request("h")
    assert b.try_spend("h")


def test_keys_are_independent_and_bounded() -> None:
    """Each host has its own budget; at most max_keys are kept."""
    b = RetryBudget(ratio=0.0, min_per_second=0.1, ttl=10.0, max_keys=2, clock=FakeClock())
    assert b.try_spend("a")
    assert not b.try_spend("a")
    assert b.try_spend("b")
    b.try_spend("c")
    assert "keys=2" in repr(b)


def test_invalid_budget_settings() -> None:
    """Out-of-range values raise ConfigurationError naming the field."""
    with pytest.raises(ConfigurationError, match="ratio"):
        RetryBudget(ratio=-1)
    with pytest.raises(ConfigurationError, match="ttl"):
        RetryBudget(ttl=0)


def test_the_least_recently_used_key_goes_first() -> None:
    """With room for two keys, touching a key keeps it; the one left untouched is dropped."""
    b = RetryBudget(ratio=0.0, min_per_second=1.0, ttl=1.0, max_keys=2, clock=FakeClock())
    assert b.try_spend("a") and b.try_spend("b")  # each key's one retry is spent
    b.record_request("a")  # a is used again: b is now the oldest
    b.record_request("a")  # (twice in a row: the cached path)
    b.record_request("c")  # a third key: b is dropped, a kept
    assert not b.try_spend("a")  # a still remembers its spent retry
    assert b.try_spend("b")  # b starts over with a fresh allowance


def test_the_same_key_again_still_rolls_its_window() -> None:
    """Repeated calls for one key see time move on, as calls alternating keys do."""
    clock = FakeClock()
    b = RetryBudget(ratio=0.0, min_per_second=1.0, ttl=2.0, buckets=2, clock=clock)
    assert b.try_spend("h") and b.try_spend("h") and not b.try_spend("h")
    clock.advance(2.5)
    assert b.try_spend("h")
