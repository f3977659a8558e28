"""The attempt's cancellation scope keeps asyncio.timeout's rules."""

from __future__ import annotations

import asyncio
import sys

import pytest

from httpx_resilience.pipeline._timeout import timeout_scope

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10 uses anyio.fail_after")

# Real waits here are the scope's own subject: a few milliseconds each.
FOREVER = 3600.0


async def test_expiry_raises_timeout_error_chained_to_the_cancellation() -> None:
    """A body still running at expiry is cancelled; the scope raises TimeoutError."""
    with pytest.raises(TimeoutError) as info, timeout_scope(0.01):
        await asyncio.Event().wait()
    assert isinstance(info.value.__cause__, asyncio.CancelledError)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # the scope's own cancel was undone


async def test_a_body_that_finishes_in_time_is_untouched() -> None:
    """No expiry: the result comes through and the timer is cancelled."""
    loop = asyncio.get_running_loop()
    scope = timeout_scope(FOREVER)
    with scope:
        await asyncio.sleep(0)
    assert scope._handle.cancelled()
    # The next await is not hit by a stray cancellation.
    await asyncio.sleep(0)
    assert loop.time() > 0


async def test_an_outside_cancellation_stays_a_cancellation() -> None:
    """Cancelling the task from outside is not turned into a TimeoutError."""
    entered = asyncio.Event()

    async def body() -> None:
        with timeout_scope(FOREVER):
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.ensure_future(body())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_outside_cancellation_at_expiry_still_cancels() -> None:
    """When the caller cancels in the same loop turn as the expiry, its cancellation wins."""
    loop = asyncio.get_running_loop()

    async def body() -> None:
        task = asyncio.current_task()
        assert task is not None
        scope = timeout_scope(FOREVER)
        with scope:

            def expire_and_cancel() -> None:
                scope._expire()  # the timer fires...
                task.cancel()  # ...and the caller cancels before the task runs again

            loop.call_soon(expire_and_cancel)
            await asyncio.Event().wait()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.ensure_future(body())


async def test_an_error_inside_the_scope_passes_through() -> None:
    """Exceptions other than the scope's cancellation are not touched."""
    with pytest.raises(KeyError), timeout_scope(FOREVER):
        raise KeyError("x")


def test_outside_a_task_is_a_clear_error() -> None:
    """In a loop callback (no task) the scope refuses, as asyncio.timeout does."""
    loop = asyncio.new_event_loop()
    errors: list[RuntimeError] = []

    def callback() -> None:
        try:
            timeout_scope(1.0)
        except RuntimeError as exc:
            errors.append(exc)
        loop.stop()

    loop.call_soon(callback)
    loop.run_forever()
    loop.close()
    assert errors and "inside an asyncio task" in str(errors[0])
