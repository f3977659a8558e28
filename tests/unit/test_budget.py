"""Unit tests of RetryBudget under a fake clock."""

from __future__ import annotations

import pytest

from httpx_resilience import ConfigurationError
from httpx_resilience.policies.budget import RetryBudget
from httpx_resilience.testing.clock import FakeClock


def test_the_floor_is_a_rate_not_an_upfront_reserve() -> None:
    """With no traffic the floor allows one second's worth at once (not min_per_second × ttl),
    then min_per_second more per second, never more than one second's worth saved up."""
    clock = FakeClock()
    b = RetryBudget(ratio=0.0, min_per_second=5.0, ttl=10.0, clock=clock)
    assert [b.try_spend("h") for _ in range(7)] == [True] * 5 + [False] * 2
    clock.advance(0.4)  # 2 retries accrued
    assert [b.try_spend("h") for _ in range(3)] == [True, True, False]
    clock.advance(60)  # a quiet minute saves up one second's worth, not 300
    assert b.available("h") == 5.0
    assert sum(b.try_spend("h") for _ in range(20)) == 5


def test_a_floor_below_one_per_second_still_allows_a_retry_now_and_then() -> None:
    """The reserve holds at least one retry: 0.2/s allows one retry every five seconds."""
    clock = FakeClock()
    b = RetryBudget(ratio=0.0, min_per_second=0.2, clock=clock)
    assert b.floor_capacity == 1.0
    assert b.try_spend("h") and not b.try_spend("h")
    clock.advance(4.0)
    assert not b.try_spend("h")
    clock.advance(1.0)
    assert b.try_spend("h")
    assert RetryBudget(min_per_second=0.0).floor_capacity == 0.0


def test_a_burst_into_a_full_outage_retries_about_ratio_plus_one_second_of_floor() -> None:
    """200 requests arriving within 0.2 s, each failing: the default budget (20 % + 10/s)
    allows 40 + 10 + 2 retries, where an upfront reserve of 10/s × 10 s allowed 140."""
    clock = FakeClock()
    b = RetryBudget(clock=clock)
    granted = 0
    for _ in range(200):
        b.record_request("h")
        granted += sum(b.try_spend("h") for _ in range(3))  # up to 3 retries each
        clock.advance(0.001)
    assert 50 <= granted <= 52
    assert (200 + granted) / 200 <= 1.3


def test_a_quiet_client_against_a_flaky_upstream_gets_its_retries() -> None:
    """One request a second, each failing twice before it succeeds: with the default floor
    (10/s) or a floor of 2/s, every request gets both of its retries; with a floor of 1/s,
    about ratio + floor = 1.2 retries a second."""
    for mps, expected in ((10.0, 120), (2.0, 120)):
        clock = FakeClock()
        b = RetryBudget(ratio=0.2, min_per_second=mps, clock=clock)
        granted = 0
        for _ in range(60):
            b.record_request("h")
            granted += b.try_spend("h") + b.try_spend("h")
            clock.advance(1.0)
        assert granted == expected
    # A floor below what it needs: about ratio + floor retries a second (1.2 a second here).
    clock = FakeClock()
    b = RetryBudget(ratio=0.2, min_per_second=1.0, clock=clock)
    granted = 0
    for _ in range(60):
        b.record_request("h")
        granted += b.try_spend("h") + b.try_spend("h")
        clock.advance(1.0)
    assert 60 * 1.2 - 2 <= granted <= 60 * 1.2 + 2


def test_available_matches_try_spend() -> None:
    """available() >= 1 exactly when try_spend() succeeds, with fractions of ratio and floor."""
    clock = FakeClock()
    b = RetryBudget(ratio=0.3, min_per_second=0.5, clock=clock)
    for step in range(200):
        if step % 3 == 0:
            b.record_request("h")
        left = b.available("h")
        assert b.try_spend("h") == (left >= 1.0 - 1e-9)
        clock.advance(0.37)


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
    """Each host has its own budget (its own floor too); at most max_keys are kept."""
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
    b = RetryBudget(ratio=1.0, min_per_second=0.0, ttl=2.0, buckets=2, clock=clock)
    b.record_request("h")
    b.record_request("h")
    assert b.try_spend("h") and b.try_spend("h") and not b.try_spend("h")
    clock.advance(2.5)  # the requests and the retries left the window together
    assert not b.try_spend("h")
    b.record_request("h")
    assert b.try_spend("h")


def test_running_totals_stay_exact_across_many_rolls() -> None:
    """The O(1) running totals agree with a recount after thousands of slices went by."""
    clock = FakeClock()
    b = RetryBudget(ratio=0.25, min_per_second=0.0, ttl=1.0, buckets=4, clock=clock)
    for i in range(5000):
        b.record_request("h")
        b.try_spend("h")
        clock.advance(0.013 * (1 + i % 7))
    w = b._windows["h"]
    assert w.total_requests == sum(w.requests)
    assert abs(w.total_retries - sum(w.retries)) < 1e-9


async def test_budgets_sharing_a_memory_backend_and_a_name_share_one_allowance() -> None:
    """MemoryBackend: same name, one set of windows; other settings under that name are refused."""
    from httpx_resilience.backends import MemoryBackend

    clock = FakeClock()
    memory = MemoryBackend()
    a = RetryBudget(ratio=0.5, min_per_second=0.0, name="x", backend=memory, clock=clock)
    b = RetryBudget(ratio=0.5, min_per_second=0.0, name="x", backend=memory, clock=clock)
    for _ in range(2):
        a.record_request("h")
    assert b.available("h") == 1.0 and b.try_spend("h") and not a.try_spend("h")
    assert await a.atry_spend("h") is False  # a memory backend decides locally, at once
    with pytest.raises(ConfigurationError, match="other settings") as info:
        RetryBudget(ratio=0.3, name="x", backend=memory)
    assert info.value.field == "name"
    with pytest.raises(ConfigurationError) as bad:
        RetryBudget(backend=memory, sync_interval=0)
    assert bad.value.field == "sync_interval"
