"""Unit tests of the bulkhead: the cap, the FIFO queue, max_wait and cancellation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from httpx_resilience.exceptions import BulkheadFullError, ConfigurationError
from httpx_resilience.policies.bulkhead import Bulkhead
from httpx_resilience.testing.clock import FakeClock


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_slots_taken_at_once_then_full() -> None:
    """Free slots are taken without waiting; with no queue the next caller is refused."""
    b = Bulkhead(2)
    await b.acquire()
    await b.acquire()
    assert b.in_flight == 2
    with pytest.raises(BulkheadFullError) as info:
        await b.acquire()
    assert info.value.max_concurrent == 2 and info.value.max_queue == 0
    assert "2 slots" in str(info.value)
    b.release()
    await b.acquire()
    assert b.in_flight == 2


async def test_queue_is_fifo_and_bounded() -> None:
    """Waiters queue up to max_queue, are served first-in-first-out, and the rest are refused."""
    b = Bulkhead(1, max_queue=2)
    await b.acquire()
    order: list[int] = []

    async def worker(i: int) -> None:
        await b.acquire()
        order.append(i)

    tasks = [asyncio.create_task(worker(i)) for i in range(2)]
    await settle()
    assert b.queued == 2
    with pytest.raises(BulkheadFullError):
        await b.acquire()
    b.release()
    await settle()
    assert order == [0] and b.in_flight == 1 and b.queued == 1
    b.release()
    await settle()
    assert order == [0, 1]
    await asyncio.gather(*tasks)


async def test_newcomer_cannot_jump_the_queue() -> None:
    """A released slot goes to the oldest waiter, not to a caller arriving at that moment."""
    b = Bulkhead(1, max_queue=1)
    await b.acquire()
    waiter = asyncio.create_task(b.acquire())
    await settle()
    b.release()
    newcomer = asyncio.create_task(b.acquire())  # the slot already belongs to the waiter
    await settle()
    assert waiter.done() and not newcomer.done()
    assert b.in_flight == 1 and b.queued == 1
    b.release()
    await newcomer
    assert b.in_flight == 1 and b.queued == 0


async def test_cancelled_waiter_leaks_no_slot() -> None:
    """A cancelled queued waiter leaves the queue and takes no slot."""
    b = Bulkhead(1, max_queue=2)
    await b.acquire()
    cancelled = asyncio.create_task(b.acquire())
    kept = asyncio.create_task(b.acquire())
    await settle()
    cancelled.cancel()
    await settle()
    assert b.queued == 1
    b.release()
    await kept
    assert b.in_flight == 1 and b.queued == 0
    b.release()
    assert b.in_flight == 0


async def test_cancelled_after_handover_gives_slot_back() -> None:
    """A waiter cancelled just after it was handed a slot passes the slot on."""
    b = Bulkhead(1, max_queue=2)
    await b.acquire()
    first = asyncio.create_task(b.acquire())
    second = asyncio.create_task(b.acquire())
    await settle()
    b.release()  # hands the slot to `first`...
    first.cancel()  # ...which is cancelled before it runs
    await settle()
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert b.in_flight == 1 and b.queued == 0
    b.release()
    assert b.in_flight == 0


async def test_max_wait_refuses_queued_waiter() -> None:
    """A queued waiter gives up with BulkheadFullError once max_wait passes, leaking nothing."""
    clock = FakeClock()
    b = Bulkhead(1, max_queue=1, max_wait=2.0, clock=clock)
    await b.acquire()
    with pytest.raises(BulkheadFullError, match="within max_wait=2 s"):
        await b.acquire()
    assert clock.sleeps == [2.0] and b.queued == 0 and b.in_flight == 1
    b.release()
    assert b.in_flight == 0


async def test_max_wait_not_hit_when_released_in_time() -> None:
    """A waiter that gets its slot before max_wait keeps it and its timer is dropped."""
    clock = FakeClock()
    b = Bulkhead(1, max_queue=1, max_wait=5.0, clock=clock)
    await b.acquire()
    waiter = asyncio.create_task(b.acquire())
    await asyncio.sleep(0)  # queued, its timer not started yet
    b.release()
    await waiter
    await settle()
    assert b.in_flight == 1 and b.queued == 0


async def test_max_wait_zero_refuses_at_once() -> None:
    """max_wait=0 means never queue."""
    b = Bulkhead(1, max_queue=5, max_wait=0)
    await b.acquire()
    with pytest.raises(BulkheadFullError):
        await b.acquire()
    assert b.queued == 0


async def test_context_manager_and_repr() -> None:
    """async with takes and releases a slot; repr shows live counts."""
    b = Bulkhead(3, max_queue=4)
    async with b as same:
        assert same is b and b.in_flight == 1
        assert repr(b) == "Bulkhead(in_flight=1/3, queued=0/4)"
    assert b.in_flight == 0
    assert (b.max_concurrent, b.max_queue, b.max_wait) == (3, 4, None)


def test_release_without_acquire_is_an_error() -> None:
    """Releasing more than was acquired raises instead of silently raising the cap."""
    with pytest.raises(RuntimeError):
        Bulkhead(1).release()


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"max_concurrent": 0}, "max_concurrent"),
        ({"max_concurrent": True}, "max_concurrent"),
        ({"max_concurrent": 1, "max_queue": -1}, "max_queue"),
        ({"max_concurrent": 1, "max_wait": -1}, "max_wait"),
        ({"max_concurrent": 1, "max_wait": float("inf")}, "max_wait"),
    ],
)
def test_validation_names_the_field(kw: dict[str, Any], field: str) -> None:
    """Bad settings raise ConfigurationError naming the field."""
    with pytest.raises(ConfigurationError) as info:
        Bulkhead(**kw)
    assert info.value.field == field
